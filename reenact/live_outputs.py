"""Where ``reenact live`` sends its frames: a window, a virtual camera, a recording, or several.

The window (OpenCV's HighGUI) shows the instruction until a reference face is taken, and reads the
keys: ``q`` or the close button end the run, ``r`` takes a new reference. The virtual camera is
``pyvirtualcam`` (an optional extra: v4l2loopback on Linux, OBS's virtual camera on Windows and
macOS). The recording gets every shown frame at the time it was captured.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError
from reenact.io import VideoWriter
from reenact.io.inputs import check_distinct, check_file, check_video_output, read_source
from reenact.io.outputs import check_output

WINDOW = "reenact live"
DISPLAY_MIN = 512  # the window shows frames at least this tall
INSTRUCTION = "look at the camera with a neutral face"


def has_display() -> bool:
    """Whether a window can be shown: always on Windows and macOS, with $DISPLAY or $WAYLAND_DISPLAY elsewhere."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_live_inputs(source: Path, record: str | None = None, stats: str | None = None, checkpoint: str | None = None,
                      window: bool | None = None, virtual_cam: bool = False, force: bool = False,
                      camera: str | None = None) -> np.ndarray:
    """The source image, after checking every output path (before torch, any model or the camera)."""
    for output in (record, stats):
        check_distinct(output, source=source, checkpoint=checkpoint, camera=camera)
    check_distinct(record, stats_file=stats)
    image = read_source(source)
    if record:
        check_video_output(record, force)
    if stats:
        check_output(stats, force)
    check_file(checkpoint, "checkpoint file")
    if virtual_cam:
        _pyvirtualcam()  # only whether it is there; the camera opens with the run
    if window and not has_display():
        raise BadInputError("--window: no display here (no $DISPLAY); use --no-window with --record or --virtual-cam")
    return image


class Outputs:
    """The sinks of one run. ``show`` returns "q", "r" or None; ``close`` finishes every sink."""

    def __init__(self, window: bool, virtual_cam: bool, size: tuple[int, int], fps: float,
                 writer: VideoWriter | None):
        self.window, self.writer, self.cam = window, writer, None
        if virtual_cam:
            self.cam = open_virtual_camera(size, fps)
        self._shown = False  # the window is opened by open_window(), before anything imports PyAV

    def show(self, rgb: np.ndarray, t: float, waiting: bool = False) -> str | None:
        """Send one frame everywhere; ``t`` is its capture time in seconds from the first frame."""
        if self.writer is not None:
            self.writer.write(rgb, t)
        if self.cam is not None:
            self.cam.send(np.ascontiguousarray(rgb))
        return self._window(rgb, waiting) if self.window else None

    def _window(self, rgb: np.ndarray, waiting: bool) -> str | None:
        import cv2

        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if bgr.shape[0] < DISPLAY_MIN:  # a 256² crop is small on a screen: shown larger, recorded as it is
            k = DISPLAY_MIN / bgr.shape[0]
            bgr = cv2.resize(bgr, None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR)
        lines = [INSTRUCTION] if waiting else []
        lines.append("r: new reference   q: quit")
        for i, text in enumerate(lines):
            _text(bgr, text, 28 * (i + 1))
        cv2.imshow(WINDOW, bgr)
        key = cv2.waitKey(1) & 0xFF
        if self._shown and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            return "q"  # the close button
        self._shown = True
        return {ord("q"): "q", 27: "q", ord("r"): "r"}.get(key)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.cam is not None:
            self.cam.close()
        if self.window:
            import cv2

            cv2.destroyAllWindows()
            cv2.waitKey(1)


def _text(bgr: np.ndarray, text: str, y: int) -> None:
    """White text with a dark outline, readable on any face."""
    import cv2

    cv2.putText(bgr, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(bgr, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


def open_window(still: np.ndarray) -> None:
    """Open the window and show ``still`` with a "loading" line while the models load.

    It must open before PyAV is imported: with PyAV's FFmpeg libraries loaded first, OpenCV's Qt
    window creation hangs (seen with av 18 and opencv 5.1 wheels under X11).
    """
    import cv2

    cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar
    bgr = cv2.cvtColor(np.ascontiguousarray(still), cv2.COLOR_RGB2BGR)
    _text(bgr, "loading the face models...", 28)
    cv2.imshow(WINDOW, bgr)
    cv2.waitKey(1)


def _pyvirtualcam():
    """The ``pyvirtualcam`` module, or one clear line saying how to get it."""
    try:
        import pyvirtualcam
    except ImportError:
        raise BadInputError("--virtual-cam needs pyvirtualcam: pip install 'reenact[live]' (and v4l2loopback on "
                            "Linux, or OBS Studio's virtual camera on Windows and macOS)") from None
    return pyvirtualcam


def open_virtual_camera(size: tuple[int, int], fps: float):
    """A ``pyvirtualcam.Camera`` sending RGB frames, or one clear line saying what is missing."""
    pyvirtualcam = _pyvirtualcam()
    try:
        return pyvirtualcam.Camera(width=size[0], height=size[1], fps=max(1.0, float(fps)),
                                   fmt=pyvirtualcam.PixelFormat.RGB)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no backend"
        raise BadInputError(f"--virtual-cam: no virtual camera is available ({first}). On Linux: sudo modprobe "
                            f"v4l2loopback exclusive_caps=1; on Windows and macOS: install OBS Studio and start its "
                            f"virtual camera once") from None
