"""AKD: average keypoint distance (supplementary §3), and the per-frame face measurements it and
APD/AED are computed from.

    AKD = mean_t mean_k ( |x̂_tk - x_tk| + |ŷ_tk - y_tk| )

the L1 distance between the 68 landmarks of generated and reference frame t, in pixels at the scoring
resolution (landmarks are rescaled from each frame's size to ``resolution``² before comparing).
Frames where either side has no detected face are excluded and counted.
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


def akd(generated: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """(AKD in pixels, frames excluded). Inputs (T, 68, 2) with NaN rows for frames without a face."""
    diff = np.abs(np.asarray(generated, np.float64) - np.asarray(reference, np.float64)).sum(-1)  # (T, 68)
    valid = ~np.isnan(diff).any(1)
    if not valid.any():
        return float("nan"), int(len(diff))
    return float(diff[valid].mean()), int((~valid).sum())
