"""Camera capture for ``reenact live``: a thread that always holds the newest frame.

A camera is an OpenCV device index. A video file is read with PyAV (timestamps, rotation) and
**paced at its own frame rate**, as if it were a camera; it ends at its end. A network stream (an IP
camera's ``rtsp://``, a phone camera app's MJPEG over ``http://``) is read with PyAV too; a live one
(no duration) is taken as its frames arrive, stamped with their arrival time.

The consumer asks for frames with :meth:`Capture.frames`; it always gets the newest one. A frame the
consumer did not take before the next arrived is dropped and counted: stale frames are never queued.
Each frame carries the wall-clock time it was captured (``perf_counter``), for latency.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from reenact.errors import BadInputError, ReenactError, is_url
from reenact.io.video import TimedFrame, VideoReader, probe_video


class CameraLost(ReenactError):
    """The camera stopped delivering frames mid-run (unplugged, or a stream or file that broke off)."""


class Capture:
    """Frames of one camera, device or file. Use as a context manager; iterate :meth:`frames`."""

    def __init__(self, camera: str, mirror: bool = False):
        self.camera = camera
        self.mirror = mirror  # flip each frame left to right: a selfie view, as in a mirror
        self.captured = self.dropped = 0
        self._cond = threading.Condition()
        self._latest: TimedFrame | None = None
        self._taken = True
        self._done = False
        self._error: str | None = None
        self._stop = threading.Event()
        self._times: dict[int, float] = {}
        index = device_index(camera)
        if index is not None:
            self._device = _open_device(index, camera)
            self.fps = float(self._device.get(5) or 30.0) or 30.0  # cv2.CAP_PROP_FPS
            self._reader = None
        else:
            self._device = None
            if not is_url(camera) and not Path(camera).exists():
                raise BadInputError(f"--camera {camera}: no such camera file or device")
            try:
                self._reader = VideoReader(camera, info=probe_video(camera, stream=True))
            except BadInputError as exc:
                reason = str(exc).removeprefix(f"{camera}: ")
                if not reason.startswith("cannot be opened"):  # a stream's own message says so already
                    reason = f"cannot be opened ({reason})"
                raise BadInputError(f"--camera {camera}: {reason}") from None
            self.fps = self._reader.info.fps
        self._live = self._reader is not None and is_url(camera) and not self._reader.info.duration
        self._thread = threading.Thread(target=self._run, name="reenact-capture", daemon=True)

    def __enter__(self) -> "Capture":
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=2)
        if self._device is not None:
            self._device.release()

    def captured_at(self, index: int) -> float:
        """The ``perf_counter`` time frame ``index`` was captured."""
        return self._times.pop(index)

    def frames(self) -> Iterator[TimedFrame]:
        """The newest frame each time the consumer asks, until the camera ends; :class:`CameraLost` if it broke off."""
        while True:
            with self._cond:
                while self._taken and not self._done:
                    self._cond.wait(timeout=0.5)
                if self._taken and self._done:
                    if self._error:
                        raise CameraLost(self._error)
                    return
                frame, self._taken = self._latest, True
            yield frame

    def _publish(self, frame: TimedFrame) -> None:
        if self.mirror:
            frame = TimedFrame(frame.index, frame.time, np.ascontiguousarray(frame.image[:, ::-1]))  # (H, W, 3)
        with self._cond:
            if not self._taken:
                self.dropped += 1
                self._times.pop(self._latest.index, None)
            self._times[frame.index] = time.perf_counter()
            self._latest, self._taken = frame, False
            self.captured += 1
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            if self._device is not None:
                self._run_device()
            else:
                self._run_file()
        except Exception as exc:  # handed to the consumer as one line
            reason = str(exc).removeprefix(f"{self.camera}: ")  # the reader names the camera too
            self._error = f"camera {self.camera} stopped after {self.captured} frame(s): {reason}"
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _run_file(self) -> None:
        for frame in self._reader.timed():
            if self._stop.is_set():
                return
            if self._live:  # as it arrives: a live stream's own timestamps may be made up (MJPEG's are)
                frame = TimedFrame(frame.index, time.perf_counter() - self._start, frame.image)
            else:
                wait = self._start + frame.time - time.perf_counter()
                if wait > 0:
                    self._stop.wait(wait)
            self._publish(frame)
        if self._reader.incomplete:
            raise RuntimeError(self._reader.incomplete)

    def _run_device(self) -> None:
        import cv2

        index = 0
        while not self._stop.is_set():
            ok, bgr = self._device.read()
            if not ok:
                raise RuntimeError("no frame from the device (disconnected?)")
            rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self._publish(TimedFrame(index, time.perf_counter() - self._start, rgb))
            index += 1


def device_index(camera: str) -> int | None:
    """The OpenCV index of a camera device: "0", or Linux's "/dev/video0" (which FFmpeg, reading it as
    a file, could not open: "Invalid data"); None for a file or stream."""
    match = re.fullmatch(r"(?:/dev/video)?(\d+)", camera)
    return int(match.group(1)) if match else None


def _open_device(index: int, camera: str):
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise BadInputError(f"--camera {camera}: no camera with this index, or it cannot be opened")
    return cap
