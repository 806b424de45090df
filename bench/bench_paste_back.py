"""`--paste-back` per frame on larger photos: the head's rigid motion on a lattice against at every
image pixel (`reenact.render.paste.rigid_motion`).

Drives testdata faces/Image_with_alpha.png (1524×1036; its face crop is 0.53 crop px per image px,
so the lattice is 3 image px apart) and the same photo upscaled 2× (3048×2072, 7 px apart) with the
first 48 frames of videos/lp_d11.mp4, end to end (decode, track, warp, encode), through the library.

Usage: python bench/bench_paste_back.py [--frames N]
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
    args = ap.parse_args()
    from PIL import Image

    import reenact.render.paste as paste
    from reenact.drive import DriveOptions, drive

    print(f"machine: {machine()}")
    lattice = paste.rigid_motion
    with tempfile.TemporaryDirectory() as tmp:
        photo = TESTDATA / "faces" / "Image_with_alpha.png"
        big = Path(tmp) / "Image_with_alpha_2x.png"
        im = Image.open(photo)
        im.resize((im.width * 2, im.height * 2), Image.LANCZOS).save(big)
        for source in (photo, big):
            for name, fn in (("every pixel", functools.partial(lattice, step=1)), ("lattice", lattice)):
                paste.rigid_motion = fn  # image_positions looks it up in its module at each call
                t = time.perf_counter()
                drive(source, TESTDATA / "videos" / "lp_d11.mp4", Path(tmp) / "out.mp4",
                      DriveOptions(max_frames=args.frames, paste_back=True, force=True))
                s = time.perf_counter() - t
                print(f"{source.name} {Image.open(source).size}, h r at {name:11s}: {args.frames} frames in "
                      f"{s:5.1f} s = {args.frames / s:4.1f} frames/s")
        paste.rigid_motion = lattice


if __name__ == "__main__":
    main()
