"""Training step: time, and what one step costs (torch ops, host syncs, FLOPs, VGG passes), on real
preprocessed pairs, no data loading in the timing.

Usage:
  python bench/bench_train.py                       # tiny config on CPU: time and per-step counts
  python bench/bench_train.py --config paper_geom_disp --size 128 --batch 2
  python bench/bench_train.py --device cuda --config paper_geom_disp --batch 16 --matrix --max-batch

Per step (``--count``, on by default): the aten ops dispatched, the host syncs (``.item()``/``.tolist()``
/``.cpu()``/``.numpy()`` calls, ``nonzero`` and other ops whose output size depends on the data, and
``_local_scalar_dense``), the FLOPs (torch.utils.flop_counter, forward and backward) and the VGG-19
forward passes. The step is what the loop runs between logging steps: ``_step`` plus the progress bar's
reads of the losses (reenact 0.1's CLI read G and D totals every step; now only logging steps do).
Run it from an older checkout (PYTHONPATH=that checkout) to get the "before" figures.

``--matrix`` (CUDA): bf16 autocast and fp32 eager, each with and without torch.compile: steps/s,
samples/s, peak memory, and the fraction of the GPU's dense bf16 peak (``--peak-tflops``, 989 for
H100/H200 SXM) the step's FLOPs reach. ``--max-batch`` doubles the batch (bf16, eager) until it no
longer fits and prints the largest and its peak memory. VGG-19 is a seeded random one
(loss.vgg=random): the same cost as ImageNet weights, no file needed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TESTDATA, machine  # noqa: E402
from _counting import count_step  # noqa: E402


def _parts(config: str, sets: list[str], device: torch.device, data: Path):
    from reenact.config import load_config, resolve_config
    from reenact.data.layout import read_topology
    from reenact.train import distributed
    from reenact.train.setup import build_parts

    cfg = load_config(resolve_config(config), ["loss.vgg=random", "train.workers=0", *sets])
    return cfg, build_parts(cfg, distributed.Dist(0, 1, 0, device), read_topology(data), None, None, print)


def _batch(data: Path, cfg):
    from torch.utils.data import default_collate

    from reenact.data.dataset import PairDataset

    try:
        guidance = cfg.model.guidance if getattr(cfg.train, "coverage_in_workers", True) else None
        ds = PairDataset(data, image_size=cfg.model.image_size, guidance=guidance)
    except TypeError:  # reenact 0.1: no guidance argument (it rasterized in the step)
        ds = PairDataset(data, image_size=cfg.model.image_size)
    t = time.perf_counter()
    items = [ds[i] for i in range(cfg.train.batch_size)]
    per_sample = (time.perf_counter() - t) / len(items)
    return default_collate(items), per_sample


def step_fn(parts, batch):
    """One training step as the loop runs it between logging steps."""
    from reenact.train.loop import _step

    def run():
        out = _step(parts, batch)
        if isinstance(out, dict):  # reenact 0.1: its CLI progress bar read both totals every step
            out["g_total"].item(), out["d_total"].item()
    return run


def _time(run, steps: int, device: torch.device) -> tuple[float, float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        run()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        run()
    sync()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return (time.perf_counter() - t) / steps, peak


def _flops(parts, batch) -> float:
    return count_step(step_fn(parts, batch), parts.objective)["flops"]


def _run(args, data: Path, device: torch.device, sets: list[str], label: str, count: bool) -> dict:
    cfg, parts = _parts(args.config, sets, device, data)
    batch, per_sample = _batch(data, cfg)
    run = step_fn(parts, batch)
    counts = count_step(run, parts.objective) if count else None
    sec, peak = _time(run, args.steps, device)
    b = cfg.train.batch_size
    line = (f"{Path(args.config).stem} {cfg.model.image_size}² batch {b} on {device}, {label}: {sec * 1000:.0f} ms/step "
            f"= {1 / sec:.2f} steps/s = {b / sec:.1f} samples/s")
    if device.type == "cuda":
        line += f", peak memory {peak:.2f} GiB"
    print(line + f"; data {per_sample * 1000:.1f} ms per sample in the loader (not in the step)")
    if counts:
        print(f"  per step: {counts['ops']:,} torch ops, {counts['syncs']} host syncs {counts['sync_detail']}, "
              f"{counts['flops'] / 1e9:.2f} GFLOP, VGG-19 passes {counts['vgg']}")
    return {"sec": sec, "peak": peak, "parts": parts, "batch": batch, "b": b}


def _matrix(args, data: Path, device: torch.device) -> None:
    base = [f"train.batch_size={args.batch}"] if args.batch else []
    base += [f"model.image_size={args.size}"] if args.size else []
    flops = None
    for amp in (True, False):
        for compiled in (False, True):
            sets = base + [f"train.amp={str(amp).lower()}", f"train.compile={str(compiled).lower()}"]
            label = ("bf16 autocast" if amp else "fp32 eager") + (", compiled" if compiled else "")
            r = _run(args, data, device, sets, label, count=False)
            if flops is None:
                flops = _flops(r["parts"], r["batch"])
            print(f"  {flops / r['sec'] / 1e12:.1f} TFLOP/s = {flops / r['sec'] / (args.peak_tflops * 1e12):.1%} of the "
                  f"{args.peak_tflops:.0f} TFLOP/s bf16 peak")
            del r
            torch.cuda.empty_cache()


def _max_batch(args, data: Path, device: torch.device) -> None:
    if device.type != "cuda":
        print("--max-batch: needs --device cuda (it doubles the batch until CUDA runs out of memory)")
        return
    batch, best = args.batch or 16, None
    while batch <= 1024:
        try:
            r = _run(args, data, device, [f"train.batch_size={batch}", "train.amp=true"], "bf16 autocast", count=False)
            best = (batch, r["peak"])
            del r
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
        batch *= 2
    print(f"largest batch that fits (doubling from {args.batch or 16}, bf16): {best}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="tiny", help="a bundled config's name or a YAML file")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--size", type=int, default=None, help="model.image_size override")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--no-count", action="store_true")
    ap.add_argument("--matrix", action="store_true")
    ap.add_argument("--max-batch", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    args = ap.parse_args()
    from reenact.data.preprocess import PreprocessOptions, preprocess

    device = torch.device(args.device)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        preprocess([TESTDATA / "videos"], data, PreprocessOptions(identity_from="none", max_frames=24))
        sets = [f"train.batch_size={args.batch}"] if args.batch else []
        sets += [f"model.image_size={args.size}"] if args.size else []
        if args.matrix:
            _matrix(args, data, device)
        else:
            _run(args, data, device, sets, "config default", count=not args.no_count)
        if args.max_batch:
            _max_batch(args, data, device)


if __name__ == "__main__":
    main()
