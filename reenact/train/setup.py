"""Everything a training run holds, built from the config, the data and (optionally) a checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from reenact.config import Config, to_dict
from reenact.errors import BadInputError
from reenact.models.checkpoint import Checkpoint, Resume
from reenact.train import distributed, state


@dataclass
class Parts:
    cfg: Config
    dist: distributed.Dist
    gen: nn.Module
    disc: nn.Module
    objective: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: nn.Module | None
    faces: torch.Tensor
    topology: str
    n_vertices: int | None
    step: int = 0
    nan_skipped: int = 0
    notes: list[str] = field(default_factory=list)
    sync_g: distributed.GradientSync | None = None  # gradient averaging over ranks (no-op with one process)
    sync_d: distributed.GradientSync | None = None
    gen_step: nn.Module | None = None  # what the training step calls: ``gen``, or its torch.compile wrapper
    disc_step: nn.Module | None = None
    memory_format: torch.memory_format = torch.contiguous_format  # of the step's image inputs

    def inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(src, drv, guidance maps) of a collated batch on the training device: the images converted,
        resized and jittered there (:func:`reenact.data.dataset.to_device`), the maps rendered there."""
        from reenact.data.dataset import to_device
        from reenact.render.guidance import guidance_maps

        dev, size = self.dist.device, self.cfg.model.image_size
        src, drv = to_device(batch, dev, size, self.memory_format)
        on_dev = {k: batch[k].to(dev, non_blocking=True) for k in batch if k.startswith(("verts_", "face_id_", "bary_"))}
        cov = {side: (on_dev[f"face_id_{side}"], on_dev[f"bary_{side}"]) if f"face_id_{side}" in on_dev else None
               for side in ("src", "drv")}
        maps = guidance_maps(self.cfg.model.guidance, self.gen.codes, on_dev["verts_src"], on_dev["verts_drv"],
                             self.faces, size, cov["src"], cov["drv"])
        return src, drv, maps

    def checkpoint(self) -> Checkpoint:
        """This step's training checkpoint."""
        resume = Resume(self.opt_g.state_dict(), self.opt_d.state_dict(), to_dict(self.cfg),
                        state.rng_state(self.dist.device), self.nan_skipped)
        return Checkpoint(self.gen.state_dict(), self.cfg.model, "reenact train", self.topology, self.n_vertices,
                          self.step, self.disc.state_dict(), list(self.cfg.discriminator.scales),
                          self.ema.state_dict() if self.ema is not None else None, resume)


def build_parts(cfg: Config, dist: distributed.Dist, topology: tuple[str, object, object], init_from: str | None,
                weights_dir: str | None, notify: Callable[[str], None]) -> Parts:
    from reenact.build import build_discriminator, build_generator, build_objective

    name, triangles, flip = topology
    init = None
    if init_from:
        init, cfg = _read_init(init_from, cfg, name, len(flip), notify)
    n_vertices = len(flip) if cfg.model.guidance in ("neural_codes", "both") else None
    torch.manual_seed(cfg.train.seed)
    gen = build_generator(cfg.model, n_vertices)
    disc = build_discriminator(cfg.discriminator)
    if init is not None:
        gen.load_state_dict(init.generator, strict=True)
        _maybe_load_discriminator(disc, init, notify)
    gen, disc = distributed.prepare(gen, dist), distributed.prepare(disc, dist)
    objective = build_objective(cfg.loss, cfg.model.warp, weights_dir=weights_dir).to(dist.device)
    betas = tuple(cfg.train.betas)
    opt_g, opt_d = (_adam(m.parameters(), cfg.train.lr, betas) for m in (gen, disc))
    ema = None
    if cfg.train.ema > 0:
        import copy

        ema = copy.deepcopy(gen).eval().requires_grad_(False)
    faces = torch.as_tensor(triangles, dtype=torch.long, device=dist.device)
    parts = Parts(cfg, dist, gen, disc, objective, opt_g, opt_d, ema, faces, name, n_vertices,
                  sync_g=distributed.GradientSync(gen, dist), sync_d=distributed.GradientSync(disc, dist))
    return _speed_options(parts)


def _adam(params, lr: float, betas: tuple) -> torch.optim.Optimizer:
    """Fused Adam: one kernel per step, and it honours ``found_inf`` (the loop's device-side skip of a
    non-finite update), which the foreach and for-loop implementations ignore."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


def _keep_fused(opt: torch.optim.Optimizer) -> None:
    """``load_state_dict`` restores the saved hyperparameters, ``fused`` among them; a checkpoint written
    by reenact 0.1 (plain Adam) would silently turn the skip off."""
    for group in opt.param_groups:
        group.update(fused=True, foreach=None)
    for param, st in opt.state.items():
        if "step" in st:  # fused Adam keeps its step count on the parameter's device
            st["step"] = st["step"].to(param.device, torch.float32)


def _speed_options(parts: Parts) -> Parts:
    """``train.channels_last``, ``train.compile`` and ``train.cudnn_benchmark``. The compiled wrappers are
    only what the step calls: parameters, state dicts and checkpoints stay those of the plain modules."""
    cfg = parts.cfg.train
    if cfg.cudnn_benchmark and parts.dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.channels_last:
        parts.memory_format = torch.channels_last
        parts.gen.to(memory_format=torch.channels_last)
        parts.disc.to(memory_format=torch.channels_last)
    parts.gen_step, parts.disc_step = parts.gen, parts.disc
    if cfg.compile:
        parts.gen_step, parts.disc_step = torch.compile(parts.gen), torch.compile(parts.disc)
    return parts


def _read_init(path: str, cfg: Config, topology: str, n_vertices: int | None, notify) -> tuple[Checkpoint, Config]:
    """A reenact checkpoint for fine-tuning, and a new config whose model settings are the checkpoint's
    (but the config's image size); what changed is said once. ``cfg`` itself is left as it was."""
    ckpt = Checkpoint.load(path)
    model = replace(ckpt.model, image_size=cfg.model.image_size)
    changed = {k: v for k, v in asdict(model).items() if getattr(cfg.model, k) != v}
    if changed:
        notify(f"--init-from {Path(path).name}: model settings taken from the checkpoint: "
               + ", ".join(f"{k}={v}" for k, v in changed.items()))
    if model.guidance != "geom_disp" and ckpt.topology != topology:
        raise BadInputError(f"{path}: its per-vertex codes are for the {ckpt.topology} topology; the data uses {topology}")
    if model.guidance != "geom_disp" and ckpt.n_vertices != n_vertices:
        raise BadInputError(f"{path}: codes for {ckpt.n_vertices} vertices, the data has {n_vertices}")
    return ckpt, replace(cfg, model=model)


def _maybe_load_discriminator(disc: nn.Module, ckpt: Checkpoint, notify) -> None:
    sd = ckpt.discriminator
    try:
        if sd is None:
            raise RuntimeError("none stored")
        disc.load_state_dict(sd, strict=True)
    except RuntimeError:
        notify("--init-from: the checkpoint's discriminator does not match this config; D starts fresh")


def restore(parts: Parts, ckpt: Checkpoint) -> None:
    """Models, optimizers, EMA, step, RNG and the non-finite count from a training checkpoint."""
    parts.gen.load_state_dict(ckpt.generator)
    parts.disc.load_state_dict(ckpt.discriminator)
    parts.opt_g.load_state_dict(ckpt.resume.optimizer_g)
    parts.opt_d.load_state_dict(ckpt.resume.optimizer_d)
    _keep_fused(parts.opt_g)
    _keep_fused(parts.opt_d)
    if parts.ema is not None:
        parts.ema.load_state_dict(ckpt.generator_ema or ckpt.generator)
    parts.step, parts.nan_skipped = int(ckpt.step), int(ckpt.resume.nan_skipped)
    state.set_rng_state(ckpt.resume.rng, parts.dist.device)
