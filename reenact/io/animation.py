"""Animated images as driving videos: animated WebP (stickers, what messengers and GIF sites serve) and
animated PNG (APNG).

FFmpeg in PyAV 18 (what pip installs on Python 3.11) cannot decode animated WebP; PyAV 19's can.
Pillow composes every frame (disposal and blending) on every version, so one path reads both
formats everywhere. GIFs are read by FFmpeg, like videos.

**Time.** A frame is shown for its own delay. Delays of 10 ms or less are shown as 100 ms, as
browsers do (files that ask for "as fast as possible" were made to be seen that way).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from reenact.errors import BadInputError
from reenact.io.image import pixels_of

ANIMATION_SUFFIXES = frozenset({".webp", ".png", ".apng"})  # read here when animated
FAST_DELAY_MS, SHOWN_AS_MS = 10.0, 100.0  # browsers' rule for tiny delays


def _delay(info: dict) -> float:
    """The frame's display time in seconds, from Pillow's ``duration`` (ms)."""
    ms = float(info.get("duration") or 0.0)
    return (ms if ms > FAST_DELAY_MS else SHOWN_AS_MS) / 1000.0


def _frames(path: Path) -> Iterator[tuple[float, float, np.ndarray]]:
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
        for t, delay, _ in _frames(path):
            n, duration = n + 1, t + delay
    except (UnidentifiedImageError, OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"{path}: not a readable animation ({str(exc).split(':')[0][:80]})") from None
    return (size, n, duration) if n >= 2 else None


def animation_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """(time in s, (H, W, 3) uint8 RGB) of every frame of an animated image, alpha over white."""
    for t, _, image in _frames(Path(path)):
        yield t, image
