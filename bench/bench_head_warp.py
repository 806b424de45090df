"""The whole-head geometric warp against the true frames: photometric error relative to copying the source.

Self-reenactment with ``--paste-back``: frame 0 of each clip is the source photo and the clip drives
it, so every output frame has a true frame. Per frame t ≥ 1, with the true frame's MediaPipe mesh:
  * face: inside the face oval;
  * ring: the band up to 0.35 face heights outside the oval (hair, temples, ears, jaw line, neck).
ratio = Σ_t mean|output − true| / Σ_t mean|source − true| over the region (1 = no better than not
moving at all; lower is better).

Usage: python bench/bench_head_warp.py [--compare REF] [--clips single_face.mp4,lp_d11.mp4] [--oracle]
  --compare REF also drives with the tool as of git revision REF (a temporary worktree) and prints both.
  --oracle also prints the ring ratios of two oracles fitted to each true frame itself (OpenCV's ECC,
  from the landmarks' similarity): the best affine motion of the whole ring, and the best affine
  motion of the ring's head part (above the jaw corners) with the rest still. A rigid head that
  moves, over a torso that stays, does not do better than the second without knowing the truth.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import ROOT, TESTDATA, machine

RING = 0.35  # ring width in face heights


def regions(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(face, ring) masks of one frame from its 478 landmarks in pixels."""
    import cv2

    from reenact.face.regions import FACE_OVAL, polygon_mask

    face = polygon_mask(points, FACE_OVAL, shape)
    height = float(np.linalg.norm(points[10, :2] - points[152, :2]))
    dist = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 5)
    return face, (dist > 0) & (dist <= RING * height)


def ratios(output: Path, clip: Path, source: np.ndarray) -> dict[str, float]:
    from reenact.face.pipeline import FacePipeline
    from reenact.io import VideoReader

    err = {"face": [0.0, 0.0], "ring": [0.0, 0.0]}
    with FacePipeline() as faces:
        for t, (out, true) in enumerate(zip(VideoReader(output), VideoReader(clip))):
            det = faces.largest(true) if t else None
            if det is None:
                continue
            masks = dict(zip(("face", "ring"), regions(det.points, true.shape[:2])))
            for name, m in masks.items():
                d_out = np.abs(out.astype(np.float32) - true)[m].mean()
                d_src = np.abs(source.astype(np.float32) - true)[m].mean()
                err[name][0] += d_out
                err[name][1] += d_src
    return {k: a / b for k, (a, b) in err.items()}


def oracle_ratios(clip: Path, source: np.ndarray) -> tuple[float, float]:
    """Ring ratios of two oracles that see each true frame: ``source`` warped by the affine that best
    matches (1) the whole ring, (2) the ring's head part (above the jaw corners) with the rest still."""
    from reenact.face.pipeline import FacePipeline
    from reenact.io import VideoReader

    err = np.zeros(3)  # whole-ring affine, head-part affine + still below, copy
    with FacePipeline() as faces:
        p0 = faces.largest(source).points[:, :2].astype(np.float32)
        for t, true in enumerate(VideoReader(clip)):
            det = faces.largest(true) if t else None
            if det is None:
                continue
            _, ring = regions(det.points, true.shape[:2])
            rows = np.arange(true.shape[0])[:, None]
            head = ring & (rows < (det.points[172, 1] + det.points[397, 1]) / 2)
            d_src = np.abs(source.astype(np.float32) - true).mean(-1)
            d_ring, d_head = (np.abs(_best_affine(source, true, p0, det.points, m) - true).mean(-1) for m in (ring, head))
            err += [d_ring[ring].mean(), np.where(head, d_head, d_src)[ring].mean(), d_src[ring].mean()]
    return err[0] / err[2], err[1] / err[2]


def _best_affine(source: np.ndarray, true: np.ndarray, p0: np.ndarray, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` warped by the affine W with source(x) ≈ true(W x) on ``mask`` (OpenCV's ECC, started
    from the landmarks' similarity), as float32."""
    import cv2

    grey = lambda im: cv2.GaussianBlur(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (0, 0), 1.5).astype(np.float32)  # noqa: E731
    w, _ = cv2.estimateAffinePartial2D(p0, points[:, :2].astype(np.float32))  # source -> true
    try:
        _, w = cv2.findTransformECC(grey(source), grey(true), w.astype(np.float32), cv2.MOTION_AFFINE,
                                    (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5), mask.astype(np.uint8), 1)
    except cv2.error:  # no convergence: keep the landmarks' similarity
        pass
    return cv2.warpAffine(source, w, true.shape[1::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def drive_with(python_path: Path, source: Path, clip: Path, out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(python_path))
    subprocess.run([sys.executable, "-m", "reenact", "drive", str(source), str(clip), "-o", str(out), "--paste-back",
                    "--force"], check=True, env=env, cwd=python_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    from reenact.io import VideoReader, write_image

    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", default=None, help="git revision to compare with")
    ap.add_argument("--clips", default="single_face.mp4,lp_d11.mp4")
    ap.add_argument("--oracle", action="store_true", help="also print the best single affine's ring ratio")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"this tree": ROOT}
        if args.compare:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(tmp / "before"),
                            args.compare], check=True, capture_output=True)
            trees = {args.compare: tmp / "before", **trees}
        try:
            for name in args.clips.split(","):
                clip = TESTDATA / "videos" / name
                first = next(iter(VideoReader(clip)))
                src = tmp / f"{clip.stem}_frame0.png"
                write_image(src, first)
                for label, tree in trees.items():
                    out = tmp / f"{clip.stem}_{abs(hash(label))}.mp4"
                    drive_with(tree, src, clip, out)
                    r = ratios(out, clip, first)
                    print(f"{name:16s} {label:12s} face ratio {r['face']:.3f}   ring ratio {r['ring']:.3f}")
                if args.oracle:
                    whole, head = oracle_ratios(clip, first)
                    print(f"{name:16s} {'oracle':12s} ring ratio {whole:.3f} (the ring's best affine per frame), "
                          f"{head:.3f} (the head part's best affine, below the jaw still)")
        finally:
            if args.compare:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")],
                               capture_output=True)


if __name__ == "__main__":
    main()
