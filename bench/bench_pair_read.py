"""The time to read one random training pair, dataset layout 1 (reenact 0.1) against layout 2, for clips
of 100 and 1000 frames (the bytes per frame are the same in both).

Each clip holds real 256² JPEG face crops (frames of single_face.mp4, cropped and encoded as preprocess
does, cycled) and a (N, 468, 3) float32 vertex array beside the other per-frame arrays.
  layout 1: open frames/a.jpg and frames/b.jpg, and geometry.npz, whose whole ``vertices`` member is read
            to take two rows (what 0.1's reader did);
  layout 2: frames.bin through its offset index and vertices.npy through a memory map (ClipReader).
Both decode the two JPEGs. Files are in the page cache (a warm-up pass), as on a training node whose
data fits in RAM; a cold disk adds the same seeks to both, and layout 1 opens one file more.

Last, what a DataLoader worker spends on one training sample at 256² (read, decode, vertex rows,
flip) from single_face.mp4 preprocessed: as a PairDataset item alone, and with the driving mesh's coverage that the
step then interpolates (guidance geom_disp; neural codes add the source mesh's).

Usage: python bench/bench_pair_read.py [--pairs 400]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import TESTDATA, machine


def real_crops(n: int = 24) -> list[bytes]:
    from reenact.data.clips import encode
    from reenact.io import VideoReader

    out = []
    for i, frame in enumerate(VideoReader(TESTDATA / "videos" / "single_face.mp4").timed()):
        if i == n:
            break
        h, w = frame.image.shape[:2]
        side = min(h, w)
        crop = frame.image[:side, (w - side) // 2:(w + side) // 2]
        from PIL import Image

        out.append(encode(np.asarray(Image.fromarray(crop).resize((256, 256))), "jpg", 95))
    return out


def write_clip(folder: Path, frames: int, crops: list[bytes]) -> None:
    from reenact.data.clips import FRAMES, FrameWriter, write_arrays

    rng = np.random.default_rng(0)
    arrays = {"frame_index": np.arange(frames, dtype=np.int32), "frame_time": np.arange(frames) / 25.0,
              "boxes": rng.random((frames, 3)), "landmarks": rng.random((frames, 68, 2), np.float32) * 256,
              "vertices": rng.random((frames, 468, 3), np.float32) * 256, "pose": rng.random((frames, 3), np.float32),
              "expression": rng.random((frames, 52), np.float32)}
    old, new = folder / "layout1", folder / "layout2"
    (old / "frames").mkdir(parents=True)
    new.mkdir(parents=True)
    for k in range(frames):
        (old / "frames" / f"{k:05d}.jpg").write_bytes(crops[k % len(crops)])
    np.savez(old / "geometry.npz", **arrays)
    writer = FrameWriter(new / FRAMES)
    for k in range(frames):
        writer.add(crops[k % len(crops)])
    writer.close()
    write_arrays(new, arrays, "mediapipe")


def read_layout1(folder: Path, a: int, b: int) -> tuple:
    from reenact.data.clips import decode

    with np.load(folder / "geometry.npz") as z:
        verts = z["vertices"][[a, b]]
    return [decode((folder / "frames" / f"{k:05d}.jpg").read_bytes()) for k in (a, b)], verts


def read_layout2(folder: Path, a: int, b: int) -> tuple:
    from reenact.data.clips import ClipReader

    reader = ClipReader(folder)
    return [reader.frame(a), reader.frame(b)], reader.vertices([a, b])


def time_pairs(read, folder: Path, frames: int, pairs: int) -> float:
    rng = np.random.default_rng(1)
    draws = [tuple(int(x) for x in rng.choice(frames, 2, replace=False)) for _ in range(pairs)]
    for a, b in draws[:20]:
        read(folder, a, b)  # warm-up: page cache, imports
    t = time.perf_counter()
    for a, b in draws:
        read(folder, a, b)
    return (time.perf_counter() - t) / pairs


def sample_cost(tmp: Path, n: int) -> None:
    """Training samples from single_face.mp4, preprocessed (72 frames of real crops and meshes)."""
    from reenact.data.dataset import PairDataset
    from reenact.data.preprocess import PreprocessOptions, preprocess

    root = tmp / "dataset"
    preprocess([TESTDATA / "videos" / "single_face.mp4"], root, PreprocessOptions(identity_from="none"))
    for guidance in (None, "geom_disp", "neural_codes"):
        ds = PairDataset(root, image_size=256, guidance=guidance)
        ds[0]
        t = time.perf_counter()
        for i in range(n):
            ds[i]
        label = {None: "read only", "geom_disp": "with the driving mesh's coverage",
                 "neural_codes": "with both meshes' coverage"}[guidance]
        print(f"PairDataset sample at 256² (single_face, 72 frames), {label}: "
              f"{(time.perf_counter() - t) / n * 1e3:.1f} ms on one thread")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=400)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # as in a DataLoader worker
    print(f"machine: {machine()}")
    crops = real_crops()
    print(f"frames: real 256² JPEG crops, mean {np.mean([len(c) for c in crops]) / 1024:.1f} KiB")
    with tempfile.TemporaryDirectory() as tmp:
        for frames in (100, 1000):
            folder = Path(tmp) / str(frames)
            write_clip(folder, frames, crops)
            old = time_pairs(read_layout1, folder / "layout1", frames, args.pairs)
            new = time_pairs(read_layout2, folder / "layout2", frames, args.pairs)
            files = (len(list((folder / "layout1").rglob("*"))) - 1, len(list((folder / "layout2").iterdir())))
            print(f"{frames:5d}-frame clip: layout 1 {old * 1e3:.2f} ms per pair ({files[0]} files), "
                  f"layout 2 {new * 1e3:.2f} ms per pair ({files[1]} files); {old / new:.1f}x")
        sample_cost(Path(tmp), args.pairs // 4)


if __name__ == "__main__":
    main()
