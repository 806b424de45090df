"""The PWM generator (paper Fig. 1 and supplementary §2; official_pwm.md §3).

An encoder (x1 ... x32) turns the source image into features; the guidance map (geometric
displacement, posed neural codes, or both) modulates a SPADE residual decoder that, at each level,
predicts a fresh flow, backward-warps the encoder's skip features with it and upsamples. The x32
bottleneck feature is warped by the (downsampled) mesh flow. The last flow also warps the source
image (``warp_img_s``, for the warping-constraint losses).

Warp conventions (official_pwm.md §4), selected by ``warp``:
* ``"official"`` reproduces the release: base grid 2·i/(W-1) - 1 with ``grid_sample(align_corners=False)``
  (a zero flow is a slight zoom-out, not an identity) and predicted flows scaled by 2/(W'-1).
  Required for the authors' checkpoints.
* ``"exact"``: a true identity base grid for ``align_corners=False`` and flows scaled by 2/W', so
  predicted and mesh flows share the renderer's units (2·Δpx/size). For our own training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from reenact.models.blocks import AntiAliasDownsample, ConvBlock, SpadeResBlock, channels, strides
from reenact.render.warp import identity_grid

GUIDANCES = ("geom_disp", "neural_codes", "both")
WARPS = ("official", "exact")


@dataclass
class PWMOutput:
    """out_img, alpha: (B, 3|1, H, W) in [0, 1]; warp_img_s: the source warped by flows['x1'];
    flows: predicted flows 'x16' ... 'x1' (normalized units); mesh_flows: the guidance flow pyramid 'x1' ... 'x32'."""

    out_img: torch.Tensor
    alpha: torch.Tensor
    warp_img_s: torch.Tensor
    flows: dict[str, torch.Tensor]
    mesh_flows: dict[str, torch.Tensor]


def base_grid(b: int, h: int, w: int, warp: str, device, dtype) -> torch.Tensor:
    """(B, H, W, 2) base sampling grid of the chosen convention (x in channel 0)."""
    if warp != "official":
        return identity_grid(b, h, w, device, dtype)
    xs = torch.arange(w, device=device, dtype=dtype) * (2.0 / (w - 1)) - 1
    ys = torch.arange(h, device=device, dtype=dtype) * (2.0 / (h - 1)) - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(b, h, w, 2)


def warp_features(feat: torch.Tensor, flow: torch.Tensor, warp: str) -> torch.Tensor:
    """Backward warp: sample ``feat`` (B, C, H, W) at base + ``flow`` (B, 2, H, W); zero padding."""
    b, _, h, w = flow.shape
    grid = base_grid(b, h, w, warp, flow.device, flow.dtype) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class PWMGenerator(nn.Module):
    """The Progressive Warping Module generator.

    Args:
        guidance: "geom_disp" (2-ch displacement), "neural_codes" (16-ch codes) or "both" (codes, then displacement).
        num_levels: encoder levels x1 ... x2^(n-1) (6 gives an 8x8 bottleneck at 256²).
        shrink: channel factor; NF(s) = min(1024, max(int(64·shrink·s), 16)).
        embed_dim: neural-code channels.
        n_vertices: topology size for the learnable per-vertex codes (V, embed_dim); None for no codes.
        warp: "official" or "exact" (module docstring).
        spectral_norm: wrap the convs that carry SN in the release (training only).
    """

    @classmethod
    def from_config(cls, model, n_vertices: int | None = None) -> "PWMGenerator":
        """The one constructor from model settings (a :class:`reenact.config.ModelConfig`): used by the
        builders and by checkpoints."""
        return cls(model.guidance, num_levels=model.num_levels, shrink=model.shrink, embed_dim=model.embed_dim,
                   n_vertices=n_vertices, warp=model.warp, spectral_norm=model.spectral_norm)

    def __init__(self, guidance: str, num_levels: int = 6, shrink: float = 0.5, embed_dim: int = 16,
                 n_vertices: int | None = None, warp: str = "official", spectral_norm: bool = False):
        super().__init__()
        if guidance not in GUIDANCES or warp not in WARPS:
            raise ValueError(f"guidance must be one of {GUIDANCES} and warp one of {WARPS}")
        self.guidance, self.warp, self.levels = guidance, warp, strides(num_levels)
        self.uses_codes = guidance in ("neural_codes", "both")
        mod_ch = {"geom_disp": 2, "neural_codes": embed_dim, "both": embed_dim + 2}[guidance]
        nf = {s: channels(s, shrink) for s in self.levels}
        sn = spectral_norm
        self.encoder = nn.ModuleDict({"x1": ConvBlock(3 + embed_dim * self.uses_codes, nf[1], "same", spectral_norm=sn)})
        for s in self.levels[1:]:
            self.encoder[f"x{s}"] = ConvBlock(nf[s // 2], nf[s], "down", spectral_norm=sn)
        self.skips = nn.ModuleDict({f"x{s}": ConvBlock(nf[s], nf[s], "same", spectral_norm=sn) for s in self.levels[:-1]})
        self.downsample = nn.ModuleDict({f"x{s}": AntiAliasDownsample(mod_ch, s) for s in self.levels[1:]})
        self.decoder = nn.ModuleDict()
        for s in reversed(self.levels[1:]):
            self.decoder[f"x{s}"] = nn.ModuleDict({
                "spade": SpadeResBlock(2 * nf[s], nf[s], mod_ch, sn),
                "flow": nn.Conv2d(nf[s], 2, 3, padding=1),
                "up": ConvBlock(nf[s], nf[s // 2], "up", spectral_norm=sn)})
        self.out = nn.Conv2d(2 * nf[1], 4, 3, padding=1)
        self.codes = nn.Parameter(torch.rand(n_vertices, embed_dim)) if self.uses_codes and n_vertices else None

    def _flow(self, raw: torch.Tensor) -> torch.Tensor:
        """Flow head output (pixels at the upsampled resolution) -> normalized units at 2x resolution."""
        up = F.interpolate(raw, scale_factor=2, mode="bilinear", align_corners=False)
        h, w = up.shape[-2:]
        dw, dh = (w - 1, h - 1) if self.warp == "official" else (w, h)
        return up * up.new_tensor([2.0 / dw, 2.0 / dh]).view(1, 2, 1, 1)

    def modulation(self, disp: torch.Tensor | None, codes_d: torch.Tensor | None) -> torch.Tensor:
        """The full-resolution guidance map: disp, codes_d, or [codes_d, disp] (codes first)."""
        if self.guidance == "geom_disp":
            return disp
        if self.guidance == "neural_codes":
            return codes_d
        return torch.cat([codes_d, disp], 1)

    def forward(self, img_s: torch.Tensor, disp: torch.Tensor | None = None, codes_d: torch.Tensor | None = None,
                codes_s: torch.Tensor | None = None) -> PWMOutput:
        """img_s (B, 3, H, W) in [0, 1]; disp (B, 2, H, W) backward flow d->s; codes_* (B, E, H, W)."""
        x = torch.cat([img_s, codes_s], 1) if self.uses_codes else img_s
        feats = {}
        for s in self.levels:
            x = feats[s] = self.encoder[f"x{s}"](x)
        mod = self.modulation(disp, codes_d)
        mods = {1: mod, **{s: self.downsample[f"x{s}"](mod) for s in self.levels[1:]}}
        mesh = {s: self._mesh_flow(m) for s, m in mods.items()}
        mesh[1] = disp if disp is not None else torch.zeros_like(img_s[:, :2])
        top = self.levels[-1]
        h = torch.cat([feats[top], warp_features(feats[top], mesh[top], self.warp)], 1)  # (B, 2·NF, 8, 8)
        flows = {}
        for s in reversed(self.levels[1:]):
            level = self.decoder[f"x{s}"]
            h = level["spade"](h, mods[s])
            flow = flows[s // 2] = self._flow(level["flow"](h))
            skip = warp_features(self.skips[f"x{s // 2}"](feats[s // 2]), flow, self.warp)
            h = torch.cat([level["up"](h), skip], 1)
        raw = self.out(h)  # (B, 4, H, W): RGB logits, alpha logit
        return PWMOutput(torch.sigmoid(raw[:, :3]), torch.sigmoid(raw[:, 3:]),
                         warp_features(img_s, flows[1], self.warp),
                         {f"x{s}": f for s, f in flows.items()}, {f"x{s}": m for s, m in mesh.items()})

    def _mesh_flow(self, m: torch.Tensor) -> torch.Tensor:
        if self.guidance == "geom_disp":
            return m
        if self.guidance == "both":
            return m[:, -2:]
        return torch.zeros_like(m[:, :2])
