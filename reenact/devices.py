"""The compute device: one resolver for every command (drive, train, score, evaluate, live)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reenact.errors import DeviceError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU raises DeviceError."""
    import torch  # heavy (1.8 s): imported here so that commands check their inputs before paying for it

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available (use --device cpu)")
    if name != "cpu" and not name.startswith("cuda"):
        raise DeviceError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def jit_load(path: str, map_location) -> torch.jit.ScriptModule:
    """``torch.jit.load`` (TorchScript archives run no arbitrary pickle code) without its deprecation warning."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(path, map_location=map_location)
