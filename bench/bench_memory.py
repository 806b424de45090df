"""Peak RSS of `drive` on a long driver (the test clip looped through the reader) vs a short one.

Each run is a fresh subprocess; its peak RSS is read from getrusage after the drive.
  short: lp_d18.mp4 looped 2x  =   432 frames (14.4 s of video)
  long:  lp_d18.mp4 looped 84x = 18144 frames (10.1 min of video)
Target: long within 10 % of short.

Usage: python bench/bench_memory.py [--loops-long 84]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import TESTDATA, machine


def child(loops: int) -> None:
    from reenact.drive import DriveOptions, drive

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = drive(TESTDATA / "faces" / "lp_s6.jpg", TESTDATA / "videos" / "lp_d18.mp4", Path(tmp) / "o.mp4",
                  DriveOptions(device="cpu", loops=loops))
        secs = time.perf_counter() - t
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"loops": loops, "frames": s.frames, "seconds": secs, "peak_rss_mib": peak_kib / 1024}))


def run(loops: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(loops)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", type=int)
    ap.add_argument("--loops-long", type=int, default=84)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"machine: {machine()}")
    short, long = run(2), run(args.loops_long)
    for name, r in (("short", short), ("long", long)):
        print(f"{name:5s}: {r['frames']:6d} frames ({r['frames'] / 30 / 60:5.2f} min of video) "
              f"in {r['seconds']:7.1f} s, peak RSS {r['peak_rss_mib']:7.1f} MiB")
    print(f"long / short peak RSS = {long['peak_rss_mib'] / short['peak_rss_mib']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
