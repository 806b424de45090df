"""A batched triangle rasterizer in pure PyTorch: z-buffer, back-face culling, barycentric
interpolation. The same code runs on CPU and CUDA; no compiled extension (DESIGN §2.3).

Conventions (official_pwm.md §3a):
* vertices are (B, V, 3) in pixels: x right, y down; pixel (i, j) covers [i, i+1) x [j, j+1) and
  is sampled at its centre (i + 0.5, j + 0.5).
* z: the nearest surface has the **smallest** z (FaceFit's z increases away from the viewer).
  Depth is compared at float32 precision, like a 32-bit depth buffer.
* back-face culling as the authors do it: after the depth test, a pixel whose front-most triangle
  has a positive z-component of (v1 - v0) x (v2 - v0) in these y-down coordinates becomes background.
* attributes are interpolated with screen-space barycentrics (exact for orthographic projection);
  the background is 0.

Method: each triangle's barycentrics and depth are affine in the pixel position, so they are
precomputed as plane coefficients (:func:`plane_coefficients`). Each triangle enumerates the pixel
centres of its bounding box ("candidates"); inside candidates compete per pixel through one
``scatter_reduce(amin)`` on a packed int64 key (depth as sortable float32 bits, then triangle id: ties
go to the lower id). Barycentrics are then evaluated once per covered pixel for its winner. Work is
proportional to the triangles' bounding-box area; candidates are processed in chunks of triangles so
memory stays bounded for large meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ID_BITS = 24  # triangle ids per mesh must be below 2**24
_EMPTY = torch.iinfo(torch.int64).max


@dataclass
class Raster:
    """Rasterizer output. image: (B, C, H, W) or None; mask: (B, 1, H, W) float coverage;
    face_id: (B, H, W), -1 for background; bary: (B, 3, H, W) barycentrics of the winning triangle
    (0 on background)."""

    image: torch.Tensor | None
    mask: torch.Tensor
    face_id: torch.Tensor
    bary: torch.Tensor


def plane_coefficients(tri: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per triangle (N, 3 corners, xyz): coefficients (N, 4, 3) and signed doubled area (N,).

    Row k < 3 holds (A, B, C) with barycentric w_k(p) = A px + B py + C; row 3 does the same for depth.
    w_0 is the edge function of (v1, v2, p) over the area, w_1 of (v2, v0, p), w_2 of (v0, v1, p).
    Degenerate triangles (area 0) get NaN coefficients, so no pixel is ever inside them.
    """
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    nxt, prv = [1, 2, 0], [2, 0, 1]
    xa, ya, xb, yb = x[:, nxt], y[:, nxt], x[:, prv], y[:, prv]  # edge k runs from corner k+1 to k+2
    a = -(yb - ya)
    b = xb - xa
    c = (yb - ya) * xa - (xb - xa) * ya
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    inv = torch.where(area != 0, 1.0 / area, torch.full_like(area, float("nan")))[:, None]
    w = torch.stack([a * inv, b * inv, c * inv], -1)  # (N, 3 barycentrics, 3 coefficients)
    depth = (w * z[:, :, None]).sum(1, keepdim=True)  # (N, 1, 3)
    return torch.cat([w, depth], 1), area


def evaluate(coef: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Evaluate plane coefficients (M, R, 3) at points (M,) -> (M, R)."""
    return coef[..., 0] * px[:, None] + coef[..., 1] * py[:, None] + coef[..., 2]


def sortable_float32(v: torch.Tensor) -> torch.Tensor:
    """Map float32 values to int64 with the same order (IEEE-754 sign-magnitude -> two's complement)."""
    bits = v.to(torch.float32).view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, -(bits & 0x7FFFFFFF) - 1, bits)


def _bbox(tri: torch.Tensor, h: int, w: int):
    """First pixel (x0, y0) and size (bw, bh) of the pixel centres each triangle's bbox may hold."""
    x, y = tri[..., 0], tri[..., 1]
    x0 = torch.ceil(x.amin(1) - 0.5).clamp(0, w - 1).long()
    x1 = torch.floor(x.amax(1) - 0.5).clamp(-1, w - 1).long()
    y0 = torch.ceil(y.amin(1) - 0.5).clamp(0, h - 1).long()
    y1 = torch.floor(y.amax(1) - 0.5).clamp(-1, h - 1).long()
    return x0, y0, (x1 - x0 + 1).clamp(min=0), (y1 - y0 + 1).clamp(min=0)


def _depth_keys(tri, coef, first_id: int, n_faces: int, h: int, w: int):
    """(flat pixel index, packed depth/id key) of the inside candidates of a run of triangles."""
    x0, y0, bw, bh = _bbox(tri, h, w)
    counts = bw * bh
    idx = torch.repeat_interleave(torch.arange(len(tri), device=tri.device), counts)
    local = torch.arange(len(idx), device=tri.device) - (torch.cumsum(counts, 0) - counts).index_select(0, idx)
    bwi = bw.index_select(0, idx)
    row = torch.div(local, bwi, rounding_mode="floor")
    ix = x0.index_select(0, idx) + (local - row * bwi)
    iy = y0.index_select(0, idx) + row
    # index_select, and one nonzero for the inside candidates, rather than advanced and boolean indexing:
    # bit for bit the same, and a quarter faster at batch 1 on CPU (3.0 -> 2.3 ms, MediaPipe's mesh at 128²)
    val = evaluate(coef.index_select(0, idx), ix.to(tri.dtype) + 0.5, iy.to(tri.dtype) + 0.5)  # (M, 4): w0, w1, w2, depth
    keep = (val[:, :3] >= 0).all(1).nonzero().squeeze(1)
    gid = idx.index_select(0, keep) + first_id
    pix = (gid // n_faces) * (h * w) + iy.index_select(0, keep) * w + ix.index_select(0, keep)
    return pix, (sortable_float32(val[:, 3].index_select(0, keep)) << ID_BITS) | (gid % n_faces)


def rasterize(verts: torch.Tensor, faces: torch.Tensor, attrs: torch.Tensor | None, size: tuple[int, int],
              cull_backfaces: bool = True, max_candidates: int = 1 << 23) -> Raster:
    """Rasterize ``faces`` (F, 3) of ``verts`` (B, V, 3) into an image of ``size`` = (H, W).

    ``attrs`` (B, V, C) are interpolated per pixel; pass None for coverage and barycentrics only.
    """
    face_id, bary = coverage(verts, faces, size, cull_backfaces, max_candidates)
    image = interpolate(face_id, bary, faces, attrs) if attrs is not None else None
    return Raster(image, (face_id >= 0).to(verts.dtype)[:, None], face_id, bary)


def coverage(verts: torch.Tensor, faces: torch.Tensor, size: tuple[int, int], cull_backfaces: bool = True,
             max_candidates: int = 1 << 23) -> tuple[torch.Tensor, torch.Tensor]:
    """(face_id (B, H, W), -1 for background; bary (B, 3, H, W), 0 on background) of ``faces`` on ``verts``.

    The geometry part of rasterizing: its sizes depend on the data (candidates per triangle), so it
    synchronizes with the host; training runs it in the DataLoader workers and keeps the step sync-free.
    """
    h, w = size
    b = verts.shape[0]
    faces = faces.to(verts.device).long()
    n_faces = faces.shape[0]
    if n_faces >= 1 << ID_BITS:
        raise ValueError(f"at most {1 << ID_BITS} triangles per mesh")
    tri = verts[:, faces].reshape(b * n_faces, 3, 3)  # (B·F, 3 corners, xyz)
    coef, area = plane_coefficients(tri)
    best = torch.full((b * h * w,), _EMPTY, dtype=torch.int64, device=verts.device)
    for lo, hi in _chunks(tri, h, w, max_candidates):
        pix, key = _depth_keys(tri[lo:hi], coef[lo:hi], lo, n_faces, h, w)
        best.scatter_reduce_(0, pix, key, "amin")
    pix = torch.nonzero(best != _EMPTY).squeeze(1)  # covered pixels, flat over B·H·W
    gid = (pix // (h * w)) * n_faces + (best.index_select(0, pix) & ((1 << ID_BITS) - 1))
    if cull_backfaces:
        front = (area.index_select(0, gid) <= 0).nonzero().squeeze(1)
        pix, gid = pix.index_select(0, front), gid.index_select(0, front)
    local = pix % (h * w)
    bary = evaluate(coef.index_select(0, gid)[:, :3], (local % w).to(verts.dtype) + 0.5, (local // w).to(verts.dtype) + 0.5)
    face_id = torch.full((b * h * w,), -1, dtype=torch.long, device=verts.device)
    face_id[pix] = gid % n_faces
    bary_img = torch.zeros(b * h * w, 3, dtype=verts.dtype, device=verts.device)
    bary_img[pix] = bary
    return face_id.view(b, h, w), bary_img.view(b, h, w, 3).permute(0, 3, 1, 2)


def interpolate(face_id: torch.Tensor, bary: torch.Tensor, faces: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """Per-vertex ``attrs`` (B, V, C) at every pixel of a :func:`coverage`: (B, C, H, W), 0 on background.

    Dense over all pixels, with no data-dependent shapes, so it never waits for the host;
    differentiable with respect to ``attrs``.
    """
    b, h, w = face_id.shape
    covered = face_id >= 0
    corner = faces.to(face_id.device).long()[face_id.clamp(min=0)]  # (B, H, W, 3) vertex ids
    batch = torch.arange(b, device=face_id.device)[:, None, None]
    out = 0
    for k in range(3):
        out = out + attrs[batch, corner[..., k]] * bary[:, k, :, :, None].to(attrs.dtype)  # (B, H, W, C)
    out = torch.where(covered[..., None], out, torch.zeros((), dtype=attrs.dtype, device=attrs.device))
    return out.permute(0, 3, 1, 2).contiguous()


def _chunks(tri: torch.Tensor, h: int, w: int, max_candidates: int) -> list[tuple[int, int]]:
    """Split triangles into runs whose bounding boxes hold at most ``max_candidates`` pixels."""
    _, _, bw, bh = _bbox(tri, h, w)
    cum = torch.cumsum(bw * bh, 0).cpu()
    if len(cum) == 0 or int(cum[-1]) <= max_candidates:
        return [(0, len(tri))]
    bounds, lo = [], 0
    while lo < len(tri):
        base = int(cum[lo - 1]) if lo else 0
        hi = max(int(torch.searchsorted(cum, torch.tensor(base + max_candidates), right=True)), lo + 1)
        bounds.append((lo, hi))
        lo = hi
    return bounds
