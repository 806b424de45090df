"""The geometric warp: backward-warp the source with the rendered displacement, extended smoothly
beyond the face (used by ``drive`` when no checkpoint is given; DESIGN §2.4).

Flows are in normalized grid units of the image they warp (2 / size per pixel). The base grid is the
exact identity of ``grid_sample(align_corners=False)``: pixel centre i sits at (2 i + 1) / W - 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def identity_grid(b: int, h: int, w: int, device, dtype=torch.float32) -> torch.Tensor:
    """(B, H, W, 2) grid whose samples land exactly on pixel centres with align_corners=False."""
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(b, h, w, 2)


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (B, C, H, W) at identity + ``flow`` (B, 2, H, W); borders replicate."""
    b, _, h, w = flow.shape
    grid = identity_grid(b, h, w, flow.device, flow.dtype) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _jacobi(x: torch.Tensor, known: torch.Tensor, value: torch.Tensor, iters: int,
            denom: torch.Tensor | float = 4.0) -> torch.Tensor:
    """Jacobi iterations of Laplace's equation (or, with ``denom`` = 4 + (κh)² per cell, of the
    screened (Δ − κ²) x = 0); ``known`` cells fixed, zero just outside the grid.
    The four-neighbour sum is taken by shifted slices: a grouped 3×3 convolution costs about 50
    times more on CPU for these small grids. The slices are views of one zero-bordered buffer that
    each sweep rewrites in place: at these sizes the cost is the number of tensor operations, and this
    takes 5 a sweep where padding afresh took 10, with the same sums in the same order (harmonic_fill
    at batch 1: 2.0 -> 1.0 ms). Not differentiable (it writes in place); the engines run it without grad."""
    p = F.pad(x, (1, 1, 1, 1))
    inner, up, down, left, right = (p[..., 1:-1, 1:-1], p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2],
                                    p[..., 1:-1, 2:])
    for _ in range(iters):
        s = up + down
        s += left
        s += right  # the sum of the four neighbours, all read before the sweep writes
        torch.where(known, value, s.div_(denom), out=inner)
    return inner


def _box_1d(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Mean over a window of k (odd) along ``dim``, clipped at the borders (avg_pool's
    ``count_include_pad=False``), from a cumulative sum: on CPU avg_pool2d costs about 6 ms on a
    (8, 2, 160, 160) flow, this a tenth of that."""
    dim = dim % x.dim()
    r, n = k // 2, x.shape[dim]
    c = torch.cumsum(x, dim)
    shape = list(x.shape)
    shape[dim] = r + 1
    c = torch.cat([x.new_zeros(shape), c, c.narrow(dim, n - 1, 1).expand(*[r if d == dim else -1 for d in range(x.dim())])], dim)
    i = torch.arange(n, device=x.device)
    count = ((i + r).clamp(max=n - 1) - (i - r - 1).clamp(min=-1)).to(x.dtype)
    view = [1] * x.dim()
    view[dim] = n
    return (c.narrow(dim, 2 * r + 1, n) - c.narrow(dim, 0, n)) / count.view(view)


def box_mean(x: torch.Tensor, kh: int, kw: int | None = None) -> torch.Tensor:
    """``x`` (..., H, W) averaged over kh × kw windows (odd sizes) clipped at the borders."""
    return _box_1d(_box_1d(x, kh if kw is None else kw, -1), kh, -2)


def harmonic_fill(flow: torch.Tensor, mask: torch.Tensor, grid: int = 32, levels: int = 3, iters: int = 20,
                  screen: torch.Tensor | None = None, kappa: float = 0.0):
    """Extend ``flow`` (B, 2, H, W) from where ``mask`` (B, 1, H, W) is 1 to the whole image.

    Solves Laplace's equation on a ``grid``² lattice, with the face's flow fixed and zero flow on the
    image border, coarse to fine over ``levels`` resolutions. The result is smooth, meets the face
    flow at the face boundary (no tear), decays to zero at the border (the far background stays
    still), and fills the mesh holes (eyes, mouth) from their rims. Returns (B, 2, H, W).

    With ``screen`` (B, 1, H, W) in [0, 1] the equation is (Δ − (κ · screen)²) x = 0, κ = ``kappa`` in
    inverse image widths: where screen is 1 the fill decays from the face over about 1/κ of the
    image instead of reaching the border.
    """
    m = F.adaptive_avg_pool2d(mask, grid)
    v = F.adaptive_avg_pool2d(flow * mask, grid) / m.clamp(min=1e-6)
    x = None
    for lvl in reversed(range(levels)):
        n = grid >> lvl
        m_l = F.adaptive_avg_pool2d(m, n)
        v_l = F.adaptive_avg_pool2d(v * m, n) / m_l.clamp(min=1e-6)
        known = (m_l > 0.5).expand_as(v_l)
        x = torch.zeros_like(v_l) if x is None else F.interpolate(x, size=(n, n), mode="bilinear", align_corners=False)
        denom = 4.0 if screen is None else 4.0 + (kappa / n) ** 2 * F.adaptive_avg_pool2d(screen, n)
        x = _jacobi(torch.where(known, v_l, x), known, v_l, iters, denom)
    return F.interpolate(x, size=flow.shape[-2:], mode="bilinear", align_corners=False)


def max_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """k×k max filter (stride 1, same size, k odd; what lies outside counts as −∞), exact.

    Separable, and each pass doubles its window (2, 4, 8, ... up to the largest power of two p ≤ k,
    then the max of two windows of p overlapping to k): 2 ⌈log₂ k⌉ elementwise maxima per pixel.
    ``max_pool2d`` costs k² per pixel on CPU. The background plate dilates the person mask by 2.5 % of
    the long side: 4.8 s against 3 ms here on a 1280×886 photo (65 px), 325 s against 0.34 s on a
    3840×2658 one (193 px; ``bench/bench_large_photo.py``)."""
    r = k // 2
    for dim in (-1, -2):
        n = x.shape[dim]
        pad = [0, 0, 0, 0]
        pad[0 if dim == -1 else 2], pad[1 if dim == -1 else 3] = r, r
        p = F.pad(x, pad, value=float("-inf"))  # window i covers p[i : i + k] along dim
        span = 1
        while 2 * span <= k:  # p becomes the max over windows of 2 * span
            m = p.shape[dim] - span
            p, span = torch.maximum(p.narrow(dim, 0, m), p.narrow(dim, span, m)), 2 * span
        x = torch.maximum(p.narrow(dim, 0, n), p.narrow(dim, k - span, n))
    return x


def fill_holes(flow: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the holes of ``mask`` (B, 1, H, W) narrower than ``size`` px (the mesh's eye and mouth
    openings: a morphological closing finds them) from their rims by push-pull (mask-weighted means
    over a pyramid, finest known level first). Returns the filled flow and the closed mask.

    The openings are filled here, at the mesh's own resolution, rather than by the coarse harmonic
    lattice, and :func:`smooth` leaves the mesh itself alone: with the lattice and a blur over the
    lids a closing eye's lids were blended with a coarse average and a blink stopped halfway."""
    q = 2  # the closing runs at half the resolution: holes are found to a pixel
    small = F.avg_pool2d(mask, q, ceil_mode=True)
    k = max(3, size // q) | 1
    shut = 1 - max_filter(1 - max_filter((small > 0.5).to(mask.dtype), k), k)
    closed = F.interpolate(shut, scale_factor=q, mode="nearest")[..., :mask.shape[-2], :mask.shape[-1]]
    levels = [(flow * mask, mask)]
    while len(levels) < 5 and min(levels[-1][1].shape[-2:]) > 4:
        x, w = levels[-1]
        levels.append((F.avg_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True)))
    x, w = levels[-1]
    fill = x / w.clamp(min=1e-6)
    for x, w in reversed(levels[:-1]):
        up = F.interpolate(fill, size=x.shape[-2:], mode="bilinear", align_corners=False)
        fill = torch.where(w > 0, x / w.clamp(min=1e-6), up)
    filled = torch.where(mask > 0, flow, fill)
    return filled, torch.maximum(mask, closed)


def extend_flow(flow: torch.Tensor, mask: torch.Tensor, feather: int = 3, base: torch.Tensor | None = None,
                screen: torch.Tensor | None = None, kappa: float = 0.0) -> torch.Tensor:
    """The face flow inside the face, blended over ``feather`` pixels into what lies outside: the
    :func:`harmonic_fill` of the face flow, or with ``base`` (B, 2, H, W) that field plus the harmonic
    fill of the face flow's difference from it (the whole-head warp's rigid motion, render/head.py),
    screened by ``screen`` and ``kappa`` (:func:`harmonic_fill`)."""
    if base is None:
        outside = harmonic_fill(flow, mask, screen=screen, kappa=kappa)
    else:
        outside = base + harmonic_fill(flow - base, mask, screen=screen, kappa=kappa)
    k = 2 * feather + 1
    soft = box_mean(mask, k)
    soft = ((soft - 0.5) * 2).clamp(0, 1) * mask
    return soft * flow + (1 - soft) * outside


def smooth(x: torch.Tensor, passes: int = 2, inside: torch.Tensor | None = None, feather: int = 3) -> torch.Tensor:
    """``passes`` 3×3 box filters of ``x`` (B, C, H, W), borders renormalized: close to a Gaussian of
    σ = √(2 passes / 3) pixels (1.15 for two), at a fraction of a Gaussian convolution's cost on CPU.
    On a flow it spreads any remaining jump J over a few pixels, bounding its gradient to about J / 3.

    With ``inside`` (B, 1, H, W), ``x`` is kept as it is more than ``feather`` pixels inside it (the
    face mesh and its filled openings: a closing eyelid's motion is a few pixels wide and a blur
    would halve it), blending to the smoothed field at its edge."""
    y = x
    for _ in range(passes):  # separable 3×3 box
        y = box_mean(y, 3)
    if inside is None:
        return y
    near = box_mean(inside, 2 * feather + 1)
    keep = (((near - 0.5) * 2).clamp(0, 1) * inside) ** 2
    return keep * x + (1 - keep) * y


UNFOLD_FLOOR = 0.25  # det(I + ∇f) below this is relaxed (the tests' bar is > 0, after upsampling and the gaze)
EYE_FLOOR = 0.05  # ... and inside the eyes' openings, where only fold-overs are relaxed
UNFOLD_CAP = 3.0  # ... and ‖∇f‖₂ above this (the tests' bound is 3.5), outside the eye and mouth openings


def jacobian(flow: torch.Tensor, spacing: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(min det(I + ∇f), max ‖∇f‖₂), each (B, H-1, W-1), over the four corners of each cell of the
    bilinear map p ↦ p + ``flow``(p) (B, 2, H, W); ``flow`` in units of which the grid's step is
    ``spacing``. The bilinear map's determinant is bilinear in the cell, so its least value is at a
    corner, where the Jacobian is that of the two cell edges meeting there."""
    dets, norms = [], []
    for trace, det, frob2 in _corners(flow * (1.0 / spacing)):
        dets.append(1 + trace + det)
        norms.append(0.5 * (frob2 + torch.sqrt((frob2 * frob2 - 4 * det * det).clamp(min=0))))
    return torch.stack(dets).amin(0), torch.stack(norms).amax(0).sqrt()


def _corners(flow: torch.Tensor):
    """(tr D, det D, ‖D‖²_F), each (B, H-1, W-1), of D = [cell edge along x, cell edge along y] at the
    four corners of each cell: det(I + D) = 1 + tr D + det D, ‖D‖₂² = (F² + √(F⁴ − 4 det(D)²)) / 2."""
    top, bottom = flow[..., :-1, 1:] - flow[..., :-1, :-1], flow[..., 1:, 1:] - flow[..., 1:, :-1]
    left, right = flow[..., 1:, :-1] - flow[..., :-1, :-1], flow[..., 1:, 1:] - flow[..., :-1, 1:]
    for dx, dy in ((top, left), (top, right), (bottom, left), (bottom, right)):
        a, c, b, d = dx[:, 0], dx[:, 1], dy[:, 0], dy[:, 1]  # D = [[a, b], [c, d]]
        yield a + d, a * d - b * c, a * a + b * b + c * c + d * d


def _bad(flow: torch.Tensor, spacing: float, floor: float, cap: float, held=None) -> torch.Tensor:
    """(B, H-1, W-1) bool: cells with a corner where det(I + ∇f) < ``floor`` or ‖∇f‖₂ > ``cap``; with
    ``held``, (exclude, eyes) cell masks of :func:`unfold`: none in the first, and in the second only
    those where det(I + ∇f) < ``EYE_FLOOR``. With
    the cell edges D = s ∇f (s = ``spacing``), det(I + ∇f) = 1 + tr D / s + det D / s², and, with
    C = (s·cap)² and F² = ‖D‖²_F, ‖D‖₂² > C ⟺ F² > 2C or det(D)² < C (F² − C): no division or root."""
    c2 = (spacing * cap) ** 2
    bad = None
    for trace, det, frob2 in _corners(flow):
        folds = spacing * trace + det < (floor - 1) * spacing * spacing
        corner = folds | (frob2 > 2 * c2) | (det * det < c2 * (frob2 - c2))
        if held is not None:  # (exclude, eyes) cells: the first left alone, the second checked for fold-overs only
            eye_folds = spacing * trace + det < (EYE_FLOOR - 1) * spacing * spacing
            corner = torch.where(held[1], eye_folds, corner & ~held[0])
        bad = corner if bad is None else bad | corner
    return bad


def unfold(flow: torch.Tensor, spacing: float = 1.0, floor: float = UNFOLD_FLOOR, cap: float = UNFOLD_CAP,
           exclude: torch.Tensor | None = None, eyes: torch.Tensor | None = None, rounds: int = 6, steps: int = 12,
           reach: int = 3) -> torch.Tensor:
    """``flow`` (B, 2, H, W) with its fold-overs and tears smoothed away: where det(I + ∇f) < ``floor``
    or ‖∇f‖₂ > ``cap`` in cells without a corner in ``exclude`` (B, 1, H, W) bool, the openings, and
    where det(I + ∇f) < ``EYE_FLOOR`` in cells with one in ``eyes`` (B, 1, H, W) bool (an opening
    that folds over: an eye seen edge-on in the source, whose mesh flips, engines.GeometricWarp._openings), the flow within
    ``reach`` cells is relaxed towards the average of its four neighbours, ``steps`` Jacobi sweeps per
    round, until no cell is bad or ``rounds`` have run. A harmonic map onto a convex outline cannot fold
    (Radó-Kneser-Choquet), so relaxing a folded patch unfolds it, while the rest of the flow is left
    exactly as it was. The rounds run on a window around the bad cells only.

    Folds come from the face mesh's own flow: a lower lip that rolls over an opening mouth, a mouth
    corner pulled in, a jaw turned against the neck (the driver's own mesh flips there in 2D, and a
    thinner source lip flips further); the rasterizer culls the flipped triangles, and their
    neighbours meet the filled hole at a crease. A bilinear map's determinant is bilinear in each
    cell, so cells whose four corners pass pass everywhere, and the repair at half resolution holds
    for the upsampled flow (up to the secants across cells that finer grids take: hence a floor
    above 0)."""
    held = None
    if exclude is not None or eyes is not None:
        held = tuple(_cells(m if m is not None else torch.zeros_like(flow[:, :1], dtype=torch.bool)) for m in (exclude, eyes))
    bad = _bad(flow, spacing, floor, cap, held)
    if not bool(bad.any()):
        return flow
    flow, margin = flow.clone(), 3 * reach + 2
    h, w = flow.shape[-2:]
    sel = torch.nonzero(bad.flatten(1).any(1))[:, 0]  # the frames with bad cells, relaxed together
    _, ys, xs = torch.nonzero(bad[sel], as_tuple=True)
    y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 2, h)
    x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 2, w)
    if held is not None:
        held = tuple(m[sel, y0:y1 - 1, x0:x1 - 1] for m in held)
    flow[sel, :, y0:y1, x0:x1] = _relax(flow[sel, :, y0:y1, x0:x1], spacing, floor, cap, held, rounds, steps, reach)
    return flow


def _cells(nodes: torch.Tensor) -> torch.Tensor:
    """(B, H-1, W-1) bool: the cells with a corner node in ``nodes`` (B, 1, H, W)."""
    return nodes[:, 0, :-1, :-1] | nodes[:, 0, 1:, :-1] | nodes[:, 0, :-1, 1:] | nodes[:, 0, 1:, 1:]


def _relax(flow, spacing, floor, cap, held, rounds, steps, reach):
    """:func:`unfold`'s rounds on a window (B', 2, h, w) of the frames that need them; its border
    nodes stay as they are, and a frame's rounds stop changing it once it has no bad cell."""
    for _ in range(rounds):
        bad = _bad(flow, spacing, floor, cap, held)
        if not bool(bad.any()):
            break
        region = max_filter(F.pad(bad[:, None].to(flow.dtype), (0, 1, 0, 1)), 2 * reach + 1) > 0  # (B', 1, h, w)
        region[..., 0, :] = region[..., -1, :] = False
        region[..., :, 0] = region[..., :, -1] = False
        # Jacobi sweeps inside the region, the rest held; the window's border is outside the region, so the
        # zeros beyond it are never read
        flow = _jacobi(flow, ~region, flow, steps)
    return flow
