"""Perceptual loss (supplementary §1.1, eq. 1): L1 between VGG-19 activations, summed over layers
relu1_1 ... relu5_1 and over an image pyramid.

    L_P(I, Î) = Σ_s Σ_j mean_i |V_j(I_s)_i - V_j(Î_s)_i|

Inputs are RGB in [0, 1]; they are normalized with the ImageNet mean and std before VGG. The pyramid
uses the authors' anti-alias downsampler (Gaussian, then stride). VGG weights are torchvision's
ImageNet ``vgg19-dcbb9e9d.pth``, user-supplied (``reenact weights``); nothing downloads.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from reenact.models.blocks import AntiAliasDownsample

# torchvision's VGG-19 'E' configuration; "M" is a max-pool.
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg19().features`` children, in order: conv1_1, relu1_1, ..., pool5."""
    names, block, idx = [], 1, 1
    for v in _VGG19:
        if v == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


def load_vgg19(weights_dir: str | Path | None = None) -> nn.Module:
    """torchvision VGG-19 with the user's ImageNet weights (MissingWeightsError if absent)."""
    import torchvision

    from reenact import weights

    path = weights.resolve("vgg19", weights_dir)
    model = torchvision.models.vgg19()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


def random_vgg19(seed: int = 0) -> nn.Module:
    """torchvision VGG-19 with seeded random weights: no download, for smoke runs and tests only (its
    features are not ImageNet's, so the loss is not the paper's)."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchvision.models.vgg19()


class VGGFeatures(nn.Module):
    """Activations of ``layers`` (by name) of a torchvision VGG-19; frozen, eval mode."""

    def __init__(self, vgg: nn.Module, layers: tuple[str, ...] = DEFAULT_LAYERS):
        super().__init__()
        names = vgg19_layer_names()
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"unknown VGG-19 layers {unknown}")
        last = max(names.index(n) for n in layers)
        self.features = nn.Sequential(*list(vgg.features.children())[: last + 1]).eval().requires_grad_(False)
        self.taps = {names.index(n): n for n in layers}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # always frozen in eval mode
        return super().train(False)

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (img - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out


class PerceptualLoss(nn.Module):
    """Σ over pyramid scales and VGG layers of the mean absolute activation difference (eq. 1)."""

    def __init__(self, vgg: nn.Module, scales: tuple[int, ...] = (1, 2, 4), layers: tuple[str, ...] = DEFAULT_LAYERS):
        super().__init__()
        self.vgg = VGGFeatures(vgg, layers)
        self.down = nn.ModuleDict({f"x{s}": AntiAliasDownsample(3, s) for s in scales})

    @torch.no_grad()
    def targets(self, real: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """The real image's VGG activations per pyramid scale: computed once per step and shared by every
        term compared against the same image (the output's and the warped source's perceptual terms)."""
        return [self.vgg(down(real)) for down in self.down.values()]

    def forward(self, fake: torch.Tensor, real: torch.Tensor | None = None,
                targets: list[dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Σ_scales Σ_layers mean |φ(fake) − φ(real)|; ``targets`` (from :meth:`targets`) replaces ``real``."""
        targets = self.targets(real) if targets is None else targets
        total = fake.new_zeros(())
        for down, r in zip(self.down.values(), targets):
            f = self.vgg(down(fake))
            total = total + sum((f[k] - r[k]).abs().mean() for k in f)
        return total
