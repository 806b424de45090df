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

from reenact.data import layout


class PairDataset(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, flip: float = 0.5,
                 jitter: float = 0.1, seed: int = 0):
        self.root = Path(root)
        manifest = layout.read_manifest(self.root)
        self.clips = [c for c in manifest["clips"] if c["split"] == split and c["frames"] >= 2]
        if not self.clips:
            raise layout.DataError(f"{root}: no {split}-split clips with 2 or more frames")
        self.stored, self.size, self.ext = manifest["size"], image_size, manifest["image_format"]
        self.vert_key = "flame_vertices" if manifest["face_model"] == "flame" else "vertices"
        self.topology, self.triangles, self.flip_map = layout.read_topology(self.root)
        self.flip, self.jitter, self.seed = flip, jitter, seed

    def __len__(self) -> int:
        return 2**62  # indices are sample numbers; StepSampler picks them

    def pair(self, index: int) -> tuple[dict, int, int, bool, np.ndarray]:
        """(clip, frame a, frame b, flipped, jitter factors) of sample ``index``."""
        rng = np.random.default_rng([self.seed, index])
        clip = self.clips[int(rng.integers(len(self.clips)))]
        a, b = (int(x) for x in rng.choice(clip["frames"], 2, replace=False))
        flipped = bool(rng.random() < self.flip)
        factors = 1.0 + self.jitter * rng.uniform(-1, 1, 3)  # brightness, contrast, saturation
        return clip, a, b, flipped, factors

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, a, b, flipped, factors = self.pair(index)
        folder = layout.clip_dir(self.root, clip["id"])
        with np.load(folder / "geometry.npz") as z:
            verts = z[self.vert_key][[a, b]].astype(np.float32)  # (2, V, 3) crop pixels at the stored size
        imgs = torch.stack([_read(folder / "frames" / f"{k:05d}.{self.ext}") for k in (a, b)])  # (2, 3, S, S)
        if self.size != self.stored:
            imgs = F.interpolate(imgs, size=(self.size, self.size), mode="area")
            verts = verts * (self.size / self.stored)
        if flipped:
            imgs = imgs.flip(-1)
            verts = verts[:, self.flip_map]
            verts[..., 0] = self.size - verts[..., 0]
        imgs = _jitter(imgs, factors)
        return {"src": imgs[0], "drv": imgs[1], "verts_src": torch.from_numpy(verts[0]),
                "verts_drv": torch.from_numpy(verts[1])}


def _read(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0


def _jitter(imgs: torch.Tensor, factors: np.ndarray) -> torch.Tensor:
    """The same brightness, contrast and saturation factors on every image of ``imgs`` (N, 3, H, W)."""
    brightness, contrast, saturation = (float(f) for f in factors)
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
