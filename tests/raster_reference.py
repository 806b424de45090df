"""Brute-force per-pixel rasterizer: every pixel centre tested against every triangle (tests only).

It shares only the per-triangle plane coefficients with the rasterizer (so the two agree bit for
bit on which side of an edge a pixel centre lies); the search is exhaustive instead of
bounding-box candidates, packed keys and scatter.
"""

from __future__ import annotations

import torch

from reenact.render.rasterize import evaluate, plane_coefficients


def brute_force(verts: torch.Tensor, faces: torch.Tensor, attrs: torch.Tensor, h: int, w: int):
    """verts (V, 3), faces (F, 3), attrs (V, C) for ONE mesh -> image (C, H, W), mask (H, W), face_id (H, W)."""
    faces = faces.long()
    coef, area = plane_coefficients(verts[faces])  # (F, 4, 3), (F,)
    n = len(faces)
    image = torch.zeros(attrs.shape[1], h, w, dtype=attrs.dtype)
    face_id = torch.full((h, w), -1, dtype=torch.long)
    for j in range(h):
        for i in range(w):
            px = torch.full((n,), i + 0.5, dtype=verts.dtype)
            py = torch.full((n,), j + 0.5, dtype=verts.dtype)
            val = evaluate(coef, px, py)  # (F, 4)
            inside = (val[:, :3] >= 0).all(1)
            if not inside.any():
                continue
            d32 = torch.where(inside, val[:, 3], torch.full_like(val[:, 3], float("inf"))).to(torch.float32)
            f = int(torch.nonzero(d32 == d32.min())[0])  # nearest at float32 precision, ties: lowest id
            if area[f] > 0:  # the front-most triangle faces away: background
                continue
            face_id[j, i] = f
            image[:, j, i] = (val[f, :3, None] * attrs[faces[f]]).sum(0)
    return image, face_id >= 0, face_id
