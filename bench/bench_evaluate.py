"""`reenact evaluate` on CPU: the three face clips of the test material, split into driving and scoring.

Usage: python bench/bench_evaluate.py [--every 4] [--device cpu|cuda]

Preprocesses lp_d11, lp_d18 and single_face (every clip its own identity, all in the test split) into a
temporary folder, then runs the evaluation twice into one EVAL folder: cold (every row driven, every
feature extracted) and warm (everything from the cache). Prints frames/s of driving (the warp row's
frames), of each extractor, of FID, and of the whole evaluation. Record the figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TESTDATA, machine  # noqa: E402

CLIPS = ("lp_d11", "lp_d18", "single_face")


def _preprocess(root: Path) -> Path:
    split = root / "split.csv"
    split.write_text("identity,split\n" + "".join(f"{c},test\n" for c in CLIPS))
    cmd = [sys.executable, "-m", "reenact", "preprocess", *(str(TESTDATA / "videos" / f"{c}.mp4") for c in CLIPS),
           "--out", str(root / "data"), "--identity-from", "none", "--split-csv", str(split)]
    subprocess.run(cmd, check=True, capture_output=True)
    return root / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from reenact.metrics.evaluate import EvaluateOptions, evaluate

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        data = _preprocess(Path(tmp))
        opts = EvaluateOptions(every=args.every, device=args.device)
        walls = []
        for _ in range(2):
            t0 = time.perf_counter()
            doc = evaluate(data, Path(tmp) / "eval", opts)
            walls.append(time.perf_counter() - t0)
            if len(walls) == 1:
                cold = json.loads(json.dumps(doc["timing"]))
    frames = sum(r["frames"] for p in ("same", "cross") for r in doc[p].values())
    print(f"evaluate --every {args.every}: {doc['clips']} clips, {frames} generated frames over "
          f"{len(doc['same'])} rows x 2 protocols")
    for name, t in cold.items():
        print(f"  {name:<10} {t['frames']:5d} frames {t['seconds']:7.2f} s  {t['frames'] / max(t['seconds'], 1e-9):7.1f} frames/s")
    scoring = sum(t["seconds"] for k, t in cold.items() if k != "driving")
    print(f"  driving total {cold['driving']['seconds']:.1f} s, scoring (extractors) total {scoring:.1f} s")
    print(f"  cold run {walls[0]:.1f} s wall ({frames / walls[0]:.1f} generated frames/s overall), "
          f"warm re-run {walls[1]:.1f} s; cache {doc['cache']}")


if __name__ == "__main__":
    main()
