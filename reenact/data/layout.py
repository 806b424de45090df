"""The preprocessed dataset layout, version 2 (what `reenact preprocess` writes and `reenact train` reads).

    DATA/
      manifest.json                  format, layout version, size, backends, totals (clips, train,
                                     test, frames, identities); no per-clip list
      clips.npy                      every clip: id, identity, frames, split (:class:`ClipTable`,
                                     memory-mapped)
      clips/<clip id>/               one clip, four files (:mod:`reenact.data.clips`): meta.json,
                                     frames.bin (the face crops' JPEG/PNG bytes with an offset index),
                                     vertices.npy (memory-mapped) and geometry.npz, which holds per
                                     stored frame: frame_index, frame_time (seconds, the source
                                     frame's presentation time), boxes (cx, cy, side in source
                                     pixels; crop = box resized to ``size``), landmarks (68, 2) in
                                     crop pixels, pose (yaw, pitch, roll, degrees), expression; with
                                     FLAME: flame_shape, flame_expression, flame_pose, flame_cam and
                                     mediapipe_vertices
      skipped/<clip id>.json         clips that were looked at and skipped, with the reason
      parts/<run>-<i>of<n>.json      one per preprocess run and shard: its clips (id, identity, frames,
                                     split); ``--finalize`` (or a run over the whole set) merges them
      topology.npz                   the mesh: name, triangles (F, 3), left/right vertex flip map (V,)

A clip directory appears only complete: it is written under ``clips/.tmp-*`` and renamed into place.
Clip ids are ``identity-ish/…/stem`` paths, e.g. ``id10001/1zcIwhmdeo4/00001`` for VoxCeleb. Layout 1
(reenact 0.1: a JPEG file per frame, a JSON clip list) is refused; ``reenact preprocess --upgrade``
converts it (:mod:`reenact.data.upgrade`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError

FORMAT, VERSION = "reenact-dataset", 2  # version: the dataset layout (1 = reenact 0.1)
MANIFEST, CLIPS, TOPOLOGY = "manifest.json", "clips.npy", "topology.npz"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"run": run_key, "shard": list(shard), "settings": settings, "clips": clips})
    return path


def merge_parts(root: Path, test_fraction: float = 0.1, splits: dict[str, str] | None = None,
                require_complete: bool = True) -> dict:
    """Merge every ``parts/*.json`` into ``clips.npy`` and ``manifest.json`` (atomically) without looking
    at ``clips/``; return the manifest.

    Each run must have all its shards; a missing one is a DataError naming it (``require_complete``).
    ``splits`` (identity -> train/test) overrides the splits the parts recorded.
    """
    paths = sorted((root / PARTS).glob("*.json")) if (root / PARTS).is_dir() else []
    if not paths:
        raise DataError(f"{root}: no manifest parts (parts/*.json): nothing has been preprocessed into it")
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
        _check_complete(root, runs)
    ids = sorted(clips)
    identities = [clips[c]["identity"] for c in ids]
    table = ClipTable.build(ids, identities, [clips[c]["frames"] for c in ids],
                            [split_for(i, splits, test_fraction, clips[c].get("split")) for c, i in zip(ids, identities)])
    table.save(root / CLIPS)
    manifest = {"format": FORMAT, "version": VERSION, **settings, "test_fraction": test_fraction, **table.totals()}
    write_json(root / MANIFEST, manifest)
    return manifest


def _check_complete(root: Path, runs: dict[str, dict[int, set]]) -> None:
    for run, by_count in runs.items():
        if any(len(present) == n for n, present in by_count.items()):
            continue  # one complete set of shards for this run's inputs
        n, present = max(by_count.items(), key=lambda kv: len(kv[1]))
        missing = sorted(set(range(n)) - present)
        raise DataError(f"{root}: run {run} has {len(present)} of its {n} shard parts; missing "
                        f"{', '.join(f'{i}/{n}' for i in missing[:10])}{' ...' if len(missing) > 10 else ''}"
                        f" (run those shards, then --finalize again)")


class ClipTable:
    """Every clip of a dataset as one structured array (``clips.npy``: id, identity, frames, split),
    memory-mapped: a million clips cost a few tens of MB of shared page cache, not a Python list of
    dicts per process, and a DataLoader worker reopens the map instead of receiving a copy."""

    def __init__(self, path: Path | None = None, array: np.ndarray | None = None):
        self.path = path
        self.array = array if array is not None else np.load(path, mmap_mode="r")

    @staticmethod
    def build(ids, identities, frames, splits) -> "ClipTable":
        enc = [s.encode() for s in ids], [s.encode() for s in identities]
        width = [max((len(b) for b in e), default=1) for e in enc]
        arr = np.empty(len(ids), [("id", f"S{width[0]}"), ("identity", f"S{width[1]}"), ("frames", "<i4"), ("split", "S5")])
        arr["id"], arr["identity"], arr["frames"], arr["split"] = enc[0], enc[1], frames, [s.encode() for s in splits]
        return ClipTable(array=arr)

    def save(self, path: Path) -> None:
        from reenact.io import atomic_output

        with atomic_output(path, force=True) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, self.array)

    def __len__(self) -> int:
        return len(self.array)

    def select(self, split: str = "all", min_frames: int = 0) -> np.ndarray:
        """Row numbers of the clips in ``split`` (train, test or all) with at least ``min_frames``."""
        keep = self.array["frames"] >= min_frames
        if split != "all":
            keep &= self.array["split"] == split.encode()
        return np.flatnonzero(keep)

    def row(self, i: int) -> dict:
        r = self.array[int(i)]
        return {"id": r["id"].decode(), "identity": r["identity"].decode(), "frames": int(r["frames"]),
                "split": r["split"].decode()}

    def rows(self, indices=None) -> list[dict]:
        return [self.row(i) for i in (range(len(self)) if indices is None else indices)]

    def totals(self) -> dict:
        test = int((self.array["split"] == b"test").sum())
        return {"clips": len(self), "train": len(self) - test, "test": test,
                "frames": int(self.array["frames"].sum()), "identities": len(np.unique(self.array["identity"]))}

    def __getstate__(self) -> dict:  # workers reopen the map rather than receive a pickled copy
        return {"path": self.path, "array": None if self.path else self.array}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["array"])


def read_manifest(root: str | Path) -> dict:
    """The manifest of a dataset directory (settings and totals); DataError with what to do when there is
    none or when it was written by an older reenact."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    manifest = manifest_file(root)
    if manifest is None:
        if (root / PARTS).is_dir():
            raise DataError(f"{root}: no {MANIFEST} yet: merge the shards' parts with `reenact preprocess --finalize {root}`")
        raise DataError(f"{root}: no {MANIFEST} (is this a `reenact preprocess` output folder?)")
    if manifest.get("version") != VERSION:
        raise DataError(old_layout_message(root, manifest.get("version"), root))
    return manifest


def manifest_file(root: Path) -> dict | None:
    """``root``'s manifest.json of any layout version, or None when there is none; DataError when it is
    not JSON or not a reenact manifest."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise DataError(f"{path}: not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(f"{path}: not a reenact dataset manifest (format {found!r})")
    return manifest


def old_layout_message(where: Path | str, version, root: Path | str = "DATA") -> str:
    """What to say about data of an older layout found at ``where`` (the data folder ``root``, or a clip
    folder in it)."""
    return (f"{where}: dataset layout {version} (written by reenact 0.1); this reenact reads layout {VERSION}: "
            f"convert it with `reenact preprocess --upgrade {root}`, or re-run preprocess into a new folder")


def read_clips(root: str | Path, manifest: dict | None = None) -> ClipTable:
    """The clip table of a dataset whose manifest :func:`read_manifest` accepts (read here unless given)."""
    if manifest is None:
        read_manifest(root)
    return ClipTable(Path(root) / CLIPS)


def read_topology(root: str | Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, triangles, flip map) stored by preprocess."""
    path = Path(root) / TOPOLOGY
    if not path.is_file():
        raise DataError(f"{root}: no {TOPOLOGY} (re-run reenact preprocess on it)")
    with np.load(path) as z:
        return str(z["name"]), z["triangles"], z["flip"]
