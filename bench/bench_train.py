"""Training step time: D step + G step on real preprocessed pairs, no data loading in the timing.

Usage:
  python bench/bench_train.py                                   # tiny config on CPU
  python bench/bench_train.py --device cuda --config configs/paper_geom_disp.yaml --batch 16 --compare-amp

--compare-amp times bf16 autocast against fp32 eager and prints steps/s, the ratio and peak memory
(CUDA). VGG-19 is a seeded random one (loss.vgg=random): same cost as ImageNet weights, no file needed.
Figures are printed; record them in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, TESTDATA, machine  # noqa: E402


def _parts(cfg_path: str, sets: list[str], device: torch.device, data: Path):
    from reenact.config import load_config
    from reenact.data.layout import read_topology
    from reenact.train import distributed
    from reenact.train.setup import build_parts

    cfg = load_config(cfg_path, ["loss.vgg=random", *sets])
    return cfg, build_parts(cfg, distributed.Dist(0, 1, 0, device), read_topology(data), None, None, print)


def _time(parts, batch, steps: int, device: torch.device) -> tuple[float, float]:
    from reenact.train.loop import _step

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        _step(parts, batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        _step(parts, batch)
    sync()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return (time.perf_counter() - t) / steps, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--compare-amp", action="store_true")
    args = ap.parse_args()
    from torch.utils.data import default_collate

    from reenact.data.dataset import PairDataset
    from reenact.data.preprocess import PreprocessOptions, preprocess

    device = torch.device(args.device)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        preprocess([TESTDATA / "videos"], data, PreprocessOptions(identity_from="none", max_frames=24))
        modes = [True, False] if args.compare_amp else [None]
        rates = {}
        for amp in modes:
            sets = [f"train.batch_size={args.batch}"] if args.batch else []
            sets += [f"train.amp={str(amp).lower()}"] if amp is not None else []
            cfg, parts = _parts(args.config, sets, device, data)
            ds = PairDataset(data, image_size=cfg.model.image_size)
            batch = default_collate([ds[i] for i in range(cfg.train.batch_size)])
            sec, peak = _time(parts, batch, args.steps, device)
            label = {True: "bf16 autocast", False: "fp32 eager", None: "config default"}[amp]
            rates[amp] = 1 / sec
            print(f"{Path(args.config).name} {cfg.model.image_size}² batch {cfg.train.batch_size} on {device}, {label}: "
                  f"{sec * 1000:.0f} ms/step = {1 / sec:.2f} steps/s" + (f", peak memory {peak:.2f} GiB" if device.type == "cuda" else ""))
        if args.compare_amp:
            print(f"bf16 / fp32 speed ratio: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
