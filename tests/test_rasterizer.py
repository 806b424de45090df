"""The rasterizer equals a brute-force per-pixel reference: coverage, face ids and attributes."""

from __future__ import annotations

import pytest
import torch

from conftest import fit_largest
from raster_reference import brute_force
from reenact.face.mesh import topology
from reenact.io import read_image
from reenact.render.rasterize import rasterize


def _random_mesh(seed: int, n_verts: int, n_faces: int, h: int, w: int):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(n_verts, 3, generator=g, dtype=torch.float64) * torch.tensor([w * 1.2, h * 1.2, 10.0]) \
        - torch.tensor([w * 0.1, h * 0.1, 0.0])  # some triangles leave the image
    f = torch.randint(0, n_verts, (n_faces, 3), generator=g)
    a = torch.rand(n_verts, 5, generator=g, dtype=torch.float64)
    return v, f, a


def _assert_equal(raster, b, v, f, a, h, w):
    img, mask, fid = brute_force(v, f, a, h, w)
    assert torch.equal(raster.face_id[b], fid), "face ids differ"
    assert torch.equal(raster.mask[b, 0].bool(), mask), "coverage differs"
    assert torch.allclose(raster.image[b], img, atol=1e-9), "attributes differ"
    return mask.float().mean().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_meshes_match_brute_force(seed):
    h, w = 40, 52
    meshes = [_random_mesh(seed * 10 + k, 40, 60, h, w) for k in range(2)]
    verts = torch.stack([m[0] for m in meshes])
    faces = meshes[0][1]
    attrs = torch.stack([m[2] for m in meshes])
    for max_candidates in (1 << 24, 3000):  # one pass and many chunks
        r = rasterize(verts, faces, attrs, (h, w), max_candidates=max_candidates)
        covered = [_assert_equal(r, b, verts[b], faces, attrs[b], h, w) for b in range(2)]
        assert min(covered) > 0.05, "the meshes must actually cover pixels"


def test_back_facing_front_triangle_is_background():
    # Two triangles over the same pixels: the nearer one faces away (positive cross in y-down coords).
    v = torch.tensor([[[2.0, 2, 1], [30, 2, 1], [2, 30, 1], [2, 2, 5], [2, 30, 5], [30, 2, 5]]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [3, 4, 5]])
    r = rasterize(v, f, None, (32, 32))
    assert r.mask.sum() == 0, "nearest triangle is back-facing: background, like the authors' renderer"
    r = rasterize(v, f, None, (32, 32), cull_backfaces=False)
    assert r.mask.sum() > 300 and (r.face_id[r.face_id >= 0] == 0).all()


def test_canonical_mesh_on_a_real_face_matches_brute_force(testdata, pipeline):
    img = read_image(testdata / "faces" / "lp_s6.jpg")
    size = 96  # brute force is O(pixels x triangles); 96² keeps it to seconds
    fit = fit_largest(pipeline, img, size)[2]
    v = torch.as_tensor(fit.vertices, dtype=torch.float64)
    f = torch.as_tensor(topology())
    a = torch.cat([v, v[:, :1] ** 2 / size], 1)
    r = rasterize(v[None], f, a[None], (size, size))
    covered = _assert_equal(r, 0, v, f, a, size, size)
    assert covered > 0.3


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    v, f, a = _random_mesh(7, 200, 400, 128, 128)
    cpu = rasterize(v[None], f, a[None], (128, 128))
    gpu = rasterize(v[None].cuda(), f.cuda(), a[None].cuda(), (128, 128))
    assert torch.equal(cpu.face_id, gpu.face_id.cpu())
    assert torch.allclose(cpu.image, gpu.image.cpu(), atol=1e-9)
