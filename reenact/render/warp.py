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
    times more on CPU for these small grids."""
    for _ in range(iters):
        p = F.pad(x, (1, 1, 1, 1))
        x = (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) / denom
        x = torch.where(known, value, x)
    return x


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


def _max_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """k×k max filter (stride 1, same size, k odd) as two separable passes of shifted maxima (max_pool2d
    is several times slower on CPU)."""
    r = k // 2
    for dim in (-1, -2):
        n = x.shape[dim]
        pad = [0, 0, 0, 0]
        pad[0 if dim == -1 else 2], pad[1 if dim == -1 else 3] = r, r
        p = F.pad(x, pad, value=float("-inf"))
        out = p.narrow(dim, 0, n)
        for j in range(1, k):
            out = torch.maximum(out, p.narrow(dim, j, n))
        x = out
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
    shut = 1 - _max_pool(1 - _max_pool((small > 0.5).to(mask.dtype), k), k)
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
