"""Preprocess bookkeeping at VoxCeleb2 scale, without decoding any video.

1. A listing of 1,000,000 synthetic clip paths (``id/video/clip.mp4``, none of which exist). For
   ``--shard 0/100`` it times clip discovery (everything before the first clip starts) and counts the
   filesystem calls it makes (``os.stat``, ``os.scandir``, ``os.listdir``).
2. ``--finalize`` of 100 shard parts of 10,000 clips each: time, and the peak Python heap while merging.
3. Loading the resulting 1 M-clip manifest as training does (``manifest.json``, the memory-mapped
   ``clips.npy`` table, the train split's row numbers, and 1,000 random clip rows), in a fresh process:
   time, peak Python heap (tracemalloc) and the growth of the process's resident memory (VmRSS, which
   counts the table's pages that were touched; they are page cache shared by every process and worker).

Usage: python bench/bench_preprocess_scale.py [--clips N] [--shards K]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
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
    ap.add_argument("--load", type=Path, help=argparse.SUPPRESS)  # the child process of step 3
    args = ap.parse_args()
    if args.load:
        return load(args.load)
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
        sizes = [(data / name).stat().st_size / 2**20 for name in (layout.MANIFEST, layout.CLIPS)]
        print(f"finalize: {args.shards} parts, {manifest['clips']:,} clips merged in {took:.1f} s, "
              f"peak Python heap {peak:.0f} MiB; manifest.json {sizes[0]:.3f} MiB, clips.npy {sizes[1]:.0f} MiB")
        out = subprocess.run([sys.executable, __file__, "--load", str(data)], capture_output=True, text=True, check=True)
        print(out.stdout.strip())


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(data: Path) -> None:
    """What a training process (and each of its workers) holds of a dataset's clip list."""
    import numpy as np

    from reenact.data import layout

    before = rss_mib()
    tracemalloc.start()
    t = time.perf_counter()
    manifest = layout.read_manifest(data)
    table = layout.read_clips(data)
    rows = table.select("train", min_frames=2)
    rng = np.random.default_rng(0)
    picked = [table.row(rows[int(i)]) for i in rng.integers(len(rows), size=1000)]
    took = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    print(f"load the {manifest['clips']:,}-clip manifest + table, select {len(rows):,} train rows, read "
          f"{len(picked)} rows: {took:.2f} s, peak Python heap {peak:.1f} MiB, resident memory +{rss_mib() - before:.1f} MiB")


if __name__ == "__main__":
    main()
