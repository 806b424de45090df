"""The geometric warp's mouth: a mouth interior where the driver opens wider than the source.

A warp can only move the source's pixels, so a mouth that opens wider than the source's stretches
the source's lips and teeth across the gap (the "giant teeth" grin). Inside the driven inner-lip
contour (``regions.INNER_LIPS``) this paints instead:

* the source's own mouth interior (teeth, tongue) at its natural size, the upper part moving with
  the upper lip and the lower part with the lower lip (a translation each, so nothing stretches);
* where that leaves a gap, a shaded cavity: the lips' mean colour darkened to ``CAVITY`` of it at
  the centre and ``CAVITY_RIM`` near the lips.

The overlay fades in as the driven mouth opens more than the source's (``OPEN_FROM`` to
``OPEN_FULL`` more, as inner-lip gap over mouth width), so closed and source-sized mouths are the
warp's own. It applies only to sources whose mouth is open (``SOURCE_OPEN``): on a closed-mouth
source the cavity is all there is, and a driver smiling with teeth (single_face.mp4 driving its own
first frame) then showed a black hole where the true frames show teeth, worse than the stretched
lips (face error 0.452 → 0.503 of copying the source). Closed-mouth sources need the driver's own
mouth interior, which is not built yet. Positions are in pixels of the image the engine warps (the crop, or the full source).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.regions import INNER_LIPS, INNER_LOWER, INNER_UPPER, OUTER_LIPS, polygon_mask
from reenact.render.head import pixel_grid, sample

CAVITY, CAVITY_RIM = 0.28, 0.5
OPEN_FROM, OPEN_FULL = 0.03, 0.10
SOURCE_OPEN = 0.05  # a source mouth this open shows an interior (teeth) to reuse; closed ones keep the warp
UPPER = [INNER_LIPS.index(i) for i in INNER_UPPER[1:-1]]  # inner-ring positions of each lip
LOWER = [INNER_LIPS.index(i) for i in INNER_LOWER[1:-1]]
TOP, BOTTOM, CORNERS = INNER_LIPS.index(13), INNER_LIPS.index(14), (INNER_LIPS.index(78), INNER_LIPS.index(308))


def opening(lips: np.ndarray) -> np.ndarray:
    """(B,) inner-lip gap over mouth width of inner-lip rings (B, 20, 2)."""
    gap = np.linalg.norm(lips[:, TOP] - lips[:, BOTTOM], axis=-1)
    return gap / np.maximum(np.linalg.norm(lips[:, CORNERS[0]] - lips[:, CORNERS[1]], axis=-1), 1e-6)


class MouthFill:
    """Built once per source from its image (1, 3, H, W) and 468 mesh vertices in that image's pixels."""

    def __init__(self, image: torch.Tensor, verts: np.ndarray):
        h, w = image.shape[-2:]
        self.image = image
        self.lips = np.asarray(verts, np.float64)[INNER_LIPS, :2]
        self.open = float(opening(self.lips[None])[0])
        inner = polygon_mask(verts, INNER_LIPS, (h, w))
        lip_band = polygon_mask(verts, OUTER_LIPS, (h, w)) & ~inner
        t = lambda m: torch.as_tensor(m, dtype=image.dtype, device=image.device)[None, None]  # noqa: E731
        inside = F.avg_pool2d(t(inner), 3, 1, 1)  # (1, 1, H, W), edges softened by a pixel
        below = _side(pixel_grid(h, w, image.device, image.dtype)[None], self.lips[None]).permute(0, 3, 1, 2)
        self.halves = torch.cat([inside * (1 - below), inside * below], 1)  # (1, 2, H, W): upper, lower teeth
        band = t(lip_band)
        self.lip_colour = (image * band).sum((2, 3), keepdim=True) / band.sum().clamp(min=1)  # (1, 3, 1, 1)

    def __call__(self, out: torch.Tensor, box: tuple[int, int, int, int], verts: np.ndarray) -> torch.Tensor:
        """``out`` (B, 3, h, w), the warped target pixels of ``box``, with the mouth painted where the
        driven vertices ``verts`` (B, V, 2+, engine-image pixels) open it wider than the source's."""
        lips = np.asarray(verts, np.float64)[:, INNER_LIPS, :2]
        strength = np.clip((opening(lips) - self.open - OPEN_FROM) / (OPEN_FULL - OPEN_FROM), 0.0, 1.0)
        if self.open < SOURCE_OPEN or not strength.any():
            return out
        x0, y0, x1, y1 = box
        lo = np.floor(lips.reshape(-1, 2).min(0)).astype(int) - 2
        hi = np.ceil(lips.reshape(-1, 2).max(0)).astype(int) + 3
        wx0, wy0 = max(lo[0], x0), max(lo[1], y0)
        wx1, wy1 = min(hi[0], x1), min(hi[1], y1)
        if wx1 <= wx0 or wy1 <= wy0:
            return out
        mask = torch.stack([torch.as_tensor(_ring_mask(ring - [wx0, wy0], (wy1 - wy0, wx1 - wx0))) for ring in lips])
        mask = mask.to(out)[:, None] * out.new_tensor(strength).view(-1, 1, 1, 1)  # (B, 1, h', w')
        paint = self._interior(lips, (wx0, wy0, wx1, wy1), mask)
        region = out[:, :, wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0]
        out = out.clone()
        out[:, :, wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0] = region + mask * (paint - region)
        return out

    def _interior(self, lips: np.ndarray, window: tuple[int, int, int, int], mask: torch.Tensor) -> torch.Tensor:
        """(B, 3, h', w') the source's interior moved with each lip, over a shaded cavity."""
        wx0, wy0, wx1, wy1 = window
        q = pixel_grid(wy1 - wy0, wx1 - wx0, mask.device, mask.dtype, wx0, wy0)[None]  # (1, h', w', 2)
        t = lambda x: torch.as_tensor(x, dtype=mask.dtype, device=mask.device)  # noqa: E731
        d_up = t(self.lips[UPPER].mean(0) - lips[:, UPPER].mean(1))[:, None, None]  # (B, 1, 1, 2)
        d_low = t(self.lips[LOWER].mean(0) - lips[:, LOWER].mean(1))[:, None, None]
        side = _side(q, lips)  # (B, h', w', 1): 0 upper, 1 lower
        layers = torch.cat([self.image * self.halves[:, :1], self.halves[:, :1],
                            self.image * self.halves[:, 1:], self.halves[:, 1:]], 1)  # premultiplied halves
        up, low = sample(layers, q + d_up), sample(layers, q + d_low)  # (B, 8, h', w') each
        s = side.permute(0, 3, 1, 2)
        both = (1 - s) * up[:, :4] + s * low[:, 4:]  # each half of the mouth shows its own lip's teeth
        teeth = torch.cat([both[:, :3] / both[:, 3:].clamp(min=1e-4), both[:, 3:]], 1)
        across = lips[:, CORNERS[1]] - lips[:, CORNERS[0]]
        k = max(3, int(round(float(np.linalg.norm(across, axis=-1).mean()) / 6)) | 1)
        depth = F.avg_pool2d((mask > 0.5).to(mask.dtype), k, 1, k // 2, count_include_pad=True)  # 1 deep inside
        cavity = self.lip_colour * (CAVITY_RIM + (CAVITY - CAVITY_RIM) * depth)
        return teeth[:, 3:] * teeth[:, :3] + (1 - teeth[:, 3:]) * cavity


def _side(q: torch.Tensor, lips: np.ndarray) -> torch.Tensor:
    """(B, h, w, 1) 0 above the mouth's midline (through the middle of the lip centres 13 and 14,
    along the corner line), 1 below, a 2 px ramp between; ``q`` (1 or B, h, w, 2), ``lips`` (B, 20, 2)."""
    t = lambda x: torch.as_tensor(x, dtype=q.dtype, device=q.device)  # noqa: E731
    mid = t((lips[:, TOP] + lips[:, BOTTOM]) / 2)[:, None, None]
    across = lips[:, CORNERS[1]] - lips[:, CORNERS[0]]
    down = t(np.stack([-across[:, 1], across[:, 0]], -1) / np.linalg.norm(across, axis=-1, keepdims=True))
    return (((q - mid) * down[:, None, None]).sum(-1, keepdim=True) / 2).clamp(-0.5, 0.5) + 0.5


def _ring_mask(ring: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 anti-aliased mask of a polygon (N, 2) in window pixels."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    pts = np.round((ring - 0.5) * 4).astype(np.int32)  # pixel centres at +0.5; 2 fractional bits
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255
