"""reenact checkpoints (:class:`Checkpoint`), and import of the authors' release files (official_pwm.md §8).

On disk a reenact checkpoint is a ``torch.save``d dict of plain tensors and containers, read back with
``weights_only=True``:

    format: "reenact-checkpoint", version: 1
    generator: state dict; discriminator: state dict or None; discriminator_scales
    model: the ModelConfig as a dict {guidance, num_levels, shrink, embed_dim, warp, spectral_norm, image_size}
    topology: "flame5023" (official) or the face-model topology it was trained on; n_vertices
    source: where the weights came from; step: training step
    generator_ema (training, optional): the EMA generator, which drive prefers
    optimizer_g, optimizer_d, config, rng, nan_skipped (training checkpoints: what --resume needs)

The release's ``PWM_<guidance>.pth`` holds ``{'generator', 'discriminator', 'global_step'}``; a bare
generator state dict is accepted too. Official imports record ``warp: "official"`` (the release's grid
mismatch) and fold spectral norm into plain weights (``spectral_norm: False``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from reenact.config import ModelConfig
from reenact.errors import BadInputError, OutputExistsError
from reenact.io.inputs import check_distinct
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


def official_model(guidance: str) -> ModelConfig:
    """The release's model settings: 6 levels, the release's grid mismatch, spectral norm folded."""
    return ModelConfig(guidance=guidance, num_levels=6, shrink=0.5, embed_dim=16, warp="official",
                       spectral_norm=False, image_size=256)


@dataclass
class Resume:
    """What a training checkpoint adds for ``--resume``."""

    optimizer_g: dict
    optimizer_d: dict
    config: dict
    rng: dict
    nan_skipped: int = 0


@dataclass
class Checkpoint:
    """One reenact checkpoint: weights, the one shape of model settings (:class:`ModelConfig`), the
    geometry it was trained on, and for training checkpoints the state ``--resume`` needs."""

    generator: dict
    model: ModelConfig
    source: str = ""
    topology: str | None = None
    n_vertices: int | None = None
    step: int | None = None
    discriminator: dict | None = None
    discriminator_scales: list[int] = field(default_factory=lambda: [1])
    generator_ema: dict | None = None
    resume: Resume | None = None

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        """Read a reenact checkpoint (weights_only); official release files get a hint to import them."""
        path = Path(path)
        obj = _torch_load(path)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            hint = " (an official release file? convert it: reenact weights import-official FILE -o OUT.pt)" \
                if isinstance(obj, dict) and "generator" in obj else ""
            raise BadInputError(f"{path}: not a reenact checkpoint{hint}")
        if obj.get("version") != VERSION:
            raise BadInputError(f"{path}: checkpoint version {obj.get('version')} is not supported (expected {VERSION})")
        try:
            model = ModelConfig(**obj["model"])
            resume = Resume(**{f.name: obj[f.name] for f in fields(Resume) if f.name in obj}) \
                if "optimizer_g" in obj else None
            return cls(generator=obj["generator"], model=model, resume=resume,
                       **{f.name: obj[f.name] for f in fields(cls) if f.name in obj and f.name not in ("generator", "model", "resume")})
        except (KeyError, TypeError) as exc:
            raise BadInputError(f"{path}: a malformed reenact checkpoint ({exc.__class__.__name__}: {exc})") from None

    def save(self, out: str | Path) -> None:
        """Written to a temporary file beside ``out``, then renamed: never a half-written checkpoint."""
        d = {"format": FORMAT, "version": VERSION, **{f.name: getattr(self, f.name) for f in fields(self)}}
        d["model"] = asdict(self.model)
        d.update(asdict(d.pop("resume")) if self.resume is not None else {})
        _save(d, Path(out))

    def build_generator(self, device: torch.device) -> PWMGenerator:
        """The generator (its EMA copy when training kept one), in eval mode on ``device``."""
        gen = PWMGenerator.from_config(self.model, self.n_vertices)
        gen.load_state_dict(self.generator_ema or self.generator, strict=True)
        return gen.to(device).eval()


def import_official(src: str | Path, out: str | Path, force: bool = False) -> ImportReport:
    """Convert a release ``PWM_*.pth`` into a reenact checkpoint at ``out`` (written atomically)."""
    out = Path(out)
    check_distinct(out, official_checkpoint=src)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: already exists (use --force to overwrite)")
    gen_sd, disc_sd, step = read_official(src)
    guidance = infer_guidance(gen_sd)
    model = official_model(guidance)
    n_vertices = FLAME_VERTICES if guidance != "geom_disp" else None
    with torch.device("meta"):  # names and shapes only: a random initialisation took 2.5 s on CPU
        gen = PWMGenerator.from_config(model, n_vertices)
    conv = convert(gen_sd, gen.state_dict())
    gen.load_state_dict(conv.state_dict, strict=True, assign=True)  # the non-persistent blur kernels stay unsaved
    report = ImportReport(guidance, len(set(conv.renamed.values())), len(conv.folded), dict(conv.dropped), step=step)
    disc_state = None
    if disc_sd is not None:
        disc = MultiScaleDiscriminator(scales=(1,), spectral_norm=False)
        dconv = convert(disc_sd, disc.state_dict())
        disc.load_state_dict(dconv.state_dict, strict=True)
        disc_state, report.discriminator = disc.state_dict(), True
        report.dropped.update({f"discriminator/{k}": v for k, v in dconv.dropped.items()})
    Checkpoint(gen.state_dict(), model, f"official release file {Path(src).name}", FLAME_TOPOLOGY, n_vertices, step,
               disc_state, [1]).save(out)
    return report


def _save(ckpt: dict, out: Path) -> None:
    """torch.save to a temporary file beside ``out``, then rename."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
