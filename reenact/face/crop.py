"""Square face crops with the authors' constants (official_pwm.md §6), keeping the affine.

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i+1)`` and its centre is ``i + 0.5``
(the convention of ``grid_sample(align_corners=False)`` and of the authors' renderer).

Box, from the 68 landmarks (DECA ``preprocess_and_encode``):
    old_size = ((right - left) + (bottom - top)) / 2 * 1.1       (landmark bounding box)
    S = 1.35 * old_size
    x from cx - S/2 to cx + S/2;  y from cy - 0.6 S to cy + 0.4 S (the box sits 0.1 S above centre)

Deviations, both deliberate: S is kept as a float (the authors' ``int()`` makes the box jump by a
pixel on a still head), and the box maps onto ``[0, size)`` rather than corner pixels ``0..size-1``
(0.4 % scale at 256), so that crop and renderer share one pixel convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE_FACTOR = 1.1
CROP_FACTOR = 1.35
ABOVE_CENTRE = 0.6  # fraction of the box above the landmark centre


@dataclass(frozen=True)
class CropBox:
    """A square box: centre x, landmark-centre y, side S (image pixels)."""

    cx: float
    cy: float
    side: float

    @classmethod
    def from_landmarks(cls, lm68: np.ndarray) -> "CropBox":
        left, top = lm68[:, :2].min(0)
        right, bottom = lm68[:, :2].max(0)
        old_size = ((right - left) + (bottom - top)) / 2 * SIZE_FACTOR
        return cls(float((left + right) / 2), float((top + bottom) / 2), float(CROP_FACTOR * old_size))

    def as_array(self) -> np.ndarray:
        return np.array([self.cx, self.cy, self.side])

    @property
    def left(self) -> float:
        return self.cx - self.side / 2

    @property
    def top(self) -> float:
        return self.cy - ABOVE_CENTRE * self.side

    def affine(self, size: int) -> np.ndarray:
        """(2, 3) matrix A mapping image coordinates to crop coordinates: q = A @ [x, y, 1]."""
        k = size / self.side
        return np.array([[k, 0.0, -k * self.left], [0.0, k, -k * self.top]])


def invert_affine(a: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    m = np.vstack([a, [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)[:2]


def apply_affine(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply (2, 3) ``a`` to (..., 2) points."""
    return pts[..., :2] @ a[:, :2].T + a[:, 2]


def warp_crop(image: np.ndarray, a: np.ndarray, size: int) -> np.ndarray:
    """Resample ``image`` (H, W, 3) uint8 into the (size, size, 3) crop of affine ``a`` (zero border).

    When the crop shrinks the image by 2x or more, the image is first area-averaged by an integer
    factor f (small pixel i covers image pixels [f i, f (i+1)), so the affine becomes a @ diag(f, f, 1))
    to avoid aliasing.
    """
    import cv2

    f = int(1.0 / a[0, 0])
    if f >= 2:
        h, w = image.shape[0] // f, image.shape[1] // f
        image = cv2.resize(image[: h * f, : w * f], (w, h), interpolation=cv2.INTER_AREA)
        a = a @ np.diag([f, f, 1.0])
    m = a.copy()
    m[:, 2] += 0.5 * (a[0, 0] - 1.0)  # continuous -> cv2's integer-centre convention
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
