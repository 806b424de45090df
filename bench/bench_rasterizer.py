"""Rasterizer speed at 256²: the 468-vertex face mesh and a 10k-triangle mesh, vs the brute-force reference.

Usage: python bench/bench_rasterizer.py [--device cpu|cuda] [--skip-reference]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from _common import ROOT, machine, timeit

sys.path.insert(0, str(ROOT / "tests"))


def face_mesh(device):
    from reenact.face.mesh import canonical_vertices, topology

    v = torch.as_tensor(canonical_vertices()) * 11 + torch.tensor([128.0, 140.0, 0.0])
    return v.to(device), torch.as_tensor(topology(), device=device)


def grid_mesh(device, n: int = 72):
    """A bumpy (n-1)² x 2 triangle heightfield over the middle of the image: 10,082 triangles for n=72."""
    ys, xs = torch.meshgrid(torch.linspace(28, 228, n), torch.linspace(28, 228, n), indexing="ij")
    z = 20 * torch.sin(xs / 17) * torch.cos(ys / 23)
    v = torch.stack([xs, ys, z], -1).view(-1, 3)
    i = torch.arange(n * n).view(n, n)
    a, b, c, d = i[:-1, :-1].reshape(-1), i[:-1, 1:].reshape(-1), i[1:, :-1].reshape(-1), i[1:, 1:].reshape(-1)
    f = torch.cat([torch.stack([a, c, b], 1), torch.stack([b, c, d], 1)])  # front-facing in y-down
    return v.to(device), f.to(device)


def main() -> None:
    from raster_reference import brute_force
    from reenact.render.rasterize import rasterize

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    print(f"machine: {machine()}")
    for name, (v, f) in (("face mesh (468 v, 898 tris)", face_mesh(dev)), ("grid mesh (10k tris)", grid_mesh(dev))):
        attrs = v[None, :, :2]
        for batch in (1, 8):
            vb, ab = v[None].expand(batch, -1, -1).contiguous(), attrs.expand(batch, -1, -1).contiguous()
            t = timeit(lambda: rasterize(vb, f, ab, (256, 256)), sync=sync)
            print(f"{name:30s} {args.device} batch {batch}: {1000 * t / batch:7.2f} ms/frame")
        if not args.skip_reference:
            t0 = time.perf_counter()
            brute_force(v.cpu().double(), f.cpu(), attrs[0].cpu().double(), 256, 256)
            ref = time.perf_counter() - t0
            fast = timeit(lambda: rasterize(v[None], f, attrs, (256, 256)), sync=sync)
            print(f"{name:30s} brute-force reference: {1000 * ref:9.1f} ms/frame -> rasterizer is {ref / fast:,.0f}x faster")


if __name__ == "__main__":
    main()
