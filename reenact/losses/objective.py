"""The one place that weights the losses (DESIGN §2.5). Returns the total and named, detached terms.

Generator terms (weights from the config's ``loss.weights``; a zero weight skips the term):
    pix              L1(Î, I)
    perceptual       VGG pyramid loss (eq. 1) of Î against I
    gan, feat_match  adversarial (eq. 2) and feature-matching losses of Î
    warp_perceptual  the same perceptual loss for the warped source I_w (supplementary §1.4); with
                     ``warp_levels="all"`` (the release) instead one single-scale VGG loss per predicted
                     flow level, on the area-resized source warped by that level's flow
    warp_gan, warp_feat_match  adversarial and feature-matching losses of I_w
Discriminator terms:
    d_rec            D loss on (I, Î)
    d_warp           D loss on (I, I_w), when any warp_gan weight is set
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from reenact.losses.adversarial import d_loss, g_loss
from reenact.losses.feature_matching import feature_matching
from reenact.models.generator import PWMOutput, warp_features

G_TERMS = ("pix", "perceptual", "gan", "feat_match", "warp_perceptual", "warp_gan", "warp_feat_match")


def _split(d_out: dict) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """{scale: (logits, feats)} -> ([logits per scale], [feats per scale])."""
    return [v[0] for v in d_out.values()], [v[1] for v in d_out.values()]


class Objective(nn.Module):
    """Weighted sum of the paper's losses.

    Args:
        weights: term -> weight (unknown names are rejected).
        perceptual: a PerceptualLoss on the image pyramid (any module (fake, real) -> scalar).
        gan_mode: "hinge" (seed) or "ls" (release).
        warp_levels: "final" (seed: losses on warp_img_s) or "all" (release: per flow level).
        level_perceptual: single-scale perceptual loss for ``warp_levels="all"``.
        warp: the generator's warp convention, for the per-level warps.
    """

    def __init__(self, weights: dict[str, float], perceptual: nn.Module | None, gan_mode: str = "hinge",
                 warp_levels: str = "final", level_perceptual: nn.Module | None = None, warp: str = "exact"):
        super().__init__()
        unknown = set(weights) - set(G_TERMS)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}; known: {G_TERMS}")
        if warp_levels not in ("final", "all"):
            raise ValueError("warp_levels must be 'final' or 'all'")
        self.weights = {k: float(v) for k, v in weights.items() if v}
        self.perceptual, self.level_perceptual = perceptual, level_perceptual
        self.gan_mode, self.warp_levels, self.warp = gan_mode, warp_levels, warp

    def _on(self, *names: str) -> bool:
        return any(n in self.weights for n in names)

    def generator(self, out: PWMOutput, img_s: torch.Tensor, target: torch.Tensor, disc: nn.Module):
        """(total, {term: detached value}) for a G step."""
        terms: dict[str, torch.Tensor] = {}
        if self._on("pix"):
            terms["pix"] = F.l1_loss(out.out_img, target)
        shared = self._perceptual_targets(target)  # real-image VGG features: once per step
        if self._on("perceptual"):
            terms["perceptual"] = self._perceptual(out.out_img, target, shared)
        if self._on("gan", "feat_match", "warp_feat_match"):
            _, real_feats = _split(disc(target))
        for prefix, img in (("", out.out_img), ("warp_", out.warp_img_s)):
            if self._on(prefix + "gan", prefix + "feat_match"):
                logits, feats = _split(disc(img))
                if self._on(prefix + "gan"):
                    terms[prefix + "gan"] = g_loss(logits, self.gan_mode)
                if self._on(prefix + "feat_match"):
                    terms[prefix + "feat_match"] = feature_matching(real_feats, feats)
        if self._on("warp_perceptual"):
            terms["warp_perceptual"] = self._warp_perceptual(out, img_s, target, shared)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, {k: v.detach() for k, v in terms.items()}

    def _perceptual(self, fake: torch.Tensor, target: torch.Tensor, shared) -> torch.Tensor:
        return self.perceptual(fake, target) if shared is None else self.perceptual(fake, target, targets=shared)

    def _perceptual_targets(self, target: torch.Tensor):
        """The target's pyramid features when two terms compare against it with the same loss, else None."""
        both = self._on("perceptual") and self._on("warp_perceptual") and self.warp_levels == "final"
        return self.perceptual.targets(target) if both and hasattr(self.perceptual, "targets") else None

    def _warp_perceptual(self, out: PWMOutput, img_s: torch.Tensor, target: torch.Tensor, shared=None) -> torch.Tensor:
        if self.warp_levels == "final":
            return self._perceptual(out.warp_img_s, target, shared)
        total = img_s.new_zeros(())
        for flow in out.flows.values():
            size = flow.shape[-2:]
            src = F.interpolate(img_s, size=size, mode="area")
            tgt = F.interpolate(target, size=size, mode="area")
            total = total + self.level_perceptual(warp_features(src, flow, self.warp), tgt)
        return total

    def discriminator(self, out: PWMOutput, target: torch.Tensor, disc: nn.Module):
        """(total, {term: detached value}) for a D step; fakes are detached."""
        real_logits, _ = _split(disc(target))
        terms = {"d_rec": d_loss(real_logits, _split(disc(out.out_img.detach()))[0], self.gan_mode)}
        if self._on("warp_gan"):
            terms["d_warp"] = d_loss(real_logits, _split(disc(out.warp_img_s.detach()))[0], self.gan_mode)
        total = sum(terms.values())
        return total, {k: v.detach() for k, v in terms.items()}
