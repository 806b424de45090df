"""Guidance maps rendered from meshes (DESIGN §2.3, official_pwm.md §3a)."""

from __future__ import annotations

import torch

from reenact.render.rasterize import rasterize


def geom_disp(verts_src: torch.Tensor, verts_drv: torch.Tensor, faces: torch.Tensor, size: int):
    """The geometric displacement map: a backward flow from the driving (target) image to the source.

    Per vertex the attribute is xy_src - xy_drv in normalized units, 2·Δpixels/size (the authors'
    vertex normalization x_n = 2·x/size - 1), rasterized on the **driving** mesh. Every covered target
    pixel therefore points to where the same surface point sits in the source. Channel 0 is x, 1 is y.

    verts_src, verts_drv: (B, V, 3) in crop pixels. Returns flow (B, 2, size, size) and mask (B, 1, size, size);
    the flow is 0 outside the face.
    """
    disp = (verts_src[..., :2] - verts_drv[..., :2]) * (2.0 / size)  # (B, V, 2)
    r = rasterize(verts_drv, faces, disp, (size, size))
    return r.image, r.mask
