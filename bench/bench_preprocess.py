"""Preprocess throughput: frames/s per worker on the three real face clips (513 frames).

Usage: python bench/bench_preprocess.py [--workers 1 2]

Each run writes a fresh dataset into a temporary folder (MediaPipe tracking, crop, JPEG, mesh fit).
Figures are printed; record them in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TESTDATA, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    from reenact.data.preprocess import PreprocessOptions, preprocess

    print(machine())
    clips = [TESTDATA / "videos" / f"{n}.mp4" for n in ("single_face", "lp_d11", "lp_d18")]
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            s = preprocess(clips, Path(tmp) / "data", PreprocessOptions(identity_from="none", workers=workers))
            dt = time.perf_counter() - t
        print(f"workers {workers}: {s.frames} frames in {dt:.1f} s = {s.frames / dt:.1f} frames/s "
              f"({s.frames / dt / workers:.1f} per worker; {len(clips)} clips, so at most {len(clips)} busy)")


if __name__ == "__main__":
    main()
