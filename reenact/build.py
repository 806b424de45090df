"""Builders: the only code that reads the config. Modules take explicit numbers."""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from reenact.config import Config, DiscriminatorConfig, LossConfig, ModelConfig
from reenact.models.discriminator import MultiScaleDiscriminator
from reenact.models.generator import PWMGenerator


def build_generator(cfg: ModelConfig, n_vertices: int | None = None) -> PWMGenerator:
    return PWMGenerator.from_config(cfg, n_vertices)


def build_discriminator(cfg: DiscriminatorConfig) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(tuple(cfg.scales), spectral_norm=cfg.spectral_norm)


def build_objective(cfg: LossConfig, warp: str, vgg: nn.Module | None = None,
                    weights_dir: str | Path | None = None):
    """The weighted objective; ``vgg`` defaults to torchvision VGG-19 with the user's ImageNet weights."""
    from reenact.losses.objective import Objective
    from reenact.losses.perceptual import PerceptualLoss, load_vgg19, random_vgg19

    if cfg.vgg not in ("imagenet", "random"):
        from reenact.config import ConfigError

        raise ConfigError(f"loss.vgg: expected imagenet or random, got {cfg.vgg!r}")
    needs_vgg = any(cfg.weights.get(k) for k in ("perceptual", "warp_perceptual"))
    perceptual = level = None
    if needs_vgg:
        vgg = vgg if vgg is not None else (random_vgg19() if cfg.vgg == "random" else load_vgg19(weights_dir))
        perceptual = PerceptualLoss(vgg, tuple(cfg.perceptual_scales))
        level = PerceptualLoss(vgg, (1,)) if cfg.warp_levels == "all" else None
    return Objective(cfg.weights, perceptual, cfg.gan_mode, cfg.warp_levels, level, warp)


def build_all(cfg: Config, n_vertices: int | None = None, vgg: nn.Module | None = None,
              weights_dir: str | Path | None = None):
    """(generator, discriminator, objective) for a config."""
    return (build_generator(cfg.model, n_vertices), build_discriminator(cfg.discriminator),
            build_objective(cfg.loss, cfg.model.warp, vgg, weights_dir))
