"""The one owner of "image -> faces -> crop -> fit" and of the driver stream (DESIGN §2).

drive, preprocess and score call this module; nothing else assembles detectors, landmarkers, crops
and fits.

* :meth:`FacePipeline.faces`: every face of a still image. The faces the landmarker finds on the
  whole image come first; every other box of the full-range BlazeFace detector is landmarked in its
  own crop (small and distant faces, which the landmarker's short-range detector misses); a last
  search over tiles and tilted views runs when nothing was found. Landmarks are kept only where
  BlazeFace sees a face in their own crop turned upright (:meth:`FacePipeline.holds_up`). Faces are
  numbered by size, 0 = largest: ``--face-index`` and ``reenact faces`` use this numbering.
* :meth:`FacePipeline.largest`: the largest face of a frame that is already a face crop (scoring),
  landmarker only.
* :meth:`FacePipeline.tracker`: the driver tracker (:mod:`reenact.face.tracker`) with its crop policy.
* :class:`FitPolicy` (and :func:`driver_fits` over a stream): fits for every driver frame under the
  **policy for frames without an accepted face**: hold the last accepted fit for ``HOLD_S`` seconds, then ease to the reference fit
  (in relative mode: the source's own pose and expression) over ``EASE_S`` seconds; when the face
  returns, ease from what was shown to the live fit over ``EASE_S``. Frames before the first face show
  the reference. No frame is ever warped by an unconfirmed fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from reenact import weights
from reenact.errors import BadInputError, NoFaceError
from reenact.face.crop import warp_crop
from reenact.face.detect import FaceBox, FaceDetector, iou
from reenact.face.fit import FaceFit
from reenact.face.landmarks68 import mediapipe_to_68
from reenact.face.mediapipe_backend import Detection, MediaPipeFaces, fit_in_crop, pose_from_matrix
from reenact.face.regions import CHIN, FOREHEAD
from reenact.face.segment import PersonSegmenter
from reenact.face.tracker import CropPolicy, DriverTracker, Tracked, face_box
from reenact.io.video import TimedFrame
from reenact.ramps import smoothstep

HOLD_S, EASE_S = 0.5, 0.4
LANDMARK_CROP = 256  # each detector box is landmarked in a square crop of at least this size
BOX_CONTEXT = 2.0  # ... spanning this many detector-box sides
CHECK_CROP, CHECK_SCORE, CHECK_IOU = 256, 0.2, 0.3  # FacePipeline.holds_up: its crop, and what confirms
TURN_FROM = 40.0  # degrees: a face turned more than this in the picture is landmarked turned upright
EYE_CORNERS = (33, 263)  # MediaPipe's outer eye corners: the subject's right, then left

__all__ = ["CropPolicy", "DriverTracker", "Face", "FacePipeline", "FitPolicy", "Tracked", "crop_and_fit", "crop_face",
           "driver_fits", "face_box"]


@dataclass(frozen=True)
class Face:
    """One face of a still image: its number (0 = largest), landmarks and the detector's confidence
    (NaN when only the landmarker saw it)."""

    index: int
    detection: Detection
    score: float

    @property
    def box(self) -> np.ndarray:
        return self.detection.box

    @property
    def size(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0))

    @property
    def pose(self) -> np.ndarray:
        """(yaw, pitch, roll) in degrees."""
        return pose_from_matrix(self.detection.matrix)

    @property
    def disc(self) -> np.ndarray:
        """(3,) the head as the warp sees it (render/head.Head): the mesh's centre x, y and the face's
        height (forehead to chin), image pixels."""
        pts = np.asarray(self.detection.points, np.float64)[:468, :2]
        return np.array([*pts.mean(0), np.linalg.norm(pts[CHIN] - pts[FOREHEAD])])


def crop_face(image: np.ndarray, det: Detection, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The authors' square crop of ``det`` at ``size``², and its image -> crop affine."""
    affine = face_box(det).affine(size)
    return warp_crop(image, affine, size), affine


def crop_and_fit(image: np.ndarray, det: Detection, size: int) -> tuple[np.ndarray, np.ndarray, FaceFit]:
    """The authors' crop of ``det``, its affine, and the built-in (MediaPipe) fit in that crop."""
    crop, affine = crop_face(image, det, size)
    return crop, affine, fit_in_crop(det, affine)


class FacePipeline:
    """The face models of one process: BlazeFace (full range), the Face Landmarker (IMAGE mode) and,
    on first use, the person segmenter.

    Use as a context manager. Model files are resolved (and checked) before anything loads.
    """

    def __init__(self, weights_dir: str | Path | None = None, max_faces: int = 8):
        self.task = weights.resolve("mediapipe_face_landmarker", weights_dir)
        detector = weights.resolve("mediapipe_face_detector", weights_dir)
        self._weights_dir, self._segmenter, self._checker = weights_dir, None, None
        self.detector = FaceDetector(detector)
        try:
            self.landmarker = MediaPipeFaces(self.task, num_faces=max_faces)
        except BaseException:
            self.detector.close()
            raise

    def close(self) -> None:
        self.landmarker.close()
        self.detector.close()
        for model in (self._segmenter, self._checker):
            if model is not None:
                model.close()

    def __enter__(self) -> "FacePipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def faces(self, image: np.ndarray) -> list[Face]:
        """Every face in a still image, largest first (see the module docstring)."""
        return self.find_faces(image)[0]

    def find_faces(self, image: np.ndarray) -> tuple[list[Face], list[Detection]]:
        """:meth:`faces`, and the landmarks left out because they do not hold up (:meth:`holds_up`)."""
        boxes = self.detector(image)
        kept: list[tuple[Detection, float]] = []
        left_out: list[Detection] = []

        def consider(det: Detection, score: float) -> None:
            if any(iou(det.box, d.box) >= 0.3 for d, _ in kept):
                return
            if self.holds_up(image, det):
                kept.append((det, score))
            else:
                left_out.append(det)

        whole = self.landmarker.detect(image, search=False)  # the faces the landmarker sees whole
        score = lambda det: max((b.score for b in boxes if iou(b.box, det.box) >= 0.3),  # noqa: E731
                                default=float("nan"))
        turned = [abs(_roll(d.points[EYE_CORNERS[1], :2] - d.points[EYE_CORNERS[0], :2])) > TURN_FROM for d in whole]
        for det in (d for d, t in zip(whole, turned) if not t):
            consider(det, score(det))
        for box in boxes:  # the detector's other faces, each landmarked in its own crop (upright)
            if all(iou(box.box, d.box) < 0.3 for d, _ in kept):
                det = self._landmark_box(image, box)
                if det is not None:
                    consider(det, box.score)
        for det in (d for d, t in zip(whole, turned) if t):  # turned: the box's upright fit came first
            consider(det, score(det))
        if not kept and not left_out:
            for det in self.landmarker.detect(image, search=True):
                consider(det, float("nan"))
        kept.sort(key=lambda f: -f[0].area)
        left_out = [d for d in left_out if all(iou(d.box, k.box) < 0.3 for k, _ in kept)]  # found again, turned
        return [Face(i, det, score) for i, (det, score) in enumerate(kept)], left_out

    def holds_up(self, image: np.ndarray, det: Detection) -> bool:
        """Whether BlazeFace sees a face where ``det``'s landmarks put one: in the face's own crop
        (``CHECK_CROP``², :func:`crop_face`) turned upright by its eye line, a detector box of
        confidence ≥ ``CHECK_SCORE`` overlapping the landmarks' box with IoU ≥ ``CHECK_IOU``.

        The landmarker alone can put a whole face mesh where there is none: on BWPictureHuman.jpg's
        soldier, shouting in profile, it put the eyes on his temple and his ear and the mouth on his
        cheek, and ``drive`` opened a second mouth, with teeth, there. The whole image's detector boxes
        do not tell: on lp_s0.jpg turned by 120° its box overlaps an upright mesh drawn over the
        upside-down face. About 5 ms a face."""
        import cv2

        crop, affine = crop_face(image, det, CHECK_CROP)
        pts = np.asarray(det.points, np.float64)[:, :2] @ affine[:, :2].T + affine[:, 2]
        roll = _roll(pts[EYE_CORNERS[1]] - pts[EYE_CORNERS[0]])
        turn = cv2.getRotationMatrix2D((CHECK_CROP / 2, CHECK_CROP / 2), roll, 1.0)
        upright = cv2.warpAffine(crop, turn, (CHECK_CROP, CHECK_CROP), borderMode=cv2.BORDER_REPLICATE)
        pts = pts @ turn[:, :2].T + turn[:, 2]
        box = np.concatenate([pts.min(0), pts.max(0)])
        if self._checker is None:  # below the detector's own 0.3: group_t1's face looking aside scores 0.30 here
            self._checker = FaceDetector(weights.resolve("mediapipe_face_detector", self._weights_dir), CHECK_SCORE)
        return any(iou(b.box, box) >= CHECK_IOU for b in self._checker(upright))

    def select(self, image: np.ndarray, index: int | None, what: Path | str,
               found: tuple[list[Face], list[Detection]] | None = None) -> Face:
        """Face ``index`` (default 0, the largest) of ``image`` (``found``: :meth:`find_faces` of it,
        if already run); NoFaceError or BadInputError naming ``what``."""
        faces, left_out = found if found is not None else self.find_faces(image)
        if not faces and left_out:
            raise NoFaceError(f"{what}: no face to animate: the face landmarks found do not hold up (the face "
                              "detector sees no face there; a face in profile, upside down or mostly hidden?)")
        if not faces:
            raise NoFaceError(f"{what}: no face found in the image")
        idx = 0 if index is None else index
        if not 0 <= idx < len(faces):
            raise BadInputError(f"{what}: --face-index {idx} is out of range: {len(faces)} face(s) found, "
                                f"numbered 0-{len(faces) - 1} (see `reenact faces {what}`)")
        return faces[idx]

    def person_mask(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 person confidence of a still image (:mod:`reenact.face.segment`); the
        segmenter loads on first use, so commands that never ask for it do not pay for it."""
        if self._segmenter is None:
            self._segmenter = PersonSegmenter(weights.resolve("mediapipe_selfie_segmentation", self._weights_dir))
        return self._segmenter(image)

    def largest(self, image: np.ndarray) -> Detection | None:
        """The largest face of an image that is mostly face (a crop): the landmarker alone."""
        dets = self.landmarker.detect(np.ascontiguousarray(image), search=False)
        return dets[0] if dets else None

    def first_face(self, frames: Iterable[TimedFrame], what: Path | str) -> tuple[TimedFrame, Detection]:
        """The first frame with a face and that face; NoFaceError when no frame has one."""
        for frame in frames:
            det = self.largest(frame.image)
            if det is not None:
                return frame, det
        raise NoFaceError(f"{what}: no face in any frame of the driving video")

    def best_frame(self, frames: Iterable[TimedFrame], source: Detection,
                   what: Path | str) -> tuple[TimedFrame, Detection, float]:
        """The frame whose face is closest to ``source`` in pose and expression, as first-order-model's
        ``--find_best_frame``: the 68 landmarks, centred and divided by the square root of their convex
        hull's area, compared by the sum of squared differences. Returns (frame, face, distance)."""
        target = _normalised(mediapipe_to_68(source.points))
        best: tuple[TimedFrame, Detection, float] | None = None
        for frame in frames:
            det = self.largest(frame.image)
            if det is not None:
                d = float(((_normalised(mediapipe_to_68(det.points)) - target) ** 2).sum())
                if best is None or d < best[2]:
                    best = (frame, det, d)
        if best is None:
            raise NoFaceError(f"{what}: no face in any frame of the driving video")
        return best

    def tracker(self, fps: float, crop: CropPolicy = CropPolicy.smoothed) -> DriverTracker:
        """A driver tracker sharing this pipeline's detector (one clip; not thread-safe with :meth:`faces`)."""
        return DriverTracker(self.task, self.detector, fps, crop)

    def _landmark_box(self, image: np.ndarray, box: FaceBox) -> Detection | None:
        """Landmarks of the face in detector ``box``, found in a square crop around it, in image pixels.
        A face turned more than ``TURN_FROM`` in the picture (the detector's eye key points) is
        landmarked turned upright: the landmarker drew a mesh across the cheek of lp_s0.jpg turned by
        90° or more (tests/test_faces_hold_up.py)."""
        side = BOX_CONTEXT * box.side
        cx, cy = (box.box[0] + box.box[2]) / 2, (box.box[1] + box.box[3]) / 2
        size = int(np.clip(round(side), LANDMARK_CROP, 4 * LANDMARK_CROP))  # small faces upsampled, none shrunk much
        k = size / side
        affine = np.array([[k, 0.0, -k * (cx - side / 2)], [0.0, k, -k * (cy - side / 2)]])
        crop = warp_crop(image, affine, size)
        roll = _roll(box.keypoints[1] - box.keypoints[0]) if len(box.keypoints) >= 2 else 0.0  # right, left eye
        dets = self.landmarker.detect_turned(crop, roll if abs(roll) > TURN_FROM else 0.0)
        centre = size / 2
        dets = [d for d in dets if abs((d.box[0] + d.box[2]) / 2 - centre) < centre / 2
                and abs((d.box[1] + d.box[3]) / 2 - centre) < centre / 2]
        if not dets:
            return None
        pts = dets[0].points.astype(np.float64)
        back = np.column_stack([(pts[:, 0] - affine[0, 2]) / k, (pts[:, 1] - affine[1, 2]) / k, pts[:, 2] / k])
        return Detection(back.astype(np.float32), dets[0].blendshapes, dets[0].matrix)


Fitter = Callable[[Detection, float], FaceFit]


class FitPolicy:
    """The module's policy for frames without an accepted face, one frame at a time (drive and live).

    ``fitter(detection, t)`` fits an accepted face (it may smooth over time); after a gap the stream
    continues with a fresh ``new_fitter()``, so no filter smooths across frames without a face.
    ``reference`` is the driver's reference fit; ``blend(a, b, w)`` interpolates fits; ``fps`` converts
    the hold and ease times to frames.
    """

    def __init__(self, fitter: Fitter, new_fitter: Callable[[], Fitter], reference: FaceFit,
                 blend: Callable[[FaceFit, FaceFit, float], FaceFit], fps: float):
        self.fit_frame, self.new_fitter, self.reference, self.blend = fitter, new_fitter, reference, blend
        self.hold, self.ease = HOLD_S * fps, max(EASE_S * fps, 1.0)
        self.shown, self.last_good = reference, None
        self._lost: float | None = None  # when the face went (frame units)
        self._back: float | None = None  # when it came back, while easing in
        self._from = reference  # the fit the current ease starts from

    def __call__(self, item: Tracked) -> FaceFit:
        if item.detection is not None:
            if self._lost is not None and self.last_good is not None:  # back: ease from what was shown
                self.fit_frame, self._back, self._from = self.new_fitter(), item.t, self.shown
            self._lost = None
            live = self.fit_frame(item.detection, item.t)
            w = 1.0 if self._back is None else smoothstep((item.t - self._back) / self.ease)
            self.shown = self.blend(self._from, live, w) if w < 1.0 else live
            self._back = None if w >= 1.0 else self._back
            self.last_good = live
        else:
            if self._lost is None:
                self._lost, self._back = item.t, None
                self._from = self.shown if self.last_good is not None else self.reference
            gone = item.t - self._lost
            self.shown = self._from if gone < self.hold else \
                self.blend(self._from, self.reference, smoothstep((gone - self.hold) / self.ease))
        return self.shown


def driver_fits(tracked: Iterable[Tracked], policy: FitPolicy) -> Iterator[tuple[Tracked, FaceFit]]:
    """(tracked frame, fit) per driver frame under ``policy``."""
    for item in tracked:
        yield item, policy(item)


def _roll(eyes: np.ndarray) -> float:
    """Degrees a face is turned in the picture, from the vector (x, y pixels) from its right eye to its
    left: 0 upright, positive clockwise as seen (the angle OpenCV's getRotationMatrix2D turns back)."""
    return float(np.degrees(np.arctan2(eyes[1], eyes[0])))


def _normalised(lm68: np.ndarray) -> np.ndarray:
    """68 points centred on their mean and scaled to unit convex-hull area (first-order-model's normalize_kp)."""
    from scipy.spatial import ConvexHull

    p = np.asarray(lm68[:, :2], np.float64)
    p = p - p.mean(0)
    return p / np.sqrt(ConvexHull(p).volume)

