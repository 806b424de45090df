"""Face boxes from MediaPipe's full-range BlazeFace (``vision.FaceDetector``, Apache-2.0).

The Face Landmarker runs its own short-range detector on the whole image, which misses small and
distant faces: on a six-person group photo it returns none or two. The full-range model finds them;
each box is then landmarked in its own crop (:mod:`reenact.face.pipeline`). In video the detector
also confirms that a tracked "face" is one (see the driver tracker's policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError
from reenact.face.mediapipe_tasks import image, model_options, tasks


@dataclass(frozen=True)
class FaceBox:
    """One detector box in image pixels: [x0, y0, x1, y1], its confidence, and 6 key points (6, 2)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def side(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def mp_image(rgb: np.ndarray):
    """An (H, W, 3) uint8 RGB array as a ``mediapipe.Image``."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadInputError("expected an (H, W, 3) uint8 RGB frame")
    return image(np.ascontiguousarray(rgb))


class FaceDetector:
    """BlazeFace full range in IMAGE mode. Use as a context manager (closing it avoids MediaPipe's
    noisy destructor at exit)."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.3):
        _, vision = tasks()
        opts = vision.FaceDetectorOptions(base_options=model_options(model_path),
                                          running_mode=vision.RunningMode.IMAGE,
                                          min_detection_confidence=min_confidence)
        self._det = vision.FaceDetector.create_from_options(opts)

    def __call__(self, rgb: np.ndarray) -> list[FaceBox]:
        """Every face box in ``rgb``, most confident first."""
        h, w = rgb.shape[:2]
        out = []
        for d in self._det.detect(mp_image(rgb)).detections:
            b = d.bounding_box
            box = np.array([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height], np.float64)
            kp = np.array([[k.x * w, k.y * h] for k in d.keypoints], np.float64).reshape(-1, 2)
            out.append(FaceBox(box, float(d.categories[0].score), kp))
        return sorted(out, key=lambda f: -f.score)

    def close(self) -> None:
        if self._det is not None:
            self._det.close()
            self._det = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
