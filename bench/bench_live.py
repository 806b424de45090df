"""`reenact live` speed on CPU with video files as cameras (paced at their own frame rate, as a webcam).

For each setting: frames shown per second, frames dropped, and capture-to-output latency p50/p95/max.
Targets (issue 15), 2-core CPU at 256²: at least 25 frames/s and p95 latency at most 80 ms.

The runs use the memory policy `reenact live` sets (cli/_common.keep_freed_memory) unless
`--system-malloc`.

Usage: python bench/bench_live.py [--device cpu|cuda] [--system-malloc]
"""

from __future__ import annotations

import argparse

from _common import ROOT, TESTDATA, machine

SETTINGS = [
    ("lp_d18.mp4 (30 fps), 256²", "lp_d18.mp4", {}),
    ("lp_d11.mp4 (25 fps), 256²", "lp_d11.mp4", {}),
    ("lp_d18.mp4 (30 fps), --size 512", "lp_d18.mp4", {"size": 512}),
    ("lp_d18.mp4 (30 fps), --paste-back", "lp_d18.mp4", {"paste_back": True}),
]


def main() -> None:
    from reenact.live import LiveOptions, live

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--system-malloc", action="store_true", help="leave glibc's allocation policy as it is")
    args = ap.parse_args()
    if not args.system_malloc:
        from reenact.cli._common import keep_freed_memory

        keep_freed_memory()
    print(f"machine: {machine()}; memory policy: {'system' if args.system_malloc else 'keep freed memory (CLI)'}")
    source = ROOT / "examples" / "source.png"
    for label, clip, extra in SETTINGS:
        s = live(source, LiveOptions(camera=str(TESTDATA / "videos" / clip), window=False, device=args.device, **extra))
        lat = s.latency_ms
        print(f"{label}: {s.fps:5.1f} frames/s shown, {s.frames_dropped} of {s.frames_captured} dropped; "
              f"latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms")


if __name__ == "__main__":
    main()
