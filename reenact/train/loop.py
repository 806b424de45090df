"""`reenact train`: the explicit loop (DESIGN §2.6). Per step: D step, G step, EMA, logging, samples,
validation, checkpoint. Read :func:`train` top to bottom.

Stops cleanly: SIGINT or SIGTERM finishes the current step, writes a checkpoint and returns (a second
signal aborts at once). A step whose losses are not finite is skipped and counted (a D update whose
own loss was finite stands); ``max_nan_steps`` of them in a row abort with TrainingError.
"""

from __future__ import annotations

import contextlib
import math
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from reenact.config import Config
from reenact.errors import BadInputError, ReenactError
from reenact.train import distributed, monitor, state
from reenact.train.setup import Parts, build_parts, restore


class TrainingError(ReenactError):
    """Training cannot go on (repeated non-finite losses)."""


@dataclass
class TrainOptions:
    config: Config
    data: str
    out: str
    device: str = "auto"
    resume: bool = False
    init_from: str | None = None
    weights_dir: str | None = None
    dump_rank_state: str | None = None  # tests: every rank saves its final parameters here


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    interrupted: bool
    nan_skipped: int


def train(opts: TrainOptions, notify: Callable[[str], None] = print,
          progress: Callable[[int, int, dict], None] | None = None) -> TrainResult:
    """Train until ``config.train.steps`` (or a stop signal); ``progress(step, total, terms)`` after each step."""
    cfg, run = opts.config, Path(opts.out)
    dist = distributed.setup(opts.device)
    try:
        parts, loader, evals = _start(opts, dist, notify)
        log = monitor.MetricsLog(run, dist.main)
        stop, nan_run, last, saved_step = _StopFlag(), 0, None, None
        with stop:
            for batch in loader:
                if parts.step >= cfg.train.steps:
                    break
                terms = _step(parts, batch)  # D step, then G step; None when a loss was not finite
                if terms is None:
                    nan_run, parts.nan_skipped = nan_run + 1, parts.nan_skipped + 1
                    if nan_run >= cfg.train.max_nan_steps:
                        raise TrainingError(f"{nan_run} steps in a row had non-finite losses (step {parts.step}); "
                                            "lower train.lr or check the data")
                    continue
                nan_run = 0
                parts.step += 1
                _after_step(parts, terms, batch, log, evals, run)
                if progress is not None and dist.main:
                    progress(parts.step, cfg.train.steps, terms)
                if parts.step % cfg.train.checkpoint_every == 0:
                    last, saved_step = _save(parts, run), parts.step
                if distributed.any_rank(stop.requested, dist):
                    break
        if saved_step != parts.step:  # the same decision on every rank (saving is collective)
            last = _save(parts, run)
        _dump(parts, opts.dump_rank_state)
        return TrainResult(parts.step, last if dist.main else None, stop.requested, parts.nan_skipped)
    finally:
        distributed.teardown(dist)


def _start(opts: TrainOptions, dist: distributed.Dist, notify):
    """Check the run folder, load the data, build or restore the parts, and open the loader."""
    from reenact.data.dataset import PairDataset, StepSampler
    from reenact.data.layout import read_topology

    cfg, run = opts.config, Path(opts.out)
    if not opts.resume and state.list_checkpoints(run):
        raise BadInputError(f"{run}: already has checkpoints; use --resume, or a new --out")
    resume_from = state.latest(run) if opts.resume else None
    data = PairDataset(opts.data, "train", cfg.model.image_size, cfg.train.flip, cfg.train.jitter, cfg.train.seed)
    parts = build_parts(cfg, dist, read_topology(opts.data), opts.init_from, opts.weights_dir, notify)
    if resume_from is not None:
        restore(parts, state.read(resume_from))
        notify(f"resumed from {resume_from.name} (step {parts.step})")
    if dist.main:
        _save_config(cfg, run)
    loader = torch.utils.data.DataLoader(
        data, batch_size=cfg.train.batch_size, sampler=StepSampler(parts.step, cfg.train.batch_size, dist.rank, dist.world),
        num_workers=cfg.train.workers, pin_memory=dist.device.type == "cuda", persistent_workers=cfg.train.workers > 0,
        worker_init_fn=_worker_ignores_signals)
    return parts, loader, _eval_sets(opts, cfg, notify)


def _step(parts: Parts, batch: dict) -> dict | None:
    """One D step and one G step on ``batch``; the named loss terms, or None if any was not finite."""
    cfg, dev = parts.cfg, parts.dist.device
    fmt = parts.memory_format
    src = batch["src"].to(dev, non_blocking=True).contiguous(memory_format=fmt)
    drv = batch["drv"].to(dev, non_blocking=True).contiguous(memory_format=fmt)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if cfg.train.amp and dev.type == "cuda" else contextlib.nullcontext()
    maps = parts.render(batch)
    with amp:
        out = parts.gen_step(src, **maps)
        d_total, d_terms = parts.objective.discriminator(out, drv, parts.disc_step)
    if not _update(d_total, parts.sync_d, parts.opt_d, parts.dist):
        return None
    parts.disc.requires_grad_(False)
    with amp:
        g_total, g_terms = parts.objective.generator(out, src, drv, parts.disc_step)
    parts.disc.requires_grad_(True)
    if not _update(g_total, parts.sync_g, parts.opt_g, parts.dist):
        return None
    return {**g_terms, **d_terms, "g_total": g_total.detach(), "d_total": d_total.detach()}


def _update(total: torch.Tensor, sync: distributed.GradientSync, opt: torch.optim.Optimizer, dist) -> bool:
    """Backward, average gradients over ranks, step; False (nothing done) when ``total`` is not finite."""
    if distributed.any_rank(not math.isfinite(total.item()), dist):
        return False
    opt.zero_grad(set_to_none=True)
    sync.arm()
    total.backward()  # buckets of gradients are all-reduced while backward runs
    sync.finish()
    opt.step()
    return True


def _after_step(parts: Parts, terms: dict, batch: dict, log, evals: dict, run: Path) -> None:
    """EMA update, then the periodic metrics line, sample grid and held-out validation."""
    cfg, step = parts.cfg.train, parts.step
    if parts.ema is not None:  # as stylegan3: parameters averaged, buffers (BN statistics, spectral-norm u, v) copied
        with torch.no_grad():
            for e, p in zip(parts.ema.parameters(), parts.gen.parameters()):
                e.lerp_(p, 1.0 - cfg.ema)
            for e, b in zip(parts.ema.buffers(), parts.gen.buffers()):
                e.copy_(b)
    if step % cfg.log_every == 0 or step == 1:
        log.write(step=step, **{k: v.item() for k, v in terms.items()}, nan_skipped=parts.nan_skipped)
    if parts.dist.main and step % cfg.sample_every == 0:
        _samples(parts, batch, run / "samples" / f"step_{step:08d}.png")
    if parts.dist.main and (step % cfg.val_every == 0 or step == 1):
        gen = parts.ema if parts.ema is not None else parts.gen
        values = {f"{name}_l1": monitor.reconstruction_l1(gen, batches, parts.render, parts.dist.device)
                  for name, batches in evals.items()}
        log.write(step=step, **values)


@torch.no_grad()
def _samples(parts: Parts, batch: dict, path: Path) -> None:
    dev = parts.dist.device
    src, drv = batch["src"].to(dev), batch["drv"].to(dev)
    maps = parts.render(batch)
    gen = parts.ema if parts.ema is not None else parts.gen
    was = gen.training
    out = gen.eval()(src, **maps)
    gen.train(was)
    monitor.save_grid(path, [src, drv, monitor.guidance_image(maps), out.warp_img_s, out.out_img])


def _eval_sets(opts: TrainOptions, cfg: Config, notify) -> dict:
    """Fixed, un-augmented pairs: 'train' (training clips) and 'val' (the test split, when there is one)."""
    from reenact.data.dataset import PairDataset
    from reenact.data.layout import DataError

    sets = {}
    for name, split in (("train", "train"), ("val", "test")):
        try:
            ds = PairDataset(opts.data, split, cfg.model.image_size, flip=0.0, jitter=0.0, seed=cfg.train.seed + 1)
        except DataError:
            notify("no test-split clips: held-out validation is skipped (see preprocess --test-fraction)")
            continue
        sets[name] = monitor.fixed_batches(ds, cfg.train.val_pairs, cfg.train.batch_size)
    return sets


def _save(parts: Parts, run: Path) -> Path | None:
    distributed.average_buffers(parts.gen, parts.dist)
    distributed.average_buffers(parts.disc, parts.dist)
    if not parts.dist.main:
        return None
    return state.write(run, parts.step, parts.checkpoint_parts(), parts.cfg.train.keep_checkpoints)


def _save_config(cfg: Config, run: Path) -> None:
    import yaml

    from reenact.config import to_dict
    from reenact.io import atomic_output

    run.mkdir(parents=True, exist_ok=True)
    with atomic_output(run / "config.yaml", force=True) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _dump(parts: Parts, folder: str | None) -> None:
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        torch.save({"generator": parts.gen.state_dict(), "discriminator": parts.disc.state_dict()},
                   Path(folder) / f"rank{parts.dist.rank}.pt")


def _worker_ignores_signals(_: int) -> None:
    """DataLoader workers leave Ctrl-C / SIGTERM (sent to the whole process group) to the main process,
    which finishes the step and writes a checkpoint."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _StopFlag:
    """SIGINT/SIGTERM set ``requested`` (the loop checkpoints and returns); a second signal aborts."""

    def __init__(self):
        self.requested, self._old = False, {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
