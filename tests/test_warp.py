"""Geometric warp pieces: exact identity, harmonic extension, geom_disp conventions, neural codes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reenact.render.warp import _jacobi, max_filter, backward_warp, box_mean, extend_flow, harmonic_fill


def test_zero_flow_is_an_exact_identity():
    # a fixed image: grid_sample's coordinate rounding is up to 1.4e-6 on some draws (40 of 2000 unseeded
    # draws failed atol 1e-6, and one did in CI)
    img = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(backward_warp(img, torch.zeros(2, 2, 17, 23)), img, atol=1e-6)


def test_one_pixel_flow_shifts_by_one_pixel():
    img = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 4, 16).contiguous()
    flow = torch.zeros(1, 2, 4, 16)
    flow[:, 0] = 2.0 / 16  # one pixel to the right, in normalized units
    out = backward_warp(img, flow)
    assert torch.allclose(out[0, 0, 0, :15], img[0, 0, 0, 1:])


@pytest.mark.parametrize("k", [1, 3, 7, 9, 13, 31, 65])
def test_the_fast_filters_equal_torch_pooling(k):
    """box_mean and max_filter replace avg_pool2d (count_include_pad=False) and max_pool2d, which are
    several times slower on CPU: same values, borders included, on odd sizes and k near the size."""
    torch.manual_seed(k)
    x = torch.randn(3, 2, 21, 17) * 40
    r = k // 2
    ref = F.avg_pool2d(F.avg_pool2d(x, (1, k), 1, (0, r), count_include_pad=False), (k, 1), 1, (r, 0),
                       count_include_pad=False)
    assert torch.allclose(box_mean(x, k), ref, atol=1e-4)
    m = (torch.rand(3, 1, 21, 17) > 0.8).float() - torch.rand(3, 1, 21, 17)
    assert torch.equal(max_filter(m, k), F.max_pool2d(F.max_pool2d(m, (1, k), 1, (0, r)), (k, 1), 1, (r, 0)))


def test_the_jacobi_step_is_the_four_neighbour_mean_with_zero_outside():
    torch.manual_seed(0)
    v = torch.randn(2, 2, 12, 9)
    known = (torch.rand(2, 1, 12, 9) > 0.7).expand_as(v)
    kernel = (torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]) / 4).view(1, 1, 3, 3).repeat(2, 1, 1, 1)
    ref = v.clone()
    for _ in range(5):
        ref = torch.where(known, v, F.conv2d(ref, kernel, padding=1, groups=2))
    assert torch.allclose(_jacobi(v.clone(), known, v, 5), ref, atol=1e-6)


def _disc_flow(n=128):
    yy, xx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    mask = (((xx - 64) ** 2 + (yy - 64) ** 2) < 30 ** 2).float()[None, None]
    hole = (((xx - 64) ** 2 + (yy - 70) ** 2) < 8 ** 2).float()[None, None]
    mask = mask * (1 - hole)
    flow = torch.stack([torch.full_like(xx, 0.1), 0.05 * (xx - 64) / 30])[None] * mask
    return flow, mask, hole


def test_harmonic_fill_is_smooth_decays_and_fills_holes():
    flow, mask, hole = _disc_flow()
    ext = extend_flow(flow, mask)
    inside = mask.bool().expand_as(flow)
    deep = torch.nn.functional.max_pool2d(1 - mask, 9, 1, 4) == 0  # well inside the face
    assert torch.allclose(ext[deep.expand_as(flow)], flow[deep.expand_as(flow)], atol=1e-6)
    assert ext[:, :, 0].abs().max() < 0.01 and ext[:, :, :, -1].abs().max() < 0.01, "still at the border"
    assert ext[0, 0][hole[0, 0].bool()].mean() > 0.08, "hole filled from its rim"
    jump = (ext[..., 1:, :] - ext[..., :-1, :]).abs().max()
    assert jump < 0.01, f"no tear: largest neighbour difference {jump:.4f}"
    far = harmonic_fill(flow, mask)[0, 0, 2, 64]
    near = harmonic_fill(flow, mask)[0, 0, 30, 64]
    assert 0 <= far < near < 0.1, "motion decays away from the face"
    assert inside.any()


def test_geom_disp_sign_and_units_point_target_pixels_to_the_source():
    """official_pwm.md §3a/§4: attribute = source xy - driving xy in 2·Δpx/size units, on the driving mesh."""
    from reenact.render.guidance import geom_disp

    size = 64
    drv = torch.tensor([[[10.0, 10, 0], [50, 10, 0], [10, 50, 0], [50, 50, 0]]])
    src = drv + torch.tensor([3.0, -2.0, 0.0])  # the surface sits 3 px right and 2 px up in the source
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])  # front-facing (negative cross in y-down coordinates)
    flow, mask = geom_disp(src, drv, faces, size)
    inside = mask[0, 0].bool()
    assert inside.sum() > 1000
    assert torch.allclose(flow[0, 0][inside], torch.tensor(3.0 * 2 / size))
    assert torch.allclose(flow[0, 1][inside], torch.tensor(-2.0 * 2 / size))
    assert (flow[0][:, ~inside] == 0).all(), "zero outside the face"
    ramp = torch.arange(size, dtype=torch.float32).view(1, 1, 1, size).expand(1, 1, size, size)
    warped = backward_warp(ramp, flow)
    assert torch.allclose(warped[0, 0, 30, 20], torch.tensor(23.0)), "target x=20 shows source x=23"


def test_neural_codes_render_on_the_mesh_and_learn():
    from reenact.models.generator import PWMGenerator
    from reenact.render.guidance import guidance_maps

    size = 32
    drv = torch.tensor([[[4.0, 4, 0], [28, 4, 0], [4, 28, 0], [28, 28, 0]]])
    src = drv + torch.tensor([2.0, 0.0, 0.0])
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])
    gen = PWMGenerator("both", num_levels=3, shrink=0.25, embed_dim=4, n_vertices=4, warp="exact")
    with torch.no_grad():
        gen.codes.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    maps = guidance_maps("both", gen.codes, src, drv, faces, size)
    cd, cs = maps["codes_d"], maps["codes_s"]
    assert cd.shape == (1, 4, size, size) and maps["disp"].shape == (1, 2, size, size)
    inside = cd.sum(1)[0] > 0
    assert torch.allclose(cd.sum(1)[0][inside], torch.tensor(1.0)), "barycentric weights of one-hot codes sum to 1"
    assert cd[0, :, 0, 0].abs().sum() == 0, "zero outside the face"
    assert cd[0, 0, 5, 5] > 0.8 and cs[0, 0, 5, 7] > 0.8, "vertex 0's code sits at vertex 0 in each space"
    out = gen(torch.rand(1, 3, size, size), **maps)
    out.out_img.mean().backward()
    assert gen.codes.grad is not None and gen.codes.grad.abs().sum() > 0


def test_unfold_relaxes_a_fold_and_leaves_the_rest_alone():
    """A flow that pushes a disc of the grid past its neighbours (a fold: det(I + ∇f) < 0 on its
    rim) comes out one-to-one and within the gradient cap; cells far from the fold, and an excluded
    patch, are unchanged to the bit; a flow without folds is returned as it is."""
    from reenact.render.warp import jacobian, unfold

    y, x = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    bump = torch.exp(-((x - 20) ** 2 + (y - 24) ** 2) / 8.0)  # (H, W)
    flow = torch.stack([6.0 * bump, torch.zeros_like(bump)])[None]  # (1, 2, H, W): a shear of 6 px
    assert jacobian(flow)[0].min() < 0, "the test flow folds"
    exclude = torch.zeros(1, 1, 48, 48, dtype=torch.bool)
    exclude[..., 40:, 40:] = True
    flow[..., 40:, 40:] = 3.0 * torch.randn(2, 8, 8)  # folds that are excluded
    out = unfold(flow, exclude=exclude)
    det, grad = jacobian(out)
    keep = torch.ones(47, 47, dtype=torch.bool)
    keep[39:, 39:] = False  # the cells with a corner in the excluded patch
    assert det[0][keep].min() >= 0.25 and grad[0][keep].max() <= 3.0
    assert torch.equal(out[..., 40:, 40:], flow[..., 40:, 40:]), "the excluded patch is left alone"
    assert torch.equal(out[..., :, 36:40], flow[..., :, 36:40]), "far from the fold nothing moves"
    smooth = 0.2 * flow.clone()
    smooth[..., 40:, 40:] = 0
    assert unfold(smooth) is smooth
