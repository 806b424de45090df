"""Configuration: dataclasses loaded from YAML (``safe_load``; unknown keys rejected) with ``--set a.b=v``
overrides. Only the builders (:mod:`reenact.build`) read these; modules take explicit numbers."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reenact.errors import ReenactError


class ConfigError(ReenactError):
    """A config file or override is malformed."""


@dataclass
class ModelConfig:
    guidance: str = "geom_disp"  # geom_disp | neural_codes | both
    num_levels: int = 6
    shrink: float = 0.5
    embed_dim: int = 16
    warp: str = "exact"  # exact (our training) | official (the release's grid mismatch)
    spectral_norm: bool = True
    image_size: int = 256


@dataclass
class DiscriminatorConfig:
    scales: list[int] = field(default_factory=lambda: [1, 2, 4])  # seed: 256/128/64; release: [1]
    spectral_norm: bool = True


@dataclass
class LossConfig:
    gan_mode: str = "hinge"  # hinge (seed) | ls (release)
    warp_levels: str = "final"  # final (seed) | all (release: one VGG loss per flow level)
    perceptual_scales: list[int] = field(default_factory=lambda: [1, 2, 4])
    vgg: str = "imagenet"  # imagenet (the user's vgg19-dcbb9e9d.pth) | random (seeded; smoke runs and tests only)
    weights: dict[str, float] = field(default_factory=lambda: {
        "perceptual": 10.0, "gan": 1.0, "feat_match": 10.0,
        "warp_perceptual": 10.0, "warp_gan": 1.0, "warp_feat_match": 10.0})


@dataclass
class TrainConfig:
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    batch_size: int = 16  # per process
    steps: int = 300_000
    seed: int = 0
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    ema: float = 0.0  # EMA decay of G (0 = off), e.g. 0.999
    flip: float = 0.5  # horizontal-flip probability
    jitter: float = 0.1  # colour jitter strength (brightness, contrast, saturation factors 1 ± jitter)
    workers: int = 8  # DataLoader processes (each decodes frames and rasterizes mesh coverage)
    log_every: int = 10
    sample_every: int = 500
    val_every: int = 1000
    val_pairs: int = 16
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    max_nan_steps: int = 10  # abort after this many non-finite steps in a row
    channels_last: bool = False  # NHWC memory format for G, D and their image inputs (faster convolutions on GPUs)
    compile: bool = False  # torch.compile G and D for the training step (checkpoints keep the plain modules)
    cudnn_benchmark: bool = True  # let cuDNN pick convolution algorithms for the fixed training shapes (CUDA)
    coverage_in_workers: bool = True  # rasterize mesh coverage in the DataLoader workers (no host sync in the
    # step; ~25 ms of CPU per mesh per 256² sample); false: in the step on the device (5 syncs per mesh)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a field's type; numbers written like 1e-3 (a string in YAML 1.1) become floats."""
    origin = typing.get_origin(hint) or hint
    if origin is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif origin is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif origin in (bool, str, list, dict) and isinstance(value, origin):
        return value
    raise ConfigError(f"{where}: expected {getattr(origin, '__name__', origin)}, got {value!r}")


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _build(hints[name], value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, hints[name], f"{where}.{name}")
    return cls(**kwargs)


def _apply_override(data: dict, item: str) -> None:
    import yaml

    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key.path=value")
    path, raw = item.split("=", 1)
    keys = path.strip().split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item}: {k} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def bundled_configs_dir() -> Path:
    """The configs that ship with the package (``configs/`` in a checkout, ``reenact/_configs`` in a wheel)."""
    here = Path(__file__).resolve().parent
    installed = here / "_configs"
    return installed if installed.is_dir() else here.parent / "configs"


def bundled_configs() -> dict[str, Path]:
    """Bundled config names (file stems) and their files."""
    folder = bundled_configs_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def resolve_config(value: str | Path) -> Path:
    """A config file path, or the name of a bundled config (``tiny``, ``paper_geom_disp``, with or without
    ``.yaml``). A path that exists wins over a bundled name."""
    path = Path(value)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    bundled = bundled_configs()
    if path.parent in (Path("."), Path("configs")) and name in bundled:  # "tiny", "tiny.yaml", "configs/tiny.yaml"
        return bundled[name]
    raise ConfigError(f"{value}: config file not found (bundled configs: {', '.join(bundled) or 'none'}; "
                      f"see `reenact train --list-configs`)")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file (a path or a bundled name), then ``a.b=v`` overrides (values parsed as YAML)."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = resolve_config(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    for item in overrides:
        _apply_override(data, item)
    return _build(Config, data, str(path) if path else "config")


def to_dict(cfg: Config) -> dict:
    """The resolved config as plain data (for saving beside a run or inside a checkpoint)."""
    return dataclasses.asdict(cfg)
