"""The rows of `reenact evaluate`: what produces a pair's output frames.

* ``copy``: the source frame repeated, the floor every method must beat on motion;
* ``warp``: the geometric warp (no network);
* one row per ``--checkpoint``: the PWM generator;
* one row per ``--method NAME=FOLDER``: another tool's outputs, read from disk.

Rows that animate run the same engines as ``drive`` (:mod:`reenact.engines`), in the crop domain of the
data. Same-identity drives use each driver frame's stored fit as it is (the frame's own crop, as in
training); cross-identity drives transfer the driver's motion relative to its first frame
(:func:`reenact.face.motion.transfer`), as ``drive`` does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from reenact.engines import GeneratorEngine, GeometricWarp, Source
from reenact.errors import BadInputError
from reenact.face.crop import CropBox, warp_crop
from reenact.face.mediapipe_backend import fit_from_vertices
from reenact.face.motion import transfer
from reenact.io.image import image_files
from reenact.io.video import VIDEO_SUFFIXES
from reenact.metrics.eval_data import Pair

RESERVED = ("copy", "warp")
WARP_VERSION = "warp-2"  # bump when the geometric warp's output changes, to invalidate cached drives
BATCH = 16


class CopyRow:
    """The source frame repeated: no motion at all."""

    name, kind, key, drives = "copy", "baseline", "copy", False
    label = "source frame repeated (no motion)"

    def has(self, pair: Pair) -> bool:
        return True

    def check(self, pair: Pair) -> None:
        """Nothing to check before the models load: the frames are made here."""

    def frames(self, pair: Pair) -> list[np.ndarray]:
        src = pair.source.read([0])[0]
        return [src] * len(pair.indices)  # one array, many references: measured once


class EngineRow:
    """The geometric warp (``checkpoint`` None) or a PWM checkpoint, driven from the stored fits."""

    kind, drives = "model", True

    def __init__(self, device: torch.device, checkpoint: str | None = None):
        from reenact.animator import load_checkpoint

        self.device, self.path = device, checkpoint
        self.ckpt = load_checkpoint(checkpoint)
        if self.ckpt is None:
            self.name, self.key, self.label = "warp", WARP_VERSION, "geometric warp (rendered 3D displacement, no network)"
        else:
            self.name = Path(checkpoint).stem
            self.key = "ckpt-" + _file_digest(Path(checkpoint))
            self.label = f"PWM generator, {self.ckpt.model.guidance} ({Path(checkpoint).name})"

    def has(self, pair: Pair) -> bool:
        return True

    def check(self, pair: Pair) -> None:
        """Nothing to check before the models load: the frames are made here."""

    def frames(self, pair: Pair) -> list[np.ndarray]:
        import cv2

        data_size = pair.source.size
        size = self.ckpt.model.image_size if self.ckpt else data_size
        k = size / data_size
        src_crop = pair.source.read([0])[0]
        if size != data_size:
            src_crop = cv2.resize(src_crop, (size, size), interpolation=cv2.INTER_AREA)
        fits = [_scaled(f, k) for f in _driver_fits(pair)]
        src_fit = _scaled(pair.source.fit(0), k)
        source = Source(src_crop, src_crop, np.array([[1.0, 0, 0], [0, 1.0, 0]]), src_fit)
        engine = (GeometricWarp(source, self.device, False) if self.ckpt is None else
                  GeneratorEngine(source, self.device, False, self.ckpt, self.path))
        out: list[np.ndarray] = []
        for i in range(0, len(fits), BATCH):
            out.extend(engine(fits[i:i + BATCH]))
        if size != data_size:
            out = [cv2.resize(f, (data_size, data_size), interpolation=cv2.INTER_AREA) for f in out]
        return out


def _driver_fits(pair: Pair) -> list:
    drv = pair.driver
    if pair.protocol == "same":
        return [drv.fit(int(k)) for k in pair.indices]
    ref, src = drv.fit(0), pair.source.fit(0)
    return [transfer(src, drv.fit_in_crop_of(int(k), 0), ref, relative=True) for k in pair.indices]


def _scaled(fit, k: float):
    return fit if k == 1.0 else fit_from_vertices(fit.vertices * k, fit.pose, fit.expression)


class MethodRow:
    """Another tool's outputs in ``folder``: one video, or one folder of frames, per pair name
    (same-identity: the clip name; cross-identity: ``cross/<source>__<driver>``, as ``pairs.csv`` lists).

    Frames pair with the driver's stored frames: an output with as many frames as the clip has stored
    frames is taken as it is; one with as many as the source video is indexed by the stored frames'
    ``frame_index``. Square frames are face crops (resized to the data's size); frames of the source
    video's size are cut with the stored crop boxes, so a ``drive --paste-back`` output lands in the same
    crop as the comparison frames. Any other framing is refused."""

    kind, drives = "method", False

    def __init__(self, name: str, folder: str | Path):
        self.name, self.folder = name, Path(folder)  # a folder: checked by evaluate.validate
        self.label = f"outputs read from {self.folder}"
        self.key = f"method-{name}"

    def find(self, pair: Pair) -> Path | None:
        base = self.folder if pair.protocol == "same" else self.folder / "cross"
        for suffix in sorted(VIDEO_SUFFIXES):
            if (base / f"{pair.name}{suffix}").is_file():
                return base / f"{pair.name}{suffix}"
        return base / pair.name if (base / pair.name).is_dir() else None

    def has(self, pair: Pair) -> bool:
        return self.find(pair) is not None

    def check(self, pair: Pair) -> None:
        """Frame count and framing of ``pair``'s output, from its header alone (before any model loads)."""
        path = self.find(pair)
        n, size = _probe(path)
        _frame_numbers(self.name, pair, n)
        _framing(self.name, path, size, pair.driver)

    def frames(self, pair: Pair) -> list[np.ndarray]:
        import cv2

        path, drv = self.find(pair), pair.driver
        n, size = _probe(path)
        wanted = _frame_numbers(self.name, pair, n)
        full = _framing(self.name, path, size, drv) == "full"  # one size per output
        out = []
        for frame, k in zip(_read_at(path, wanted), pair.indices):
            if full:  # the source video's full frame: cut with the stored box, as preprocess cut the comparison crop
                out.append(warp_crop(frame, CropBox(*drv.geometry["boxes"][int(k)]).affine(drv.size), drv.size))
            else:
                out.append(frame if size[0] == drv.size else
                           cv2.resize(frame, (drv.size, drv.size), interpolation=cv2.INTER_AREA))
        return out


def _probe(path: Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) of a video or a folder of images, from headers."""
    from PIL import Image

    from reenact.io import probe_video

    if path.is_file():
        info = probe_video(path)
        return info.n_frames, tuple(info.size)
    files = image_files(path)
    if not files:
        raise BadInputError(f"{path}: no images")
    with Image.open(files[0]) as im:
        return len(files), im.size


def _read_at(path: Path, wanted: np.ndarray) -> list[np.ndarray]:
    """Frames number ``wanted`` (ascending) of a video (decoded once, only those kept) or an image folder."""
    from reenact.io import VideoReader, read_image

    if not path.is_file():
        files = image_files(path)
        return [read_image(files[int(i)]) for i in wanted]
    keep, out, i = {int(i) for i in wanted}, {}, -1
    for i, frame in enumerate(VideoReader(path)):
        if i in keep:
            out[i] = frame.copy()
        if len(out) == len(keep):
            break
    if len(out) < len(keep):
        raise BadInputError(f"{path}: ended after {i + 1} frame(s), before frame {max(keep - set(out))}")
    return [out[int(i)] for i in wanted]


def _frame_numbers(name: str, pair: Pair, n: int) -> np.ndarray:
    drv = pair.driver
    if n == drv.frames:
        return pair.indices
    video_frames = drv.meta.get("source_frames")
    if n == video_frames:
        return drv.geometry["frame_index"][pair.indices]
    raise BadInputError(f"--method {name}: {pair.name} has {n} frame(s); expected {drv.frames} (one per stored face "
                        f"frame) or {video_frames} (one per frame of {Path(drv.meta.get('source', '?')).name})")


def _framing(name: str, path: Path, size: tuple[int, int], drv) -> str:
    """'crop' for square frames, 'full' for frames of the source video's size; anything else is refused."""
    w, h = size
    if h == w:
        return "crop"
    full = drv.meta.get("source_size") or _probe_size(drv.meta.get("source"))
    if full is not None and (w, h) == tuple(full):
        return "full"
    raise BadInputError(f"--method {name}: {path.name} is {w}x{h}, neither a square face crop nor the "
                        f"{'x'.join(map(str, full)) if full else 'unknown'} frame of the clip's source video "
                        "(a different framing); give face crops, or full frames of the source video's size")


def _probe_size(source: str | None) -> tuple[int, int] | None:
    if not source or not Path(source).is_file():
        return None
    from reenact.io import probe_video

    return tuple(probe_video(source).size)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def parse_method(text: str) -> tuple[str, str]:
    """``NAME=FOLDER`` -> (name, folder); BadInputError when malformed or reserved."""
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise BadInputError(f"--method {text}: expected NAME=FOLDER")
    if name.strip() in RESERVED:
        raise BadInputError(f"--method {text}: {name.strip()!r} is a built-in row; choose another name")
    return name.strip(), folder.strip()
