"""One-Euro filter (Casiez et al., CHI 2012), as the authors use it for driving codes.

With ``t`` = frame index (rate 1), the authors' settings are ``min_cutoff=0.5, beta=0``
(official_pwm.md §6). The filter is causal, so it streams.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


# One-Euro settings for a crop box (pixels, t = frame index): steady on a still head, the cutoff rises
# with the box speed so a moving head is followed. Used by drive (driver panel) and preprocess.
BOX_MIN_CUTOFF, BOX_BETA = 0.02, 0.01


class OneEuro:
    """x̂_t = α x_t + (1-α) x̂_{t-1}, with cutoff = min_cutoff + beta·|dx̂/dt| (elementwise)."""

    def __init__(self, min_cutoff: float = 0.5, beta: float = 0.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x = self._dx = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = max(t - self._t, 1e-6)
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()
