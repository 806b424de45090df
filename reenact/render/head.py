"""The whole-head geometric warp: hair, ears, forehead and neck move with the head, the background
stays still, and background the head uncovers is filled from background (issue 12; DESIGN §2.4).

For a target point q (crop pixels) the backward map to the source is

    s(q) = q + h(q) · r(q) + n(q),      r(q) = A q + l (z(q) − c_z) − q,

* ``r`` (:class:`Skull`, :meth:`Head.rigid`): the head's rigid motion from the two fits' 3D
  placements, applied to a skull proxy: a driven pixel on the head lies on a cap in front of the
  skull's centre (behind the ears), and the map is the 3D similarity between the heads
  (:func:`head_similarity`), projected.
  So when the head nods or turns, the crown and the hair at the head's outline move less than the
  face, and the other way, as they do. Measured on self-reenactment (ring error relative to copying
  the source, ``bench/bench_head_warp.py``): lp_d11 0.730 with the cap, 0.898 with a 2D similarity
  fitted to the upper face oval, 0.900 with a 2D affine on it (it stretched the hair along the
  face's foreshortening); single_face 0.530, 0.519, 0.535 (all with the fresh-detection tracker). Also tried and dropped: the mesh's
  Procrustes vertices (nose parallax gave a vertical squash) and the mean-depth plane.
* ``h`` (:meth:`Head.weight`): 1 on the head, falling to 0 below the chin (neck into the shoulders),
  away from the face, and below the jaw beside the neck (:meth:`Head.torso`), a smoothstep over
  three ramps (``ramp`` radially, ``drop`` below the chin, ``TORSO_RAMP`` into the shoulders).
* ``n``: the non-rigid rest. On the face mesh, the rendered displacement minus ``h r``; elsewhere its
  harmonic extension (:func:`reenact.render.warp.harmonic_fill`), zero on the border of the crop
  grown by a quarter (an eighth without paste-back), and screened above the mouth so that it stays
  off the hair (:meth:`Head.screen`); then the whole flow is smoothed (σ ≈ 2 px).

**Gradient bound.** ∇(h r) = h ∇r + r ⊗ ∇h and ∇r = (A₂ₓ₂ − I) + l ⊗ ∇z with |∇z| ≤ 3.5 (:class:`Skull`), so
‖∇(h r)‖₂ ≤ a + 3.5 |l| + 1.5 r_max / L with a = ‖A₂ₓ₂ − I‖₂, |l| ≈ the sine of the head's rotation out
of the image plane, and r_max the largest |r| on the ramp (which lies beyond the cap's rim, where
r = A q − q). :func:`ramp_length` picks L ≥ 3 r_max, so the last term is at most 0.5 unless the
ramp's cap (``MAX_RAMP`` face heights) binds. The whole flow, mesh
included, is held to det(I + ∇f) > 0 outside the mouth opening and ‖∇f‖₂ ≤ 3.5 on lp_d11's hardest
turns by ``tests/test_head_warp.py`` (measured 2.77, 2.41 with paste-back, the gaze map of
render/eyes.py included, and min det 0.095 / 0.036;
before the skull proxy and fresh-detection tracking, 3.28 beside the nose of a turned head, a
self-occlusion edge of the mesh's own flow, which is kept unsmoothed so that blinks close).

The source is sampled as a person layer over a still background (:mod:`reenact.render.layers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reenact.face.fit import FaceFit
from reenact.face.mesh import MEDIAPIPE, procrustes_basis
from reenact.face.regions import CHIN, FOREHEAD
from reenact.ramps import smoothstep
from reenact.render.layers import pixel_grid

HEAD_RADIUS = 0.8  # face heights from the mesh centre that move fully with the head (hair, ears)
MIN_RAMP, MAX_RAMP = 0.5, 1.5  # the head weight's ramp away from the face, in face heights
MIN_DROP = 0.2  # ... and below the chin: the neck does not turn with the head, the shoulders stay
CHIN_HALF_WIDTH = 0.45  # the drop ramp spans the jaw's width: |q - chin| <= this many face heights as it starts
JAW = (172, 397)  # MediaPipe's jaw corners
NECK_HALF_WIDTH, TORSO_RAMP = 0.35, 0.5  # face heights: the shoulders begin beside the neck, below the jaw corners
SCREEN_KAPPA, SCREEN_FROM = 12.0, 0.45  # the extension's screening (Head.screen): κ per grown-crop width; face heights
RAMP_SLOPE = 3.0  # L >= RAMP_SLOPE * r_max: the ramp adds at most 1.5 / 3 = 0.5 to the flow gradient
OWN_BAND = 0.5  # Head.owned: the hand-over between two faces' heads, in (normalised) face heights


# MediaPipe vertices that expressions hardly move: eye corners, nose bridge and wings, temples
SCALE_POINTS = [33, 133, 362, 263, 6, 168, 197, 195, 5, 4, 129, 358, 127, 356, 162, 389, 21, 251]
SKULL_RADIUS = 1.3  # the skull proxy's radius, in half face widths (ear to ear)
SKULL_BACK = 0.4  # its centre lies this many half face widths behind the ears (MediaPipe's 234 and 454)
EARS = (234, 454)


@dataclass
class Skull:
    """The head's rigid motion for one driven fit, through a skull proxy (crop pixels).

    A driven pixel q on the head is taken to lie on the front of a cap around the skull centre c
    (driven, 3D) of radius ρ: depth z(q) = c_z − ρ (1 − u²)², u = min(|q − c_xy| / ρ, 1) (flat at the
    rim, so the flow has no crease there), faded out from the centre down to the chin over the
    distance d_c (see :meth:`Head.rigid`); so |∇z| ≤ 1.54 + 1.5 ρ / d_c, about 3.5; beyond the rim,
    hair such as pigtails lies in the plane through c. The source
    point is the 3D similarity M X + t between the two heads (:func:`head_similarity`),
    projected: A q + ``lift`` (z(q) − c_z), with A the (2, 3) affine of the plane through c."""

    affine: np.ndarray  # (2, 3)
    lift: np.ndarray  # (2,) M's z column, x and y rows
    centre: np.ndarray  # (2,) c_xy
    radius: float  # ρ; 0 turns the cap off (a plane)

    @classmethod
    def of(cls, source: FaceFit, fit: FaceFit) -> "Skull":
        c = np.asarray(source.canonical, np.float64)
        lo, hi = c.min(0), c.max(0)
        half = (hi[0] - lo[0]) / 2
        if source.topology == MEDIAPIPE:  # a face mesh: the skull's centre lies behind the ears
            centre, radius = (lo + hi) / 2, SKULL_RADIUS * half
            centre[2] = c[list(EARS), 2].mean() + SKULL_BACK * half
        else:  # a whole head (FLAME): its box's centre, and no cap (which side faces the camera varies)
            centre, radius = (lo + hi) / 2, 0.0
        m, t = head_similarity(source, fit)
        cd = fit.scale * np.asarray(fit.rotation) @ centre + fit.translation  # the driven skull centre
        affine = np.concatenate([m[:2, :2], (m[:2, 2] * cd[2] + t[:2])[:, None]], 1)
        return cls(affine, m[:2, 2], cd[:2], float(fit.scale * radius))


def head_similarity(source: FaceFit, fit: FaceFit) -> tuple[np.ndarray, np.ndarray]:
    """The 3D similarity X -> M X + t taking the driven head (``fit``) onto the source's: M = k R_s Rᵀ,
    the rotation between the two fits' placements, and t through the weighted centroid of the
    placement's points (MediaPipe's Procrustes basis) of both meshes.

    The scale k is not the fits' s_s / s: their placement counts the jaw, the cheeks and the forehead,
    which an open mouth or raised brows stretch, and the head grew with the face (its hair outline
    8 px too high on lp_d11, whose driver raises her brows and opens her mouth; the fits' scale
    change was 1.3 % above the hair's, measured by an affine fitted to the true frames). For
    MediaPipe k is the ratio of the RMS spreads (3D, about their centroids) of ``SCALE_POINTS``,
    points that expressions hardly move: ring ratio (``bench/bench_head_warp.py``) lp_d11 0.722 →
    0.692, single_face 0.524 → 0.503. Other topologies keep the fits' scale."""
    m = np.asarray(source.rotation) @ np.asarray(fit.rotation).T
    if source.topology != MEDIAPIPE:
        m = (source.scale / fit.scale) * m
        return m, np.asarray(source.translation, np.float64) - m @ np.asarray(fit.translation, np.float64)
    a, b = (np.asarray(f.vertices, np.float64) for f in (fit, source))
    spread = lambda x: float(((x - x.mean(0)) ** 2).sum())  # noqa: E731
    m = np.sqrt(spread(b[SCALE_POINTS, :]) / max(spread(a[SCALE_POINTS, :]), 1e-12)) * m
    ids, w = procrustes_basis()
    return m, w @ b[ids] - m @ (w @ a[ids])


@dataclass
class Head:
    """Where the driven head is, per frame (crop pixels): mesh centre (B, 2), chin (B, 2), the unit
    vector from forehead to chin (B, 2), face height (B,), the rigid motion A (B, 2, 3) with its
    skull cap (:class:`Skull`: ``lift`` (B, 2), ``skull`` (B, 3) centre and radius), and the lengths
    (B,) of the head weight's two ramps: ``ramp`` away from the centre, ``drop`` below the chin."""

    centre: torch.Tensor
    chin: torch.Tensor
    down: torch.Tensor
    height: torch.Tensor
    motion: torch.Tensor
    lift: torch.Tensor
    skull: torch.Tensor
    ramp: torch.Tensor
    drop: torch.Tensor
    jaw: torch.Tensor | None = None  # (B, 2) midpoint of the jaw corners (MediaPipe 172, 397); None: no torso term
    others: torch.Tensor | None = None  # (N, 3) the other faces' heads in the photo: centre, height (crop px)

    @classmethod
    def of(cls, source: FaceFit, fits: list[FaceFit], device, others: np.ndarray | None = None) -> "Head":
        """The head of each driven fit, moving from ``source``; ``others`` (N, 3): the photo's other
        faces, their mesh centres and heights in crop pixels (:meth:`owned`)."""
        xy = np.stack([f.vertices[:, :2] for f in fits]).astype(np.float64)  # (B, V, 2)
        if source.topology == MEDIAPIPE:
            chin, top = xy[:, CHIN], xy[:, FOREHEAD]
        else:  # lowest and highest vertex
            rows = np.arange(len(fits))
            chin, top = xy[rows, xy[..., 1].argmax(1)], xy[rows, xy[..., 1].argmin(1)]
        height = np.maximum(np.linalg.norm(chin - top, axis=-1), 1.0)
        down = (chin - top) / height[:, None]
        t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
        skulls = [Skull.of(source, f) for f in fits]
        a = t(np.stack([k.affine for k in skulls]))
        lift, skull = t([k.lift for k in skulls]), t([[*k.centre, k.radius] for k in skulls])
        centre, chin, height = t(xy.mean(1)), t(chin), t(height)
        jaw = t((xy[:, JAW[0]] + xy[:, JAW[1]]) / 2) if source.topology == MEDIAPIPE else None
        return cls(centre, chin, t(down), height, a, lift, skull,
                   ramp_length(a, centre, HEAD_RADIUS * height, MIN_RAMP * height, MAX_RAMP * height),
                   ramp_length(a, chin, CHIN_HALF_WIDTH * height, MIN_DROP * height, MAX_RAMP * height), jaw,
                   None if others is None or not len(others) else t(others))

    def rigid(self, q: torch.Tensor) -> torch.Tensor:
        """r(q) = A q + l (z(q) − c_z) − q for points q (B, ..., 2) in crop pixels (:class:`Skull`).

        The cap fades out between the skull's centre and the chin (a smoothstep along ``down``): below
        the face lies the neck, not the skull, and a full cap there folded the warp under the chin on
        lp_d11's strongest nod (det(I + ∇f) down to −0.31 in frame 224; 0.065 with the fade; with the
        profile (1 − u²)² instead of 1 − u², 0.095, and 0.036 with ``--paste-back``, where the rigid part
        is evaluated per image pixel and the paraboloid's crease at the rim folded it to −0.03)."""
        shape = (q.shape[0],) + (1,) * (q.dim() - 2)
        a = self.motion.view(*shape, 2, 3)
        r = (a[..., :2] @ q[..., None])[..., 0] + a[..., 2] - q
        rho = self.skull[:, 2].view(shape).clamp(min=1e-6)
        d = q - self.skull[:, :2].view(*shape, 2)  # (B, ..., 2) from the skull's centre
        low = ((self.chin - self.skull[:, :2]) * self.down).sum(-1).clamp(min=1.0).view(shape)
        x = (d * self.down.view(*shape, 2)).sum(-1) / low  # 0 above the centre, 1 at the chin
        cap = (1 - ((d ** 2).sum(-1) / rho ** 2).clamp(max=1)) ** 2 * (1 - smoothstep(x))
        dz = -self.skull[:, 2].view(shape) * cap  # the cap's depth in front of the centre (MediaPipe: -z is near)
        return r + self.lift.view(*shape, 2) * dz[..., None]

    def weight(self, q: torch.Tensor) -> torch.Tensor:
        """h(q) (B, ...) in [0, 1]: 1 within ``HEAD_RADIUS`` face heights of the centre and above the
        chin, then a smoothstep to 0 of x(q) = max((|q − c| − R) / ramp, (q − chin)·down / drop,
        :meth:`torso`)."""
        shape = (q.shape[0],) + (1,) * (q.dim() - 2)
        radial = ((q - self.centre.view(*shape, 2)).norm(dim=-1) - HEAD_RADIUS * self.height.view(shape)) / self.ramp.view(shape)
        x = torch.maximum(radial, self.below(q))
        if self.jaw is not None:
            x = torch.maximum(x, self.torso(q))
        return (1 - smoothstep(x)) * self.owned(q)

    def owned(self, q: torch.Tensor) -> torch.Tensor:
        """(B, ...) in [0, 1]: how much q belongs to this head rather than to another face's in the
        photo: a smoothstep of d_o − d over ``OWN_BAND``, where d is q's distance from this head's
        centre and d_o from the nearest other one, each in its own face heights (1 without others).

        In a group photo the head weight's reach (up to 2.3 face heights) takes in the neighbours:
        group_t1's face 0 moved his neighbour's arm and hair edge with his head, and in `--face-index
        all` that neighbour's own warp then showed the moved pixels over the plate as a bright streak
        beside his head (lp_d11 frames 117-120, seen at 1.3×). Where two heads hand over, ‖∇(h r)‖
        grows by at most |r| · 1.5 (1/H + 1/H_o) / ``OWN_BAND`` (H, H_o their face heights); on group_t1's
        five faces driven by lp_d11 (frames 100-224, --paste-back) the largest ‖∇f‖ and the least
        det(I + ∇f) of each face's map came out the same with and without it."""
        if self.others is None:
            return torch.ones(q.shape[:-1], dtype=q.dtype, device=q.device)
        shape = (q.shape[0],) + (1,) * (q.dim() - 2)
        mine = (q - self.centre.view(*shape, 2)).norm(dim=-1) / self.height.view(shape)
        theirs = torch.stack([(q - o[:2]).norm(dim=-1) / o[2] for o in self.others]).amin(0)
        return smoothstep((theirs - mine) / OWN_BAND + 0.5)

    def torso(self, q: torch.Tensor) -> torch.Tensor:
        """(B, ...) how far into the shoulders q lies, in ``TORSO_RAMP`` face heights: the lesser of
        its distance below the jaw corners' midpoint (along ``down``) and its distance sideways beyond
        the neck (``NECK_HALF_WIDTH``). The chin ramp alone let shoulders at chin height, beside the
        jaw, move with the head (ring error, lp_d11 0.730 → 0.723, single_face 0.530 → 0.524)."""
        shape = (q.shape[0],) + (1,) * (q.dim() - 2)
        d = q - self.jaw.view(*shape, 2)
        down = self.down.view(*shape, 2)
        side = torch.stack([-down[..., 1], down[..., 0]], -1)
        unit = TORSO_RAMP * self.height.view(shape)
        below = (d * down).sum(-1) / unit
        beside = ((d * side).sum(-1).abs() - NECK_HALF_WIDTH * self.height.view(shape)) / unit
        return torch.minimum(below, beside)

    def below(self, q: torch.Tensor) -> torch.Tensor:
        """(B, ...) how far below the chin q lies, in ``drop`` lengths (≥ 1: the shoulders, which stay)."""
        shape = (q.shape[0],) + (1,) * (q.dim() - 2)
        return ((q - self.chin.view(*shape, 2)) * self.down.view(*shape, 2)).sum(-1) / self.drop.view(shape)

    def screen(self, q: torch.Tensor) -> torch.Tensor:
        """(B, ...) in [0, 1]: where the harmonic extension of the non-rigid rest n is screened
        (``SCREEN_KAPPA``): 1 above the mesh centre, a smoothstep to 0 at ``SCREEN_FROM`` face
        heights below it. Beside and above the upper face, n is the face's own non-rigid motion
        (expression, and where the mesh's depth differs from the skull cap's): the hair a few cm
        away should not inherit it (on lp_d11 it lifted the hair clips by a further 5 px when the
        face moved up). Below, the open jaw's motion must spread into the neck smoothly: screening
        there too folded the warp under the chin (det −0.6 on lp_d11's nods).
        Ring ratio (``bench/bench_head_warp.py``) lp_d11 0.692 → 0.669, single_face 0.503 → 0.504."""
        shape = (q.shape[0],) + (1,) * (q.dim() - 2)
        up = -((q - self.centre.view(*shape, 2)) * self.down.view(*shape, 2)).sum(-1) / self.height.view(shape)
        return smoothstep(up / SCREEN_FROM + 1)

    def reach(self) -> torch.Tensor:
        """(B,) radius around ``centre`` beyond which h = 0, in crop pixels."""
        return HEAD_RADIUS * self.height + self.ramp


def ramp_length(a: torch.Tensor, start: torch.Tensor, radius: torch.Tensor, least: torch.Tensor,
                most: torch.Tensor) -> torch.Tensor:
    """The shortest ramp L ≥ ``least`` with L ≥ k · r_max (k = RAMP_SLOPE), where r_max = |r(start)| +
    a (radius + L) bounds |r| on a ramp that begins within ``radius`` of ``start`` (B, 2) and runs L
    further: L = k (|r(start)| + a · radius) / (1 − k a), capped at ``most`` (then the bound is
    a + 1.5 r_max / L instead of a + 0.5)."""
    lin = a[:, :, :2] - torch.eye(2, dtype=a.dtype, device=a.device)
    norm = torch.linalg.matrix_norm(lin, ord=2)  # a = ||A - I||_2
    r0 = ((lin @ start[..., None])[..., 0] + a[:, :, 2]).norm(dim=-1)
    k = RAMP_SLOPE
    need = k * (r0 + norm * radius) / (1 - k * norm).clamp(min=1e-3)
    need = torch.where(k * norm < 1, need, torch.full_like(need, float("inf")))
    return torch.minimum(torch.maximum(need, least), most)


def rigid_field(head: Head, n: int, offset: float = 0.0, step: float = 1.0) -> torch.Tensor:
    """h r in pixels (B, 2, n, n) on an n² grid of pixels ``step`` crop pixels wide, the first starting
    at crop point (offset, offset)."""
    q = pixel_grid(n, n, head.motion.device, head.motion.dtype) * step + offset
    q = q.expand(head.motion.shape[0], -1, -1, -1)
    return (head.weight(q)[..., None] * head.rigid(q)).permute(0, 3, 1, 2)

