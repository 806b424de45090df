"""FLAME forward (batch 64) and the landmark fitter on a 100-frame clip (batched), on the synthetic
FLAME model built from reference/flame_assets (the real one needs registration).

Usage: python bench/bench_flame.py [--device cpu|cuda] [--assets DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from _common import ROOT, SHARED, machine, timeit

sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from flame_synth import load_synthetic
    from reenact.face.flame_fit import FlameFitter, project

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--assets", default=str(SHARED / "reference" / "flame_assets"))
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    assets = Path(args.assets)
    print(f"machine: {machine()}")
    model, lmk = load_synthetic(assets)
    model, lmk = model.to(dev), lmk.to(dev)
    g = torch.Generator().manual_seed(0)
    b = 64
    shape, expr = torch.randn(b, 100, generator=g).to(dev), torch.randn(b, 50, generator=g).to(dev)
    pose = (torch.randn(b, 5, 3, generator=g) * 0.2).to(dev)
    with torch.no_grad():
        t = timeit(lambda: model(shape, expr, pose), sync=sync)
    print(f"FLAME forward, batch {b}, {args.device}: {1000 * t:.2f} ms ({1000 * t / b:.3f} ms/mesh)")
    n = 100
    tt = torch.linspace(0, 1, n)[:, None]
    clip_pose = torch.zeros(n, 5, 3)
    clip_pose[:, 0] = torch.cat([0.15 * torch.sin(6 * tt), 0.35 * torch.sin(4 * tt), 0.1 * torch.cos(5 * tt)], 1)
    clip_pose[:, 2, 0] = (0.1 + 0.1 * torch.sin(9 * tt))[:, 0]
    cam = torch.tensor([8.0, 0.0, -0.02]).repeat(n, 1)
    with torch.no_grad():
        verts, _ = model(shape[:1].expand(n, -1) * 0.5, (torch.randn(n, 50, generator=g) * 0.5).to(dev), clip_pose.to(dev))
        target = project(lmk(verts, clip_pose.to(dev)), cam.to(dev), 256)[..., :2]
        target = target + torch.randn(target.shape, generator=g).to(dev)
    fitter = FlameFitter(model, lmk)
    if sync:
        sync()
    t0 = time.perf_counter()
    fit = fitter.fit(target)
    if sync:
        sync()
    secs = time.perf_counter() - t0
    print(f"fitter, {n}-frame clip batched, {args.device}: {secs:.1f} s = {n / secs:.1f} frames/s "
          f"({fitter.rigid_steps}+{fitter.steps} Adam steps); residual mean {fit.residual.mean():.2f} px, "
          f"max {fit.residual.max():.2f} px (1 px landmark noise)")


if __name__ == "__main__":
    main()
