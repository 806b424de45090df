"""Checks of a command's files that run before any model loads (well under a second, no torch).

The CLI calls these first, so a typo in a path costs the user a fraction of a second and one line;
the library functions call them too, for callers that skip the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError
from reenact.io.image import read_image
from reenact.io.outputs import check_output
from reenact.io.video import VIDEO_SUFFIXES, VideoInfo, probe_video
from reenact.io.video_writer import OUTPUT_SUFFIXES


def check_video_output(path: str | Path, force: bool) -> Path:
    """A video output path we may write: a known container suffix, and no existing file unless ``force``."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise BadInputError(f"{path}: the output must be a video file ({', '.join(OUTPUT_SUFFIXES)})")
    return check_output(path, force)


def check_file(path: str | Path | None, what: str) -> None:
    """``path`` (when given) is an existing regular file."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not a {what}")
    if not path.is_file():
        raise BadInputError(f"{path}: {what} not found")


def check_exists(path: str | Path | None, what: str) -> None:
    """``path`` (when given) exists, as a file or a folder."""
    if path is not None and not Path(path).exists():
        raise BadInputError(f"{path}: {what} not found")


def check_distinct(output: str | Path | None, **inputs: str | Path | None) -> None:
    """Refuse an ``output`` that is one of the command's ``inputs`` (named by keyword), even with
    --force: the input is still being read while the output is written, and the rename at the end
    would put the output in its place (``-o driver.mp4 --force`` replaced the driver)."""
    if output is None:
        return
    out = Path(output)
    for what, path in inputs.items():
        if path is None:
            continue
        try:
            same = os.path.samefile(out, path)
        except OSError:  # one of them does not exist (yet)
            same = out.resolve() == Path(path).resolve()
        if same:
            raise BadInputError(f"{output}: is the {what.replace('_', ' ')} too; write the output to another file")


def read_source(path: str | Path) -> np.ndarray:
    """The source photo (:func:`~reenact.io.image.read_image`); a video given as the source is named as one."""
    try:
        return read_image(path)
    except BadInputError:  # by its name only: FFmpeg also opens a damaged JPEG or a HEIC photo as a "video"
        if Path(path).suffix.lower() in VIDEO_SUFFIXES and Path(path).is_file() and Path(path).stat().st_size:
            try:
                probe_video(path)
            except BadInputError:
                pass
            else:
                raise BadInputError(f"{path}: is a video; the source must be a photo (save one of its frames "
                                    "as an image)") from None
        raise


def check_drive_inputs(source: str | Path, driver: str | Path, output: str | Path, force: bool,
                       checkpoint: str | Path | None = None) -> tuple[np.ndarray, VideoInfo]:
    """The source image (decoded) and the driver's header, after checking the output and checkpoint paths."""
    check_distinct(output, source=source, driver=driver, checkpoint=checkpoint)
    check_video_output(output, force)
    check_file(checkpoint, "checkpoint file")
    image = read_source(source)
    return image, probe_video(driver)  # a still image is refused; an animated one (WebP, PNG) is read
