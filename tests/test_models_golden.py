"""Numerical parity with the authors' networks on the documented fake weights (reference/golden/GOLDEN.md §8)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from conftest import SHARED
from reenact.models.discriminator import MultiScaleDiscriminator
from reenact.models.generator import PWMGenerator
from reenact.models.official import convert, infer_guidance

GOLDEN = SHARED / "reference" / "golden"
# GOLDEN.md §8, absolute tolerances for a float32 reimplementation.
ATOL = {"out_img": 5e-5, "alpha": 5e-5, "warp_img_s": 1e-4, "x1": 1e-6, "x2": 1e-6, "x4": 5e-6, "x8": 5e-6,
        "x16": 1e-5, "mesh": 5e-6, "disc": 1e-5}


def fake_official(net: str) -> dict[str, torch.Tensor]:
    if not GOLDEN.is_dir():
        pytest.skip(f"golden reference data not found: {GOLDEN}")
    sys.path.insert(0, str(GOLDEN))
    import fake_ckpt

    return fake_ckpt.make_fake_state_dict(fake_ckpt.read_key_listing(GOLDEN / f"fake_ckpt_{net}.tsv"))


def official_generator(guidance: str) -> tuple[PWMGenerator, object]:
    sd = fake_official(guidance)
    assert infer_guidance(sd) == guidance
    model = PWMGenerator(guidance, n_vertices=None if guidance == "geom_disp" else 5023, warp="official").eval()
    conv = convert(sd, model.state_dict())
    model.load_state_dict(conv.state_dict, strict=True)
    return model, conv


def _close(name: str, ours: torch.Tensor, ref: np.ndarray, atol: float) -> float:
    err = float(np.abs(ours.detach().numpy() - ref).max())
    assert err <= atol, f"{name}: max |diff| {err:.3g} > {atol:g}"
    return err


@pytest.mark.parametrize("guidance", ["geom_disp", "neural_codes", "both"])
def test_generator_reproduces_golden_arrays(guidance):
    torch.manual_seed(0)
    model, conv = official_generator(guidance)
    z = np.load(GOLDEN / f"golden_{guidance}.npz")
    maps = {k: torch.from_numpy(z[n].astype(np.float32)) if n in z.files else None
            for k, n in (("disp", "disp_map"), ("codes_d", "codes_d"), ("codes_s", "codes_s"))}
    with torch.no_grad():
        r = model(torch.from_numpy(z["img_s"]), **maps)
    errs = {
        "out_img": _close("out_img", r.out_img[:1], z["out_img"], ATOL["out_img"]),
        "out_img_sub4": _close("out_img_sub4", r.out_img[:, :, ::4, ::4], z["out_img_sub4"], ATOL["out_img"]),
        "alpha": _close("alpha", r.alpha[:1], z["alpha"], ATOL["alpha"]),
        "alpha_sub4": _close("alpha_sub4", r.alpha[:, :, ::4, ::4], z["alpha_sub4"], ATOL["alpha"]),
        "warp_img_s": _close("warp_img_s", r.warp_img_s[:1], z["warp_img_s"], ATOL["warp_img_s"]),
        "warp_img_s_sub4": _close("warp_img_s_sub4", r.warp_img_s[:, :, ::4, ::4], z["warp_img_s_sub4"],
                                  ATOL["warp_img_s"]),
        "flow_x1": _close("flow_x1", r.flows["x1"][:1], z["flow_x1"], ATOL["x1"]),
        "flow_x1_sub4": _close("flow_x1_sub4", r.flows["x1"][:, :, ::4, ::4], z["flow_x1_sub4"], ATOL["x1"]),
    }
    for s in ("x2", "x4", "x8", "x16"):
        errs[f"flow_{s}"] = _close(f"flow_{s}", r.flows[s], z[f"flow_{s}"], ATOL[s])
    for s in (2, 4, 8, 16, 32):
        if f"mesh_flow_x{s}" in z.files:
            errs[f"mesh_flow_x{s}"] = _close(f"mesh_flow_x{s}", r.mesh_flows[f"x{s}"], z[f"mesh_flow_x{s}"], ATOL["mesh"])
        else:  # neural_codes: the mesh flow is zero
            assert (r.mesh_flows[f"x{s}"] == 0).all()
    print(f"{guidance}: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    assert set(conv.dropped) >= {"mesh_renderer.tri", "downsamples.x1.weight", "shortcut_layers.x32.conv.weight_orig"}


def test_official_keys_all_find_a_home_with_equal_shapes():
    for guidance, n_keys in (("geom_disp", 382), ("neural_codes", 383), ("both", 383)):
        sd = fake_official(guidance)
        assert len(sd) == n_keys
        model = PWMGenerator(guidance, n_vertices=None if guidance == "geom_disp" else 5023)
        conv = convert(sd, model.state_dict())
        assert set(conv.renamed) | set(conv.dropped) == set(sd), "every official tensor placed or reported dropped"
        assert not set(conv.renamed) & set(conv.dropped)
        assert set(conv.state_dict) == set(model.state_dict())
        for key in conv.dropped:
            assert key.startswith(("mesh_renderer.", "downsamples.", "shortcut_layers.x32."))


def test_spectral_norm_folds_with_the_stored_u_and_v():
    from reenact.models.official import fold_spectral_norm

    sd = fake_official("geom_disp")
    folded, names = fold_spectral_norm(sd)
    p = "up_layers.x2_spade.conv1"
    w, u, v = sd[f"{p}.weight_orig"], sd[f"{p}.weight_u"], sd[f"{p}.weight_v"]
    sigma = torch.dot(u, w.reshape(w.shape[0], -1) @ v)
    assert torch.equal(folded[f"{p}.weight"], w / sigma)
    assert not torch.allclose(sigma, torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), 2)), "not the SVD σ"
    assert len(names) == 62, "61 SN convs in use plus the unused shortcut_layers.x32"


def test_discriminator_reproduces_golden_logits_and_features():
    sd = fake_official("discriminator")
    disc = MultiScaleDiscriminator(scales=(1,)).eval()
    conv = convert(sd, disc.state_dict())
    disc.load_state_dict(conv.state_dict, strict=True)
    gold = json.loads((GOLDEN / "discriminator_golden.json").read_text())
    img = torch.from_numpy(np.load(GOLDEN / "golden_geom_disp.npz")["img_s"])
    with torch.no_grad():
        logits, feats = disc(img)["x1"]
    err = _close("D logits", logits, np.array(gold["logits"], np.float32), ATOL["disc"])
    for f, ref in zip(feats, gold["features"]):
        assert list(f.shape) == ref["shape"]
        x = f.double()
        _close("D ch_mean", x.mean((2, 3)), np.array(ref["ch_mean"]), ATOL["disc"])
        _close("D ch_std", x.std((2, 3), unbiased=False), np.array(ref["ch_std"]), ATOL["disc"])
    print(f"discriminator: logits max |diff| {err:.1e}")
