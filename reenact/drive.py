"""The reenactment pipeline: source photo + driving video -> video (DESIGN §2.7).

Small functions, one concern each: prepare the source, stream driver fits, render and warp a batch,
compose frames. Memory is constant in the driver's length: frames stream through in batches.

Face handling: a source with no face is an error; with several, the largest is used unless
``face_index`` picks another (0 = largest). Driver frames without a face hold the last fit; frames
before the first detection use the first one; a driver with no face in any frame is an error.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from reenact import weights
from reenact.errors import BadInputError, DeviceError, NoFaceError
from reenact.face.crop import CropBox, warp_crop
from reenact.engines import GeneratorEngine, GeometricWarp, Source
from reenact.face.fit import FaceFit
from reenact.face.geometry import make_geometry
from reenact.face.mediapipe_backend import Detection, MediaPipeFaces
from reenact.face.landmarks68 import mediapipe_to_68
from reenact.face.smoothing import BOX_BETA, BOX_MIN_CUTOFF, OneEuro
from reenact.io import VideoReader, VideoWriter, atomic_output, read_image
from reenact.io.video import check_output
from reenact.prefetch import prefetch

FACE_MODELS = ("mediapipe", "flame")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")


@dataclass
class DriveOptions:
    """Options of :func:`drive`; the CLI maps its flags one to one."""

    size: int | None = None  # None: the checkpoint's image size, else 256
    relative: bool = True
    paste_back: bool = False
    side_by_side: bool = False
    face_index: int | None = None
    face_model: str | None = None  # mediapipe | flame | None: the checkpoint's topology decides (else mediapipe)
    flame_dir: str | None = None
    device: str = "auto"
    force: bool = False
    batch: int = 8
    smooth: bool = True
    weights_dir: str | None = None
    checkpoint: str | None = None  # a reenact checkpoint; None = geometric warp
    max_frames: int | None = None  # stop after this many driver frames
    loops: int = 1  # replay the driver this many times (benchmarks)


@dataclass
class DriveSummary:
    output: Path
    frames: int
    seconds: float
    frames_without_face: int
    mode: str
    audio: bool
    size: tuple[int, int] = field(default=(0, 0))

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@contextlib.contextmanager
def cpu_threads_beside_tracker(device: torch.device):
    """On CPU, leave half the cores to the MediaPipe tracking thread (see :mod:`reenact.prefetch`):
    oversubscribing 2 cores costs drive a quarter of its speed. Restores torch's setting after."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU raises DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available (use --device cpu)")
    if name != "cpu" and not name.startswith("cuda"):
        raise DeviceError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def prepare_source(path: Path, faces: MediaPipeFaces, size: int, face_index: int | None, geometry) -> Source:
    image = read_image(path)
    dets = faces.detect(image)
    if not dets:
        raise NoFaceError(f"{path}: no face found in the source image")
    idx = 0 if face_index is None else face_index
    if not 0 <= idx < len(dets):
        raise BadInputError(f"{path}: --face-index {idx} out of range, {len(dets)} face(s) found")
    affine = CropBox.from_landmarks(mediapipe_to_68(dets[idx].points)).affine(size)
    return Source(image, warp_crop(image, affine, size), affine, geometry.fit_source(dets[idx], affine))


def find_first_face(reader: VideoReader, faces: MediaPipeFaces) -> tuple[int, Detection]:
    """Index and detection of the driver's first frame with a face; NoFaceError if there is none."""
    for i, frame in enumerate(reader):
        dets = faces.detect(frame, search=False)
        if dets:
            return i, dets[0]
    raise NoFaceError(f"{reader.info.path}: no face in any frame of the driving video")


def driver_fits(reader: VideoReader, model: Path, size: int, first: tuple[int, Detection], geometry, smooth: bool,
                stats: dict, panels: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, FaceFit]]:
    """Yield (frame, driver crop, smoothed fit) per driver frame; misses hold the last fit.

    Every fit is expressed in the crop of the driver's reference frame (its first face), not in the
    frame's own crop: head translation and scale changes within the video are then part of the fit
    and are transferred, as they must be for ``--paste-back``. The per-frame crop box (smoothed) is
    only used for the driver panel of ``--side-by-side``.
    """
    box_filter = OneEuro(min_cutoff=BOX_MIN_CUTOFF, beta=BOX_BETA)
    fit_frame = geometry.driver_fitter(smooth)
    first_idx, first_det = first
    box = CropBox.from_landmarks(mediapipe_to_68(first_det.points))
    ref_affine = box.affine(size)
    last = fit_frame(first_det, ref_affine, float(first_idx))
    fps = reader.info.fps
    with MediaPipeFaces(model, video=True) as faces:
        for i, frame in enumerate(reader):
            dets = faces.track(frame, int(i * 1000 / fps))
            if dets:
                if panels:  # the smoothed per-frame box only frames the driver panel
                    raw = CropBox.from_landmarks(mediapipe_to_68(dets[0].points))
                    box = CropBox(*box_filter(raw.as_array(), float(i)))
                last = fit_frame(dets[0], ref_affine, float(i))
            elif i >= first_idx:
                stats["missing"] += 1
            yield frame, (warp_crop(frame, box.affine(size), size) if panels else None), last


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad by one replicated row/column where needed: H.264 (yuv420p) needs even sizes."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frame


def _fit_height(img: np.ndarray, height: int) -> np.ndarray:
    import cv2

    if img.shape[0] == height:
        return img
    width = max(2, round(img.shape[1] * height / img.shape[0]))
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def compose(out: np.ndarray, source_panel: np.ndarray, driver_panel: np.ndarray, side_by_side: bool) -> np.ndarray:
    """The output frame: the result alone, or [source | driver | result] at the result's height."""
    if side_by_side:
        h = out.shape[0]
        out = np.concatenate([_fit_height(source_panel, h), _fit_height(driver_panel, h), out], axis=1)
    return _even(out)


def drive(source: str | Path, driver: str | Path, output: str | Path, opts: DriveOptions | None = None,
          progress: Callable[[int, int], None] | None = None,
          notify: Callable[[str], None] | None = None) -> DriveSummary:
    """Reenact ``source`` with ``driver`` into ``output`` (mp4). See the module docstring."""
    opts = opts or DriveOptions()
    notify = notify or (lambda msg: None)
    source, driver, output = Path(source), Path(driver), Path(output)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise BadInputError(f"{output}: the output must be a video file ({', '.join(VIDEO_SUFFIXES)})")
    ckpt = _checkpoint(opts)
    opts = _resolve_size_and_face_model(opts, ckpt, notify)
    check_output(output, opts.force)
    device = resolve_device(opts.device)
    model = weights.resolve("mediapipe_face_landmarker", opts.weights_dir)
    reader = VideoReader(driver, loops=opts.loops)
    geometry = make_geometry(opts.face_model, opts.flame_dir, opts.weights_dir, opts.size)
    with MediaPipeFaces(model, num_faces=8) as faces:
        src = prepare_source(source, faces, opts.size, opts.face_index, geometry)
        first = find_first_face(VideoReader(driver), faces)
    engine = make_engine(src, device, opts, ckpt, notify)
    stats = {"missing": first[0]}
    total = reader.info.n_frames * opts.loops
    if opts.max_frames:
        total = min(total, opts.max_frames)
    src_panel = src.image if opts.paste_back else src.crop
    start = time.perf_counter()
    n = 0
    reference: FaceFit | None = None
    with cpu_threads_beside_tracker(device), atomic_output(output, opts.force) as tmp:
        writer = None
        fits_stream = driver_fits(reader, model, opts.size, first, geometry, opts.smooth, stats,
                                  panels=opts.side_by_side and not opts.paste_back)
        stream = itertools.islice(prefetch(fits_stream, depth=4 * opts.batch), opts.max_frames)
        for item in _batched(stream, opts.batch):
            if reference is None:  # the driver's reference frame: its first face (held before it)
                reference = item[0][2]
            fits = [geometry.transfer(src.fit, fit, reference, opts.relative) for _, _, fit in item]
            frames = engine(fits)
            for (frame, dcrop, _), out in zip(item, frames):
                panel = frame if opts.paste_back else dcrop
                composed = compose(out, src_panel, panel, opts.side_by_side)
                if writer is None:
                    writer = VideoWriter(tmp, composed.shape[1::-1], reader.info.fps, audio_from=reader.info)
                writer.write(composed)
                n += 1
            if progress:
                progress(n, max(total, n))
        if writer is None:
            raise BadInputError(f"{driver}: no frames could be decoded")
        writer.close()
    seconds = time.perf_counter() - start
    return DriveSummary(output, n, seconds, stats["missing"], engine.name, bool(reader.info.audio_codec),
                        writer.size)


def _checkpoint(opts: DriveOptions) -> dict | None:
    """The checkpoint named by ``opts``, or None."""
    if opts.checkpoint is None:
        return None
    from reenact.models import checkpoint

    return checkpoint.load(opts.checkpoint)


def _resolve_size_and_face_model(opts: DriveOptions, ckpt: dict | None, notify) -> DriveOptions:
    """--size defaults to the checkpoint's image size (else 256); --face-model to the backend of the
    checkpoint's topology: FLAME for a FLAME-trained checkpoint when it needs it or its files are found."""
    import dataclasses

    size, face_model = opts.size, opts.face_model
    if ckpt is not None:
        trained = ckpt["model"]["image_size"]
        if size not in (None, trained):
            raise BadInputError(f"{opts.checkpoint}: this checkpoint works at {trained}x{trained}; use --size {trained}")
        size = trained
        if face_model is None and str(ckpt.get("topology", "")).startswith("flame"):
            from reenact.face.flame_backend import flame_files_found

            if ckpt["model"]["guidance"] != "geom_disp" or flame_files_found(opts.flame_dir, opts.weights_dir):
                face_model = "flame"
                notify("the checkpoint was trained on FLAME geometry: using --face-model flame")
    size = size or 256
    if ckpt is None and size not in (256, 512):
        raise BadInputError(f"--size {size}: expected 256 or 512")
    face_model = face_model or "mediapipe"
    if face_model not in FACE_MODELS:
        raise BadInputError(f"--face-model {face_model}: available: {', '.join(FACE_MODELS)}")
    return dataclasses.replace(opts, size=size, face_model=face_model)


def make_engine(src: Source, device: torch.device, opts: DriveOptions, ckpt: dict | None, notify) -> object:
    """The generator of ``ckpt``, or the geometric warp when there is no checkpoint (said once)."""
    if ckpt is None:
        engine = GeometricWarp(src, device, opts.paste_back)
        notify(f"No --checkpoint given: using the {engine.name} (rendered 3D displacement, no network).")
        return engine
    engine = GeneratorEngine(src, device, opts.paste_back, ckpt, opts.checkpoint)
    if engine.warning:
        notify(engine.warning)
    return engine


def _batched(it, n: int):
    batch = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
