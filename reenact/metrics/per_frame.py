"""The per-frame value of each paired metric, from two sides' :class:`FaceMeasurements`.

Every paired metric is computed in two steps, the same for a per-frame CSV and for the aggregate:
per-frame values first (NaN where either side has no face), then one masked mean
(:func:`~reenact.metrics.landmarks.masked_mean`). The formulas are in the metric modules.
"""

from __future__ import annotations

import numpy as np

from reenact.metrics.identity import cosine
from reenact.metrics.landmarks import FaceMeasurements, akd_per_frame, masked_mean
from reenact.metrics.pose_expression import mean_abs_per_frame

PAIRED = ("csim", "akd", "apd", "aed")

__all__ = ["PAIRED", "per_frame", "masked_mean"]


def per_frame(metric: str, generated: FaceMeasurements, other: FaceMeasurements) -> np.ndarray | None:
    """(T,) values of ``metric`` for the generated frames against ``other`` (T frames, or one frame, such
    as a source image, compared with every generated frame); None when a side lacks the measurement."""
    n = len(generated.landmarks)

    def side(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.broadcast_to(a, (n, *a.shape[1:]))

    if metric == "csim":
        g, r = generated.embedding, side(other.embedding)
        return None if g is None or r is None else cosine(np.asarray(g, np.float64), np.asarray(r, np.float64))
    if metric == "akd":
        return akd_per_frame(generated.landmarks, side(other.landmarks))
    if metric == "apd":
        return mean_abs_per_frame(generated.pose, side(other.pose))
    if metric == "aed":
        return mean_abs_per_frame(generated.expression, side(other.expression))
    raise ValueError(f"not a paired metric: {metric}")
