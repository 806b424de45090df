"""APD and AED (supplementary §3): average pose and expression distance.

    APD = mean_t (1/3) Σ_{a ∈ yaw, pitch, roll} |â_t - a_t|       (degrees)
    AED = mean_t (1/E) Σ_e |ê_te - e_te|                          (expression units)

From the FLAME fitter when configured (FLAME expression coefficients), otherwise MediaPipe pose and its
52 blendshape scores (a labelled fallback). Frames without a face on either side are excluded and counted.
"""

from __future__ import annotations

import numpy as np


def _mean_abs(generated: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    diff = np.abs(np.asarray(generated, np.float64) - np.asarray(reference, np.float64))  # (T, K)
    valid = ~np.isnan(diff).any(1)
    if not valid.any():
        return float("nan"), int(len(diff))
    return float(diff[valid].mean()), int((~valid).sum())


def apd(generated_pose: np.ndarray, reference_pose: np.ndarray) -> tuple[float, int]:
    """(APD in degrees, frames excluded); poses (T, 3) yaw/pitch/roll, NaN rows where no face."""
    return _mean_abs(generated_pose, reference_pose)


def aed(generated_expr: np.ndarray, reference_expr: np.ndarray) -> tuple[float, int]:
    """(AED, frames excluded); expressions (T, E), NaN rows where no face."""
    return _mean_abs(generated_expr, reference_expr)
