"""The reenactment pipeline: source photo + driving video -> video (DESIGN §2.7).

Small functions, one concern each: prepare the source, stream driver fits, render and warp a batch,
compose frames. Memory is constant in the driver's length: frames stream through in batches.

Faces, crops and fits come from :mod:`reenact.face.pipeline`: a source with no face is an error;
with several, the largest is used unless ``face_index`` picks another (``reenact faces`` numbering).
Driver frames without an accepted face follow the pipeline's hold-then-ease policy; a driver with
no face in any frame is an error.

Time: every stored driver frame gives one output frame at the same presentation time (the
variable-rate passthrough of :mod:`reenact.io.video`), so the output keeps the driver's duration and
its audio stays in sync.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from reenact.animator import (
    cpu_threads_beside_tracker,
    driver_frame,
    fit_full_frame,
    load_checkpoint,
    magnification_note,
    make_engine,
    prepare_sources,
    resolve_size_and_face_model,
)
from reenact.devices import resolve_device
from reenact.engines import Source
from reenact.errors import BadInputError
from reenact.face.crop import warp_crop
from reenact.face.fit import FaceFit
from reenact.face.geometry import make_geometry
from reenact.face.pipeline import (
    CropPolicy,
    DriverTracker,
    FacePipeline,
    FitPolicy,
    Tracked,
    driver_fits,
    face_box,
)
from reenact.io import VideoReader, VideoWriter, atomic_output
from reenact.io.inputs import check_drive_inputs
from reenact.io.video_writer import ANIMATED_SUFFIXES, even_frame, largest_side_within_level
from reenact.prefetch import prefetch


@dataclass
class DriveOptions:
    """Options of :func:`drive`; the CLI maps its flags one to one."""

    size: int | None = None  # None: the checkpoint's image size, else 256
    relative: bool = True
    paste_back: bool = False
    side_by_side: bool = False
    face_index: int | str | None = None  # None: the largest; N: face N of `reenact faces`; "all": every face
    face_model: str | None = None  # mediapipe | flame | None: the checkpoint's topology decides (else mediapipe)
    flame_dir: str | None = None
    device: str = "auto"
    force: bool = False
    batch: int | None = None  # frames rendered together; None: :func:`frames_per_batch`
    smooth: bool = True
    weights_dir: str | None = None
    checkpoint: str | None = None  # a reenact checkpoint; None = geometric warp
    max_frames: int | None = None  # stop after this many driver frames
    loops: int = 1  # replay the driver this many times (benchmarks)
    max_side: int | None = None  # full-frame outputs: the photo's longest side at most; None or 0: as it is
    find_best_frame: bool = False  # reference = the driver frame closest to the source, not its first face


@dataclass
class DriveSummary:
    """What a drive did. ``frames_without_face`` counts stored driver frames with no accepted face
    (``rejected`` of them had landmarks that failed the tracker's checks); ``duration`` is seconds."""

    output: Path
    frames: int
    seconds: float
    frames_without_face: int
    mode: str
    audio: bool
    size: tuple[int, int] = field(default=(0, 0))
    rejected: int = 0
    duration: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DriverStream:
    """The driver's fits, one per stored frame, and what the tracker counted once it has run."""

    tracker: DriverTracker
    policy: FitPolicy
    items: Iterator[tuple[Tracked, FaceFit]]
    reference: FaceFit


def driver_stream(reader: VideoReader, faces: FacePipeline, size: int, geometry, smooth: bool,
                  best_for: Source | None = None, notify: Callable[[str], None] = lambda m: None) -> DriverStream:
    """Track the driver and fit every frame in the crop of its reference frame.

    The reference is the driver's first face, or with ``best_for`` the frame closest to that source
    face (``--find-best-frame``). Fits live in the reference frame's crop, not each frame's own: head
    translation and scale changes within the video are then part of the fit and are transferred, as
    they must be for ``--paste-back``. The tracker's smoothed per-frame box only frames the driver
    panel of ``--side-by-side``.
    """
    if best_for is None:
        ref, ref_det = faces.first_face(reader.timed(), reader.info.path)
    else:
        ref, ref_det, dist = faces.best_frame(reader.timed(), best_for.detection, reader.info.path)
        notify(f"--find-best-frame: reference is driver frame {ref.index} (t = {ref.time:.2f} s), "
               f"landmark distance {dist:.2f} from the source")
    ref_affine = face_box(ref_det).affine(size)

    def new_fitter():
        fit = geometry.driver_fitter(smooth)
        return lambda det, t: fit(det, ref_affine, t)

    fps = reader.info.fps
    reference = new_fitter()(ref_det, ref.time * fps)  # its own fitter: the stream's filters start at frame 0
    tracker = faces.tracker(fps, CropPolicy.smoothed)
    policy = FitPolicy(new_fitter(), new_fitter, reference, geometry.blend, fps)
    items = driver_fits(tracker.track(reader.timed()), policy)
    return DriverStream(tracker, policy, items, reference)


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
    return even_frame(out)


def drive(source: str | Path, driver: str | Path, output: str | Path, opts: DriveOptions | None = None,
          progress: Callable[[int, int], None] | None = None,
          notify: Callable[[str], None] | None = None) -> DriveSummary:
    """Reenact ``source`` with ``driver`` into ``output`` (mp4/mov/mkv). See the module docstring."""
    opts = opts or DriveOptions()
    notify = notify or (lambda msg: None)
    source, driver, output = Path(source), Path(driver), Path(output)
    image, info = check_drive_inputs(source, driver, output, opts.force, opts.checkpoint)
    full_frame = opts.paste_back or opts.face_index == "all"
    if full_frame:
        image = fit_full_frame(source, image, opts.max_side, "", notify)
    elif opts.max_side:
        notify("--max-side scales only full-frame outputs (--paste-back, --face-index all); the crop's size is --size")
    reader = VideoReader(driver, loops=opts.loops, info=info)
    if info.audio_note:
        notify(f"{driver}: {info.audio_note}")
    elif info.audio_codec and output.suffix.lower() in ANIMATED_SUFFIXES:
        notify(f"{output.suffix} outputs have no sound; the driver's audio is left out (write .mp4 to keep it)")
    ckpt = load_checkpoint(opts.checkpoint)
    opts = resolve_size_and_face_model(opts, ckpt, notify)
    device = resolve_device(opts.device)
    geometry = make_geometry(opts.face_model, opts.flame_dir, opts.weights_dir, opts.size)
    total = reader.info.n_frames * opts.loops
    total = min(total, opts.max_frames) if opts.max_frames else total
    start = time.perf_counter()
    with FacePipeline(opts.weights_dir) as faces:
        sources = prepare_sources(source, image, faces, opts.size, opts.face_index, geometry)
        if not full_frame and (note := magnification_note(source, sources, opts.size)) is not None:
            notify(note)
        if len(sources) > 1 and not opts.paste_back:
            notify(f"--face-index all: animating {len(sources)} faces in the full image (as with --paste-back)")
            opts = dataclasses.replace(opts, paste_back=True)
        stream = driver_stream(reader, faces, opts.size, geometry, opts.smooth,
                               sources[0] if opts.find_best_frame else None, notify)
        engine = make_engine(sources, device, opts.paste_back, ckpt, opts.checkpoint, notify)
        with cpu_threads_beside_tracker(device), atomic_output(output, opts.force) as tmp:
            writer, n = _write(stream, sources, engine, geometry, reader, tmp, opts,
                               lambda k: progress and progress(k, max(total, k)))
    if reader.incomplete:
        notify(f"{driver}: {reader.incomplete}; the output has the frames it holds")
    side = largest_side_within_level(writer.size) if full_frame and not opts.side_by_side else None
    if side:
        notify(f"{output} is {writer.size[0]}x{writer.size[1]}, larger than H.264 level 5.2's frame (4096x2304): "
               f"players limited to 4K video may refuse it; --max-side {side} keeps it within")
    return DriveSummary(output, n, time.perf_counter() - start, stream.tracker.missing + stream.tracker.rejected,
                        engine.name, writer.has_audio, writer.size,
                        rejected=stream.tracker.rejected, duration=writer.duration)


def _write(stream: DriverStream, sources: list[Source], engine, geometry, reader: VideoReader, tmp: Path,
           opts: DriveOptions, progress: Callable[[int], object]) -> tuple[VideoWriter, int]:
    """Render the driver stream in batches and encode each frame at its driver frame's time."""
    src_panel = sources[0].image if opts.paste_back else sources[0].crop
    size = opts.batch or frames_per_batch(src_panel.shape[0] * src_panel.shape[1])
    ahead = prefetch(stream.items, depth=4 * size)
    writer, n = None, 0
    try:
        for batch in _batched(itertools.islice(ahead, opts.max_frames), size):
            fits = [[geometry.transfer(src.fit, fit, stream.reference, opts.relative) for _, fit in batch]
                    for src in sources]
            for (item, _), out in zip(batch, engine(fits, [driver_frame(item) for item, _ in batch])):
                composed = compose(out, src_panel, _driver_panel(item, opts), opts.side_by_side)
                if writer is None:
                    writer = VideoWriter(tmp, composed.shape[1::-1], reader.info.fps, audio_from=reader.info)
                writer.write(composed, item.frame.time)
                n += 1
            progress(n)
    finally:
        ahead.close()  # stop the tracking thread before its models close, on success or failure
    if writer is None:
        raise BadInputError(f"{reader.info.path}: no frames could be decoded")
    cut = opts.max_frames is not None and n >= opts.max_frames
    # The last frame lasts until the driver's end, unless the container's duration is implausible
    # (a truncated file): then one average frame.
    end = reader.info.duration * opts.loops
    last = item.frame.time
    writer.close(end=None if cut or not last < end <= last + 2 / reader.info.fps else end)
    return writer, n


BATCH = 8  # frames rendered together at most
BATCH_PIXELS = 24_000_000  # output pixels a batch holds at most (at least one frame)


def frames_per_batch(pixels: int) -> int:
    """How many output frames of ``pixels`` each to render together: ``BATCH``, fewer for the full
    frames of ``--paste-back`` on a large photo. Each frame of a batch holds its own full-size
    planes; on an 8064 × 5484 photo the default batch of 8 needed about 19 GB, and on a 4032 × 2741
    one batches of 8, 4, 2 and 1 ran within 10 % of each other (``bench/bench_photo_memory.py``)."""
    return max(1, min(BATCH, BATCH_PIXELS // max(pixels, 1)))


def _driver_panel(item: Tracked, opts: DriveOptions) -> np.ndarray | None:
    """The driver panel of ``--side-by-side``: the full frame with ``--paste-back``, else its face crop
    (the tracker's smoothed box; the whole frame before the first face)."""
    if not opts.side_by_side:
        return None
    if opts.paste_back or item.box is None:
        return item.frame.image
    return warp_crop(item.frame.image, item.box.affine(opts.size), opts.size)


def _batched(it, n: int):
    batch = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
