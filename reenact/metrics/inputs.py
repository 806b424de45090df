"""What `reenact score` reads: sets of clips, and how generated clips pair with their references.

A *set* is a video file, an image file, or a folder. In a folder, each video is one clip, each image
directly inside is a one-frame clip, and each sub-folder of images is one clip (frames in file-name
order). Clips are named by file stem (or sub-folder name).

Pairing is by name, then by frame index. Two sets of one clip each pair whatever their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from reenact.errors import BadInputError
from reenact.io.image import IMAGE_SUFFIXES, image_files, is_hidden
from reenact.io.video import VIDEO_SUFFIXES


@dataclass(frozen=True)
class Clip:
    """One named frame sequence: a video, a single image, or a folder of images."""

    name: str
    paths: tuple[Path, ...]  # one video, or image files in order

    @property
    def is_video(self) -> bool:
        return len(self.paths) == 1 and self.paths[0].suffix.lower() in VIDEO_SUFFIXES

    def frames(self) -> list[np.ndarray]:
        from reenact.io import VideoReader, read_image

        if self.is_video:
            frames = [f.copy() for f in VideoReader(self.paths[0])]
            if not frames:
                raise BadInputError(f"{self.paths[0]}: no frames could be decoded")
            return frames
        return [read_image(p) for p in self.paths]


def discover(path: str | Path) -> list[Clip]:
    """The clips of a set, sorted by name; BadInputError if there are none or names collide."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: not found")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            raise BadInputError(f"{path}: not a video or image file")
        return [Clip(path.stem, (path,))]
    entries = [p for p in sorted(path.iterdir()) if not is_hidden(p)]  # macOS's "._a.mp4" beside a.mp4
    clips = [Clip(p.stem, (p,)) for p in entries if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES]
    clips += [Clip(d.name, tuple(imgs)) for d in entries if d.is_dir() and (imgs := image_files(d))]
    if not clips:
        raise BadInputError(f"{path}: no videos or images found")
    names = [c.name for c in clips]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise BadInputError(f"{path}: several inputs share the name {dup[0]!r} (e.g. a.mp4 and a.png); rename one")
    return sorted(clips, key=lambda c: c.name)


def pair(generated: list[Clip], other: list[Clip], role: str, allow_unpaired: bool = False) -> list[tuple[Clip, Clip]] | None:
    """Generated clips matched to ``other`` by name. One clip against one clip pairs regardless of name;
    one source or driver clip against many is shared by all. ``other`` clips without a generated clip
    are ignored (see :func:`unmatched`). A generated clip without a partner is an error, or gives None
    with ``allow_unpaired``."""
    if len(other) == 1 and (len(generated) == 1 or role in ("source", "driver")):
        return [(g, other[0]) for g in generated]
    by_name = {c.name: c for c in other}
    missing = [g.name for g in generated if g.name not in by_name]
    if missing:
        if allow_unpaired:
            return None
        raise BadInputError(f"pairing by name failed: generated {_some(missing)} without a {role} "
                            "(use --allow-unpaired for FID alone)")
    return [(g, by_name[g.name]) for g in generated]


def unmatched(pairs: list[tuple[Clip, Clip]] | None, other: list[Clip]) -> list[str]:
    """Names in ``other`` that no generated clip paired with."""
    used = {r.name for _, r in pairs or []}
    return [c.name for c in other if c.name not in used] if pairs is not None else []


def _some(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (f" (+{len(names) - k} more)" if len(names) > k else "")


def check_counts(gen: Clip, n_gen: int, ref: Clip, n_ref: int, role: str) -> None:
    """Paired clips must have the same number of frames."""
    if n_gen != n_ref:
        raise BadInputError(f"{gen.name}: {n_gen} generated frame(s) but {n_ref} {role} frame(s); "
                            "frames pair by index (use --allow-unpaired for FID alone)")


def check_framing(gen: Clip, g_shape: tuple, ref: Clip, r_shape: tuple, role: str) -> None:
    """Landmarks compare only within one framing. A 256² face crop scored against 640x360 full frames
    would be rescaled onto them and give a meaningless AKD (40 px instead of 1), so frames whose aspect
    ratios differ are refused; the same framing at another size (a 512² crop against 256²) is rescaled."""
    (gh, gw), (rh, rw) = g_shape[:2], r_shape[:2]
    if abs(gw / gh - rw / rh) > 0.02 * (rw / rh):
        raise BadInputError(
            f"{gen.name}: generated frames are {gw}x{gh} but the {role} frames are {rw}x{rh}: a different framing "
            f"(a face crop against full frames?). Score `reenact drive --paste-back` output against full frames, "
            f"or crops against crops of the same box")


def iter_frames(clips: list[Clip], every: int = 1) -> Iterator[tuple[Clip, list[np.ndarray]]]:
    for clip in clips:
        yield clip, clip.frames()[::every]
