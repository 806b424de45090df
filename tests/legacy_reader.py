"""reenact 0.1's training-pair reader (dataset layout 1), kept verbatim as the reference that layout 2
must reproduce: one JPEG/PNG file per frame, the whole ``vertices`` array read from ``geometry.npz``,
float images resized, flipped and jittered on the CPU. Tests only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reenact.data.layout import DataError


class LegacyPairDataset(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, flip: float = 0.5,
                 jitter: float = 0.1, seed: int = 0, guidance: str | None = None):  # guidance: unused (0.1 rasterized in the step)
        self.root = Path(root)
        manifest = json.loads((self.root / "manifest.json").read_text())
        assert manifest["version"] == 1
        self.clips = [c for c in manifest["clips"] if c["split"] == split and c["frames"] >= 2]
        if not self.clips:
            raise DataError(f"{root}: no {split}-split clips with 2 or more frames")
        self.stored, self.size, self.ext = manifest["size"], image_size, manifest["image_format"]
        self.vert_key = "flame_vertices" if manifest["face_model"] == "flame" else "vertices"
        with np.load(self.root / "topology.npz") as z:
            self.topology, self.triangles, self.flip_map = str(z["name"]), z["triangles"], z["flip"]
        self.flip, self.jitter, self.seed = flip, jitter, seed

    def __len__(self) -> int:
        return 2**62

    def pair(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        clip = self.clips[int(rng.integers(len(self.clips)))]
        a, b = (int(x) for x in rng.choice(clip["frames"], 2, replace=False))
        flipped = bool(rng.random() < self.flip)
        factors = 1.0 + self.jitter * rng.uniform(-1, 1, 3)
        return clip, a, b, flipped, factors

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, a, b, flipped, factors = self.pair(index)
        folder = self.root / "clips" / clip["id"]
        with np.load(folder / "geometry.npz") as z:
            verts = z[self.vert_key][[a, b]].astype(np.float32)
        imgs = torch.stack([_read(folder / "frames" / f"{k:05d}.{self.ext}") for k in (a, b)])
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


def legacy_to_device(batch: dict, device, size, memory_format=torch.contiguous_format):
    """0.1's step input: the reader's float images, moved as they are."""
    return (batch["src"].to(device).contiguous(memory_format=memory_format),
            batch["drv"].to(device).contiguous(memory_format=memory_format))


def _read(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0


def _jitter(imgs: torch.Tensor, factors: np.ndarray) -> torch.Tensor:
    brightness, contrast, saturation = (float(f) for f in factors)
    x = imgs * brightness
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    x = (x - grey.mean((2, 3), keepdim=True)) * contrast + grey.mean((2, 3), keepdim=True)
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    return ((x - grey) * saturation + grey).clamp(0, 1)


def downgrade(root: Path, dst: Path) -> None:
    """Write ``root`` (layout 2) as reenact 0.1 wrote it (layout 1): a file per frame holding the same
    bytes, the vertices inside ``geometry.npz``, the clip list inside ``manifest.json``."""
    from reenact.data.clips import ClipReader
    from reenact.data.layout import read_clips

    dst.mkdir(parents=True)
    (dst / "topology.npz").write_bytes((root / "topology.npz").read_bytes())
    manifest = json.loads((root / "manifest.json").read_text())
    rows = read_clips(root).rows()
    for row in rows:
        src, out = root / "clips" / row["id"], dst / "clips" / row["id"]
        (out / "frames").mkdir(parents=True)
        reader = ClipReader(src)
        for k in range(len(reader)):
            (out / "frames" / f"{k:05d}.{manifest['image_format']}").write_bytes(reader.encoded(k))
        np.savez(out / "geometry.npz", **reader.geometry())
        meta = json.loads((src / "meta.json").read_text())
        meta.pop("layout")
        (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    old = {k: manifest[k] for k in ("size", "image_format", "face_model", "topology", "landmarks", "test_fraction")}
    (dst / "manifest.json").write_text(json.dumps({"format": "reenact-dataset", "version": 1, **old,
                                                   "identities": manifest["identities"], "clips": rows}, indent=1))
