"""`--paste-back` per frame on larger photos: the geometric warp's map over the image, interpolated
from the crop's pixel centres against evaluated at every image pixel
(`reenact.render.paste.image_positions`), with the CLI's memory policy
(`reenact.cli._common.keep_freed_memory`) unless `--system-malloc`.

Drives testdata faces/Image_with_alpha.png (1524×1036; its face crop is 0.53 crop px per image px,
so the crop's pixel centres are 1.9 image px apart) and the same photo upscaled 2× (3048×2072, 3.8 px
apart) with the first 48 frames of videos/lp_d11.mp4, end to end (decode, track, warp, encode),
through the library.

Usage: python bench/bench_paste_back.py [--frames N] [--system-malloc]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

from _common import TESTDATA, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--system-malloc", action="store_true", help="leave glibc's allocation policy as it is")
    args = ap.parse_args()
    from PIL import Image

    import reenact.engines as engines
    from reenact.cli._common import keep_freed_memory
    from reenact.drive import DriveOptions, drive

    if not args.system_malloc:
        keep_freed_memory()
    print(f"machine: {machine()}; memory policy: {'system' if args.system_malloc else 'keep freed memory (CLI)'}")
    interpolated = engines.image_positions
    with tempfile.TemporaryDirectory() as tmp:
        photo = TESTDATA / "faces" / "Image_with_alpha.png"
        big = Path(tmp) / "Image_with_alpha_2x.png"
        im = Image.open(photo)
        im.resize((im.width * 2, im.height * 2), Image.LANCZOS).save(big)
        for source in (photo, big):
            for name, fn in (("every pixel", functools.partial(interpolated, exact=True)), ("crop pixels", interpolated)):
                engines.image_positions = fn  # GeometricWarp looks it up in its module at each call
                t = time.perf_counter()
                drive(source, TESTDATA / "videos" / "lp_d11.mp4", Path(tmp) / "out.mp4",
                      DriveOptions(max_frames=args.frames, paste_back=True, force=True))
                s = time.perf_counter() - t
                print(f"{source.name} {Image.open(source).size}, map at {name:11s}: {args.frames} frames in "
                      f"{s:5.1f} s = {args.frames / s:4.1f} frames/s")
        engines.image_positions = interpolated


if __name__ == "__main__":
    main()
