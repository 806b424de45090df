"""APD and AED (supplementary §3): average pose and expression distance.

    APD_t = (1/3) Σ_{a ∈ yaw, pitch, roll} |â_t - a_t|       (degrees)          APD = mean_t APD_t
    AED_t = (1/E) Σ_e |ê_te - e_te|                          (expression units) AED = mean_t AED_t

From the FLAME fitter when configured (FLAME expression coefficients), otherwise MediaPipe pose and its
52 blendshape scores (a labelled fallback). Frames without a face on either side are excluded and counted.
"""

from __future__ import annotations

import numpy as np

from reenact.metrics.landmarks import masked_mean


def mean_abs_per_frame(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """APD_t or AED_t (T,): the mean absolute difference of each frame's (T, K) vector; NaN where no face."""
    return np.abs(np.asarray(generated, np.float64) - np.asarray(reference, np.float64)).mean(-1)


def apd(generated_pose: np.ndarray, reference_pose: np.ndarray) -> tuple[float, int]:
    """(APD in degrees, frames excluded); poses (T, 3) yaw/pitch/roll, NaN rows where no face."""
    value, _, excluded = masked_mean(mean_abs_per_frame(generated_pose, reference_pose))
    return value, excluded


def aed(generated_expr: np.ndarray, reference_expr: np.ndarray) -> tuple[float, int]:
    """(AED, frames excluded); expressions (T, E), NaN rows where no face."""
    value, _, excluded = masked_mean(mean_abs_per_frame(generated_expr, reference_expr))
    return value, excluded
