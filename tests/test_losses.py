"""Losses: closed-form GAN and feature-matching checks, VGG layers by name, and one G/D step on the tiny config."""

from __future__ import annotations

import pytest
import torch

from conftest import ROOT
from reenact.build import build_all, build_objective
from reenact.config import load_config
from reenact.errors import MissingWeightsError
from reenact.losses.adversarial import d_loss, g_loss
from reenact.losses.feature_matching import feature_matching
from reenact.losses.perceptual import VGGFeatures, vgg19_layer_names


def _logits():
    a = torch.full((2, 1, 3, 3), 0.5)  # scale 1: every patch 0.5
    b = torch.tensor([2.0, -2.0]).view(2, 1, 1, 1)  # scale 2: one confident real, one confident fake
    return [a, b]


def test_hinge_closed_form():
    real, fake = _logits(), [-x for x in _logits()]
    # scale 1: relu(1-0.5) + relu(1-0.5) = 1.0 ; scale 2: mean(relu(1-[2,-2])) + mean(relu(1+[-2,2])) = 1.5 + 1.5
    assert torch.isclose(d_loss(real, fake, "hinge"), torch.tensor((1.0 + 3.0) / 2))
    # G: -mean(fake): scale 1: 0.5, scale 2: 0 -> mean 0.25
    assert torch.isclose(g_loss(fake, "hinge"), torch.tensor(0.25))


def test_least_squares_closed_form():
    real, fake = _logits(), [-x for x in _logits()]
    # scale 1: (1-0.5)^2 + 0.5^2 = 0.5 ; scale 2: mean([1, 9]) + mean([4, 4]) = 9
    assert torch.isclose(d_loss(real, fake, "ls"), torch.tensor((0.5 + 9.0) / 2))
    # G: mean((1 - fake)^2): scale 1: 2.25 ; scale 2: mean([9, 1]) = 5
    assert torch.isclose(g_loss(fake, "ls"), torch.tensor((2.25 + 5.0) / 2))
    with pytest.raises(ValueError):
        g_loss(fake, "wgan")


def test_feature_matching_closed_form():
    real = [[torch.zeros(1, 2, 4, 4), torch.ones(1, 3, 2, 2)], [torch.zeros(1, 1, 2, 2)]]
    fake = [[torch.full((1, 2, 4, 4), 0.5), torch.ones(1, 3, 2, 2)], [torch.full((1, 1, 2, 2), -2.0)]]
    assert torch.isclose(feature_matching(real, fake), torch.tensor((0.5 + 0.0 + 2.0) / 2))


def test_vgg_layers_by_name_equal_torchvision_slices():
    import torchvision

    torch.manual_seed(0)
    vgg = torchvision.models.vgg19()  # random weights, passed explicitly
    names = vgg19_layer_names()
    assert len(names) == len(vgg.features) and names[1] == "relu1_1" and names[29] == "relu5_1"
    feats = VGGFeatures(vgg)
    x = torch.rand(1, 3, 64, 64)
    ours = feats(x)
    y = (x - feats.mean) / feats.std
    for name, end in (("relu1_1", 2), ("relu2_1", 7), ("relu3_1", 12), ("relu4_1", 21), ("relu5_1", 30)):
        assert torch.allclose(ours[name], vgg.features[:end](y), atol=1e-6), name


def test_missing_vgg_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("REENACT_WEIGHTS", raising=False)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["loss.vgg=imagenet"])
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth"):
        build_objective(cfg.loss, cfg.model.warp, weights_dir=tmp_path)


@pytest.mark.parametrize("gan_mode, warp_levels", [("ls", "final"), ("hinge", "final"), ("ls", "all")])
def test_one_g_and_d_step_update_every_parameter(gan_mode, warp_levels):
    """With hinge, the logit bias of D gets an exactly zero gradient while every logit lies in (-1, 1)
    (−1 from the real term, +1 from the fake term), as at initialisation; LS moves it."""
    import torchvision

    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"loss.gan_mode={gan_mode}", f"loss.warp_levels={warp_levels}"])
    gen, disc, objective = build_all(cfg, vgg=torchvision.models.vgg19())
    gen.train(), disc.train()
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas))
    n = cfg.model.image_size
    img_s, target = torch.rand(2, 3, n, n), torch.rand(2, 3, n, n)
    disp = torch.randn(2, 2, n, n) * 0.05
    before_g = {k: v.detach().clone() for k, v in gen.named_parameters()}
    before_d = {k: v.detach().clone() for k, v in disc.named_parameters()}
    # D step
    out = gen(img_s, disp)
    d_total, d_terms = objective.discriminator(out, target, disc)
    opt_d.zero_grad()
    d_total.backward()
    opt_d.step()
    # G step
    out = gen(img_s, disp)
    g_total, g_terms = objective.generator(out, img_s, target, disc)
    opt_g.zero_grad()
    g_total.backward()
    opt_g.step()
    assert set(g_terms) == set(cfg.loss.weights) and set(d_terms) == {"d_rec", "d_warp"}
    assert all(torch.isfinite(v) for v in [g_total, d_total, *g_terms.values(), *d_terms.values()])
    frozen_g = [k for k, v in gen.named_parameters() if torch.equal(v, before_g[k])]
    frozen_d = [k for k, v in disc.named_parameters() if torch.equal(v, before_d[k])]
    expected_d = [] if gan_mode == "ls" else [f"discs.x{s}.logits.bias" for s in cfg.discriminator.scales]
    assert not frozen_g and frozen_d == expected_d, (frozen_g, frozen_d)


def test_real_image_vgg_features_are_computed_once_per_g_step():
    """perceptual and warp_perceptual compare two images against the same target: its VGG pyramid is
    computed once (2 scales in the tiny config: 2 real + 4 fake VGG passes, not 4 + 4), and the loss is
    the same as computing it twice."""
    import torchvision

    from reenact.losses.perceptual import PerceptualLoss

    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    gen, disc, objective = build_all(cfg, vgg=torchvision.models.vgg19())
    n = cfg.model.image_size
    img_s, target = torch.rand(2, 3, n, n), torch.rand(2, 3, n, n)
    out = gen(img_s, torch.randn(2, 2, n, n) * 0.05)
    calls = []
    handle = objective.perceptual.vgg.register_forward_hook(lambda m, inp, o: calls.append(inp[0].requires_grad))
    try:
        _, terms = objective.generator(out, img_s, target, disc)
    finally:
        handle.remove()
    scales = len(cfg.loss.perceptual_scales)
    assert calls.count(False) == scales and calls.count(True) == 2 * scales, calls
    twice = PerceptualLoss.forward(objective.perceptual, out.out_img, target)  # real features recomputed
    assert torch.allclose(terms["perceptual"], twice.detach())
