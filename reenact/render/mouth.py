"""The geometric warp's mouth: a mouth interior where the driver opens wider than the source.

A warp can only move the source's pixels, so a mouth that opens wider than the source's stretches
the source's lips and teeth across the gap (the "giant teeth" grin). Inside the driven inner-lip
contour (``regions.INNER_LIPS``) this paints instead:

* the source's own mouth interior (teeth, tongue) at its natural size, cut where its upper teeth
  end (:func:`~reenact.render.teeth.bite_side`): the upper teeth hang from the driven upper lip and
  the rest from the lower lip, each at the same distance from its lip as in the source
  (:func:`~reenact.render.teeth.hang`), so nothing stretches and the teeth follow the lips' curve;
* where that leaves a gap, the driver's own mouth interior (tongue, palate; see below), or without
  a driver frame a shaded cavity: the lips' mean colour darkened to ``CAVITY`` of it at the centre
  and ``CAVITY_RIM`` near the lips. The driver's interior is mapped onto the whole driven opening,
  so its upper teeth lie behind the source's. (Turning them into the driver's cavity colour was
  tried: it left flat dark blocks with stepped edges where lp_d11's child showed her lower teeth.)
  The cavity alone was a flat black hole where the driver showed a pink tongue (``make demo``,
  frames 80-146: interior/lips lightness 0.30-0.33, the driver's 0.60-0.82).

A source whose mouth is closed or barely open (inner-lip gap under ``SOURCE_OPEN`` of the width)
has too little interior to reuse, and the cavity alone is a black hole where a driver smiling with
teeth shows teeth (single_face.mp4, closed at 0.008, driving its own first frame: face error
0.452 → 0.503 of copying the source; lp_d11's frame 0, open 0.061, a few teeth over a black cavity
where the driver shows teeth).
There the **driver's own mouth interior** is painted instead (:class:`~reenact.render.driver_frame.DriverFrame`): the driver
frame inside its inner-lip contour, mapped onto the driven contour by the least-squares affine
between the two 20-point rings, its colour scaled per channel by the source's cheek colour over the
driver's (``CHEEKS``: the light and white balance of the two pictures; the gain is held to
[0.5, 2]). Lips would be the nearer reference but carry each person's own pigment, which tinted the
driver's teeth pink on a pale-lipped source. Frames without a driver face (a held or eased fit)
keep the warp.

The overlay fades in as the driven mouth opens more than the source's (``OPEN_FROM`` to
``OPEN_FULL`` more, as inner-lip gap over mouth width), so closed and source-sized mouths are the
warp's own. Positions are in pixels of the image the engine warps (the crop, or the full source).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.regions import FACE_OVAL, INNER_LIPS, OUTER_LIPS, polygon_mask
from reenact.ramps import smoothstep
from reenact.render.driver_frame import DriverFrame
from reenact.render.layers import LUMA, pixel_grid, sample
from reenact.render.teeth import CORNERS, bite_side, hang

CAVITY, CAVITY_RIM = 0.28, 0.5
OPEN_FROM, OPEN_FULL = 0.03, 0.10
SOURCE_OPEN = 0.12  # a source mouth this open (examples/source.png: 0.155) shows teeth to reuse; others take the driver's
TOP, BOTTOM = INNER_LIPS.index(13), INNER_LIPS.index(14)  # inner-ring positions of the lips' centres


GAIN = (0.5, 2.0)  # the driver interior's colour gain is held to this range
# the source face's colourfulness (colourfulness()): a grey or toned photo below, colour above. A toned
# lp_s0.jpg saved as JPEG measures 0.010-0.020 (quality 95-75: chroma subsampling), the colour test
# faces 0.059-0.110 and driver frames 0.035-0.046
GREY_BELOW, COLOUR_ABOVE = 0.02, 0.035
CHEEKS = [50, 101, 118, 205, 280, 330, 347, 425]  # MediaPipe vertices on both cheeks: the colour reference
MARGIN = 4  # px kept around the face's box: the cheeks' 5 × 5 mean and the lips' 1 px softening stay inside


def opening(lips: np.ndarray) -> np.ndarray:
    """(B,) inner-lip gap over mouth width of inner-lip rings (B, 20, 2)."""
    gap = np.linalg.norm(lips[:, TOP] - lips[:, BOTTOM], axis=-1)
    return gap / np.maximum(np.linalg.norm(lips[:, CORNERS[0]] - lips[:, CORNERS[1]], axis=-1), 1e-6)


class MouthFill:
    """Built once per source from its image (1, 3, H, W) and 468 mesh vertices in that image's pixels."""

    def __init__(self, image: torch.Tensor, verts: np.ndarray):
        verts = np.asarray(verts, np.float64)
        self.lips = verts[INNER_LIPS, :2]
        self.open = float(opening(self.lips[None])[0])
        # All it reads lies on the face: it keeps the face's box (+ MARGIN px) of the image, whose
        # corner is ``origin``. The whole image took 0.7 s a face on a 3840 × 2658 photo with
        # --paste-back, and 8 full-image planes per frame once the mouth opened.
        size = np.array(image.shape[-1:-3:-1])  # (W, H)
        self.origin = np.clip(np.floor(verts[:, :2].min(0)).astype(int) - MARGIN, 0, size)
        end = np.clip(np.ceil(verts[:, :2].max(0)).astype(int) + MARGIN + 1, 0, size)
        image = image[..., self.origin[1]:end[1], self.origin[0]:end[0]]  # (1, 3, h, w)
        self.image, local = image, verts[:, :2] - self.origin
        h, w = image.shape[-2:]
        inner = polygon_mask(local, INNER_LIPS, (h, w))
        lip_band = polygon_mask(local, OUTER_LIPS, (h, w)) & ~inner
        t = lambda m: torch.as_tensor(m, dtype=image.dtype, device=image.device)[None, None]  # noqa: E731
        inside = F.avg_pool2d(t(inner), 3, 1, 1)  # (1, 1, h, w), edges softened by a pixel
        below = torch.zeros_like(inside)  # (1, 1, h, w): 1 on the lower teeth's side
        if self.open >= SOURCE_OPEN:  # the halves are read only for a source's own teeth
            x0, y0 = np.clip(np.floor(local[OUTER_LIPS].min(0)).astype(int) - 2, 0, [w, h])
            x1, y1 = np.clip(np.ceil(local[OUTER_LIPS].max(0)).astype(int) + 3, 0, [w, h])
            q = pixel_grid(y1 - y0, x1 - x0, image.device, image.dtype, *(self.origin + [x0, y0]).tolist())
            cut = bite_side(image[0, :, y0:y1, x0:x1], q, self.lips, local - [x0, y0])
            below[..., y0:y1, x0:x1] = torch.as_tensor(cut, dtype=image.dtype, device=image.device)
        self.halves = torch.cat([inside * (1 - below), inside * below], 1)  # (1, 2, h, w): upper, lower teeth
        band = t(lip_band)
        self.lip_colour = (image * band).sum((2, 3), keepdim=True) / band.sum().clamp(min=1)  # (1, 3, 1, 1)
        self.cheeks = _colour_at(image, local[CHEEKS])
        x = (colourfulness(image, polygon_mask(local, FACE_OVAL, (h, w))) - GREY_BELOW) / (COLOUR_ABOVE - GREY_BELOW)
        self.colour = smoothstep(float(x))  # 0 grey, 1 a colour photo

    def __call__(self, out: torch.Tensor, box: tuple[int, int, int, int], verts: np.ndarray,
                 drivers: list[DriverFrame | None] | None = None) -> torch.Tensor:
        """``out`` (B, 3, h, w), the warped target pixels of ``box``, with the mouth painted where the
        driven vertices ``verts`` (B, V, 2+, engine-image pixels) open it wider than the source's;
        ``drivers`` (one per frame, or None) give the driver's interior: all of a closed-mouth
        source's opening, the gap between an open source's teeth. ``out`` is painted in place."""
        lips = np.asarray(verts, np.float64)[:, INNER_LIPS, :2]
        strength = np.clip((opening(lips) - self.open - OPEN_FROM) / (OPEN_FULL - OPEN_FROM), 0.0, 1.0)
        own = self.open >= SOURCE_OPEN
        if not own:
            drivers = drivers or [None] * len(lips)
            strength = strength * np.array([d is not None for d in drivers], np.float64)
        if not strength.any():
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
        window = (wx0, wy0, wx1, wy1)
        theirs = None
        if drivers and any(d is not None for d in drivers):
            theirs = self._driver_interior(lips, window, drivers, mask)
        paint = self._interior(lips, window, mask, theirs, drivers) if own else theirs
        region = out[:, :, wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0]
        out[:, :, wy0 - y0:wy1 - y0, wx0 - x0:wx1 - x0] = region + mask * (paint - region)
        return out

    def _interior(self, lips: np.ndarray, window: tuple[int, int, int, int], mask: torch.Tensor,
                  theirs: torch.Tensor | None = None, drivers: list | None = None) -> torch.Tensor:
        """(B, 3, h', w') the source's interior moved with each lip, over the driver's interior
        ``theirs`` where there is a driver frame, else over a shaded cavity."""
        wx0, wy0, wx1, wy1 = window
        q = pixel_grid(wy1 - wy0, wx1 - wx0, mask.device, mask.dtype, wx0, wy0)  # (h', w', 2)
        grid = q.reshape(-1, 2).cpu().double().numpy()
        hung = np.stack([hang(grid, ring, self.lips) for ring in lips]) - self.origin  # (B, 2, N, 2)
        pos = torch.as_tensor(hung, dtype=mask.dtype, device=mask.device).view(len(lips), 2, *q.shape)
        layers = torch.cat([self.image * self.halves[:, :1], self.halves[:, :1],
                            self.image * self.halves[:, 1:], self.halves[:, 1:]], 1)  # premultiplied halves
        # positions in the face box that the halves cover; beyond its edge they are 0
        up, low = sample(layers, pos[:, 0]), sample(layers, pos[:, 1])  # (B, 8, h', w') each
        both = up[:, :4] + (1 - up[:, 3:4]) * low[:, 4:]  # the upper teeth over the lower, as in a bite
        teeth = torch.cat([both[:, :3] / both[:, 3:].clamp(min=1e-4), both[:, 3:]], 1)
        if theirs is not None and all(d is not None for d in drivers):
            behind = theirs
        else:  # the shaded cavity is only computed for frames that need it
            behind = self._cavity(lips, mask)
            if theirs is not None:
                has = mask.new_tensor([d is not None for d in drivers]).view(-1, 1, 1, 1)
                behind = has * theirs + (1 - has) * behind
        return teeth[:, 3:] * teeth[:, :3] + (1 - teeth[:, 3:]) * behind

    def _cavity(self, lips: np.ndarray, mask: torch.Tensor) -> torch.Tensor:
        """(B, 3, h', w') the lips' colour darkened from ``CAVITY_RIM`` at the lips to ``CAVITY`` deep inside."""
        across = lips[:, CORNERS[1]] - lips[:, CORNERS[0]]
        k = max(3, int(round(float(np.linalg.norm(across, axis=-1).mean()) / 6)) | 1)
        depth = F.avg_pool2d((mask > 0.5).to(mask.dtype), k, 1, k // 2, count_include_pad=True)  # 1 deep inside
        return self.lip_colour * (CAVITY_RIM + (CAVITY - CAVITY_RIM) * depth)

    def _driver_interior(self, lips: np.ndarray, window: tuple[int, int, int, int], drivers: list[DriverFrame | None],
                         mask: torch.Tensor) -> torch.Tensor:
        """(B, 3, h', w') each driver's mouth interior mapped onto the driven inner-lip ring ``lips``
        (B, 20, 2) and colour-matched through the cheeks; frames without a driver are 0 (their
        ``mask`` strength is 0)."""
        wx0, wy0, wx1, wy1 = window
        q = pixel_grid(wy1 - wy0, wx1 - wx0, mask.device, mask.dtype, wx0, wy0)  # (h', w', 2)
        paint = torch.zeros(len(lips), 3, *q.shape[:2], dtype=mask.dtype, device=mask.device)
        for b, d in enumerate(drivers):
            if d is None:
                continue
            ring = np.asarray(d.points, np.float64)[INNER_LIPS, :2]
            x = np.concatenate([lips[b], np.ones((len(ring), 1))], 1)
            m, *_ = np.linalg.lstsq(x, ring, rcond=None)  # (3, 2): driven ring -> driver ring
            lo = np.floor(ring.min(0)).astype(int) - 4
            hi = np.ceil(ring.max(0)).astype(int) + 5
            lo, hi = np.maximum(lo, 0), np.minimum(hi, [d.image.shape[1], d.image.shape[0]])
            crop = torch.from_numpy(np.ascontiguousarray(d.image[lo[1]:hi[1], lo[0]:hi[0]])).to(mask)
            crop = crop.permute(2, 0, 1)[None] / 255  # (1, 3, h'', w'') the driver's mouth
            t = lambda a: torch.as_tensor(a, dtype=mask.dtype, device=mask.device)  # noqa: E731
            pos = q @ t(m[:2]) + t(m[2]) - t(lo)  # (h', w', 2) in the driver crop's pixels
            cheeks = _colour_at(d.image, np.asarray(d.points, np.float64)[CHEEKS, :2]).to(mask)
            paint[b] = self._match(sample(crop, pos[None])[0], cheeks).clamp(0, 1)
        return paint

    def _match(self, rgb: torch.Tensor, cheeks: torch.Tensor) -> torch.Tensor:
        """The driver's pixels ``rgb`` (3, h, w) in the source's colours: a per-channel gain, the source's
        cheek colour over the driver's ``cheeks``; for a grey (or toned) source photo, the driver's
        luma by the luma gain, tinted with the source's cheek colour, so that no chroma the photo
        lacks comes in (the gain alone gave a black-and-white photo a pink tongue and cyan teeth)."""
        src = self.cheeks.to(rgb)
        coloured = rgb * (src / cheeks.clamp(min=1e-3)).clamp(*GAIN)[:, None, None]
        if self.colour >= 1:
            return coloured
        luma = lambda c: (c.new_tensor(LUMA) * c.reshape(3, -1).T).sum(-1).reshape(c.shape[1:])  # noqa: E731
        gain = (luma(src[:, None]) / luma(cheeks[:, None]).clamp(min=1e-3)).clamp(*GAIN)  # (1,)
        grey = luma(rgb)[None] * gain * (src / luma(src[:, None]).clamp(min=1e-3))[:, None, None]
        return self.colour * coloured + (1 - self.colour) * grey


def colourfulness(image: torch.Tensor, mask: np.ndarray) -> float:
    """The spread of chroma over ``mask`` of ``image`` (1, 3, H, W) in [0, 1] that a tone does not
    explain: on Hasler & Süsstrunk's opponent axes rg = R − G and yb = (R + G)/2 − B, with Y the Rec.
    601 luma, √(σ²(rg − a Y) + σ²(yb − b Y)) where a, b are the least-squares tone (rg ≈ a Y, yb ≈ b Y).

    0 for a black-and-white photo, and about 0.002 for the same photo toned (sepia, cyanotype; R, G
    and B each a multiple of its grey), whose chroma grows with its lightness: the plain spread,
    √(σ²(rg) + σ²(yb)), put a sepia lp_s0.jpg at 0.064, among the colour photos, and its open mouth got
    the driver's pink tongue and greenish teeth. 0.035-0.19 on the colour test faces and driver frames
    (whole images; in the 256² crops the mouth reads 0.059-0.110 for the test faces)."""
    px = image[0][:, torch.as_tensor(mask, device=image.device)].double()  # (3, N)
    if px.shape[1] < 2:
        return 1.0
    rg, yb = px[0] - px[1], (px[0] + px[1]) / 2 - px[2]
    luma = (px * px.new_tensor(LUMA)[:, None]).sum(0)
    energy = (luma * luma).sum().clamp(min=1e-12)
    rg, yb = rg - (rg * luma).sum() / energy * luma, yb - (yb * luma).sum() / energy * luma
    return float(torch.sqrt(rg.var() + yb.var()))


def _colour_at(image: torch.Tensor | np.ndarray, points: np.ndarray) -> torch.Tensor:
    """(3,) mean colour in [0, 1] of ``image`` ((1, 3, H, W) float or (H, W, 3) uint8) over 5×5 px
    around each of ``points`` (N, 2) pixels."""
    if isinstance(image, np.ndarray):
        r = 2
        xy = np.clip(np.round(points).astype(int), r, [image.shape[1] - r - 1, image.shape[0] - r - 1])
        patches = [image[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 3) for x, y in xy]
        return torch.as_tensor(np.concatenate(patches).mean(0) / 255, dtype=torch.float32)
    blur = F.avg_pool2d(image, 5, 1, 2, count_include_pad=False)
    return sample(blur, torch.as_tensor(points, dtype=image.dtype, device=image.device)[None, None])[0, :, 0].mean(-1)


def _ring_mask(ring: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 anti-aliased mask of a polygon (N, 2) in window pixels."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    pts = np.round((ring - 0.5) * 4).astype(np.int32)  # pixel centres at +0.5; 2 fractional bits
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255
