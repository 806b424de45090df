"""Adversarial losses (supplementary §1.2, eq. 2) for a multi-scale PatchGAN.

Each scale's logit map is averaged over its patches first, then the scales are averaged.
Sign convention: D outputs high logits for real images. Both losses are minimized.

hinge (seed):
    L_D = mean_s [ mean_i relu(1 - D_s(I)_i) + mean_i relu(1 + D_s(Î)_i) ]
    L_G = -mean_s mean_i D_s(Î)_i
least squares (release, ``"ls"``):
    L_D = mean_s [ mean_i (1 - D_s(I)_i)^2 + mean_i D_s(Î)_i^2 ]
    L_G = mean_s mean_i (1 - D_s(Î)_i)^2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = ("hinge", "ls")


def _mean_over_scales(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(values).mean()


def d_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor], mode: str = "hinge") -> torch.Tensor:
    """Discriminator loss over scales; logits are lists with one (B, 1, h, w) map per scale."""
    if mode == "hinge":
        per = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits)]
    elif mode == "ls":
        per = [((1 - r) ** 2).mean() + (f ** 2).mean() for r, f in zip(real_logits, fake_logits)]
    else:
        raise ValueError(f"gan mode must be one of {MODES}, got {mode!r}")
    return _mean_over_scales(per)


def g_loss(fake_logits: list[torch.Tensor], mode: str = "hinge") -> torch.Tensor:
    """Generator adversarial loss over scales."""
    if mode == "hinge":
        per = [-f.mean() for f in fake_logits]
    elif mode == "ls":
        per = [((1 - f) ** 2).mean() for f in fake_logits]
    else:
        raise ValueError(f"gan mode must be one of {MODES}, got {mode!r}")
    return _mean_over_scales(per)
