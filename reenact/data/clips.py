"""One preprocessed clip on disk (dataset layout 2): a few files whatever the clip's length.

    clips/<clip id>/meta.json       source, fps, frame count, crop size, backends, versions, ``layout``: 2
    clips/<clip id>/frames.bin      every stored face crop's JPEG/PNG bytes, back to back, then the
                                    offset index (N + 1 little-endian uint64) and a 16-byte footer
                                    (b"RNFRAMES", N as uint64)
    clips/<clip id>/vertices.npy    (N, V, 3) float32, crop pixels: the training mesh (the manifest's
                                    ``topology``); memory-mapped, so a pair reads two rows
    clips/<clip id>/geometry.npz    the other per-frame arrays (see :mod:`reenact.data.layout`)

Layout 1 (reenact 0.1) kept one image file per frame in ``frames/`` and the vertices inside
``geometry.npz``; :func:`upgrade_clip` converts such a clip in place, byte for byte.

Float16 vertices would halve ``vertices.npy`` but round crop pixels 128-256 to 1/8 px, above the
0.05 px the training data allows, so the array stays float32.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from reenact.data.layout import old_layout_message
from reenact.errors import BadInputError

LAYOUT = 2
FRAMES, VERTICES, GEOMETRY, META = "frames.bin", "vertices.npy", "geometry.npz", "meta.json"
_MAGIC = b"RNFRAMES"


class FrameWriter:
    """Appends encoded frames to ``frames.bin``; :meth:`close` writes the offset index and footer."""

    def __init__(self, path: Path):
        self.file, self.offsets = open(path, "wb"), [0]

    def add(self, encoded: bytes) -> None:
        self.file.write(encoded)
        self.offsets.append(self.offsets[-1] + len(encoded))

    def close(self) -> None:
        if self.file.closed:
            return
        self.file.write(np.asarray(self.offsets, "<u8").tobytes())
        self.file.write(_MAGIC + np.uint64(len(self.offsets) - 1).astype("<u8").tobytes())
        self.file.close()

    def __len__(self) -> int:
        return len(self.offsets) - 1


def encode(image: np.ndarray, image_format: str, jpeg_quality: int = 95) -> bytes:
    """(H, W, 3) uint8 -> JPEG or PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    kwargs = {"quality": jpeg_quality} if image_format == "jpg" else {}
    Image.fromarray(image).save(buf, format="JPEG" if image_format == "jpg" else "PNG", **kwargs)
    return buf.getvalue()


def decode(data: bytes | memoryview) -> np.ndarray:
    """JPEG/PNG bytes -> (H, W, 3) uint8 RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class ClipReader:
    """Random access to one stored clip: frame bytes through the offset index, vertex rows through a
    memory map. Opening costs two small reads; nothing is read that a caller does not ask for."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            self._frames = np.memmap(folder / FRAMES, np.uint8, mode="r")
        except FileNotFoundError:
            raise BadInputError(_missing(folder)) from None
        if bytes(self._frames[-16:-8]) != _MAGIC:
            raise BadInputError(f"{folder / FRAMES}: not a reenact frames file (truncated?)")
        n = int(self._frames[-8:].view("<u8")[0])
        self._offsets = self._frames[-16 - 8 * (n + 1):-16].view("<u8")  # (N + 1,)
        self.count = n

    def __len__(self) -> int:
        return self.count

    def encoded(self, k: int) -> memoryview:
        """Frame ``k``'s stored JPEG/PNG bytes."""
        if not 0 <= k < self.count:
            raise IndexError(f"frame {k} of a {self.count}-frame clip")
        return memoryview(self._frames[int(self._offsets[k]):int(self._offsets[k + 1])])

    def frame(self, k: int) -> np.ndarray:
        """Stored crop ``k``, (S, S, 3) uint8."""
        return decode(self.encoded(k))

    def vertices(self, rows=None) -> np.ndarray:
        """(len(rows), V, 3) float32 vertex rows (all when ``rows`` is None), read from the memory map."""
        mm = np.load(self.folder / VERTICES, mmap_mode="r")
        return np.asarray(mm if rows is None else mm[rows], np.float32)

    def geometry(self, keys=None) -> dict[str, np.ndarray]:
        """The per-frame arrays of ``geometry.npz`` (``keys`` of them) plus ``vertices``."""
        with np.load(self.folder / GEOMETRY) as z:
            out = {k: z[k] for k in (keys or z.files) if k != "vertices"}
        if keys is None or "vertices" in keys:
            out["vertices"] = self.vertices()
        return out


def _missing(folder: Path) -> str:
    if (folder / "frames").is_dir():
        return old_layout_message(folder, 1)
    return f"{folder}: incomplete clip (no {FRAMES}); re-run reenact preprocess on it"


def write_arrays(folder: Path, arrays: dict[str, np.ndarray], face_model: str) -> None:
    """The training mesh's vertices into ``vertices.npy`` (FLAME's with ``face_model="flame"``, whose
    MediaPipe vertices stay in ``geometry.npz`` as ``mediapipe_vertices``), everything else into
    ``geometry.npz``."""
    arrays = dict(arrays)
    if face_model == "flame":
        arrays["mediapipe_vertices"] = arrays.pop("vertices")
        training = arrays.pop("flame_vertices")
    else:
        training = arrays.pop("vertices")
    np.save(folder / VERTICES, np.ascontiguousarray(training, np.float32))
    np.savez(folder / GEOMETRY, **arrays)


def is_layout1(folder: Path) -> bool:
    return (folder / "frames").is_dir() and not (folder / FRAMES).is_file()


def upgrade_clip(folder: Path) -> None:
    """Convert a layout-1 clip to layout 2 in place: the frame files' bytes packed unchanged, the
    vertices moved out of ``geometry.npz``. Built beside the clip and swapped in, so an interrupted
    upgrade leaves the old clip or the new one, never half of each."""
    meta = json.loads((folder / META).read_text())
    tmp = folder.with_name(f".upgrade-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    writer = FrameWriter(tmp / FRAMES)
    for k in range(meta["frames"]):
        writer.add((folder / "frames" / f"{k:05d}.{meta['image_format']}").read_bytes())
    writer.close()
    with np.load(folder / GEOMETRY) as z:
        write_arrays(tmp, {k: z[k] for k in z.files}, meta.get("face_model", "mediapipe"))
    (tmp / META).write_text(json.dumps({**meta, "layout": LAYOUT}, indent=1) + "\n")
    old = folder.with_name(f".old-{folder.name}")
    os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old)
