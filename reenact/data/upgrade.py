"""`reenact preprocess --upgrade DATA`: convert a dataset written by reenact 0.1 (layout 1) to layout 2.

Every clip is converted in place (:func:`reenact.data.clips.upgrade_clip`: frame bytes packed unchanged,
vertices moved to a memory-mappable array), then the clip list is rebuilt as a manifest part and merged,
keeping each clip's recorded split. A re-run after an interruption picks up where it stopped: converted
clips are left alone and a clip caught between its two renames is put back first.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from reenact.data import clips, layout


def upgrade(root: str | Path, progress: Callable[[int, int], None] | None = None) -> tuple[int, dict]:
    """Convert every layout-1 clip of ``root``; return (clips converted, the new manifest)."""
    root = Path(root)
    old = _old_manifest(root)
    folders = _clip_folders(root)
    todo = [f for f in folders if clips.is_layout1(f)]
    for i, folder in enumerate(todo):
        clips.upgrade_clip(folder)
        if progress is not None:
            progress(i + 1, len(todo))
    recorded = {c["id"]: c.get("split") for c in old.get("clips", [])} if isinstance(old.get("clips"), list) else {}
    rows, settings = [], {}
    for folder in folders:
        meta = json.loads((folder / clips.META).read_text())
        rows.append({"id": meta["id"], "identity": meta["identity"], "frames": meta["frames"],
                     "split": recorded.get(meta["id"])})
        settings = {k: meta[k] for k in layout.SETTINGS}
    if not rows:
        raise layout.DataError(f"{root}: no clips to upgrade")
    layout.write_part(root, "upgrade", (0, 1), rows, settings)
    if (root / layout.MANIFEST).is_file():
        os.replace(root / layout.MANIFEST, root / "manifest-layout1.json")  # kept, not lost
    manifest = layout.merge_parts(root, old.get("test_fraction", 0.1))
    return len(todo), manifest


def _old_manifest(root: Path) -> dict:
    if not root.is_dir():
        raise layout.DataError(f"{root}: data directory not found")
    return layout.manifest_file(root) or {}


def _clip_folders(root: Path) -> list[Path]:
    """Every finished clip folder under ``clips/`` (either layout), after undoing interrupted swaps."""
    base = root / "clips"
    if not base.is_dir():
        raise layout.DataError(f"{root}: no clips/ folder (is this a `reenact preprocess` output folder?)")
    for old in sorted(base.rglob(".old-*")):
        target = old.with_name(old.name[len(".old-"):])
        if not target.exists():
            os.rename(old, target)  # killed between the two renames: the old clip goes back
        else:
            shutil.rmtree(old)
    for tmp in sorted(base.rglob(".upgrade-*")):
        shutil.rmtree(tmp)
    return sorted(m.parent for m in base.rglob(clips.META)
                  if not any(p.startswith(".") for p in m.relative_to(base).parts))
