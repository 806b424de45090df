"""Brute-force per-pixel rasterizer: every pixel centre tested against every triangle (tests only)."""

from __future__ import annotations

import torch

from reenact.render.rasterize import edge


def brute_force(verts: torch.Tensor, faces: torch.Tensor, attrs: torch.Tensor, h: int, w: int):
    """verts (V, 3), faces (F, 3), attrs (V, C) for ONE mesh -> image (C, H, W), mask (H, W), face_id (H, W)."""
    faces = faces.long()
    t = verts[faces]  # (F, 3, 3)
    area = edge(t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1], t[:, 2, 0], t[:, 2, 1])
    image = torch.zeros(attrs.shape[1], h, w, dtype=attrs.dtype)
    face_id = torch.full((h, w), -1, dtype=torch.long)
    for j in range(h):
        py = torch.full((w, 1), j + 0.5, dtype=verts.dtype)
        px = (torch.arange(w, dtype=verts.dtype) + 0.5)[:, None]
        w0 = edge(t[:, 1, 0], t[:, 1, 1], t[:, 2, 0], t[:, 2, 1], px, py) / area
        w1 = edge(t[:, 2, 0], t[:, 2, 1], t[:, 0, 0], t[:, 0, 1], px, py) / area
        w2 = edge(t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1], px, py) / area
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (area != 0)  # (W, F)
        depth = w0 * t[:, 0, 2] + w1 * t[:, 1, 2] + w2 * t[:, 2, 2]
        depth = torch.where(inside, depth, torch.full_like(depth, float("inf")))
        for i in range(w):
            if not inside[i].any():
                continue
            zmin = depth[i].min()
            f = int(torch.nonzero(depth[i] == zmin)[0])
            if area[f] > 0:  # back-facing front-most triangle: background
                continue
            face_id[j, i] = f
            bc = torch.stack([w0[i, f], w1[i, f], w2[i, f]])
            image[:, j, i] = (bc[:, None] * attrs[faces[f]]).sum(0)
    return image, (face_id >= 0), face_id
