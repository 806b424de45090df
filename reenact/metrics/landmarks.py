"""AKD: average keypoint distance (supplementary §3), and the per-frame face measurements it and
APD/AED are computed from.

    AKD_t = 1/136 Σ_{k=1..68} ( |x̂_tk - x_tk| + |ŷ_tk - y_tk| )        AKD = mean_t AKD_t

the mean absolute difference per landmark *coordinate* between the 68 landmarks of generated and
reference frame t, in pixels at the scoring resolution (landmarks are rescaled from each frame's size to
``resolution``², 256 by default, before comparing). This is first-order-model's ``pose-evaluation``
definition (``np.mean(np.abs(kp_gen - kp_ref))`` per frame); some papers report the per-landmark
Euclidean or x+y distance instead, which is larger (x+y is exactly twice this). Frames where either side
has no detected face are NaN in the per-frame values, then excluded from the mean and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FaceMeasurements:
    """Per frame: 68 landmarks (T, 68, 2) at the scoring resolution, pose (T, 3) degrees, expression
    (T, E), optionally identity embeddings (T, D); rows are NaN where no face was found. ``backend``
    labels where the landmarks came from."""

    landmarks: np.ndarray
    pose: np.ndarray
    expression: np.ndarray
    backend: str
    embedding: np.ndarray | None = None

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.landmarks).any(axis=(1, 2))


def akd_per_frame(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """AKD_t (T,) in pixels; inputs (T, 68, 2) with NaN rows for frames without a face (NaN out)."""
    diff = np.abs(np.asarray(generated, np.float64) - np.asarray(reference, np.float64))  # (T, 68, 2)
    return diff.reshape(len(diff), -1).mean(1)


def akd(generated: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """(AKD in pixels, frames excluded): :func:`masked_mean` of :func:`akd_per_frame`."""
    value, _, excluded = masked_mean(akd_per_frame(generated, reference))
    return value, excluded


def masked_mean(values: np.ndarray) -> tuple[float, int, int]:
    """(mean of the finite per-frame values, frames used, frames excluded): the one aggregate of every
    per-frame metric (NaN marks a frame without a face on either side; NaN when no frame is left)."""
    values = np.asarray(values, np.float64).ravel()
    valid = np.isfinite(values)
    n = int(valid.sum())
    return (float(values[valid].mean()) if n else float("nan")), n, int(len(values) - n)
