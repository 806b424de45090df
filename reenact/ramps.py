"""One smooth ramp for every soft mask and blend weight (render's masks, the tracker's easing)."""

from __future__ import annotations


def smoothstep(x):
    """3x² − 2x³ of x clamped to [0, 1]: 0 at and below 0, 1 at and above 1, with zero slope at both
    ends, so a mask built from it has no crease where it starts or saturates. ``x``: a float, a
    NumPy array or a torch tensor; the result is of the same kind."""
    x = min(max(x, 0.0), 1.0) if isinstance(x, (int, float)) else x.clip(0, 1)
    return x * x * (3 - 2 * x)
