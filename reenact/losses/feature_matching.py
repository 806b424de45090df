"""Discriminator feature matching (supplementary §1.3).

    L_FM = mean_s Σ_j mean_i |D_s,j(I)_i - D_s,j(Î)_i|

over the outputs of every discriminator block j at every scale s; real features are detached.
"""

from __future__ import annotations

import torch


def feature_matching(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """real_feats / fake_feats: per scale, the list of block outputs."""
    per_scale = [sum((f - r.detach()).abs().mean() for r, f in zip(rs, fs)) for rs, fs in zip(real_feats, fake_feats)]
    return torch.stack(per_scale).mean()
