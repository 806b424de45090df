"""68 landmarks from face-alignment's FAN (2DFAN4, TorchScript), for AKD when the user supplies it.

The pre- and post-processing follow face-alignment 1.5 (``api.get_landmarks_from_image``,
``utils.crop``, ``utils.get_preds_fromhm``):

* centre = box centre, moved up by 0.12 box heights; scale = (w + h) / 195; the 256x256 input is
  the square of side 200·scale around the centre, RGB / 255;
* each of the 68 heatmaps (64x64) gives its arg-max, nudged 0.25 px toward the higher neighbour, minus
  0.5, then mapped back through the inverse crop transform.

Two deliberate differences, stated in the score output's model label: the face box is the MediaPipe
mesh box rather than S3FD's (no S3FD weights are needed), and coordinates stay floating point where
face-alignment truncates them to integers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reenact import weights
from reenact.errors import BadInputError
from reenact.devices import jit_load

CENTER_Y_OFFSET = 0.12
REFERENCE_SCALE = 195.0
INPUT = 256


def crop_transform(box: np.ndarray, resolution: float) -> np.ndarray:
    """3x3 image -> crop-grid transform of face-alignment's ``transform`` for a face box [x0, y0, x1, y1]."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - (y1 - y0) * CENTER_Y_OFFSET
    h = 200.0 * ((x1 - x0) + (y1 - y0)) / REFERENCE_SCALE
    return np.array([[resolution / h, 0, resolution * (-cx / h + 0.5)],
                     [0, resolution / h, resolution * (-cy / h + 0.5)], [0, 0, 1]])


def decode_heatmaps(hm: np.ndarray) -> np.ndarray:
    """(B, 68, H, W) heatmaps -> (B, 68, 2) heatmap coordinates, face-alignment's sub-pixel rule."""
    b, c, h, w = hm.shape
    idx = hm.reshape(b, c, h * w).argmax(-1)
    px, py = idx % w, idx // w
    preds = np.stack([px, py], -1).astype(np.float64) + 1.0  # face-alignment's 1-based grid
    inner = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
    bi, ci = np.nonzero(inner)
    x, y = px[bi, ci], py[bi, ci]
    dx = hm[bi, ci, y, x + 1] - hm[bi, ci, y, x - 1]
    dy = hm[bi, ci, y + 1, x] - hm[bi, ci, y - 1, x]
    preds[bi, ci] += 0.25 * np.sign(np.stack([dx, dy], -1))
    return preds - 0.5


class FanLandmarks:
    """face-alignment 2DFAN4 as a landmark function: (image, face box) -> (68, 2) image pixels."""

    def __init__(self, device: torch.device, weights_dir: str | Path | None = None):
        path = weights.resolve("fan_2d", weights_dir)
        try:
            self.net = jit_load(str(path), map_location=device).eval()
        except Exception as exc:
            raise BadInputError(f"{path}: not a TorchScript FAN model ({exc.__class__.__name__})") from None
        self.device = device
        self.label = f"FAN 2DFAN4 ({path.name}; MediaPipe face box)"

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> np.ndarray:
        import cv2

        crops, inverse = [], []
        for im, box in zip(images, boxes):
            t = crop_transform(box, INPUT)
            crops.append(cv2.warpAffine(np.ascontiguousarray(im), t[:2], (INPUT, INPUT), flags=cv2.INTER_LINEAR))
            inverse.append(np.linalg.inv(crop_transform(box, 64)))
        x = torch.as_tensor(np.stack(crops), device=self.device).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, 256, 256)
        hm = self.net(x)
        hm = (hm[-1] if isinstance(hm, (list, tuple)) else hm).float().cpu().numpy()  # (B, 68, 64, 64)
        pts = decode_heatmaps(hm)
        return np.einsum("bij,bkj->bki", np.stack(inverse)[:, :2, :2], pts) + np.stack(inverse)[:, None, :2, 2]
