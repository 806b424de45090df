"""The geometric warp's gaze: the source's irises look where the driver's look (issue 12).

The face mesh has no iris, so the warp moves the eyeball with the lids and the source keeps its
own gaze. MediaPipe's ten iris points (468-472 for the eye with corners 33/133, 473-477 for 362/263)
give each eye's gaze as the iris centre in the eye's own frame: g = ((c − o)·x̂, (c − o)·ŷ) / w, with
o the corners' midpoint, x̂ along the corners, ŷ across, w the corners' distance.

With the driver's gaze g_d (absolute: the source looks where the driver looks), the iris should
appear where, without it, the warp would show the source's eye at u_a = g_d (eye-frame units,
corners at u = ±1/2), and the source's iris is at u_b = g_s. After the warp's own map, each eye's
source positions get, along the corner axis, the piecewise-linear monotone map

    [−½, u_a − r] → [−½, u_b − r],   [u_a − r, u_a + r] → shifted by u_b − u_a,   [u_a + r, ½] → [u_b + r, ½]

(r the iris radius plus a margin): the iris moves as a whole, only the sclera on either side
stretches or compresses, by at most ``MAX_STRETCH`` (u_a is held so). The shift s(u) is 0 at and
beyond the corners, and fades out across the lids: ψ(v) = 1 − smoothstep((|v| − h) / ``FADE``), h
half the source eye's opening, so the lids (but for a lash-wide band) stay. The map
(u, v) ↦ (u + ψ(v) s(u), v) has Jacobian [[1 + ψ s', s ψ'], [0, 1]] and determinant 1 + ψ s' > 0,
since each piece's slope 1 + s' is a ratio of two positive lengths (the compressing side's held to
``MAX_STRETCH``): it cannot fold. Its shear |s ψ'| ≤ 1.5 |s| / fade is the added gradient, held to
``MAX_SHEAR`` by fading over fade = max(``FADE``, 1.5 |u_b − u_a| / ``MAX_SHEAR``): on a tilted
painting (BWPictureHuman.jpg × lp_d18.mp4, a shift of 0.27 eye widths) a fixed fade sheared the lids
by 2.7, and on the pixel grid, across the map's kinks, that sampled as folds (det −0.23 in every
frame) although the map itself has det > 0. Only
the horizontal gaze moves: the opening is narrower than the iris, and a first version with a
vertical shift too, both faded on the eye ellipse's radius, folded the map (det −0.61 on lp_d11).
The shift fades out as the driver's eye closes (``OPEN_FROM`` to ``OPEN_FULL`` of its aspect
ratio), where its iris points are guesses.
"""

from __future__ import annotations

import numpy as np
import torch

from reenact.face.regions import EYES
from reenact.ramps import smoothstep
from reenact.render.driver_frame import DriverFrame

IRIS = {"right": 468, "left": 473}  # iris centres, by the eye they sit in (regions.EYES); rings follow
MAX_STRETCH = 2.5  # the sclera's length on either side of the iris changes at most by this factor
FADE = 0.15  # eye widths beyond the lids over which the shift fades out, at least
MAX_SHEAR = 1.0  # ... and longer where the shift s would shear the lids more than this: 1.5 |s| / fade
OPEN_FROM, OPEN_FULL = 0.12, 0.22  # driver eye aspect ratio: no shift below, the full shift above


def eye_frame(points: np.ndarray, eye: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(origin (2,), axes (2, 2): x̂ and ŷ as rows, width, aspect ratio) of one eye of ``points``."""
    p = np.asarray(points, np.float64)[:, :2]
    a, b = EYES[eye]["corners"]
    x = p[b] - p[a]
    w = max(float(np.linalg.norm(x)), 1e-6)
    x = x / w
    opening = np.mean([np.linalg.norm(p[u] - p[d]) for u, d in EYES[eye]["lids"]]) / w
    return (p[a] + p[b]) / 2, np.stack([x, [-x[1], x[0]]]), w, float(opening)


def gaze(points: np.ndarray, eye: str) -> np.ndarray:
    """(2,) the iris centre of ``eye`` in its eye frame, in eye widths (needs the 478 landmarks)."""
    o, axes, w, _ = eye_frame(points, eye)
    return axes @ (np.asarray(points, np.float64)[IRIS[eye], :2] - o) / w


class Gaze:
    """Built once per source from its 478 landmarks in the pixels of the image the engine warps."""

    def __init__(self, points: np.ndarray):
        p = np.asarray(points, np.float64)[:, :2]
        self.eyes = {}
        for eye, c in IRIS.items():
            o, axes, w, opening = eye_frame(p, eye)
            radius = float(np.linalg.norm(p[c + 1:c + 5] - p[c], axis=1).mean()) / w  # the iris ring
            r, own = min(radius * 1.1 + 0.02, 0.3), gaze(p, eye)
            if min(own[0] - r + 0.5, 0.5 - own[0] - r) > 0.05:  # sclera on both sides of the iris to move it into
                self.eyes[eye] = (o, axes, w, max(opening / 2, 0.05), r, own)

    def targets(self, drivers: list[DriverFrame | None]) -> np.ndarray:
        """(B, eyes) u_a per frame and eye: the source's own gaze without a driver or with the
        driver's eye shut, else the driver's, held so the sclera stretches by at most ``MAX_STRETCH``."""
        out = np.zeros((len(drivers), len(self.eyes)))
        for j, (eye, (_, _, _, _, r, own)) in enumerate(self.eyes.items()):
            lo = -0.5 + r + (own[0] - r + 0.5) / MAX_STRETCH  # the left sclera [-1/2, u_a - r] >= its source / k
            hi = 0.5 - r - (0.5 - own[0] - r) / MAX_STRETCH
            for i, d in enumerate(drivers):
                target = own
                if d is not None and len(d.points) > max(IRIS.values()) + 4:
                    x = smoothstep((eye_frame(d.points, eye)[3] - OPEN_FROM) / (OPEN_FULL - OPEN_FROM))
                    target = own + (gaze(d.points, eye) - own) * x
                out[i, j] = np.clip(target[0], min(lo, own[0]), max(hi, own[0]))
        return out

    def __call__(self, pos: torch.Tensor, box: tuple[int, int, int, int], verts: np.ndarray,
                 drivers: list[DriverFrame | None] | None) -> torch.Tensor:
        """``pos`` (B, h, w, 2), where each target pixel of ``box`` samples the source, with each eye's
        map applied; ``verts`` (B, V, 2+) are the driven vertices in the same pixels. The map runs on
        a window around each driven eye only (the pixels that sample the source's eye). ``pos`` is
        changed in place (a copy of a 3048 × 2072 photo's positions cost 0.1 s a batch)."""
        if not drivers:
            return pos
        ua_all = self.targets(drivers)
        t = lambda x: torch.as_tensor(np.asarray(x), dtype=pos.dtype, device=pos.device)  # noqa: E731
        for j, (eye, (o, axes, w, half, r, own)) in enumerate(self.eyes.items()):
            if np.allclose(ua_all[:, j], own[0]):
                continue
            ids = [*EYES[eye]["corners"], *(i for pair in EYES[eye]["lids"] for i in pair)]
            ring = np.asarray(verts, np.float64)[:, ids, :2].reshape(-1, 2)
            margin = 0.5 * float(np.linalg.norm(ring.max(0) - ring.min(0)))
            x0, y0 = np.maximum(np.floor(ring.min(0) - margin).astype(int) - [box[0], box[1]], 0)
            x1, y1 = np.ceil(ring.max(0) + margin).astype(int) - [box[0], box[1]]
            win = pos[:, y0:max(y1, y0), x0:max(x1, x0)]  # (B, h', w', 2)
            if win.numel() == 0:
                continue
            uv = ((win - t(o)) @ t(axes).T) / w  # (B, h', w', 2) eye-frame coordinates, eye widths
            u, v = uv[..., 0], uv[..., 1]
            ua, ub = t(ua_all[:, j]).view(-1, 1, 1), float(own[0])
            left = -0.5 + (u + 0.5) * (ub - r + 0.5) / (ua - r + 0.5)
            right = 0.5 - (0.5 - u) * (0.5 - ub - r) / (0.5 - ua - r)
            moved = torch.where(u < ua - r, left, torch.where(u > ua + r, right, u + (ub - ua)))
            moved = torch.where(u.abs() < 0.5, moved, u)
            fade = torch.clamp(1.5 * (ua - ub).abs() / MAX_SHEAR, min=FADE)  # (B, 1, 1): shear <= MAX_SHEAR
            shift = (moved - u) * (1 - smoothstep((v.abs() - half) / fade))  # (B, h, w) eye widths, along x̂
            pos[:, y0:max(y1, y0), x0:max(x1, x0)] = win + (shift * w)[..., None] * t(axes[0])
        return pos
