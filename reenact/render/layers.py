"""The source as the warp samples it: a premultiplied person layer over a still background
(issue 12; DESIGN §2.4). The whole-head warp's motion is in :mod:`reenact.render.head`.

**Compositing** (premultiplied, :class:`Layers`). The source is read as a person layer over a
background: I = α F + (1 − α) B̃, with α the person's alpha max-filtered over ``HALO`` (the hair's
fringe just beyond the segmenter's edge goes with the person) and B̃ the background behind it (the
source where α is 0, the background plate of :func:`background_plate` where it is 1). The person
layer, premultiplied (P = I − (1 − α) B̃, and α), moves with the warp; B̃ does not:
out(q) = (1 − α(s(q))) B̃(q) + P(s(q)). Where nothing moves this is the source exactly; where the
head moved off, the plate shows; a half-transparent pixel that moves a little keeps its colour.
Without a mask (α = 1) this is the plain backward warp.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reenact.face.segment import PERSON_FLOOR, person_alpha
from reenact.render.warp import max_filter


@dataclass
class Layers:
    """An image as the warp samples it (module docstring, *Compositing*): ``stack`` (1 or B, 4, H, W),
    the person premultiplied, P = I − (1 − α) B̃, and α; ``back`` (1 or B, 3, H, W), B̃ = I + lift =
    I + α (plate − I), the background behind the person."""

    stack: torch.Tensor
    back: torch.Tensor

    @classmethod
    def of(cls, image: torch.Tensor, alpha: torch.Tensor, lift: torch.Tensor) -> "Layers":
        return cls.behind(image, alpha, image + lift)

    @classmethod
    def behind(cls, image: torch.Tensor, alpha: torch.Tensor, back: torch.Tensor) -> "Layers":
        """The layers of ``image`` with ``alpha`` over ``back`` (B̃, kept, not copied). Built in place:
        at 8064 × 5484 every full-image plane of temporaries was 177 MB."""
        stack = image.new_empty((len(image), 4, *image.shape[-2:]))  # (B, 4, H, W): P, α
        torch.mul(1 - alpha, back, out=stack[:, :3])
        stack[:, :3].neg_().add_(image)  # P = I − (1 − α) B̃
        stack[:, 3:] = alpha
        return cls(stack, back)

    def window(self, x0: int, y0: int, x1: int, y1: int) -> "Layers":
        """The layers' pixels [y0, y1) × [x0, x1) (views)."""
        return Layers(self.stack[:, :, y0:y1, x0:x1], self.back[:, :, y0:y1, x0:x1])

    def over(self, frames: torch.Tensor) -> "Layers":
        """The same person alpha and background lift over ``frames`` (B, 3, H, W) in place of the
        image (``--face-index all``: the frames with the other faces already animated). The lift is
        B̃ − I = α B̃ − P."""
        alpha = self.stack[:, 3:]
        return Layers.of(frames, alpha, alpha * self.back - self.stack[:, :3])


HALO = 0.003  # of the long side (at least 1 px): the hair's dark fringe beyond the person's alpha


def make_layers(image: torch.Tensor, person: torch.Tensor | None) -> Layers:
    """Layers of ``image`` (1, 3, H, W) with ``person`` (1, 1, H, W) confidence; None: all person.

    The segmenter is unsure of dark hair against a dark background (pigtails score 0.2-0.6), and
    whatever counts as background stays behind as a ghost when the head moves. So the alpha is the
    confidence stretched (:func:`reenact.face.segment.person_alpha`): 0 below 0.02, 1 from 0.3.

    The layer's alpha is that alpha max-filtered over ``HALO``: each pixel takes the strongest alpha
    within that reach. The segmenter's edge runs a pixel or two inside the hair's dark fringe, and a
    fringe kept as background stayed behind as a thin outline of the head wherever it moved away
    (lp_d11's hair, single_face's cheek; seen at 2-3×). With the fringe's own alpha (0) in the
    premultiplied layer, P there was I − plate, negative where the plate is lighter (a dark lamp just
    above the hair of group_t1's face 0), and moved as a dark wedge."""
    if person is None:
        return Layers.of(image, torch.ones_like(image[:, :1]), torch.zeros_like(image))
    alpha = person_alpha(person)
    alpha = max_filter(alpha, 2 * max(1, round(HALO * max(image.shape[-2:]))) + 1)
    back = background_plate(image, person)
    back = back.clone() if back is image else back
    return Layers.behind(image, alpha, back.sub_(image).mul_(alpha).add_(image))  # B̃ = I + α (plate − I)


def background_plate(image: torch.Tensor, person: torch.Tensor, threshold: float = PERSON_FLOOR,
                     grow: float = 0.0125, work: int = 160) -> torch.Tensor:
    """``image`` with the person (confidence > ``threshold``, grown by ``grow`` of the long side, at
    least 3 px, to drop the hair's halo) filled from the background around it: onion-peel inpainting (each unknown pixel takes the
    mean of its known 3×3 neighbours, ring by ring) at ``work`` px on the long side, upsampled.
    Nearest background wins, so the strip a moving head uncovers shows the wall beside it rather
    than an average of the whole picture. Used only where the head moved away from what it covered.

    ``grow`` was 2.5 % while the segmenter's mask stopped inside the hair; with its edge refined
    (:func:`reenact.face.segment.refine_edge`) 1.25 % drops the halo, and the plate takes the wall just
    beside the head: where that wall lies in the head's shadow (lp_s0, single_face's door), the
    uncovered strip came out as a light band of the wall further out (ring ratio single_face 0.505,
    lp_d11 0.659; 0.517 and 0.661 at 2.5 %, where lp_s0 showed a faint light band beside the hair)."""
    g = max(3, round(grow * max(image.shape[-2:])))
    known = 1 - max_filter((person > threshold).to(image.dtype), 2 * g + 1)
    if not bool(known.any()):  # no background in view: nothing to fill from
        return image
    h, w = image.shape[-2:]
    k = min(1.0, work / max(h, w))
    size = (max(1, round(h * k)), max(1, round(w * k)))
    x = F.interpolate(image * known, size=size, mode="area")
    m = F.interpolate(known, size=size, mode="area")
    x, m = x / m.clamp(min=1e-6), (m > 0.5).to(image.dtype)
    x = x * m
    for _ in range(sum(size)):
        if bool(m.all()):
            break
        s = F.avg_pool2d(x * m, 3, 1, 1, count_include_pad=False)
        c = F.avg_pool2d(m, 3, 1, 1, count_include_pad=False)
        grow_in = (c > 0) & (m == 0)
        x = torch.where(grow_in, s / c.clamp(min=1e-6), x)
        m = torch.where(grow_in, torch.ones_like(m), m)
    fill = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return torch.where(known > 0, image, fill, out=fill)


def pixel_grid(h: int, w: int, device, dtype=torch.float32, x0: float = 0.0, y0: float = 0.0) -> torch.Tensor:
    """(h, w, 2) pixel centres (x, y) of a box starting at (x0, y0)."""
    ys = torch.arange(h, device=device, dtype=dtype) + (y0 + 0.5)
    xs = torch.arange(w, device=device, dtype=dtype) + (x0 + 0.5)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def sample(layer: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``layer`` (1 or B, C, H, W) bilinearly at pixel positions ``pos`` (B, h, w, 2); borders replicate."""
    h, w = layer.shape[-2:]
    grid = pos / pos.new_tensor([w / 2.0, h / 2.0]) - 1
    return F.grid_sample(layer.expand(pos.shape[0], -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def reach(pos: torch.Tensor, box: tuple[int, int, int, int], shape) -> tuple[int, int, int, int]:
    """The part (x0, y0, x1, y1) of an image of ``shape`` (H, W) that :func:`composite` reads for
    ``pos`` and ``box``: the box and every sampled position with its bilinear taps, within the image
    (composite on that window, positions and box shifted, gives the same pixels: its border, where
    the window meets the image's, replicates as the image's did)."""
    h, w = shape
    xy = pos.reshape(-1, 2)
    lo, hi = (xy.amin(0).floor() - 1).tolist(), (xy.amax(0).ceil() + 2).tolist()
    return (max(0, min(box[0], int(lo[0]))), max(0, min(box[1], int(lo[1]))),
            min(w, max(box[2], int(hi[0]))), min(h, max(box[3], int(hi[1]))))


def composite(layers: Layers, pos: torch.Tensor, box: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The warped person over the still background: (B, 3, y1 - y0, x1 - x0) for the target pixels of
    ``box`` (x0, y0, x1, y1) of the layers' image, each showing the person layer at ``pos`` (B, h, w, 2),
    and the moved person alpha (B, 1, h, w): (1 − α(pos)) B̃(q) + P(pos), with P the premultiplied
    person (module docstring).

    This replaced "B̃ wherever the warp moved q by a pixel or more, else the source", which let the
    plate show through every half-transparent pixel that moved by one: on group_t1 the blocky,
    half-confident skin of the woman beside face 0 came out in blocks of wall colour."""
    x0, y0, x1, y1 = box
    n, h, w = pos.shape[:3]
    out, alpha = pos.new_empty((n, 3, h, w)), pos.new_empty((n, 1, h, w))
    for r0, r1 in strips(n * w, h):  # a few rows at a time: no full-size temporaries on a large photo
        moved = sample(layers.stack, pos[:, r0:r1])  # (B, 4, rows, w): premultiplied RGB, alpha
        alpha[:, :, r0:r1] = moved[:, 3:]
        torch.add((1 - moved[:, 3:]) * layers.back[:, :, y0 + r0:y0 + r1, x0:x1], moved[:, :3], out=out[:, :, r0:r1])
    return out, alpha


STRIP = 1 << 20  # pixels a strip of rows holds at most (all the batch's frames together), at least a row


def strips(row: int, rows: int) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) cutting ``rows`` rows of ``row`` pixels each into strips of at most
    ``STRIP`` pixels (one at least). A 256² crop at batch 8 is one strip; with ``--paste-back`` on an
    8064 × 5484 photo the head's box was 23.7 MP, and each full-box temporary of a frame 95 MB a channel."""
    step = max(1, STRIP // max(row, 1))
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


LUMA = (0.299, 0.587, 0.114)  # Rec. 601


def luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma (``LUMA``) of RGB ``x`` (B, 3, H, W)."""
    return LUMA[0] * x[:, 0:1] + LUMA[1] * x[:, 1:2] + LUMA[2] * x[:, 2:3]
