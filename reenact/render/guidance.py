"""Guidance maps rendered from meshes (DESIGN §2.3, official_pwm.md §3a)."""

from __future__ import annotations

import torch

from reenact.render.rasterize import coverage, interpolate

Coverage = tuple[torch.Tensor, torch.Tensor]  # (face_id (B, H, W), bary (B, 3, H, W)) of rasterize.coverage


def geom_disp(verts_src: torch.Tensor, verts_drv: torch.Tensor, faces: torch.Tensor, size: int,
              cov_drv: Coverage | None = None):
    """The geometric displacement map: a backward flow from the driving (target) image to the source.

    Per vertex the attribute is xy_src - xy_drv in normalized units, 2·Δpixels/size (the authors'
    vertex normalization x_n = 2·x/size - 1), rasterized on the **driving** mesh. Every covered target
    pixel therefore points to where the same surface point sits in the source. Channel 0 is x, 1 is y.

    verts_src, verts_drv: (B, V, 3) in crop pixels; ``cov_drv``: the driving mesh's coverage when it was
    computed already (training computes it in the data workers). Returns flow (B, 2, size, size) and
    mask (B, 1, size, size); the flow is 0 outside the face.
    """
    disp = (verts_src[..., :2] - verts_drv[..., :2]) * (2.0 / size)  # (B, V, 2)
    face_id, bary = cov_drv if cov_drv is not None else coverage(verts_drv, faces, (size, size))
    return interpolate(face_id, bary, faces, disp), (face_id >= 0).to(disp.dtype)[:, None]


def neural_codes(codes: torch.Tensor, verts: torch.Tensor, faces: torch.Tensor, size: int,
                 cov: Coverage | None = None) -> torch.Tensor:
    """Posed neural codes: the learnable per-vertex codes (V, E) rasterized on ``verts`` (B, V, 3).

    On the driving mesh this is the guidance map; on the source mesh it is concatenated to the source
    image as encoder input (supplementary §2). Returns (B, E, size, size), 0 outside the face;
    differentiable with respect to ``codes``.
    """
    attrs = codes[None].expand(verts.shape[0], -1, -1)  # (B, V, E)
    face_id, bary = cov if cov is not None else coverage(verts, faces, (size, size))
    return interpolate(face_id, bary, faces, attrs)


def guidance_maps(guidance: str, codes: torch.Tensor | None, verts_src: torch.Tensor, verts_drv: torch.Tensor,
                  faces: torch.Tensor, size: int, cov_src: Coverage | None = None,
                  cov_drv: Coverage | None = None) -> dict[str, torch.Tensor | None]:
    """The generator's guidance inputs {disp, codes_d, codes_s} for ``guidance`` (None where unused).
    Coverages given are used (no host sync then); missing ones are rasterized here."""
    if cov_drv is None:
        cov_drv = coverage(verts_drv, faces, (size, size))
    disp = geom_disp(verts_src, verts_drv, faces, size, cov_drv)[0] if guidance in ("geom_disp", "both") else None
    if guidance == "geom_disp":
        return {"disp": disp, "codes_d": None, "codes_s": None}
    return {"disp": disp, "codes_d": neural_codes(codes, verts_drv, faces, size, cov_drv),
            "codes_s": neural_codes(codes, verts_src, faces, size, cov_src)}


def needs_source_coverage(guidance: str) -> bool:
    """Whether ``guidance`` rasterizes the source mesh too (its posed codes are an encoder input)."""
    return guidance in ("neural_codes", "both")
