"""reenact checkpoints, and import of the authors' release files (official_pwm.md §8).

A reenact checkpoint is a ``torch.save``d dict, read back with ``weights_only=True``:

    format: "reenact-checkpoint", version: 1
    generator: state dict; discriminator: state dict or None
    model: {guidance, num_levels, shrink, embed_dim, warp, spectral_norm, image_size}
    topology: "flame5023" (official) or the face-model topology it was trained on; n_vertices
    source: where the weights came from; step: training step
    generator_ema (training, optional): the EMA generator, which drive prefers

The release's ``PWM_<guidance>.pth`` holds ``{'generator', 'discriminator', 'global_step'}``; a bare
generator state dict is accepted too. Official imports record ``warp: "official"`` (the release's grid
mismatch) and fold spectral norm into plain weights (``spectral_norm: False``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reenact.errors import BadInputError, OutputExistsError
from reenact.models.discriminator import MultiScaleDiscriminator
from reenact.models.generator import PWMGenerator
from reenact.models.official import convert, infer_guidance

FORMAT, VERSION = "reenact-checkpoint", 1
FLAME_TOPOLOGY, FLAME_VERTICES = "flame5023", 5023


@dataclass
class ImportReport:
    guidance: str
    placed: int
    folded: int
    dropped: dict[str, str] = field(default_factory=dict)
    discriminator: bool = False
    step: int | None = None


def _torch_load(path: Path) -> object:
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, refused globals: all mean "not a safe checkpoint"
        raise BadInputError(f"{path}: not a readable torch checkpoint ({exc.__class__.__name__})") from None


def read_official(path: str | Path) -> tuple[dict, dict | None, int | None]:
    """(generator state dict, discriminator state dict or None, global step or None) of a release file."""
    path = Path(path)
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise BadInputError(f"{path}: expected a dict, got {type(obj).__name__}")
    if "generator" in obj:
        return obj["generator"], obj.get("discriminator"), obj.get("global_step")
    if any(k.startswith("up_layers.") for k in obj):
        return obj, None, None
    raise BadInputError(f"{path}: not a PWM checkpoint (no 'generator' entry, no generator keys)")


def official_model_meta(guidance: str) -> dict:
    return {"guidance": guidance, "num_levels": 6, "shrink": 0.5, "embed_dim": 16, "warp": "official",
            "spectral_norm": False, "image_size": 256}


def import_official(src: str | Path, out: str | Path, force: bool = False) -> ImportReport:
    """Convert a release ``PWM_*.pth`` into a reenact checkpoint at ``out`` (written atomically)."""
    out = Path(out)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: already exists (use --force to overwrite)")
    gen_sd, disc_sd, step = read_official(src)
    guidance = infer_guidance(gen_sd)
    meta = official_model_meta(guidance)
    n_vertices = FLAME_VERTICES if guidance != "geom_disp" else None
    gen = generator_from_meta(meta, n_vertices)
    conv = convert(gen_sd, gen.state_dict())
    gen.load_state_dict(conv.state_dict, strict=True)
    report = ImportReport(guidance, len(set(conv.renamed.values())), len(conv.folded), dict(conv.dropped), step=step)
    disc_state = None
    if disc_sd is not None:
        disc = MultiScaleDiscriminator(scales=(1,), spectral_norm=False)
        dconv = convert(disc_sd, disc.state_dict())
        disc.load_state_dict(dconv.state_dict, strict=True)
        disc_state, report.discriminator = disc.state_dict(), True
        report.dropped.update({f"discriminator/{k}": v for k, v in dconv.dropped.items()})
    save({"format": FORMAT, "version": VERSION, "generator": gen.state_dict(), "discriminator": disc_state,
          "model": meta, "discriminator_scales": [1], "topology": FLAME_TOPOLOGY, "n_vertices": n_vertices,
          "source": f"official release file {Path(src).name}", "step": step}, out)
    return report


def save(ckpt: dict, out: Path) -> None:
    """torch.save to a temporary file beside ``out``, then rename: never a half-written checkpoint."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: str | Path) -> dict:
    """A reenact checkpoint (weights_only). Official release files get a clear hint to import them first."""
    path = Path(path)
    obj = _torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = " (an official release file? convert it: reenact weights import-official FILE -o OUT.pt)" \
            if isinstance(obj, dict) and "generator" in obj else ""
        raise BadInputError(f"{path}: not a reenact checkpoint{hint}")
    if obj.get("version") != VERSION:
        raise BadInputError(f"{path}: checkpoint version {obj.get('version')} is not supported (expected {VERSION})")
    return obj


def generator_from_meta(meta: dict, n_vertices: int | None) -> PWMGenerator:
    return PWMGenerator(meta["guidance"], num_levels=meta["num_levels"], shrink=meta["shrink"],
                        embed_dim=meta["embed_dim"], n_vertices=n_vertices, warp=meta["warp"],
                        spectral_norm=meta["spectral_norm"])


def load_generator(ckpt: dict, device: torch.device) -> PWMGenerator:
    """The checkpoint's generator (its EMA copy when training kept one), in eval mode on ``device``."""
    gen = generator_from_meta(ckpt["model"], ckpt.get("n_vertices"))
    gen.load_state_dict(ckpt.get("generator_ema") or ckpt["generator"], strict=True)
    return gen.to(device).eval()
