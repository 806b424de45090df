"""What `--paste-back` and `--face-index all` cost per face before the first frame, on large photos.

The full-image layers (`render.layers.make_layers`: the person alpha and the background plate that
fills what a moving head uncovers) are built once per animated face from the source's person mask.
The dilation timed is 2.5 % of the long side (a 65 px window at 1280 px, 193 px at 4K), the plate's
until 2026-12-06 (1.25 % since).
This prints, for testdata faces/group_t1.jpg (1280×886) and the same photo upscaled to 3840 wide:
  * the person segmentation (once per photo);
  * the dilation as `render.warp.max_filter` does it, and as a k×k `max_pool2d` did it before;
  * `make_layers` as a whole (once per photo);
  * the engines of `--face-index all --paste-back`, sharing the layers and each face building its own.

Usage: python bench/bench_large_photo.py [--reference-4k]
(`max_pool2d` at 4K takes minutes; it runs there only with --reference-4k.)
"""

from __future__ import annotations

import argparse
import time

from _common import ROOT, TESTDATA, machine


def seconds(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-4k", action="store_true", help="also time max_pool2d on the 4K photo (minutes)")
    args = ap.parse_args()
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F

    from reenact.io import read_image
    from reenact.face.segment import PERSON_FLOOR, PersonSegmenter
    from reenact.render.layers import make_layers
    from reenact.render.warp import max_filter

    print(machine())
    photo = read_image(TESTDATA / "faces" / "group_t1.jpg")
    big = cv2.resize(photo, (3840, round(photo.shape[0] * 3840 / photo.shape[1])), interpolation=cv2.INTER_CUBIC)
    with PersonSegmenter(ROOT / "weights" / "selfie_segmentation.tflite") as seg:
        for image in (photo, big):
            h, w = image.shape[:2]
            t_seg = seconds(lambda: seg(image))
            person = torch.from_numpy(seg(image))[None, None]  # (1, 1, H, W)
            src = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
            g = max(3, round(0.025 * max(h, w)))
            inside = (person > PERSON_FLOOR).float()
            t_new = seconds(lambda: max_filter(inside, 2 * g + 1))
            old = "not run (--reference-4k)"
            if w < 2000 or args.reference_4k:
                t = time.perf_counter()
                same = torch.equal(max_filter(inside, 2 * g + 1), F.max_pool2d(inside, 2 * g + 1, 1, g))
                old = f"{(time.perf_counter() - t) * 1e3:.0f} ms (equal: {same})"
            t_layers = seconds(lambda: make_layers(src, person))
            print(f"{w}x{h}: segmentation {t_seg * 1e3:.0f} ms; dilation ({2 * g + 1} px) max_filter "
                  f"{t_new * 1e3:.1f} ms, max_pool2d {old}; make_layers per face {t_layers * 1e3:.0f} ms")
    every_face(photo, big)


def every_face(*images) -> None:
    """`--face-index all --paste-back`: the engines of every face, sharing the photo's layers
    (`animator.make_engine`) and each building its own (as before 2026-12-07)."""
    import torch

    from reenact.animator import make_engine, prepare_sources
    from reenact.engines import GeometricWarp
    from reenact.face.geometry import make_geometry
    from reenact.face.pipeline import FacePipeline

    cpu = torch.device("cpu")
    with FacePipeline() as faces:
        for image in images:
            sources = prepare_sources(TESTDATA / "faces" / "group_t1.jpg", image, faces, 256, "all",
                                      make_geometry("mediapipe"))
            shared = seconds(lambda: make_engine(sources, cpu, True, None, None, lambda _: None), 2)
            own = seconds(lambda: [GeometricWarp(s, cpu, True) for s in sources], 2)
            print(f"{image.shape[1]}x{image.shape[0]}, {len(sources)} faces, --face-index all --paste-back: "
                  f"engines {shared:.2f} s sharing the layers, {own:.2f} s each its own")


if __name__ == "__main__":
    main()
