"""PatchGAN discriminator on an image pyramid (paper supplementary §1.2; official_pwm.md §5).

Each scale: four DownBlocks (conv4x4 pad 2, BN, lrelu, avgpool 2) 3->32->64->128->256, then a plain
conv4x4 pad 2 to one logit map. The block outputs are the feature-matching features. The pyramid
uses the authors' anti-alias downsampler; the seed uses scales (1, 2, 4) (256/128/64), the release (1,).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reenact.models.blocks import AntiAliasDownsample, ConvBlock


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128, 256), spectral_norm: bool = False):
        super().__init__()
        chans = (in_channels, *widths)
        self.blocks = nn.ModuleList(ConvBlock(a, b, "down", k=4, pad=2, spectral_norm=spectral_norm)
                                    for a, b in zip(chans[:-1], chans[1:]))
        self.logits = nn.Conv2d(widths[-1], 1, 4, padding=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.logits(x), feats


class MultiScaleDiscriminator(nn.Module):
    """One PatchDiscriminator per scale; returns {scale: (logits, features)}."""

    def __init__(self, scales: tuple[int, ...] = (1, 2, 4), spectral_norm: bool = False):
        super().__init__()
        self.scales = tuple(scales)
        self.downsample = nn.ModuleDict({f"x{s}": AntiAliasDownsample(3, s) for s in self.scales})
        self.discs = nn.ModuleDict({f"x{s}": PatchDiscriminator(spectral_norm=spectral_norm) for s in self.scales})

    def forward(self, img: torch.Tensor) -> dict[str, tuple[torch.Tensor, list[torch.Tensor]]]:
        return {f"x{s}": self.discs[f"x{s}"](self.downsample[f"x{s}"](img)) for s in self.scales}
