"""The preprocessed dataset layout (what `reenact preprocess` writes and `reenact train` reads).

    DATA/
      manifest.json                  format, size, backends, and every clip: id, identity, frames, split
      clips/<clip id>/meta.json      source path, fps, frame count, crop size, backends and versions
      clips/<clip id>/frames/00000.jpg ...   face crops (JPEG or PNG), face frames only
      clips/<clip id>/geometry.npz   per stored frame: frame_index, frame_time (seconds, the source
                                     frame's presentation time), boxes (cx, cy, side in source
                                     pixels; crop = box resized to ``size``), landmarks (68, 2) and
                                     vertices (V, 3) in crop pixels, pose (yaw, pitch, roll, degrees),
                                     expression; with FLAME: flame_shape, flame_expression, flame_pose,
                                     flame_cam, flame_vertices
      skipped/<clip id>.json         clips that were looked at and skipped, with the reason
      parts/<run>-<i>of<n>.json      one per preprocess run and shard: its clips (id, identity, frames,
                                     split); ``--finalize`` (or a run over the whole set) merges them
      topology.npz                   the mesh: name, triangles (F, 3), left/right vertex flip map (V,)

A clip directory appears only complete: it is written under ``clips/.tmp-*`` and renamed into place.
Clip ids are ``identity-ish/…/stem`` paths, e.g. ``id10001/1zcIwhmdeo4/00001`` for VoxCeleb.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError

FORMAT, VERSION = "reenact-dataset", 1
MANIFEST, TOPOLOGY = "manifest.json", "topology.npz"


class DataError(BadInputError):
    """A dataset directory is missing, incomplete or not a reenact dataset."""


def clip_dir(root: Path, clip_id: str) -> Path:
    return root / "clips" / clip_id


def skip_marker(root: Path, clip_id: str) -> Path:
    return root / "skipped" / f"{clip_id}.json"


def is_done(root: Path, clip_id: str) -> bool:
    return (clip_dir(root, clip_id) / "meta.json").is_file()


def write_json(path: Path, data: dict) -> None:
    """Atomically write ``data`` as JSON."""
    from reenact.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def split_of(identity: str, test_fraction: float) -> str:
    """'test' for a deterministic ``test_fraction`` of identities (by hash), else 'train'."""
    h = int(hashlib.sha1(identity.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "train"


def split_for(identity: str, splits: dict[str, str] | None, test_fraction: float, recorded: str | None = None) -> str:
    """An identity's split: the split CSV's, else one recorded earlier, else by hash (:func:`split_of`)."""
    return (splits or {}).get(identity) or recorded or split_of(identity, test_fraction)


def read_split_csv(path: str | Path) -> dict[str, str]:
    """identity -> split from a CSV with columns ``identity`` and ``split`` (train/test)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: split CSV not found")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"identity", "split"} <= set(rows[0]):
        raise BadInputError(f"{path}: expected columns 'identity' and 'split'")
    bad = [r["split"] for r in rows if r["split"] not in ("train", "test")]
    if bad:
        raise BadInputError(f"{path}: split must be train or test, found {bad[0]!r}")
    return {r["identity"]: r["split"] for r in rows}


PARTS = "parts"
SETTINGS = ("size", "image_format", "face_model", "topology", "landmarks")  # a clip's meta keys the manifest keeps


def part_path(root: Path, run_key: str, shard: tuple[int, int]) -> Path:
    """Where one run's shard lists its clips: ``parts/<run>-<i>of<n>.json``."""
    return root / PARTS / f"{run_key}-{shard[0]:05d}of{shard[1]:05d}.json"


def write_part(root: Path, run_key: str, shard: tuple[int, int], clips: list[dict], settings: dict) -> Path:
    """This shard's clips (``id``, ``identity``, ``frames``, ``split``) and the data settings, atomically."""
    path = part_path(root, run_key, shard)
    if not path.parent.is_dir() and (root / MANIFEST).is_file():  # a dataset from before parts: keep its clips
        old = json.loads((root / MANIFEST).read_text())
        path.parent.mkdir(parents=True)
        write_json(part_path(root, "legacy", (0, 1)), {"run": "legacy", "shard": [0, 1], "clips": old["clips"],
                                                         "settings": {k: old[k] for k in SETTINGS if k in old}})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"run": run_key, "shard": list(shard), "settings": settings, "clips": clips})
    return path


def merge_parts(root: Path, test_fraction: float = 0.1, splits: dict[str, str] | None = None,
                require_complete: bool = True) -> dict:
    """Merge every ``parts/*.json`` into ``manifest.json`` (atomically) without looking at ``clips/``.

    Each run must have all its shards; a missing one is a DataError naming it (``require_complete``).
    ``splits`` (identity -> train/test) overrides the splits the parts recorded. A dataset written by an
    older reenact (no parts) is scanned once, as before.
    """
    paths = sorted((root / PARTS).glob("*.json")) if (root / PARTS).is_dir() else []
    if not paths:
        return write_manifest(root, test_fraction, splits)
    runs: dict[str, dict[int, set]] = {}  # run -> shard count -> shard indices present
    clips: dict[str, dict] = {}
    settings: dict = {}
    for path in paths:
        part = json.loads(path.read_text())
        i, n = part["shard"]
        runs.setdefault(part["run"], {}).setdefault(n, set()).add(i)
        settings = part["settings"] or settings
        for c in part["clips"]:
            clips[c["id"]] = c
    if require_complete:
        for run, by_count in runs.items():
            if any(len(present) == n for n, present in by_count.items()):
                continue  # one complete set of shards for this run's inputs
            n, present = max(by_count.items(), key=lambda kv: len(kv[1]))
            missing = sorted(set(range(n)) - present)
            raise DataError(f"{root}: run {run} has {len(present)} of its {n} shard parts; missing "
                            f"{', '.join(f'{i}/{n}' for i in missing[:10])}{' ...' if len(missing) > 10 else ''}"
                            f" (run those shards, then --finalize again)")
    rows = []
    for cid in sorted(clips):
        c = clips[cid]
        split = split_for(c["identity"], splits, test_fraction, c.get("split"))
        rows.append({"id": cid, "identity": c["identity"], "frames": c["frames"], "split": split})
    manifest = {"format": FORMAT, "version": VERSION, **settings, "test_fraction": test_fraction,
                "identities": len({c["identity"] for c in rows}), "clips": rows}
    write_json(root / MANIFEST, manifest)
    return manifest


def write_manifest(root: Path, test_fraction: float = 0.1, splits: dict[str, str] | None = None) -> dict:
    """Scan the finished clips and write ``manifest.json`` (atomically); return it. Only for datasets
    without manifest parts (written before 0.2); :func:`merge_parts` does not scan."""
    clips, settings = [], {}
    for meta_path in sorted((root / "clips").rglob("meta.json")):
        if any(p.startswith(".tmp-") for p in meta_path.relative_to(root / "clips").parts):
            continue
        meta = json.loads(meta_path.read_text())
        ident = meta["identity"]
        split = split_for(ident, splits, test_fraction)
        clips.append({"id": meta["id"], "identity": ident, "frames": meta["frames"], "split": split})
        settings = {k: meta[k] for k in SETTINGS}
    manifest = {"format": FORMAT, "version": VERSION, **settings, "test_fraction": test_fraction,
                "identities": len({c["identity"] for c in clips}), "clips": clips}
    write_json(root / MANIFEST, manifest)
    return manifest


def read_manifest(root: str | Path) -> dict:
    """The manifest of a dataset directory; DataError with what to do when there is none."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    if not path.is_file():
        if (root / PARTS).is_dir():
            raise DataError(f"{root}: no {MANIFEST} yet: merge the shards' parts with `reenact preprocess --finalize {root}`")
        raise DataError(f"{root}: no {MANIFEST} (is this a `reenact preprocess` output folder?)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise DataError(f"{path}: not valid JSON") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(f"{path}: not a reenact dataset manifest (format {manifest.get('format')!r})")
    return manifest


def read_topology(root: str | Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, triangles, flip map) stored by preprocess."""
    path = Path(root) / TOPOLOGY
    if not path.is_file():
        raise DataError(f"{root}: no {TOPOLOGY} (re-run reenact preprocess on it)")
    with np.load(path) as z:
        return str(z["name"]), z["triangles"], z["flip"]
