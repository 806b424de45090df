"""What `reenact preprocess` reads: video files, folders (recursive), and text files listing paths.

A *clip* is a video file, or a folder whose files are images (frames in name order). Its id keeps as
many trailing path parts as the identity rule needs, so it does not depend on where the tree lives:
``--identity-from grandparent`` (VoxCeleb's ``id/video/clip.mp4``) gives ``id/video/clip``,
``parent`` gives ``parent/clip``, ``none`` gives ``clip`` (each clip its own identity).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from reenact.errors import BadInputError
from reenact.io.image import IMAGE_SUFFIXES, is_hidden
from reenact.io.video import VIDEO_SUFFIXES

LIST_SUFFIXES = {".txt", ".lst"}


@dataclass(frozen=True)
class ClipJob:
    clip_id: str
    identity: str
    source: Path  # a video file, or a folder of frames


def _is_frame_folder(d: Path) -> bool:
    """Every file in ``d`` is an image (hidden ones aside: macOS's .DS_Store and "._" files)."""
    files = [p for p in d.iterdir() if p.is_file() and not is_hidden(p)]
    return bool(files) and all(p.suffix.lower() in IMAGE_SUFFIXES for p in files)


def _walk(folder: Path) -> list[Path]:
    """Clips under ``folder``: frame folders and video files, hidden ones (and all inside hidden
    folders: macOS's "._clip.mp4" twins, a drive's .Trashes) skipped."""
    found = []
    inside = (p for p in folder.rglob("*") if p.is_dir()
              and not any(map(is_hidden, (rel := p.relative_to(folder), *rel.parents))))
    for d in sorted([folder, *inside]):
        if _is_frame_folder(d):
            found.append(d)
        else:
            found += sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                            and not is_hidden(p))
    return found


def _listed(path: Path) -> Iterator[str]:
    """The clips a list file names, one per line (``#`` comments), relative to the file's folder.

    Entries are used as they are: nothing is walked or stat-ed, so a list of a million clips costs a
    read of the file. An entry with a video suffix is a video; any other entry is a folder of frames.
    """
    base = str(path.parent)
    with open(path, encoding="utf-8-sig") as f:  # a BOM (Windows Notepad) is not part of the first path
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line if line.startswith("/") or Path(line).is_absolute() else f"{base}/{line}"


def expand(inputs: list[str | Path]) -> Iterator[Path | str]:
    """Every clip source named by ``inputs``: files, folders (searched recursively), list files."""
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise BadInputError(f"{p}: not found")
        if p.is_dir():
            yield from _walk(p)
        elif p.suffix.lower() in LIST_SUFFIXES:
            yield from _listed(p)
        else:
            yield p


def in_shard(clip_id: str, shard: tuple[int, int]) -> bool:
    """Whether ``clip_id`` belongs to shard i of n: crc32(id) mod n == i. A pure function of the id, so
    a shard decides each clip on its own (no sort of the whole listing) and equal ids meet in one shard."""
    index, count = shard
    return count == 1 or zlib.crc32(clip_id.encode()) % count == index


def identity_and_id(source: Path | str, identity_from: str) -> tuple[str, str]:
    """(identity, clip id) of a clip source under the ``--identity-from`` rule, from the path's text alone
    (list files give strings: a million lines are decided without making a Path of each)."""
    parts = str(source).replace("\\", "/").rstrip("/").rsplit("/", 3)
    name = parts[-1]
    dot = name.rfind(".")
    stem = name[:dot] if dot > 0 and name[dot:].lower() in VIDEO_SUFFIXES else name
    parent = parts[-2] if len(parts) > 1 else ""
    grand = parts[-3] if len(parts) > 2 else ""
    if identity_from == "grandparent":
        return grand or parent or stem, "/".join(x for x in (grand, parent, stem) if x)
    if identity_from == "parent":
        return parent or stem, "/".join(x for x in (parent, stem) if x)
    if identity_from == "none":
        return stem, stem
    raise BadInputError(f"--identity-from {identity_from}: expected parent, grandparent or none")


def discover(inputs: Iterable[str | Path], identity_from: str = "parent", shard: tuple[int, int] = (0, 1)) -> list[ClipJob]:
    """The clip jobs of this shard (see :func:`in_shard`), sorted by clip id; BadInputError on none in any
    shard, or two clips with one id."""
    index, count = shard
    if not 0 <= index < count:
        raise BadInputError(f"--shard {index}/{count}: expected 0 <= i < n")
    jobs: dict[str, ClipJob] = {}
    seen_any = False
    for src in expand(list(inputs)):
        seen_any = True
        ident, clip_id = identity_and_id(src, identity_from)
        if not in_shard(clip_id, shard):
            continue
        src = Path(src)
        if clip_id in jobs and jobs[clip_id].source.resolve() != src.resolve():
            raise BadInputError(f"two clips map to the id {clip_id!r} ({jobs[clip_id].source} and {src}); "
                                "use --identity-from grandparent or rename one")
        jobs[clip_id] = ClipJob(clip_id, ident, src)
    if not seen_any:
        raise BadInputError(f"no videos or frame folders found in {', '.join(map(str, inputs))}")
    return sorted(jobs.values(), key=lambda j: j.clip_id)
