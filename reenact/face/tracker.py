"""The driver tracker: MediaPipe landmarks per frame, with implausible faces rejected.

Each frame is landmarked afresh (IMAGE mode: BlazeFace finds the face, the landmark model reads
it) and the face kept is the one overlapping the last accepted face most (else the largest). Not
VIDEO mode, which reframes each frame from the previous frame's landmarks: on lp_d11.mp4 its meshes
came out 2.8 % taller than a fresh detection's at the median and up to 8.6 % (the width agrees within
1 %), and a reenacted face inherited the stretch (a longer face and an open mouth where the driver's
was half open; self-reenactment error inside the face oval 0.466 -> 0.406 of copying the source with
fresh detection). The price is about 0.5-1 ms per frame and a jitter of 0.24 px instead of 0.12 on a
still face (the fits' One-Euro filter takes it); a moving face jitters less (2.1 px against 2.4).

A tracked face is **accepted** when the landmarker reports one and it is plausible:
- its landmark box is at least ``MIN_FACE_PX`` wide and mostly inside the frame;
- BlazeFace (full range) confirms it — a detector box of confidence >= ``CONFIRM_SCORE`` overlapping the
  landmark box with IoU >= ``CONFIRM_IOU`` — whenever there is doubt: on the first frame of a track
  (a face appearing or coming back), on a sudden jump of the box (centre moving more than
  ``JUMP_CENTRE`` box sides, or the side changing by more than ``JUMP_SCALE``× since the last accepted
  frame), and every ``CONFIRM_EVERY`` frames while tracking. Once a check fails, every frame is checked
  until one passes.

Otherwise the frame is **missing** (no landmarks) or **rejected** (landmarks that fail a check: for
example a tracker that stayed on a blurred title card). What a frame without an accepted face shows
is the fit-level policy of :mod:`reenact.face.pipeline`.

Crops follow a :class:`CropPolicy`. Time ``t`` (for the One-Euro filters) is in frames at the clip's
average rate, computed from each frame's real timestamp, so variable-rate video filters correctly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Iterator

import numpy as np

from reenact.face.crop import CropBox
from reenact.face.detect import FaceDetector, iou
from reenact.face.landmarks68 import mediapipe_to_68
from reenact.face.mediapipe_backend import Detection, MediaPipeFaces
from reenact.face.smoothing import BOX_BETA, BOX_MIN_CUTOFF, OneEuro
from reenact.io.video import TimedFrame

MIN_FACE_PX = 24.0
CONFIRM_SCORE, CONFIRM_IOU = 0.5, 0.3
JUMP_CENTRE, JUMP_SCALE = 0.35, 1.35
CONFIRM_EVERY = 15
TRACK_FACES = 4  # faces landmarked per frame, to keep following the same one when others are in view


class CropPolicy(str, Enum):
    """How a clip's frames are cropped.

    reference: one box for the whole clip, from its reference (first accepted) face; head motion
        stays in the fits (drive, so that ``--paste-back`` moves the head in the frame).
    smoothed: each frame's box, One-Euro smoothed so a still head does not jitter (preprocess, the
        driver panel of ``--side-by-side``).
    per_frame: each frame's raw authors' box, as the authors crop (scores in the authors' crop).
    """

    reference = "reference"
    smoothed = "smoothed"
    per_frame = "per_frame"


@dataclass(frozen=True)
class Tracked:
    """One driver frame: the frame, its accepted face (None if missing or rejected), its crop box
    under the tracker's policy (None before the first face), status and time in frame units."""

    frame: TimedFrame
    detection: Detection | None
    box: CropBox | None
    status: str  # "face" | "missing" | "rejected"
    t: float


def face_box(det: Detection) -> CropBox:
    """The authors' crop box of one face (from its 68 landmarks)."""
    return CropBox.from_landmarks(mediapipe_to_68(det.points))


class DriverTracker:
    """Track the largest face of a clip. Iterate :meth:`track`; read ``missing`` and ``rejected`` after.

    ``detector`` is shared with the caller (it is not closed here); the landmarker is
    owned and closed at the end of the stream.
    """

    def __init__(self, task_path, detector: FaceDetector, fps: float, crop: CropPolicy = CropPolicy.smoothed):
        self.task_path, self.detector, self.fps, self.crop = task_path, detector, fps, CropPolicy(crop)
        self.missing = self.rejected = 0
        self._last: Detection | None = None  # last accepted face
        self._since_check = 0
        self._doubt = True  # the next face must be confirmed
        self._box_filter = OneEuro(min_cutoff=BOX_MIN_CUTOFF, beta=BOX_BETA)
        self._box: CropBox | None = None

    def track(self, frames: Iterable[TimedFrame]) -> Iterator[Tracked]:
        with MediaPipeFaces(self.task_path, num_faces=TRACK_FACES) as faces:
            for frame in frames:
                det = self._follow(faces.detect(frame.image, search=False))
                t = frame.time * self.fps
                status = "missing" if det is None else ("face" if self._plausible(frame.image, det) else "rejected")
                if status == "face":
                    self._accept(det, t)
                else:
                    self.missing += status == "missing"
                    self.rejected += status == "rejected"
                    self._doubt = True
                yield Tracked(frame, det if status == "face" else None, self._box, status, t)

    def _follow(self, dets: list[Detection]) -> Detection | None:
        """The face of ``dets`` (largest first) that overlaps the last accepted face most, else the largest."""
        if not dets or self._last is None:
            return dets[0] if dets else None
        overlap = [iou(d.box, self._last.box) for d in dets]
        best = int(np.argmax(overlap))
        return dets[best] if overlap[best] > 0 else dets[0]

    def _accept(self, det: Detection, t: float) -> None:
        self._last, self._doubt = det, False
        raw = face_box(det)
        if self.crop is CropPolicy.reference:
            self._box = self._box or raw
        elif self.crop is CropPolicy.smoothed:
            self._box = CropBox(*self._box_filter(raw.as_array(), t))
        else:
            self._box = raw

    def _plausible(self, image: np.ndarray, det: Detection) -> bool:
        h, w = image.shape[:2]
        x0, y0, x1, y1 = det.box
        side = max(x1 - x0, y1 - y0)
        inside = (min(x1, w) - max(x0, 0)) * (min(y1, h) - max(y0, 0)) / max((x1 - x0) * (y1 - y0), 1e-6)
        if side < MIN_FACE_PX or inside < 0.6:
            return False
        self._since_check += 1
        if not (self._doubt or self._jumped(det) or self._since_check >= CONFIRM_EVERY):
            return True
        self._since_check = 0
        return any(b.score >= CONFIRM_SCORE and iou(b.box, det.box) >= CONFIRM_IOU for b in self.detector(image))

    def _jumped(self, det: Detection) -> bool:
        if self._last is None:
            return True
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = self._last.box, det.box
        side_a, side_b = max(ax1 - ax0, ay1 - ay0), max(bx1 - bx0, by1 - by0)
        centre = np.hypot((ax0 + ax1 - bx0 - bx1) / 2, (ay0 + ay1 - by0 - by1) / 2)
        ratio = max(side_a, side_b) / max(min(side_a, side_b), 1e-6)
        return centre > JUMP_CENTRE * side_a or ratio > JUMP_SCALE
