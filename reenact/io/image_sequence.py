"""Videos made of images: animated images, and folders of frames.

**Animated WebP** (stickers, what messengers and GIF sites serve) and **animated PNG** (APNG) are
read by Pillow, which composes every frame (disposal and blending). FFmpeg in PyAV 18 (what pip
installs on Python 3.11) cannot decode animated WebP; PyAV 19's can, but one path reads both formats
everywhere. GIFs are read by FFmpeg, like videos. A frame is shown for its own delay; delays of 10 ms
or less are shown as 100 ms, as browsers do (files that ask for "as fast as possible" were made to be
seen that way).

**A folder of frames** (``ffmpeg -i clip.mp4 %d.png``, a dataset's frames) is read in
:func:`~reenact.io.image.image_files` order at :data:`FOLDER_FPS`, the rate of VoxCeleb's frames and
of ``preprocess``'s folders.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from reenact.errors import BadInputError
from reenact.io.image import image_files, pixels_of, read_image

ANIMATION_SUFFIXES = frozenset({".webp", ".png", ".apng"})  # read here when animated
FAST_DELAY_MS, SHOWN_AS_MS = 10.0, 100.0  # browsers' rule for tiny delays
FOLDER_FPS = 25.0


def _delay(info: dict) -> float:
    """The frame's display time in seconds, from Pillow's ``duration`` (ms)."""
    ms = float(info.get("duration") or 0.0)
    return (ms if ms > FAST_DELAY_MS else SHOWN_AS_MS) / 1000.0


def _animation(path: Path) -> Iterator[tuple[float, float, np.ndarray]]:
    """(start, delay, image) of each frame of the animation ``path``, in seconds, as shown."""
    from PIL import Image

    with warnings.catch_warnings(), Image.open(path) as im:
        warnings.simplefilter("ignore")  # Pillow's notes on odd chunks: the frames are what count
        icc = im.info.get("icc_profile")
        first = 1 if im.format == "PNG" and im.info.get("default_image") else 0  # APNG: a still shown elsewhere
        t = 0.0
        for k in range(first, im.n_frames):
            im.seek(k)
            im.load()
            delay = _delay(im.info)
            yield t, delay, pixels_of(im, icc)
            t += delay


def probe_animation(path: Path) -> tuple[tuple[int, int], int, float] | None:
    """((width, height), frames, duration in s) of the animated image ``path``; None when it is a
    still image (or not one Pillow reads). Reads every frame: the delays are in the frames."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if not getattr(im, "is_animated", False):
                return None
            size = im.size
        n, duration = 0, 0.0
        for t, delay, _ in _animation(path):
            n, duration = n + 1, t + delay
    except (UnidentifiedImageError, OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"{path}: not a readable animation ({str(exc).split(':')[0][:80]})") from None
    return (size, n, duration) if n >= 2 else None


def probe_folder(path: Path) -> tuple[tuple[int, int], int]:
    """((width, height) of its first frame, frame count) of a folder of frames."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    files = image_files(path)
    if not files:
        raise BadInputError(f"{path}: is a folder without images; a driver must be a video, an animated "
                            "image or a folder of frames")
    try:
        with Image.open(files[0]) as im:
            size = ImageOps.exif_transpose(im).size
    except (UnidentifiedImageError, OSError) as exc:
        raise BadInputError(f"{files[0]}: not a readable image ({str(exc).split(':')[0][:80]})") from None
    return size, len(files)


def sequence_frames(path: Path, kind: str, size: tuple[int, int]) -> Iterator[tuple[float, np.ndarray]]:
    """(time in s, (H, W, 3) uint8 RGB) of every frame of an animated image (``kind`` "animation") or a
    folder of frames ("frames", each of ``size``), transparency over white."""
    if kind == "animation":
        for t, _, image in _animation(Path(path)):
            yield t, image
        return
    for k, file in enumerate(image_files(path)):
        image = read_image(file)
        if image.shape[1::-1] != tuple(size):
            raise BadInputError(f"{file}: is {image.shape[1]}x{image.shape[0]}, the folder's first frame "
                                f"{size[0]}x{size[1]}; a folder's frames must all be one size")
        yield k / FOLDER_FPS, image
