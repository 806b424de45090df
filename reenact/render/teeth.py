"""Teeth in the geometric warp's mouth (render/mouth.py): where a source's upper teeth end
(:func:`bite_side`, with teeth told from the tongue and lips by :func:`toothness`), and where each
set of teeth hangs in a driven mouth (:func:`hang`).

Positions are in an inner-lip ring's frame (:func:`lip_frame`): along the line between the mouth
corners, and across it, below the upper or above the lower inner lip.
"""

from __future__ import annotations

import numpy as np
import torch

from reenact.face.regions import INNER_LIPS, OUTER_LIPS, polygon_mask
from reenact.ramps import smoothstep

CORNERS = (INNER_LIPS.index(78), INNER_LIPS.index(308))  # inner-ring positions of the mouth corners

TEETH_LIGHTER, TEETH_PALER = 0.15, 0.15  # toothness: ramps in the lips' lightness and chroma


def toothness(mouth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(h, w) in [0, 1]: how much each pixel of ``mouth`` (h, w, 3) uint8 inside the inner lips of the
    landmarks ``points`` (in its pixels) is a tooth: lighter than the lips (fully from 15 % lighter) and
    paler (chroma under the lips', fully from 15 % under). The tongue and palate are
    darker than the lips or as coloured (lp_d18's tongue: L* 29-53 against lips at 48-51); lp_d11's
    child's teeth, frame 60, are at L* 60 and chroma 16 against lips at 38 and 21."""
    import cv2

    h, w = mouth.shape[:2]
    inner = polygon_mask(points, INNER_LIPS, (h, w))
    band = polygon_mask(points, OUTER_LIPS, (h, w)) & ~inner
    if inner.sum() < 5 or band.sum() < 5:
        return np.zeros((h, w))
    lab = cv2.cvtColor(mouth, cv2.COLOR_RGB2LAB).astype(np.float32)
    light, chroma = lab[..., 0], np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    lips_l, lips_c = max(float(np.median(light[band])), 1.0), max(float(np.median(chroma[band])), 1.0)
    tooth = smoothstep((light / lips_l - 1) / TEETH_LIGHTER) * smoothstep((lips_c - chroma) / (TEETH_PALER * lips_c))
    return tooth * inner


LOWER_RING = [CORNERS[0], *range(len(INNER_LIPS) - 1, CORNERS[1] - 1, -1)]  # the lower lip, corner to corner
UPPER_RING = list(range(CORNERS[0], CORNERS[1] + 1))


def hang(q: np.ndarray, ring: np.ndarray, source: np.ndarray) -> np.ndarray:
    """(2, N, 2): where points ``q`` (N, 2) of the driven opening ``ring`` read the source opening
    ``source`` (both inner-lip rings (20, 2)) for its upper teeth and for its lower: each set of
    teeth hangs from its own lip at its natural size. In the lips' frames (:func:`lip_frame`), a point
    at a distance x along the corner line from its middle and w px below the driven upper lip reads
    the source x from its middle and w px below the source's upper lip (for the lower teeth: above
    the lower lip).

    One translation per lip, as before, left the source's teeth a straight-edged block inside a driven
    mouth of another shape, and its rim between them and the lips (Image_with_alpha.png driven by
    lp_d11.mp4)."""
    c0, along, down, length, upper, lower = lip_frame(ring)
    s0, s_along, s_down, s_length, s_upper, s_lower = lip_frame(source)
    x, w = (q - c0) @ along, (q - c0) @ down
    u = np.clip(x / length, 0.0, 1.0)
    xs = x + (s_length - length) / 2  # along the source's corner line, centred
    us = np.clip(xs / s_length, 0.0, 1.0)
    w_up, w_low = s_upper(us) + w - upper(u), s_lower(us) + w - lower(u)
    base = s0 + xs[:, None] * s_along
    return np.stack([base + w_up[:, None] * s_down, base + w_low[:, None] * s_down])


def lip_frame(ring: np.ndarray):
    """An inner-lip ring's corner, unit axis along and across (down, toward the lower lip), length, and its
    upper and lower lips as functions of u: the distance below the corner line."""
    c0, c1 = ring[CORNERS[0]], ring[CORNERS[1]]
    length = max(float(np.linalg.norm(c1 - c0)), 1e-6)
    along = (c1 - c0) / length
    down = np.array([-along[1], along[0]])

    def curve(idx):
        p = ring[idx] - c0
        u = np.maximum.accumulate(p @ along / length)  # held monotonic on a turned face
        return lambda x: np.interp(x, u, p @ down)

    return c0, along, down, length, curve(UPPER_RING), curve(LOWER_RING)


BITE_BINS = 16  # bite_side: columns across the mouth
TEETH_REACH = 0.25  # the upper teeth show at most this many mouth widths below the upper inner lip


def bite_side(image: torch.Tensor, q: torch.Tensor, ring: np.ndarray, local: np.ndarray) -> np.ndarray:
    """(h, w) 0 for the upper teeth's side of an open source mouth, 1 for the lower's (a 2 px ramp):
    the opening of ``image`` (3, h, w), pixels ``q`` (h, w, 2) in the frame of the inner-lip ``ring``,
    landmarks ``local`` in the image's pixels, is cut where the upper teeth end. In each of
    ``BITE_BINS`` columns across the mouth (:func:`lip_frame`), going down from the upper lip, the
    cut is the first depth after a tooth (:func:`toothness` over 0.5) where no tooth follows, within
    ``TEETH_REACH`` mouth widths; a column without teeth takes its neighbours'; smoothed across.

    A straight cut through the lip centres cut the teeth of a smile, whose bite curves: on
    Image_with_alpha.png it ran through the upper teeth's right side, and as the mouth opened the
    upper teeth ended in a straight edge over a flat band (frames 60-160 of lp_d11.mp4); on
    examples/source.png, whose opening shows the upper teeth only, it sent their lower half down
    with the lower lip."""
    h, w = image.shape[-2:]
    rgb = (image.permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    tooth = toothness(rgb, local).reshape(-1)
    c0, along, down, length, upper, lower = lip_frame(ring)
    xy = q.reshape(-1, 2).cpu().double().numpy() - c0
    u = np.clip(xy @ along / length, 0, 1)
    below_lip = xy @ down - upper(u)
    gap = np.maximum(lower(u) - upper(u), 1e-3)
    step = max(length / 100, 1.0)
    depths = np.arange(0.0, TEETH_REACH * length, step)
    centres = (np.arange(BITE_BINS) + 0.5) / BITE_BINS
    cut = np.full(BITE_BINS, np.nan)
    for k, c in enumerate(centres):
        col = (np.abs(u - c) < 0.5 / BITE_BINS) & (below_lip >= 0) & (below_lip <= gap)
        if col.sum() >= 4:
            cut[k] = _teeth_end(tooth[col], below_lip[col], depths, step)
    known = ~np.isnan(cut)
    if not known.any():
        return (below_lip > gap / 2).astype(np.float64).reshape(h, w)
    cut = np.interp(centres, centres[known], cut[known])
    cut = np.convolve(np.pad(cut, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return (np.clip((below_lip - np.interp(u, centres, cut)) / 2, -0.5, 0.5) + 0.5).reshape(h, w)


def _teeth_end(tooth: np.ndarray, below: np.ndarray, depths: np.ndarray, step: float) -> float:
    """How far below the lip a column's upper teeth end: its pixels' ``tooth`` scores at ``below`` px
    from the lip, averaged over rows ``step`` px deep from ``depths``; the first row after a tooth
    row (mean over 0.5) that is not one, or past the last row; NaN for a column without teeth."""
    rows = np.digitize(below, depths) - 1
    profile = np.array([tooth[rows == r].mean() if (rows == r).any() else np.nan for r in range(len(depths))])
    for r in range(1, len(profile)):  # a row that no pixel centre falls in continues the one above
        profile[r] = profile[r - 1] if np.isnan(profile[r]) else profile[r]
    teeth = np.nan_to_num(profile) > 0.5
    if not teeth.any():
        return float("nan")
    first = int(np.argmax(teeth))
    after = np.nonzero(~teeth[first:])[0]
    return float(depths[first + after[0]]) if len(after) else float(depths[-1] + step)
