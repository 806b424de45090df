"""A tiny generator overfits one real pair: reconstruction L1 falls by at least half within 300 CPU steps.

Frames 0 (source) and 40 (target) of testdata videos/single_face.mp4, cropped and fitted with the
built-in MediaPipe geometry at 64²; guidance = the rendered displacement; losses = L1 + perceptual
(randomly initialised VGG-19) + warp perceptual.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from conftest import ROOT, fit_largest, read_frames
from reenact.build import build_generator, build_objective
from reenact.config import load_config
from reenact.face.mesh import topology
from reenact.render.guidance import geom_disp

SIZE, MAX_STEPS = 64, 300


def _pair(testdata, pipeline):
    frames = read_frames(testdata / "videos" / "single_face.mp4")
    imgs, verts = [], []
    for f in (frames[0], frames[40]):
        crop, _, fit = fit_largest(pipeline, f, SIZE)
        imgs.append(torch.from_numpy(crop).permute(2, 0, 1).float()[None] / 255)
        verts.append(torch.as_tensor(fit.vertices)[None])
    disp, _ = geom_disp(verts[0], verts[1], torch.as_tensor(topology()), SIZE)
    return imgs[0], imgs[1], disp


def test_tiny_generator_overfits_a_real_pair(testdata, pipeline):
    import torchvision

    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        "train.lr=1e-3", "loss.perceptual_scales=[1]",
        "loss.weights={pix: 1.0, perceptual: 0.1, warp_perceptual: 0.1}"])
    src, tgt, disp = _pair(testdata, pipeline)
    gen = build_generator(cfg.model)
    objective = build_objective(cfg.loss, cfg.model.warp, vgg=torchvision.models.vgg19())
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas))

    def l1() -> float:
        gen.eval()
        with torch.no_grad():
            value = F.l1_loss(gen(src, disp).out_img, tgt).item()
        gen.train()
        return value

    start, t0 = l1(), time.perf_counter()
    for step in range(1, MAX_STEPS + 1):
        total, terms = objective.generator(gen(src, disp), src, tgt, disc=None)
        opt.zero_grad()
        total.backward()
        opt.step()
        if step % 50 == 0 and l1() <= 0.5 * start:
            break
    end = l1()
    print(f"overfit: reconstruction L1 {start:.4f} -> {end:.4f} ({end / start:.2f}x) in {step} steps, "
          f"{time.perf_counter() - t0:.1f} s; terms {sorted(terms)}")
    assert np.isfinite(end) and end <= 0.5 * start
