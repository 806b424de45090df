"""Key map from the authors' state dicts (official_pwm.md §7-§8, ``reference/*_state_dict.tsv``) to ours.

Spectral norm is folded exactly as the release evaluates it (§2): weight = weight_orig / σ with
σ = u · (W_mat v), W_mat = weight_orig reshaped to (out, -1), u and v the **stored** buffers (no power
iteration, no SVD). Dropped on purpose, and reported:
* ``mesh_renderer.tri``: the FLAME triangles; topology comes from the face-model backend;
* ``downsamples.*`` / ``downs.*``: fixed Gaussian kernels, rebuilt by the model (x1's is NaN);
* ``shortcut_layers.x32.*``: built by the release but never used in its forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from reenact.errors import BadInputError

_DROPS = (
    (r"^mesh_renderer\.tri$", "FLAME triangles: topology comes from the face model"),
    (r"^downsamples\.", "fixed Gaussian anti-alias kernel, rebuilt"),
    (r"^downs\.", "fixed Gaussian anti-alias kernel, rebuilt"),
    (r"^shortcut_layers\.x32\.", "unused by the release's forward"),
)

_RENAMES = (
    (r"^embeds$", "codes"),
    (r"^down_layers\.(x\d+)\.", r"encoder.\1."),
    (r"^shortcut_layers\.(x\d+)\.", r"skips.\1."),
    (r"^up_layers\.(x\d+)_spade\.non_identity_shortcut\.", r"decoder.\1.spade.shortcut."),
    (r"^up_layers\.(x\d+)_spade\.(spade[12])\.shared_conv\.0\.", r"decoder.\1.spade.\2.shared."),
    (r"^up_layers\.(x\d+)_spade\.(spade[12])\.gamma_conv\.", r"decoder.\1.spade.\2.gamma."),
    (r"^up_layers\.(x\d+)_spade\.(spade[12])\.beta_conv\.", r"decoder.\1.spade.\2.beta."),
    (r"^up_layers\.(x\d+)_spade\.(spade[12])\.norm\.", r"decoder.\1.spade.\2.norm."),
    (r"^up_layers\.(x\d+)_spade\.(conv[12])\.", r"decoder.\1.spade.\2."),
    (r"^up_layers\.(x\d+)_flow\.", r"decoder.\1.flow."),
    (r"^up_layers\.(x\d+)_up\.", r"decoder.\1.up."),
    (r"^up_layers\.x1_out\.", "out."),
    (r"^discs\.(x\d+)\.layers\.(\d+)\.", r"discs.\1.blocks.\2."),
    (r"^discs\.(x\d+)\.out_convs\.0\.", r"discs.\1.logits."),
)


@dataclass
class Conversion:
    """The converted state dict and what happened to every official key."""

    state_dict: dict[str, torch.Tensor]
    renamed: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    folded: list[str] = field(default_factory=list)


def fold_spectral_norm(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Replace every ``P.weight_orig/weight_u/weight_v`` triple by ``P.weight = weight_orig / σ``."""
    out, folded = {}, []
    for key, value in sd.items():
        if key.endswith((".weight_u", ".weight_v")):
            continue
        if key.endswith(".weight_orig"):
            prefix = key[: -len(".weight_orig")]
            try:
                u, v = sd[prefix + ".weight_u"], sd[prefix + ".weight_v"]
            except KeyError:
                raise BadInputError(f"{prefix}: weight_orig without weight_u/weight_v") from None
            w_mat = value.reshape(value.shape[0], -1)
            sigma = torch.dot(u, torch.mv(w_mat, v))
            out[prefix + ".weight"] = value / sigma
            folded.append(prefix)
        else:
            out[key] = value
    return out, folded


def official_key(key: str) -> tuple[str | None, str | None]:
    """(our key, None) for a mapped official key, (None, reason) for a dropped one, (None, None) if unknown."""
    for pattern, reason in _DROPS:
        if re.search(pattern, key):
            return None, reason
    for pattern, repl in _RENAMES:
        if re.search(pattern, key):
            return re.sub(pattern, repl, key), None
    return None, None


def convert(official: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> Conversion:
    """Map an official state dict onto ``target`` (our model's state dict: names and shapes).

    ``renamed`` maps every placed official key to ours (a folded ``weight_orig``/``weight_u``/``weight_v``
    triple all map to our ``weight``); ``dropped`` gives the reason for each dropped key. Raises
    BadInputError if an official key has no home, a shape differs, or one of ours is left empty.
    """
    conv = Conversion({})
    kept = {}
    for key, value in official.items():
        reason = official_key(key)[1]
        if reason:
            conv.dropped[key] = reason
        else:
            kept[key] = value
    folded_sd, conv.folded = fold_spectral_norm(kept)
    folded = set(conv.folded)
    for key, value in folded_sd.items():
        ours = official_key(key)[0]
        if ours is None or ours not in target:
            raise BadInputError(f"official key {key} has no counterpart in this model ({ours})")
        if tuple(target[ours].shape) != tuple(value.shape):
            raise BadInputError(f"{key} -> {ours}: shape {tuple(value.shape)} != {tuple(target[ours].shape)}")
        conv.state_dict[ours] = value.to(target[ours].dtype)
        prefix = key.rsplit(".", 1)[0]
        sources = [f"{prefix}.weight_{x}" for x in ("orig", "u", "v")] if key.endswith(".weight") and prefix in folded \
            else [key]
        conv.renamed.update(dict.fromkeys(sources, ours))
    missing = sorted(set(target) - set(conv.state_dict))
    if missing:
        raise BadInputError(f"the official checkpoint leaves {len(missing)} parameter(s) empty, e.g. {missing[:3]}")
    return conv


def infer_guidance(official: dict[str, torch.Tensor]) -> str:
    """geom_disp / neural_codes / both, from the SPADE modulation input width (2 / 16 / 18)."""
    key = next((k for k in official if re.search(r"spade1\.shared_conv\.0\.weight(_orig)?$", k)), None)
    if key is None:
        raise BadInputError("not a PWM generator state dict (no SPADE modulation conv)")
    width = official[key].shape[1]
    guidance = {2: "geom_disp", 16: "neural_codes", 18: "both"}.get(width)
    if guidance is None:
        raise BadInputError(f"unexpected guidance width {width} in {key}")
    return guidance
