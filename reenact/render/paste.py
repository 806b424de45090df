"""Paste-back geometry: the crop's feathered square, its box in the image, and crops resampled
onto image pixels. The geometric warp never resamples its crop back into the frame (that would
blur a large source): it warps the **original** image over the box its motion reaches
(engines.GeometricWarp); the PWM generator's crops are resampled here and blended over that warp.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.crop import apply_affine, invert_affine
from reenact.render.layers import pixel_grid


def feather_mask(size: int, margin: float = 0.08, device=None) -> torch.Tensor:
    """(1, 1, size, size): 1 inside, a cosine ramp to 0 over the outer ``margin`` of the crop."""
    t = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    d = torch.minimum(t, 1 - t) / margin
    ramp = 0.5 - 0.5 * torch.cos(torch.pi * d.clamp(0, 1))
    return (ramp[:, None] * ramp[None, :]).view(1, 1, size, size)


def crop_bounds(affine: np.ndarray, size: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer image box (x0, y0, x1, y1) covering the crop of ``affine``, clipped to ``shape`` (H, W)."""
    corners = apply_affine(invert_affine(affine), np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    h, w = shape
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def crop_in_box(crop: torch.Tensor, affine: np.ndarray, box: tuple[int, int, int, int]) -> torch.Tensor:
    """Crops (B, C, S, S) resampled onto the image pixels of ``box`` (x0, y0, x1, y1), with the
    feathered crop mask as a last channel: (B, C + 1, y1 - y0, x1 - x0), zero outside the crop."""
    b, _, s, _ = crop.shape
    x0, y0, x1, y1 = box
    a = torch.as_tensor(affine, dtype=crop.dtype, device=crop.device)
    q = pixel_grid(y1 - y0, x1 - x0, crop.device, crop.dtype, x0, y0) @ a[:, :2].T + a[:, 2]  # (h, w, 2) crop pixels
    layers = torch.cat([crop, feather_mask(s, device=crop.device).to(crop.dtype).expand(b, -1, -1, -1)], 1)
    return F.grid_sample(layers, (q * (2.0 / s) - 1).expand(b, -1, -1, -1), mode="bilinear", padding_mode="zeros",
                         align_corners=False)
