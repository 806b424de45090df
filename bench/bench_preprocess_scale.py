"""Preprocess bookkeeping at VoxCeleb2 scale, without decoding any video.

1. A listing of 1,000,000 synthetic clip paths (``id/video/clip.mp4``, none of which exist). For
   ``--shard 0/100`` it times clip discovery (everything before the first clip starts) and counts the
   filesystem calls it makes (``os.stat``, ``os.scandir``, ``os.listdir``).
2. ``--finalize`` of 100 shard parts of 10,000 clips each: time, and the peak Python heap while merging.
3. Loading the resulting 1 M-clip ``manifest.json``: time and peak Python heap.

Usage: python bench/bench_preprocess_scale.py [--clips N] [--shards K]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import machine


def counting_fs_calls():
    """Patch os.stat / os.scandir / os.listdir to count calls; returns (counter dict, undo)."""
    counts = {"stat": 0, "scandir": 0, "listdir": 0}
    originals = {name: getattr(os, name) for name in counts}

    def wrap(name):
        def call(*a, **k):
            counts[name] += 1
            return originals[name](*a, **k)
        return call

    for name in counts:
        setattr(os, name, wrap(name))
    return counts, lambda: [setattr(os, n, f) for n, f in originals.items()]


def main() -> None:
    from reenact.data import layout
    from reenact.data.sources import discover

    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=100)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print("(peak heap: tracemalloc's peak of Python allocations during that step alone)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        listing = root / "vox2.txt"
        with open(listing, "w") as f:
            for i in range(args.clips):
                f.write(f"/nonexistent/vox2/id{i // 1000:05d}/v{(i // 10) % 100:03d}/{i % 10:05d}.mp4\n")
        counts, undo = counting_fs_calls()
        t = time.perf_counter()
        jobs = discover([listing], "grandparent", shard=(0, args.shards))
        took = time.perf_counter() - t
        undo()
        print(f"discover, shard 0/{args.shards} of a {args.clips:,}-line listing: {len(jobs):,} own clips in "
              f"{took:.2f} s ({took / args.clips * 1e6:.2f} µs per listed line); filesystem calls: {counts}")

        data = root / "data"
        per = args.clips // args.shards
        for s in range(args.shards):
            clips = [{"id": f"id{(s * per + k) // 1000:05d}/v{k % 100:03d}/{k:05d}", "identity": f"id{(s * per + k) // 1000:05d}",
                      "frames": 150, "split": "train"} for k in range(per)]
            layout.write_part(data, "bench", (s, args.shards), clips, {"size": 256, "image_format": "jpg",
                              "face_model": "mediapipe", "topology": "mediapipe468", "landmarks": "mediapipe68"})
        t = time.perf_counter()
        manifest = layout.merge_parts(data)
        took = time.perf_counter() - t
        del manifest
        tracemalloc.start()  # a second merge, traced: tracemalloc slows allocation, so it is not timed
        manifest = layout.merge_parts(data)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        size = (data / layout.MANIFEST).stat().st_size / 2**20
        print(f"finalize: {args.shards} parts, {len(manifest['clips']):,} clips merged in {took:.1f} s, "
              f"peak Python heap {peak:.0f} MiB; manifest.json {size:.0f} MiB")
        del manifest
        t = time.perf_counter()
        loaded = json.loads((data / layout.MANIFEST).read_text())
        took = time.perf_counter() - t
        del loaded
        tracemalloc.start()
        loaded = json.loads((data / layout.MANIFEST).read_text())
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"load manifest.json ({len(loaded['clips']):,} clips): {took:.1f} s, peak Python heap {peak:.0f} MiB")


if __name__ == "__main__":
    main()
