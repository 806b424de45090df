"""Geometry backends for ``drive``: one interface over MediaPipe (built in) and FLAME (user files).

A backend turns a MediaPipe detection in a crop into a FaceFit (source, and a stream of smoothed
driver fits), and transfers the driver's motion onto the source fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reenact.face.fit import FaceFit
from reenact.face.mediapipe_backend import Detection, fit_in_crop
from reenact.face.mesh import MEDIAPIPE
from reenact.face.motion import FitSmoother, blend, transfer


class MediaPipeGeometry:
    """The built-in backend: MediaPipe's 468-vertex mesh placed by a similarity (see face/motion.py)."""

    name, topology = "mediapipe", MEDIAPIPE

    def fit_source(self, det: Detection, affine: np.ndarray) -> FaceFit:
        return fit_in_crop(det, affine)

    def driver_fitter(self, smooth: bool):
        """A stateful function (detection, affine, t) -> smoothed FaceFit, for one driver clip."""
        smoother = FitSmoother() if smooth else None

        def fit(det: Detection, affine: np.ndarray, t: float) -> FaceFit:
            f = fit_in_crop(det, affine)
            return smoother(f, t) if smoother else f

        return fit

    def transfer(self, source: FaceFit, driver: FaceFit, reference: FaceFit, relative: bool) -> FaceFit:
        return transfer(source, driver, reference, relative)

    def blend(self, a: FaceFit, b: FaceFit, w: float) -> FaceFit:
        """(1 - w)·a + w·b, for easing between driver fits (the tracker's policy for lost faces)."""
        return blend(a, b, w)


def make_geometry(face_model: str, flame_dir: str | Path | None = None, weights_dir: str | Path | None = None,
                  size: int = 256):
    """The backend named by ``--face-model``."""
    if face_model == "mediapipe":
        return MediaPipeGeometry()
    from reenact.face.flame_backend import FlameGeometry

    return FlameGeometry.from_dirs(flame_dir, weights_dir, size)
