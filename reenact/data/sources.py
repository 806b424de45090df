"""What `reenact preprocess` reads: video files, folders (recursive), and text files listing paths.

A *clip* is a video file, or a folder whose files are images (frames in name order). Its id keeps as
many trailing path parts as the identity rule needs, so it does not depend on where the tree lives:
``--identity-from grandparent`` (VoxCeleb's ``id/video/clip.mp4``) gives ``id/video/clip``,
``parent`` gives ``parent/clip``, ``none`` gives ``clip`` (each clip its own identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reenact.errors import BadInputError
from reenact.io.image import IMAGE_SUFFIXES
from reenact.io.video import VIDEO_SUFFIXES

LIST_SUFFIXES = {".txt", ".lst"}


@dataclass(frozen=True)
class ClipJob:
    clip_id: str
    identity: str
    source: Path  # a video file, or a folder of frames


def _is_frame_folder(d: Path) -> bool:
    files = [p for p in d.iterdir() if p.is_file()]
    return bool(files) and all(p.suffix.lower() in IMAGE_SUFFIXES for p in files)


def _walk(folder: Path) -> list[Path]:
    found = []
    for d in sorted([folder, *[p for p in folder.rglob("*") if p.is_dir()]]):
        if _is_frame_folder(d):
            found.append(d)
        else:
            found += sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    return found


def _listed(path: Path) -> list[Path]:
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def expand(inputs: list[str | Path]) -> list[Path]:
    """Every clip source named by ``inputs`` (files, folders searched recursively, list files)."""
    sources: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise BadInputError(f"{p}: not found")
        if p.is_dir():
            sources += _walk(p)
        elif p.suffix.lower() in LIST_SUFFIXES:
            sources += [q for item in _listed(p) for q in (_walk(item) if item.is_dir() else [item])]
        else:
            sources.append(p)
    return sources


def identity_and_id(source: Path, identity_from: str) -> tuple[str, str]:
    """(identity, clip id) of a clip source under the ``--identity-from`` rule."""
    stem = source.name if source.is_dir() else source.stem
    parent, grand = source.parent.name, source.parent.parent.name
    if identity_from == "grandparent":
        return grand or parent or stem, "/".join(x for x in (grand, parent, stem) if x)
    if identity_from == "parent":
        return parent or stem, "/".join(x for x in (parent, stem) if x)
    if identity_from == "none":
        return stem, stem
    raise BadInputError(f"--identity-from {identity_from}: expected parent, grandparent or none")


def discover(inputs: list[str | Path], identity_from: str = "parent", shard: tuple[int, int] = (0, 1)) -> list[ClipJob]:
    """The clip jobs of this shard, sorted by clip id; BadInputError on none, or two clips with one id."""
    index, count = shard
    if not 0 <= index < count:
        raise BadInputError(f"--shard {index}/{count}: expected 0 <= i < n")
    jobs: dict[str, ClipJob] = {}
    for src in expand(inputs):
        ident, clip_id = identity_and_id(src, identity_from)
        if clip_id in jobs and jobs[clip_id].source.resolve() != src.resolve():
            raise BadInputError(f"two clips map to the id {clip_id!r} ({jobs[clip_id].source} and {src}); "
                                "use --identity-from grandparent or rename one")
        jobs[clip_id] = ClipJob(clip_id, ident, src)
    if not jobs:
        raise BadInputError(f"no videos or frame folders found in {', '.join(map(str, inputs))}")
    ordered = sorted(jobs.values(), key=lambda j: j.clip_id)
    return [j for i, j in enumerate(ordered) if i % count == index]
