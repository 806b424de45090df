"""Training checkpoints: ``RUN/checkpoints/step_XXXXXXXX.pt``, written atomically, the last K kept.

A training checkpoint is a reenact checkpoint (:mod:`reenact.models.checkpoint`): ``drive
--checkpoint`` reads its generator (the EMA copy when there is one), model settings and topology.
For ``--resume`` it also holds both optimizers, the step, the resolved config, the RNG states, the
non-finite-step count and the EMA weights. Everything is plain tensors and containers, so it loads
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from reenact.errors import BadInputError
from reenact.models.checkpoint import Checkpoint

PATTERN = re.compile(r"step_(\d{8})\.pt$")


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def list_checkpoints(run: Path) -> list[Path]:
    """Finished checkpoints of ``run``, oldest first (temporary files are not listed)."""
    d = checkpoint_dir(run)
    found = [p for p in d.glob("step_*.pt") if PATTERN.search(p.name)] if d.is_dir() else []
    return sorted(found, key=lambda p: int(PATTERN.search(p.name).group(1)))


def latest(run: Path) -> Path:
    ckpts = list_checkpoints(run)
    if not ckpts:
        raise BadInputError(f"{run}: --resume but no checkpoint in {checkpoint_dir(run)}")
    return ckpts[-1]


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def write(run: Path, ckpt: Checkpoint, keep: int) -> Path:
    """Save ``ckpt`` as its step; delete all but the newest ``keep``."""
    path = checkpoint_dir(run) / f"step_{ckpt.step:08d}.pt"
    ckpt.save(path)
    for old in list_checkpoints(run)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def read(path: Path) -> Checkpoint:
    ckpt = Checkpoint.load(path)
    if ckpt.resume is None:
        raise BadInputError(f"{path}: not a training checkpoint (no optimizer state); use --init-from for weights only")
    return ckpt
