"""Training pairs (DESIGN §2.6): two frames of one clip, the same augmentation on both.

Sample ``i`` is a pure function of ``(seed, i)``: a clip (uniform over clips), two distinct frames,
a horizontal flip (probability ``flip``) and one colour jitter for both frames. The training loop asks
for sample indices by step (:class:`StepSampler`), so a resumed run sees the same batches.

A flip mirrors the images and the vertices (x -> size - x) and re-indexes the vertices through the
topology's left/right flip map, so vertex k stays the same surface point (neural codes stay attached
to it) and the triangles keep their winding. Vertices are returned; guidance maps are rendered on the
training device, batched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from reenact.data import clips, layout
from reenact.render.guidance import needs_source_coverage
from reenact.render.rasterize import coverage


class PairDataset(torch.utils.data.Dataset):
    """Pairs of the ``split``'s clips (2+ frames), read row by row: two frames' bytes through the clip's
    offset index and two vertex rows through its memory map (:class:`reenact.data.clips.ClipReader`).

    Images stay uint8 at the stored size; :func:`to_device` converts them on the training device, resizes
    them to ``image_size``, flips them (the vertices are flipped here) and applies the sample's colour
    jitter there, in the order reenact 0.1 did all of it on the CPU, so the batches are the same.
    """

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, flip: float = 0.5,
                 jitter: float = 0.1, seed: int = 0, guidance: str | None = None):
        self.root = Path(root)
        manifest = layout.read_manifest(self.root)
        self.table = layout.read_clips(self.root, manifest)
        self.rows = self.table.select(split, min_frames=2)  # (n,) row numbers into the clip table
        if not len(self.rows):
            raise layout.DataError(f"{root}: no {split}-split clips with 2 or more frames")
        self.stored, self.size = manifest["size"], image_size
        self.topology, self.triangles, self.flip_map = layout.read_topology(self.root)
        self.flip, self.jitter, self.seed = flip, jitter, seed
        self.guidance = guidance  # when given, each pair carries the mesh coverages that guidance renders from

    def __len__(self) -> int:
        return 2**62  # indices are sample numbers; StepSampler picks them

    def pair(self, index: int) -> tuple[dict, int, int, bool, np.ndarray]:
        """(clip, frame a, frame b, flipped, jitter factors) of sample ``index``."""
        rng = np.random.default_rng([self.seed, index])
        clip = self.table.row(self.rows[int(rng.integers(len(self.rows)))])
        a, b = (int(x) for x in rng.choice(clip["frames"], 2, replace=False))
        flipped = bool(rng.random() < self.flip)
        factors = 1.0 + self.jitter * rng.uniform(-1, 1, 3)  # brightness, contrast, saturation
        return clip, a, b, flipped, factors

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, a, b, flipped, factors = self.pair(index)
        reader = clips.ClipReader(layout.clip_dir(self.root, clip["id"]))
        imgs = np.stack([reader.frame(a), reader.frame(b)])  # (2, S, S, 3) uint8 at the stored size
        verts = reader.vertices([a, b]) * (self.size / self.stored)  # (2, V, 3) crop pixels at image_size
        if flipped:
            verts = verts[:, self.flip_map]
            verts[..., 0] = self.size - verts[..., 0]
        imgs = torch.from_numpy(imgs).permute(0, 3, 1, 2)  # (2, 3, S, S) uint8
        item = {"src": imgs[0], "drv": imgs[1], "verts_src": torch.from_numpy(verts[0].astype(np.float32)),
                "verts_drv": torch.from_numpy(verts[1].astype(np.float32)),
                "flip": torch.tensor(flipped), "jitter": torch.from_numpy(factors.astype(np.float32))}
        if self.guidance is not None:
            item.update(self._coverage(item))
        return item

    def _coverage(self, item: dict) -> dict[str, torch.Tensor]:
        """The driving mesh's (and for neural codes the source mesh's) face ids and barycentrics at the
        training size: the rasterizer's data-dependent part, done here so the training step need not
        wait for the host (:func:`reenact.render.rasterize.coverage`)."""
        sides = ("drv", "src") if needs_source_coverage(self.guidance) else ("drv",)
        out = {}
        for side in sides:
            face_id, bary = coverage(item[f"verts_{side}"][None], torch.as_tensor(self.triangles), (self.size, self.size))
            out[f"face_id_{side}"], out[f"bary_{side}"] = face_id[0].to(torch.int32), bary[0]  # (S, S), (3, S, S)
        return out


def to_device(batch: dict, device: torch.device, size: int,
              memory_format: torch.memory_format = torch.contiguous_format) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, drv) of a collated batch as float images in [0, 1] on ``device``: uint8 until the copy, then
    resized to ``size`` (area), flipped where the sample was, and colour-jittered there, each pair with
    its own factors."""
    src = batch["src"].to(device, non_blocking=True)  # (B, 3, S, S) uint8
    drv = batch["drv"].to(device, non_blocking=True)
    flip = batch["flip"].to(device, non_blocking=True)[:, None, None, None]  # (B, 1, 1, 1) bool
    factors = batch["jitter"].to(device, non_blocking=True)  # (B, 3)
    out = []
    for img in (src, drv):
        x = img.float() / 255.0
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="area")
        x = torch.where(flip, x.flip(-1), x)
        out.append(_jitter(x, factors).contiguous(memory_format=memory_format))
    return out[0], out[1]


def _jitter(imgs: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation ``factors`` (N, 3) on images ``imgs`` (N, 3, H, W)."""
    brightness, contrast, saturation = (factors[:, i, None, None, None] for i in range(3))  # (N, 1, 1, 1)
    x = imgs * brightness
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]  # (N, 1, H, W)
    x = (x - grey.mean((2, 3), keepdim=True)) * contrast + grey.mean((2, 3), keepdim=True)
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    return ((x - grey) * saturation + grey).clamp(0, 1)


class StepSampler(torch.utils.data.Sampler):
    """Sample numbers for steps ``start, start+1, ...``: rank r of w takes slots r·B .. r·B+B-1 of each step."""

    def __init__(self, start_step: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.batch, self.rank, self.world = start_step, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.start
        while True:
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            step += 1

    def __len__(self) -> int:
        return 2**62
