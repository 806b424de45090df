"""Paste-back geometry: the crop's feathered square, its box in the image, crops resampled onto
image pixels, and the geometric warp's positions over the image. The geometric warp never
resamples its crop back into the frame (that would blur a large source): it warps the **original**
image over the box its motion reaches (:func:`image_positions`, for engines.GeometricWarp); the PWM
generator's crops are resampled here and blended over that warp.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.crop import apply_affine, invert_affine
from reenact.render.layers import pixel_grid

COARSE = 0.75  # crop pixels per image pixel up to which the geometric warp's map is interpolated from the crop's


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


def image_positions(head, nonrigid: torch.Tensor, pad: int, affine: np.ndarray, shape,
                    exact: bool = False) -> tuple[torch.Tensor, tuple]:
    """Full-frame source positions (B, h, w, 2) in image pixels for the image box the head's motion
    reaches (the crop's box and the head weight's support): p -> C⁻¹(q + h(q) r(q) + n(q)), q = C p,
    where ``nonrigid`` (B, 2, S + 2 pad, S + 2 pad) is n in pixels on the grown crop, feathered to 0
    at its border.

    Where a crop pixel spans 1 / ``COARSE`` image pixels or more, the map is evaluated at the grown
    crop's pixel centres only (:func:`_knots`) and interpolated bilinearly between: n is itself
    bilinear between them and C⁻¹ is affine, so only h r, which is smooth (its gradient is bounded,
    module docstring of render/head.py), differs from the map at every pixel (``exact``): by at most
    0.31 image px on lp_d11's turns on Image_with_alpha.png (1.9 image px per crop px,
    tests/test_head_warp.py), 0.62 on it upscaled 2×. There, a batch of 6 frames' positions took
    0.73 s instead of 1.59 s with h r alone on a lattice and the rest at every pixel."""
    n = nonrigid.shape[-1]
    h, w = shape
    a = torch.as_tensor(affine, dtype=nonrigid.dtype, device=nonrigid.device)
    inv = torch.as_tensor(invert_affine(affine), dtype=a.dtype, device=a.device)
    x0, y0, x1, y1 = crop_bounds(grown_affine(affine, pad), n, (h, w))  # where n can be non-zero: the grown crop
    reach = head.reach()[:, None] * inv[:, :2].abs().sum(1)  # (B, 2) image pixels (the crop is axis-aligned)
    centre = head.centre @ inv[:, :2].T + inv[:, 2]
    lo, hi = (centre - reach).min(0).values.floor().tolist(), (centre + reach).max(0).values.ceil().tolist()
    box = (max(min(x0, int(lo[0])), 0), max(min(y0, int(lo[1])), 0), min(max(x1, int(hi[0])), w),
           min(max(y1, int(hi[1])), h))
    size = (max(box[3] - box[1], 0), max(box[2] - box[0], 0))
    feathered = nonrigid * feather_mask(n, 0.15, device=a.device).to(a.dtype)
    coarse = not exact and float(a[0, 0]) <= COARSE and min(size) > 0
    knots = _knot_range(a, box, size, pad) if coarse else None
    q = _knots(a, knots, pad) if coarse else affine_points(pixel_grid(*size, a.device, a.dtype, box[0], box[1]), a)
    grid = ((q + pad) * (2.0 / n) - 1)[None].expand(len(nonrigid), -1, -1, -1)
    nq = F.grid_sample(feathered, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    q = q[None].expand(len(nonrigid), -1, -1, -1)
    pos = affine_points(head.weight(q)[..., None] * head.rigid(q) + nq.permute(0, 2, 3, 1) + q, inv)  # (B, ., ., 2)
    return (_upsampled(pos, a, box, size, pad, knots) if coarse else pos), box


def _knots(a: torch.Tensor, knots: tuple[int, int, int, int], pad: int) -> torch.Tensor:
    """(rows, cols, 2) the grown crop's pixel centres (crop pixels) with indices ``knots`` (i0, j0, i1,
    j1) inclusive (:func:`_knot_range`)."""
    i0, j0, i1, j1 = knots
    ys = torch.arange(j0, j1 + 1, device=a.device, dtype=a.dtype) + (0.5 - pad)
    xs = torch.arange(i0, i1 + 1, device=a.device, dtype=a.dtype) + (0.5 - pad)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def _knot_range(a: torch.Tensor, box: tuple, size: tuple[int, int], pad: int) -> tuple[int, int, int, int]:
    """The grown crop's pixel indices (i0, j0, i1, j1), inclusive, whose centres enclose the centres of
    the image pixels of ``box``."""
    corners = affine_points(a.new_tensor([[box[0] + 0.5, box[1] + 0.5], [box[0] + size[1] - 0.5, box[1] + size[0] - 0.5]]), a)
    lo, hi = (corners[0] + pad - 0.5).floor(), (corners[1] + pad - 0.5).ceil()
    return int(lo[0]), int(lo[1]), max(int(hi[0]), int(lo[0]) + 1), max(int(hi[1]), int(lo[1]) + 1)


def _upsampled(pos: torch.Tensor, a: torch.Tensor, box: tuple, size: tuple[int, int], pad: int,
               knots: tuple[int, int, int, int]) -> torch.Tensor:
    """``pos`` (B, rows, cols, 2) at :func:`_knots` interpolated bilinearly at the image pixels of
    ``box``: (B, h, w, 2)."""
    i0, j0, i1, j1 = knots
    ys = (torch.arange(size[0], device=a.device, dtype=a.dtype) + box[1] + 0.5) * a[1, 1] + a[1, 2] + pad - 0.5 - j0
    xs = (torch.arange(size[1], device=a.device, dtype=a.dtype) + box[0] + 0.5) * a[0, 0] + a[0, 2] + pad - 0.5 - i0
    gy, gx = torch.meshgrid(ys * (2.0 / (j1 - j0)) - 1, xs * (2.0 / (i1 - i0)) - 1, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].expand(len(pos), -1, -1, -1)  # (B, h, w, 2) in [-1, 1]
    up = F.grid_sample(pos.permute(0, 3, 1, 2), grid, mode="bilinear", align_corners=True)  # (B, 2, h, w)
    return up.permute(0, 2, 3, 1)


def grown_affine(affine: np.ndarray, pad: int) -> np.ndarray:
    """The image -> crop ``affine`` of the crop grown by ``pad`` px on each side."""
    return affine + np.array([[0.0, 0.0, pad], [0.0, 0.0, pad]])


def affine_points(p: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Points p (..., 2) through the 2 × 3 affine ``m``, elementwise: a little cheaper than a batched
    (..., 2) @ (2, 2) product over a whole image (positions of 8 frames on a 1524 × 1036 photo: 0.59 →
    0.55 s)."""
    x, y = p[..., 0], p[..., 1]
    return torch.stack([m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]], -1)
