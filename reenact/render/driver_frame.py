"""What the geometric warp reads from a driver frame besides its fit: the frame and its landmarks.

The mouth (render/mouth.py) takes a closed-mouth source's interior from it, the eyes
(render/eyes.py) the driver's gaze.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DriverFrame:
    """One driver frame: the image (H, W, 3) uint8 and its face's 478 MediaPipe landmarks (pixels;
    468-477 are the irises)."""

    image: np.ndarray
    points: np.ndarray
