"""Everything a training run holds, built from the config, the data and (optionally) a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from reenact.config import Config, to_dict
from reenact.errors import BadInputError
from reenact.train import distributed, state


@dataclass
class Parts:
    cfg: Config
    dist: distributed.Dist
    gen: nn.Module
    disc: nn.Module
    objective: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: nn.Module | None
    faces: torch.Tensor
    topology: str
    n_vertices: int | None
    step: int = 0
    nan_skipped: int = 0
    notes: list[str] = field(default_factory=list)
    sync_g: distributed.GradientSync | None = None  # gradient averaging over ranks (no-op with one process)
    sync_d: distributed.GradientSync | None = None
    gen_step: nn.Module | None = None  # what the training step calls: ``gen``, or its torch.compile wrapper
    disc_step: nn.Module | None = None
    memory_format: torch.memory_format = torch.contiguous_format  # of the step's image inputs

    def render(self, batch: dict) -> dict:
        """Guidance maps of a batch, rendered on the training device."""
        from reenact.render.guidance import guidance_maps

        dev = self.dist.device
        return guidance_maps(self.cfg.model.guidance, self.gen.codes, batch["verts_src"].to(dev),
                             batch["verts_drv"].to(dev), self.faces, self.cfg.model.image_size)

    def checkpoint_parts(self) -> dict:
        """What :func:`reenact.train.state.write` stores, besides format and step."""
        return {"generator": self.gen.state_dict(), "discriminator": self.disc.state_dict(),
                "generator_ema": self.ema.state_dict() if self.ema is not None else None,
                "model": state.model_meta(self.cfg), "discriminator_scales": list(self.cfg.discriminator.scales),
                "topology": self.topology, "n_vertices": self.n_vertices,
                "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
                "config": to_dict(self.cfg), "rng": state.rng_state(self.dist.device), "nan_skipped": self.nan_skipped}


def build_parts(cfg: Config, dist: distributed.Dist, topology: tuple[str, object, object], init_from: str | None,
                weights_dir: str | None, notify: Callable[[str], None]) -> Parts:
    from reenact.build import build_discriminator, build_generator, build_objective

    name, triangles, flip = topology
    uses_codes = cfg.model.guidance in ("neural_codes", "both")
    n_vertices = len(flip) if uses_codes else None
    init = _read_init(init_from, cfg, name, n_vertices, notify) if init_from else None
    torch.manual_seed(cfg.train.seed)
    gen = build_generator(cfg.model, n_vertices)
    disc = build_discriminator(cfg.discriminator)
    if init is not None:
        gen.load_state_dict(init["generator"], strict=True)
        _maybe_load_discriminator(disc, init, notify)
    gen, disc = distributed.prepare(gen, dist), distributed.prepare(disc, dist)
    objective = build_objective(cfg.loss, cfg.model.warp, weights_dir=weights_dir).to(dist.device)
    betas = tuple(cfg.train.betas)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.train.lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.train.lr, betas=betas)
    ema = None
    if cfg.train.ema > 0:
        import copy

        ema = copy.deepcopy(gen).eval().requires_grad_(False)
    faces = torch.as_tensor(triangles, dtype=torch.long, device=dist.device)
    parts = Parts(cfg, dist, gen, disc, objective, opt_g, opt_d, ema, faces, name, n_vertices,
                  sync_g=distributed.GradientSync(gen, dist), sync_d=distributed.GradientSync(disc, dist))
    return _speed_options(parts)


def _speed_options(parts: Parts) -> Parts:
    """``train.channels_last``, ``train.compile`` and ``train.cudnn_benchmark``. The compiled wrappers are
    only what the step calls: parameters, state dicts and checkpoints stay those of the plain modules."""
    cfg = parts.cfg.train
    if cfg.cudnn_benchmark and parts.dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.channels_last:
        parts.memory_format = torch.channels_last
        parts.gen.to(memory_format=torch.channels_last)
        parts.disc.to(memory_format=torch.channels_last)
    parts.gen_step, parts.disc_step = parts.gen, parts.disc
    if cfg.compile:
        parts.gen_step, parts.disc_step = torch.compile(parts.gen), torch.compile(parts.disc)
    return parts


def _read_init(path: str, cfg: Config, topology: str, n_vertices: int | None, notify) -> dict:
    """A reenact checkpoint for fine-tuning; its model settings replace the config's (said once)."""
    from reenact.models.checkpoint import load

    ckpt = load(path)
    meta = ckpt["model"]
    changed = {k: v for k, v in meta.items() if k != "image_size" and getattr(cfg.model, k) != v}
    for k, v in changed.items():
        setattr(cfg.model, k, v)
    if changed:
        notify(f"--init-from {Path(path).name}: model settings taken from the checkpoint: "
               + ", ".join(f"{k}={v}" for k, v in changed.items()))
    if meta["guidance"] != "geom_disp" and ckpt.get("topology") != topology:
        raise BadInputError(f"{path}: its per-vertex codes are for the {ckpt.get('topology')} topology; "
                            f"the data uses {topology}")
    if meta["guidance"] != "geom_disp" and ckpt.get("n_vertices") != n_vertices:
        raise BadInputError(f"{path}: codes for {ckpt.get('n_vertices')} vertices, the data has {n_vertices}")
    return ckpt


def _maybe_load_discriminator(disc: nn.Module, ckpt: dict, notify) -> None:
    sd = ckpt.get("discriminator")
    try:
        if sd is None:
            raise RuntimeError("none stored")
        disc.load_state_dict(sd, strict=True)
    except RuntimeError:
        notify("--init-from: the checkpoint's discriminator does not match this config; D starts fresh")


def restore(parts: Parts, ckpt: dict) -> None:
    """Models, optimizers, EMA, step, RNG and the non-finite count from a training checkpoint."""
    parts.gen.load_state_dict(ckpt["generator"])
    parts.disc.load_state_dict(ckpt["discriminator"])
    parts.opt_g.load_state_dict(ckpt["optimizer_g"])
    parts.opt_d.load_state_dict(ckpt["optimizer_d"])
    if parts.ema is not None:
        parts.ema.load_state_dict(ckpt.get("generator_ema") or ckpt["generator"])
    parts.step, parts.nan_skipped = int(ckpt["step"]), int(ckpt.get("nan_skipped", 0))
    state.set_rng_state(ckpt["rng"], parts.dist.device)
