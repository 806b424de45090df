"""What `reenact evaluate` reads from a `reenact preprocess` folder: the split's clips, their stored
crops and fits, and the protocol's (source, driver) pairs.

Same-identity (first-order-model's protocol, in the crop domain the data is stored in): the source is a
clip's first stored frame and the driver is the clip itself, every ``every``-th stored frame; the output
is compared with those frames. Cross-identity: each clip drives the first frame of another clip, chosen
by a seeded draw among clips of a different identity (different clips when the split has a single
identity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from reenact.data import layout
from reenact.data.clips import ClipReader
from reenact.errors import BadInputError
from reenact.face.crop import CropBox, invert_affine
from reenact.face.fit import FaceFit
from reenact.face.mediapipe_backend import fit_from_vertices
from reenact.face.mesh import MEDIAPIPE

PROTOCOLS = ("same", "cross")


@dataclass(frozen=True)
class EvalClip:
    """One preprocessed clip: its stored face crops and per-frame geometry."""

    root: Path
    id: str
    identity: str
    frames: int  # stored face frames
    size: int

    @property
    def folder(self) -> Path:
        return layout.clip_dir(self.root, self.id)

    @property
    def name(self) -> str:
        """The clip's name in outputs and in ``--method`` folders: its id with '/' as '_'."""
        return self.id.replace("/", "_")

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.folder / "meta.json").read_text())

    @cached_property
    def reader(self) -> ClipReader:
        return ClipReader(self.folder)

    @cached_property
    def geometry(self) -> dict[str, np.ndarray]:
        return self.reader.geometry(("frame_index", "boxes", "vertices", "pose", "expression"))

    def read(self, indices: np.ndarray) -> list[np.ndarray]:
        """The stored crops (S, S, 3) uint8 at ``indices``."""
        return [self.reader.frame(int(k)) for k in indices]

    def fit(self, k: int) -> FaceFit:
        """Stored frame ``k``'s MediaPipe fit, in its own crop's pixels."""
        g = self.geometry
        return fit_from_vertices(g["vertices"][k], g["pose"][k], g["expression"][k])

    def fit_in_crop_of(self, k: int, ref: int) -> FaceFit:
        """Stored frame ``k``'s fit moved into the crop of stored frame ``ref`` (the fixed frame that
        relative motion transfer expects; crops are axis-aligned squares, so this is a scale and shift)."""
        boxes = self.geometry["boxes"]
        a_k, a_ref = CropBox(*boxes[k]).affine(self.size), CropBox(*boxes[ref]).affine(self.size)
        inv = invert_affine(a_k)
        m = a_ref[:, :2] @ inv[:, :2]  # (2, 2) crop k -> crop ref (a uniform scale)
        t = a_ref[:, :2] @ inv[:, 2] + a_ref[:, 2]
        v = self.geometry["vertices"][k].astype(np.float64)
        moved = np.concatenate([v[:, :2] @ m.T + t, v[:, 2:] * m[0, 0]], 1)  # (V, 3)
        return fit_from_vertices(moved, self.geometry["pose"][k], self.geometry["expression"][k])


@dataclass(frozen=True)
class Pair:
    """One evaluated drive: the source clip's first stored frame animated by ``driver`` at ``indices``."""

    protocol: str
    source: EvalClip
    driver: EvalClip
    indices: np.ndarray = field(compare=False)  # stored driver frames, every K-th

    @property
    def name(self) -> str:
        return self.driver.name if self.protocol == "same" else f"{self.source.name}__{self.driver.name}"

    def describe(self) -> dict:
        return {"protocol": self.protocol, "pair": self.name, "source_clip": self.source.id, "source_frame": 0,
                "driver_clip": self.driver.id, "frames": len(self.indices),
                "driver_frame_indices": [int(i) for i in self.driver.geometry["frame_index"][self.indices]]}


def load_split(root: str | Path, split: str, limit: int | None = None) -> list[EvalClip]:
    """The clips of ``split`` (test, train or all), sorted by id, the first ``limit`` of them."""
    root = Path(root)
    manifest = layout.read_manifest(root)
    if manifest.get("face_model", "mediapipe") != "mediapipe" and manifest.get("topology") != MEDIAPIPE:
        raise BadInputError(f"{root}: evaluate reads the MediaPipe fits; this data was preprocessed with "
                            f"--face-model {manifest.get('face_model')}")
    table = layout.read_clips(root, manifest)
    rows = table.rows(table.select(split))
    if not rows:
        splits = sorted(s for s in ("train", "test") if manifest.get(s))
        raise BadInputError(f"{root}: no clips in the {split} split (it has: {', '.join(splits) or 'none'}); "
                            "choose --split, or preprocess with --test-fraction / --split-csv")
    rows = sorted(rows, key=lambda c: c["id"])[:limit]
    return [EvalClip(root, c["id"], c["identity"], int(c["frames"]), int(manifest["size"])) for c in rows]


def make_pairs(clips: list[EvalClip], protocol: str, every: int, seed: int) -> tuple[list[Pair], list[str]]:
    """The protocol's pairs and any notes about how they were drawn."""
    if protocol == "same":
        return [Pair("same", c, c, np.arange(0, c.frames, every)) for c in clips], []
    if len(clips) < 2:
        return [], ["cross-identity needs at least two clips in the split; none evaluated"]
    rng = np.random.default_rng(seed)
    identities = {c.identity for c in clips}
    notes = [] if len(identities) > 1 else [
        "the split has one identity: cross-identity pairs are of different clips, not different people"]
    pairs = []
    for drv in clips:
        others = [c for c in clips if (c.identity != drv.identity if len(identities) > 1 else c.id != drv.id)]
        src = others[int(rng.integers(len(others)))]
        pairs.append(Pair("cross", src, drv, np.arange(0, drv.frames, every)))
    return pairs, notes
