"""Peak memory and speed of `drive --paste-back` on phone-sized photos.

`--paste-back` writes the source's full frame, so every frame of a batch holds full-size planes: the
head's box in float (position, warped layers, output) and the uint8 frame. This drives testdata
faces/Image_with_alpha.png (1524×1036) and the same photo upscaled to 4032 wide (11 MP, a 12 MP
phone photo) and 8064 wide (44 MP, a 48 MP one) with the first frames of videos/lp_d11.mp4, each
in a fresh subprocess, through the library with the CLI's memory policy, and prints the batch,
frames/s (first frame to last, so the one-off source preparation is left out) and the peak RSS.

Usage: python bench/bench_photo_memory.py [--frames 24] [--batch N] [--widths 1524 4032 8064] [--system-malloc]
(`--batch` forces a batch size; without it, the library's default. `--system-malloc` leaves glibc's
allocation policy as it is, as `REENACT_MALLOC=system` does for the CLI.)
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


def child(photo: str, frames: int, batch: int | None, system_malloc: bool) -> None:
    from reenact.cli._common import keep_freed_memory
    from reenact.drive import DriveOptions, drive

    if not system_malloc:
        keep_freed_memory()
    stamps = []
    opts = DriveOptions(max_frames=frames, paste_back=True, force=True, **({"batch": batch} if batch else {}))
    with tempfile.TemporaryDirectory() as tmp:
        drive(photo, TESTDATA / "videos" / "lp_d11.mp4", Path(tmp) / "out.mp4", opts,
              progress=lambda k, n: stamps.append((k, time.perf_counter())))
    (k0, t0), (k1, t1) = stamps[0], stamps[-1]
    print(json.dumps({"fps": (k1 - k0) / max(t1 - t0, 1e-9), "first": k0,
                      "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--widths", type=int, nargs="+", default=[1524, 4032, 8064])
    ap.add_argument("--system-malloc", action="store_true", help="leave glibc's allocation policy as it is")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        photo, frames, batch, system_malloc = args.child
        return child(photo, int(frames), int(batch) or None, system_malloc == "1")
    from PIL import Image

    print(f"machine: {machine()}; memory policy: {'system' if args.system_malloc else 'keep freed memory (CLI)'}")
    photo = TESTDATA / "faces" / "Image_with_alpha.png"
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            im = Image.open(photo).convert("RGB")
            path = photo
            if width != im.width:
                path = Path(tmp) / f"photo_{width}.jpg"
                im.resize((width, round(im.height * width / im.width)), Image.LANCZOS).save(path, quality=92)
            size = Image.open(path).size
            batch = args.batch or _default_batch(size)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--child", str(path), str(args.frames), str(args.batch or 0),
                                  str(int(args.system_malloc))],
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"{size[0]} x {size[1]} ({size[0] * size[1] / 1e6:.1f} MP), batch {batch}: "
                  f"{r['fps']:.2f} frames/s after the first batch, peak RSS {r['peak_gb']:.2f} GB "
                  f"({args.frames} frames, {time.perf_counter() - t:.1f} s in all)", flush=True)


def _default_batch(size: tuple[int, int]) -> int | str:
    try:
        from reenact.drive import frames_per_batch
    except ImportError:  # an older reenact: a batch of 8 always
        return 8
    return frames_per_batch(size[0] * size[1])


if __name__ == "__main__":
    main()
