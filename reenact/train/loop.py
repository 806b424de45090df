"""`reenact train`: the explicit loop (DESIGN §2.6). Per step: D step, G step, EMA, logging, samples,
validation, checkpoint. Read :func:`train` top to bottom.

Stops cleanly: SIGINT or SIGTERM finishes the current step, writes a checkpoint and returns (a second
signal aborts at once). An update whose loss is not finite on any rank is skipped on the device (fused
Adam's ``found_inf``: parameters, moments and its step count stay as they were); a non-finite D loss
skips that step's G update too. The step still counts (the data stream moves on). The host learns of
skipped updates only every ``min(log_every, max_nan_steps)`` steps, so the step never waits for the
device; ``max_nan_steps`` or more in a row then abort with TrainingError.
"""

from __future__ import annotations

import contextlib
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
    """Train until ``config.train.steps`` (or a stop signal); ``progress(step, total, terms)`` after each
    step, with the loss terms as numbers on logging steps and None between them."""
    cfg, run = opts.config, Path(opts.out)
    dist = distributed.setup(opts.device)
    try:
        parts, loader, evals = _start(opts, dist, notify)
        log = monitor.MetricsLog(run, dist.main)
        stop, skips, last, saved_step = _StopFlag(), _SkipCounter(dist.device), None, None
        check_every = min(cfg.train.log_every, cfg.train.max_nan_steps)
        with stop:
            for batch in loader:
                if parts.step >= cfg.train.steps:
                    break
                terms, skipped = _step(parts, batch)  # D step, then G step; skipped: a device flag, not read here
                skips.add(skipped)
                parts.step += 1
                if parts.step % check_every == 0:
                    _check_skips(parts, skips)
                logged = _after_step(parts, terms, batch, log, evals, run)
                if progress is not None and dist.main:
                    progress(parts.step, cfg.train.steps, logged)
                if parts.step % cfg.train.checkpoint_every == 0:
                    _check_skips(parts, skips)
                    last, saved_step = _save(parts, run), parts.step
                if distributed.any_rank(stop.requested, dist):
                    break
        _check_skips(parts, skips)
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
    if cfg.train.coverage_in_workers:  # after build_parts: --init-from may have brought another guidance
        data.guidance = parts.cfg.model.guidance
    if resume_from is not None:
        restore(parts, state.read(resume_from))
        notify(f"resumed from {resume_from.name} (step {parts.step})")
    if dist.main:
        _save_config(parts.cfg, run)  # with --init-from, the checkpoint's model settings
    loader = torch.utils.data.DataLoader(
        data, batch_size=cfg.train.batch_size, sampler=StepSampler(parts.step, cfg.train.batch_size, dist.rank, dist.world),
        num_workers=cfg.train.workers, pin_memory=dist.device.type == "cuda", persistent_workers=cfg.train.workers > 0,
        worker_init_fn=_worker_ignores_signals)
    return parts, loader, _eval_sets(opts, parts.cfg, notify)


def _step(parts: Parts, batch: dict) -> tuple[dict, torch.Tensor]:
    """One D step and one G step on ``batch``: the named loss terms and a device flag (1 when an update
    was skipped for a non-finite loss). Nothing here waits for the device."""
    cfg, dev = parts.cfg, parts.dist.device
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if cfg.train.amp and dev.type == "cuda" else contextlib.nullcontext()
    src, drv, maps = parts.inputs(batch)
    with amp:
        out = parts.gen_step(src, **maps)
        d_total, d_terms = parts.objective.discriminator(out, drv, parts.disc_step)
    d_bad = _update(d_total, parts.sync_d, parts.opt_d, parts.dist)
    parts.disc.requires_grad_(False)
    with amp:
        g_total, g_terms = parts.objective.generator(out, src, drv, parts.disc_step)
    parts.disc.requires_grad_(True)
    g_bad = _update(g_total, parts.sync_g, parts.opt_g, parts.dist, also_skip=d_bad)
    return {**g_terms, **d_terms, "g_total": g_total.detach(), "d_total": d_total.detach()}, g_bad


def _update(total: torch.Tensor, sync: distributed.GradientSync, opt: torch.optim.Optimizer, dist,
            also_skip: torch.Tensor | None = None) -> torch.Tensor:
    """Backward, average gradients over ranks, step; the step is skipped on the device when ``total`` is
    not finite on any rank (or ``also_skip`` is 1). Returns that skip flag, a () float tensor."""
    bad = (~torch.isfinite(total.detach())).float()
    distributed.any_rank_on_device(bad, dist)
    if also_skip is not None:
        bad = torch.maximum(bad, also_skip)
    opt.zero_grad(set_to_none=True)
    sync.arm()
    total.backward()  # buckets of gradients are all-reduced while backward runs
    sync.finish()
    opt.found_inf = bad  # read by fused Adam: where 1, the whole update is skipped on the device
    opt.step()
    return bad


class _SkipCounter:
    """Skipped steps, counted on the device: in total and in the current run of consecutive ones."""

    def __init__(self, device: torch.device):
        self.total = torch.zeros((), device=device)
        self.run = torch.zeros((), device=device)

    def add(self, skipped: torch.Tensor) -> None:
        self.total += skipped
        self.run = (self.run + 1) * skipped  # back to 0 after a step that updated

    def read(self) -> tuple[int, int]:
        """(skipped since the last read, current run); the one host sync, every few steps."""
        total, run = (int(v) for v in torch.stack([self.total, self.run]).tolist())
        self.total.zero_()
        return total, run


def _check_skips(parts: Parts, skips: _SkipCounter) -> None:
    skipped, run = skips.read()
    parts.nan_skipped += skipped
    if run >= parts.cfg.train.max_nan_steps:
        raise TrainingError(f"{run} steps in a row had non-finite losses (step {parts.step}); "
                            "lower train.lr or check the data")


def _after_step(parts: Parts, terms: dict, batch: dict, log, evals: dict, run: Path) -> dict | None:
    """EMA update, then the periodic metrics line, sample grid and held-out validation. Returns the
    loss terms as numbers on logging steps (read from the device in one copy), else None."""
    cfg, step = parts.cfg.train, parts.step
    if parts.ema is not None:  # as stylegan3: parameters averaged, buffers (BN statistics, spectral-norm u, v) copied
        with torch.no_grad():
            for e, p in zip(parts.ema.parameters(), parts.gen.parameters()):
                e.lerp_(p, 1.0 - cfg.ema)
            for e, b in zip(parts.ema.buffers(), parts.gen.buffers()):
                e.copy_(b)
    logged = None
    if step % cfg.log_every == 0 or step == 1:
        logged = dict(zip(terms, torch.stack([v.float() for v in terms.values()]).tolist()))
        log.write(step=step, **logged, nan_skipped=parts.nan_skipped)
    if parts.dist.main and step % cfg.sample_every == 0:
        _samples(parts, batch, run / "samples" / f"step_{step:08d}.png")
    if parts.dist.main and (step % cfg.val_every == 0 or step == 1):
        gen = parts.ema if parts.ema is not None else parts.gen
        values = {f"{name}_l1": monitor.reconstruction_l1(gen, batches, parts.inputs) for name, batches in evals.items()}
        log.write(step=step, **values)
    return logged


@torch.no_grad()
def _samples(parts: Parts, batch: dict, path: Path) -> None:
    src, drv, maps = parts.inputs(batch)
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
            ds = PairDataset(opts.data, split, cfg.model.image_size, flip=0.0, jitter=0.0, seed=cfg.train.seed + 1,
                             guidance=cfg.model.guidance if cfg.train.coverage_in_workers else None)
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
    return state.write(run, parts.checkpoint(), parts.cfg.train.keep_checkpoints)


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
    which finishes the step and writes a checkpoint. Each worker uses one thread: there are several."""
    torch.set_num_threads(1)
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
