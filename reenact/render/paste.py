"""Paste-back: apply a crop-space flow to the full-resolution source image.

Rather than resampling the animated 256² crop back into the frame (which would blur a large
source), the crop's flow is carried into image space and the **original** image is warped once:
for an image pixel p, q = A p is its crop position, the flow there (times a feathered mask that
falls to 0 at the crop border) moves it to q', and the pixel takes the image's colour at A⁻¹ q'.
Pixels outside the crop's bounding box are copied unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def feather_mask(size: int, margin: float = 0.08, device=None) -> torch.Tensor:
    """(1, 1, size, size): 1 inside, a cosine ramp to 0 over the outer ``margin`` of the crop."""
    t = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    d = torch.minimum(t, 1 - t) / margin
    ramp = 0.5 - 0.5 * torch.cos(torch.pi * d.clamp(0, 1))
    return (ramp[:, None] * ramp[None, :]).view(1, 1, size, size)


def crop_bounds(affine: np.ndarray, size: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer image box (x0, y0, x1, y1) covering the crop of ``affine``, clipped to ``shape`` (H, W)."""
    inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    h, w = shape
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def warp_full_frame(image: torch.Tensor, flow: torch.Tensor, affine: np.ndarray) -> torch.Tensor:
    """Warp ``image`` (1, 3, H, W) float by the crop-space ``flow`` (B, 2, S, S) -> (B, 3, H, W).

    ``affine`` maps image to crop coordinates (continuous pixels).
    """
    region, (x0, y0, x1, y1) = warp_region(image, flow, affine)
    out = image.expand(flow.shape[0], -1, -1, -1).clone()
    out[:, :, y0:y1, x0:x1] = region
    return out


def _region(affine: np.ndarray, s: int, h: int, w: int, device, dtype):
    """Image box of the crop, its pixel centres p (h', w', 2) and their crop coordinates q = A p."""
    x0, y0, x1, y1 = crop_bounds(affine, s, (h, w))
    a = torch.as_tensor(affine, dtype=dtype, device=device)
    ys, xs = torch.meshgrid(torch.arange(y0, y1, device=device, dtype=dtype) + 0.5,
                            torch.arange(x0, x1, device=device, dtype=dtype) + 0.5, indexing="ij")
    p = torch.stack([xs, ys], -1)  # (h', w', 2) image pixel centres
    return (x0, y0, x1, y1), a, p @ a[:, :2].T + a[:, 2]


def warp_region(image: torch.Tensor, flow: torch.Tensor, affine: np.ndarray):
    """The part of :func:`warp_full_frame` that changes: (B, 3, y1-y0, x1-x0) and its box (x0, y0, x1, y1)."""
    b, _, s, _ = flow.shape
    _, _, h, w = image.shape
    box, a, q = _region(affine, s, h, w, flow.device, flow.dtype)
    if box[2] <= box[0] or box[3] <= box[1]:
        return image[:, :, :0, :0].expand(b, -1, -1, -1), (0, 0, 0, 0)
    qn = (q * (2.0 / s) - 1).expand(b, -1, -1, -1)  # (B, h', w', 2) normalized crop coords
    weighted = flow * feather_mask(s, device=flow.device).to(flow.dtype)
    f = F.grid_sample(weighted, qn, mode="bilinear", padding_mode="zeros", align_corners=False)
    src_q = q + f.permute(0, 2, 3, 1) * (s / 2.0)  # (B, h', w', 2)
    inv = torch.linalg.inv(torch.cat([a, a.new_tensor([[0, 0, 1]])]))[:2]
    src_p = src_q @ inv[:, :2].T + inv[:, 2]
    grid = src_p / src_p.new_tensor([w / 2.0, h / 2.0]) - 1
    region = F.grid_sample(image.expand(b, -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                           align_corners=False)
    return region, box


def paste_crop(image: torch.Tensor, crop: torch.Tensor, affine: np.ndarray):
    """Blend generated crops (B, 3, S, S) into ``image`` (1, 3, H, W) through the feathered crop mask.

    Returns the changed region (B, 3, y1-y0, x1-x0) and its box, like :func:`warp_region`.
    """
    b, _, s, _ = crop.shape
    _, _, h, w = image.shape
    (x0, y0, x1, y1), _, q = _region(affine, s, h, w, crop.device, crop.dtype)
    if x1 <= x0 or y1 <= y0:
        return image[:, :, :0, :0].expand(b, -1, -1, -1), (0, 0, 0, 0)
    qn = (q * (2.0 / s) - 1).expand(b, -1, -1, -1)
    fg = F.grid_sample(torch.cat([crop, feather_mask(s, device=crop.device).to(crop.dtype).expand(b, -1, -1, -1)], 1),
                       qn, mode="bilinear", padding_mode="zeros", align_corners=False)
    alpha = fg[:, 3:]
    return fg[:, :3] * alpha + image[:, :, y0:y1, x0:x1] * (1 - alpha), (x0, y0, x1, y1)
