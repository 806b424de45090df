"""Building blocks of the PWM generator and discriminator (official_pwm.md §2).

All activations are leaky ReLU(0.1). Convolutions have biases. ``spectral_norm=True`` wraps a conv in
``torch.nn.utils.parametrizations.spectral_norm`` for training; converted official checkpoints carry
weights with the spectral normalisation already folded in, and are built with it off.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SLOPE = 0.1


def conv(cin: int, cout: int, k: int = 3, pad: int | None = None, spectral_norm: bool = False) -> nn.Module:
    """A biased conv; ``pad`` defaults to k // 2."""
    layer = nn.Conv2d(cin, cout, k, padding=k // 2 if pad is None else pad)
    return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer


class ConvBlock(nn.Module):
    """conv -> BatchNorm -> lrelu, with an optional 2x2 average pool after ("DownBlock") or nearest x2
    upsampling before ("UpBlock"). ``SameBlock`` is neither."""

    def __init__(self, cin: int, cout: int, mode: str = "same", k: int = 3, pad: int | None = None,
                 spectral_norm: bool = False):
        super().__init__()
        if mode not in ("same", "down", "up"):
            raise ValueError(f"mode must be same, down or up, got {mode!r}")
        self.mode = mode
        self.conv = conv(cin, cout, k, pad, spectral_norm)
        self.norm = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.leaky_relu(self.norm(self.conv(x)), SLOPE)
        return F.avg_pool2d(x, 2) if self.mode == "down" else x


class Spade(nn.Module):
    """SPADE: BN(x) without affine, modulated by the guidance m: BN(x)·(1 + γ(m)) + β(m).

    m must already be at x's resolution. γ and β come from a shared conv3x3 + lrelu of m.
    """

    def __init__(self, channels: int, mod_channels: int, hidden: int, spectral_norm: bool = False):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False, eps=1e-5, momentum=0.1)
        self.shared = conv(mod_channels, hidden, 3, spectral_norm=spectral_norm)
        self.gamma = conv(hidden, channels, 3, spectral_norm=spectral_norm)
        self.beta = conv(hidden, channels, 3, spectral_norm=spectral_norm)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.shared(m), SLOPE)
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class SpadeResBlock(nn.Module):
    """main = conv2(lrelu(spade2(conv1(lrelu(spade1(x, m))), m))); out = main + shortcut(x) (1x1 conv)."""

    def __init__(self, cin: int, cout: int, mod_channels: int, spectral_norm: bool = False):
        super().__init__()
        self.spade1 = Spade(cin, mod_channels, cout, spectral_norm)
        self.conv1 = conv(cin, cout, 3, spectral_norm=spectral_norm)
        self.spade2 = Spade(cout, mod_channels, cout, spectral_norm)
        self.conv2 = conv(cout, cout, 3, spectral_norm=spectral_norm)
        self.shortcut = conv(cin, cout, 1, spectral_norm=spectral_norm)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(self.spade1(x, m), SLOPE))
        h = self.conv2(F.leaky_relu(self.spade2(h, m), SLOPE))
        return h + self.shortcut(x)


def gaussian_1d(stride: int) -> torch.Tensor:
    """The authors' anti-alias kernel for scale 1/stride, one axis: σ = (s-1)/2, k = 2·round(4σ)+1,
    g(i) = exp(-(i - (k-1)/2)² / 2σ²), normalized. Their 2-D kernel is the outer product g gᵀ."""
    sigma = (stride - 1) / 2
    k = 2 * round(4 * sigma) + 1
    i = torch.arange(k, dtype=torch.float32)
    g = torch.exp(-((i - (k - 1) / 2) ** 2) / (2 * sigma ** 2))
    return g / g.sum()


class AntiAliasDownsample(nn.Module):
    """Gaussian blur (zero padding k//2) then ``[::s, ::s]`` subsampling from index 0 (official §3c).

    Computed separably and strided: a (k, 1) conv with stride (s, 1), then a (1, k) conv with stride
    (1, s). This equals the release's full 2-D blur followed by subsampling (the same weighted sums,
    in another order) at a fraction of the cost: the x32 level's 125x125 kernel would otherwise be
    most of the generator's work. The kernel is a fixed, non-persistent buffer: rebuilt, never loaded.
    """

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.stride, self.channels = stride, channels
        if stride > 1:
            self.register_buffer("kernel", gaussian_1d(stride).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        g = self.kernel.to(x.dtype)  # (C, 1, 1, k)
        pad = g.shape[-1] // 2
        x = F.pad(x, [pad] * 4)
        x = F.conv2d(x, g.transpose(2, 3), stride=(self.stride, 1), groups=self.channels)  # vertical (k, 1)
        x = F.conv2d(x, g, stride=(1, self.stride), groups=self.channels)  # horizontal (1, k)
        return x


def channels(stride: int, shrink: float = 0.5) -> int:
    """NF(s) = min(1024, max(int(64·shrink·s), 16)): 32, 64, ..., 1024 for s = 1..32 at shrink 0.5."""
    return min(1024, max(int(64 * shrink * stride), 16))


def strides(num_levels: int) -> list[int]:
    """1, 2, 4, ... for ``num_levels`` levels."""
    return [2 ** i for i in range(num_levels)]


def log2(stride: int) -> int:
    return int(math.log2(stride))
