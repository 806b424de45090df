"""``reenact live``: animate a portrait from a camera in real time, to a window, a virtual camera or a
recording (DESIGN §1).

Latency first: capture runs in its own thread and always holds the newest frame
(:mod:`reenact.capture`); tracking runs in another, on each frame it takes, beside the warp
(:func:`~reenact.prefetch.newest`); the loop fits and animates the newest tracked frame alone (batch 1)
and shows it at once. A frame the loop never took is dropped and counted, whether the tracker took it
or not.
Faces, crops, the tracker and the policy for frames without a face are the same as ``drive``'s
(:mod:`reenact.face.pipeline`): a face leaving the camera holds, then eases to the source.

Motion is relative to a **reference**: the first frame with a confident face, taken again with ``r``
in the window or after ``reference_delay`` seconds. Until there is one, the source is shown still.
The recording is written atomically, each frame at the time it was captured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reenact.animator import (cpu_threads_beside_tracker, driver_frame, fit_full_frame, load_checkpoint, make_engine,
                              magnification_note, prepare_sources, resolve_size_and_face_model, warm_up)
from reenact.capture import CameraLost, Capture, device_index
from reenact.devices import resolve_device
from reenact.face.geometry import make_geometry
from reenact.face.pipeline import CropPolicy, FacePipeline, FitPolicy, Tracked, face_box
from reenact.io import VideoWriter, atomic_output
from reenact.io.image import fit_within
from reenact.io.video_writer import even_frame
from reenact.live_outputs import INSTRUCTION, Outputs, check_live_inputs, has_display, open_window
from reenact.prefetch import newest

@dataclass
class LiveOptions:
    """Options of :func:`live`; the CLI maps its flags one to one."""

    camera: str = "0"
    mirror: bool | None = None  # None: a camera device is mirrored (a selfie view), a file or stream is not
    window: bool | None = None  # None: a window when a display exists
    virtual_cam: bool = False
    record: str | None = None
    stats: str | None = None
    size: int | None = None
    paste_back: bool = False
    max_side: int = 1280  # with the full frame (--paste-back, --face-index all): the photo's longest side at most; 0: as it is
    face_index: int | str | None = None
    checkpoint: str | None = None
    face_model: str | None = None
    flame_dir: str | None = None
    weights_dir: str | None = None
    device: str = "auto"
    relative: bool = True
    reference_delay: float | None = None  # seconds after start to take the reference again
    force: bool = False
    smooth: bool = True


@dataclass
class LiveStats:
    """What a live run did. ``fps`` is frames shown per second of wall time; latencies are capture to output."""

    frames_shown: int
    frames_captured: int
    frames_dropped: int
    frames_without_face: int
    seconds: float
    latency_ms: dict
    ended: str
    record: str | None = None

    @property
    def fps(self) -> float:
        return self.frames_shown / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "fps": round(self.fps, 2)}


class _Motion:
    """The reference and the fit policy; ``recapture`` takes the next confident face as the new reference."""

    def __init__(self, geometry, size: int, fps: float, smooth: bool):
        self.geometry, self.size, self.fps, self.smooth = geometry, size, fps, smooth
        self.policy: FitPolicy | None = None
        self.want = True  # take the next confident face as the reference
        self.delayed = False  # the --reference-delay re-capture has happened

    def __call__(self, item: Tracked):
        if self.want and item.detection is not None:
            affine = face_box(item.detection).affine(self.size)

            def new_fitter():
                fit = self.geometry.driver_fitter(self.smooth)
                return lambda det, t: fit(det, affine, t)

            reference = new_fitter()(item.detection, item.t)
            self.policy = FitPolicy(new_fitter(), new_fitter, reference, self.geometry.blend, self.fps)
            self.want = False
        return None if self.policy is None else self.policy(item)


def live(source: str | Path, opts: LiveOptions | None = None, notify: Callable[[str], None] | None = None) -> LiveStats:
    """Run until the camera ends, ``q`` or the window's close button, or Ctrl-C. See the module docstring."""
    opts = opts or LiveOptions()
    notify = notify or (lambda msg: None)
    source = Path(source)
    window = has_display() if opts.window is None else opts.window
    image = check_live_inputs(source, opts.record, opts.stats, opts.checkpoint, window, opts.virtual_cam, opts.force,
                              str(opts.camera))
    if opts.paste_back or opts.face_index == "all":  # the whole photo every frame: an 11 MP one ran at 2.6 frames/s
        image = fit_full_frame(source, image, opts.max_side, " to keep up with the camera; --max-side 0 keeps its size",
                               notify)
    if window:
        open_window(fit_within(image, 512))  # before the camera: PyAV must not load before the window opens
    mirror = device_index(opts.camera) is not None if opts.mirror is None else opts.mirror
    capture = Capture(opts.camera, mirror)  # a missing or unopenable camera fails here, before the models load
    ckpt = load_checkpoint(opts.checkpoint)
    opts = resolve_size_and_face_model(opts, ckpt, notify)
    device = resolve_device(opts.device)
    geometry = make_geometry(opts.face_model, opts.flame_dir, opts.weights_dir, opts.size)
    with FacePipeline(opts.weights_dir) as faces:
        sources = prepare_sources(source, image, faces, opts.size, opts.face_index, geometry)
        paste_back = opts.paste_back or len(sources) > 1
        if not paste_back and (note := magnification_note(Path(source), sources, opts.size)) is not None:
            notify(note)
        engine = make_engine(sources, device, paste_back, ckpt, opts.checkpoint, notify)
        warm_up(engine, sources)
        still = even_frame(sources[0].image if paste_back else sources[0].crop)
        notify(f"{INSTRUCTION}; " + ("press r for a new reference, q to quit" if window else "Ctrl-C to stop"))
        recording = atomic_output(opts.record, opts.force) if opts.record else contextlib.nullcontext()
        with cpu_threads_beside_tracker(device), recording as tmp:
            stats = _loop(capture, faces, geometry, engine, sources, still, opts, window, tmp, notify)
    if opts.stats:
        with atomic_output(opts.stats, opts.force) as tmp:
            tmp.write_text(json.dumps(stats.as_dict(), indent=2))
    return stats


def _loop(capture: Capture, faces: FacePipeline, geometry, engine, sources, still: np.ndarray, opts: LiveOptions,
          window: bool, record: Path | None, notify) -> LiveStats:
    """Track, animate and show the newest frame until the run ends; always finishes the recording."""
    motion = _Motion(geometry, opts.size, capture.fps, opts.smooth)
    tracker = faces.tracker(capture.fps, CropPolicy.smoothed)
    writer = VideoWriter(record, still.shape[1::-1], capture.fps) if record else None
    outputs = Outputs(window, opts.virtual_cam, still.shape[1::-1], capture.fps, writer)
    latencies: list[float] = []
    ended, t_first, start = "end of the camera stream", None, time.perf_counter()
    skipped, faceless = 0, 0  # tracked frames a newer one replaced before the loop took them; shown without a face

    def skip(item: Tracked) -> None:  # in the tracking thread
        nonlocal skipped
        capture.captured_at(item.frame.index)  # drops its capture time, which nothing will read
        skipped += 1

    stream = newest(tracker.track(capture.frames()), skip)
    try:
        with capture:
            for item in stream:
                faceless += item.status != "face"
                fit = motion(item)
                if fit is None:
                    out = still
                else:
                    fits = [[geometry.transfer(s.fit, fit, motion.policy.reference, opts.relative)] for s in sources]
                    out = even_frame(engine(fits, [driver_frame(item)])[0])
                captured = capture.captured_at(item.frame.index)
                t_first = captured if t_first is None else t_first
                key = outputs.show(out, captured - t_first, waiting=motion.policy is None)
                latencies.append(time.perf_counter() - captured)
                if key == "q":
                    ended = "stopped (q or window closed)"
                    break
                due = opts.reference_delay is not None and not motion.delayed and \
                    time.perf_counter() - start >= opts.reference_delay
                if key == "r" or due:
                    motion.want, motion.delayed = True, motion.delayed or due
                    notify(f"new reference: {INSTRUCTION}")
    except KeyboardInterrupt:
        ended = "stopped (Ctrl-C)"
    except CameraLost as exc:
        ended = f"camera lost: {exc}"
        notify(str(exc) + (f"; the recording so far is kept in {opts.record}" if opts.record else ""))
    finally:
        stream.close()  # the tracking thread stops and closes the landmarker now, not at interpreter exit
        outputs.close()
    lat = np.array(latencies) * 1e3
    pct = (lambda q: round(float(np.percentile(lat, q)), 1)) if len(lat) else (lambda q: None)
    return LiveStats(len(latencies), capture.captured, capture.dropped + skipped, faceless,
                     round(time.perf_counter() - start, 3), {"p50": pct(50), "p95": pct(95), "max": pct(100)},
                     ended, opts.record)
