"""Gradient averaging over ranks (reenact.train.distributed.GradientSync) on CPU gloo: bytes reduced per
step and the time of forward + backward + synchronisation, for 1 and 2 ranks, with the paper's generator
at 64² input (the network and its 131.8 M parameters are the paper's; the small image keeps CPU time
down, and the all-reduce volume does not depend on it).

Usage: python bench/bench_allreduce.py [--steps N] [--config tiny|paper_geom_disp]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _common import machine


def _rank(rank: int, world: int, store: str, config: str, steps: int, result) -> None:
    from reenact.build import build_generator
    from reenact.config import load_config
    from reenact.train.distributed import Dist, GradientSync

    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    cfg = load_config(config, ["model.image_size=64"])
    gen = build_generator(cfg.model)
    sync = GradientSync(gen, Dist(rank, world, rank, torch.device("cpu")))
    x, disp = torch.rand(1, 3, 64, 64), torch.randn(1, 2, 64, 64) * 0.05
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        gen.zero_grad(set_to_none=True)
        sync.arm()
        gen(x, disp).out_img.mean().backward()
        sync.finish()
        times.append(time.perf_counter() - t)
    if world > 1:
        dist.destroy_process_group()
    n_bytes = sum(p.numel() * p.element_size() for p in gen.parameters() if p.requires_grad)
    result[rank] = (n_bytes, len(sync.buckets), sum(times[1:]) / steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--config", default="paper_geom_disp")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    for world in (1, 2):
        result = mp.Manager().dict()
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(_rank, args=(world, f"{tmp}/store", args.config, args.steps, result), nprocs=world, join=True)
        n_bytes, buckets, step = result[0]
        reduced = n_bytes if world > 1 else 0
        print(f"{world} rank(s), {args.config} generator: {reduced / 2**20:.0f} MiB all-reduced per step in "
              f"{buckets} bucket(s); forward + backward + sync {step:.2f} s per step (1 thread per rank)")


if __name__ == "__main__":
    main()
