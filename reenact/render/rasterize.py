"""A batched triangle rasterizer in pure PyTorch: z-buffer, back-face culling, barycentric
interpolation. The same code runs on CPU and CUDA; no compiled extension (DESIGN §2.3).

Conventions (official_pwm.md §3a):
* vertices are (B, V, 3) in pixels: x right, y down; pixel (i, j) covers [i, i+1) x [j, j+1) and
  is sampled at its centre (i + 0.5, j + 0.5).
* z: the nearest surface has the **smallest** z (FaceFit's z increases away from the viewer).
* back-face culling as the authors do it: after the depth test, a pixel whose front-most triangle
  has a positive z-component of (v1 - v0) x (v2 - v0) in these y-down coordinates becomes background.
* attributes are interpolated with screen-space barycentrics (exact for orthographic projection);
  the background is 0.

Method: every triangle enumerates the pixel centres in its bounding box ("candidates"); candidates
inside the triangle compete per pixel with ``scatter_reduce(amin)`` on depth, ties going to the lower
triangle index. Work is proportional to the triangles' bounding-box area, and candidates are
processed in chunks of triangles so memory stays bounded for large meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Raster:
    """Rasterizer output. image: (B, C, H, W); mask: (B, 1, H, W) float coverage; face_id: (B, H, W),
    -1 for background; bary: (B, 3, H, W) barycentrics of the winning triangle (0 on background)."""

    image: torch.Tensor
    mask: torch.Tensor
    face_id: torch.Tensor
    bary: torch.Tensor


def edge(ax, ay, bx, by, px, py):
    """z-component of (b - a) x (p - a): twice the signed area of triangle (a, b, p)."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _candidates(tri: torch.Tensor, fid: torch.Tensor, h: int, w: int):
    """Pixel candidates of triangles ``tri`` (N, 3, 3) with ids ``fid`` (N,) (flattened batch·faces).

    Returns pixel key (b·H·W + y·W + x), face id, barycentrics (M, 3), depth (M,) for inside candidates.
    """
    x, y = tri[..., 0], tri[..., 1]
    x0 = torch.ceil(x.amin(1) - 0.5).clamp(0, w - 1).long()
    x1 = torch.floor(x.amax(1) - 0.5).clamp(-1, w - 1).long()
    y0 = torch.ceil(y.amin(1) - 0.5).clamp(0, h - 1).long()
    y1 = torch.floor(y.amax(1) - 0.5).clamp(-1, h - 1).long()
    area = edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], x[:, 2], y[:, 2])
    bw, bh = (x1 - x0 + 1).clamp(min=0), (y1 - y0 + 1).clamp(min=0)
    counts = torch.where(area != 0, bw * bh, torch.zeros_like(bw))
    idx = torch.repeat_interleave(torch.arange(len(tri), device=tri.device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(idx), device=tri.device) - start[idx]
    px = (x0[idx] + local % bw[idx]).to(tri.dtype) + 0.5
    py = (y0[idx] + local // bw[idx]).to(tri.dtype) + 0.5
    t = tri[idx]  # (M, 3, 3)
    a = area[idx]
    w0 = edge(t[:, 1, 0], t[:, 1, 1], t[:, 2, 0], t[:, 2, 1], px, py) / a
    w1 = edge(t[:, 2, 0], t[:, 2, 1], t[:, 0, 0], t[:, 0, 1], px, py) / a
    w2 = edge(t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1], px, py) / a
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    bary = torch.stack([w0, w1, w2], 1)[inside]
    depth = (bary * t[inside][:, :, 2]).sum(1)
    return px[inside], py[inside], idx[inside], fid[idx][inside], bary, depth


def rasterize(verts: torch.Tensor, faces: torch.Tensor, attrs: torch.Tensor | None, size: tuple[int, int],
              cull_backfaces: bool = True, max_candidates: int = 1 << 24) -> Raster:
    """Rasterize ``faces`` (F, 3) of ``verts`` (B, V, 3) into an image of ``size`` = (H, W).

    ``attrs`` (B, V, C) are interpolated per pixel; pass None to get only coverage and barycentrics.
    """
    h, w = size
    b, _, _ = verts.shape
    faces = faces.to(verts.device).long()
    n_faces = faces.shape[0]
    tris = verts[:, faces]  # (B, F, 3 corners, 3 xyz)
    flat = tris.reshape(b * n_faces, 3, 3)
    fid = torch.arange(b * n_faces, device=verts.device)  # batch-major: id = b * F + f
    chunks = _chunks(flat, h, w, max_candidates)

    inf = torch.tensor(float("inf"), dtype=verts.dtype, device=verts.device)
    zbuf = inf.expand(b * h * w).clone()
    best = torch.full((b * h * w,), b * n_faces, dtype=torch.long, device=verts.device)
    cache = [] if len(chunks) == 1 else None
    for lo, hi in chunks:  # pass 1: nearest depth per pixel
        c = _pixel_candidates(flat[lo:hi], fid[lo:hi], n_faces, h, w)
        if cache is not None:
            cache.append(c)
        zbuf.scatter_reduce_(0, c[0], c[3], "amin")
    for i, (lo, hi) in enumerate(chunks):  # pass 2: lowest face id among the nearest
        key, f, bary, depth = cache[i] if cache is not None else _pixel_candidates(flat[lo:hi], fid[lo:hi], n_faces, h, w)
        hit = depth == zbuf[key]
        best.scatter_reduce_(0, key[hit], f[hit], "amin")
    covered = best < b * n_faces
    face_id = torch.where(covered, best % n_faces, torch.full_like(best, -1))
    if cull_backfaces:
        t = flat[best.clamp(max=b * n_faces - 1)]
        back = edge(t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1], t[:, 2, 0], t[:, 2, 1]) > 0
        covered &= ~back
        face_id = torch.where(covered, face_id, torch.full_like(face_id, -1))
    bary_img = torch.zeros(b * h * w, 3, dtype=verts.dtype, device=verts.device)
    for i, (lo, hi) in enumerate(chunks):  # pass 3: barycentrics of the winners
        key, f, bary, _ = cache[i] if cache is not None else _pixel_candidates(flat[lo:hi], fid[lo:hi], n_faces, h, w)
        win = (best[key] == f) & covered[key]
        bary_img[key[win]] = bary[win]
    mask = covered.to(verts.dtype).view(b, 1, h, w)
    bary_out = bary_img.view(b, h, w, 3).permute(0, 3, 1, 2)  # (B, 3, H, W)
    image = None
    if attrs is not None:
        image = interpolate(attrs, faces, face_id.view(b, h, w), bary_out)
    return Raster(image, mask, face_id.view(b, h, w), bary_out)


def interpolate(attrs: torch.Tensor, faces: torch.Tensor, face_id: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Barycentric interpolation of per-vertex ``attrs`` (B, V, C) -> (B, C, H, W); 0 where face_id < 0."""
    b, h, w = face_id.shape
    c = attrs.shape[-1]
    fi = face_id.clamp(min=0).view(b, h * w)
    corner = faces.to(attrs.device).long()[fi]  # (B, H*W, 3) vertex ids
    vals = torch.gather(attrs, 1, corner.view(b, -1, 1).expand(-1, -1, c)).view(b, h * w, 3, c)
    wts = bary.permute(0, 2, 3, 1).reshape(b, h * w, 3, 1).to(attrs.dtype)
    out = (vals * wts).sum(2) * (face_id.view(b, h * w, 1) >= 0)
    return out.view(b, h, w, c).permute(0, 3, 1, 2).contiguous()


def _chunks(flat: torch.Tensor, h: int, w: int, max_candidates: int) -> list[tuple[int, int]]:
    """Split triangles into runs whose bounding boxes hold at most ``max_candidates`` pixels."""
    x, y = flat[..., 0], flat[..., 1]
    bw = (torch.floor(x.amax(1) - 0.5).clamp(-1, w - 1) - torch.ceil(x.amin(1) - 0.5).clamp(0, w - 1) + 1).clamp(min=0)
    bh = (torch.floor(y.amax(1) - 0.5).clamp(-1, h - 1) - torch.ceil(y.amin(1) - 0.5).clamp(0, h - 1) + 1).clamp(min=0)
    cum = torch.cumsum((bw * bh).double(), 0).cpu()
    total = float(cum[-1]) if len(cum) else 0.0
    if total <= max_candidates:
        return [(0, len(flat))]
    bounds, lo = [], 0
    while lo < len(flat):
        base = float(cum[lo - 1]) if lo else 0.0
        hi = int(torch.searchsorted(cum, torch.tensor(base + max_candidates, dtype=cum.dtype), right=True))
        hi = max(hi, lo + 1)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def _pixel_candidates(tri: torch.Tensor, fid: torch.Tensor, n_faces: int, h: int, w: int):
    """(pixel key, face id, barycentrics, depth) of the inside candidates of a run of triangles."""
    px, py, _, f, bary, depth = _candidates(tri, fid, h, w)
    batch = f // n_faces
    key = batch * (h * w) + py.long() * w + px.long()
    return key, f, bary, depth
