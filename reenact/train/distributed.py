"""One process or many (``torchrun``): rank, device, and the explicit gradient all-reduce.

Gradients are averaged by hand after each backward (one flattened all-reduce per network) instead of
wrapping the networks in DDP: the G step runs D without updating it, which DDP's hooks do not allow
cleanly. Parameters start equal (broadcast from rank 0) and see the same averaged gradients, so they
stay equal. NCCL on CUDA, gloo on CPU. BatchNorm layers become SyncBatchNorm on CUDA, as in the
release; on CPU (gloo) SyncBatchNorm is not available, so BN buffers are averaged at checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from reenact.devices import resolve_device


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str) -> Dist:
    """Read torchrun's environment; start the process group when there are several processes."""

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local, dev)


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def prepare(model: nn.Module, d: Dist) -> nn.Module:
    """SyncBatchNorm on multi-GPU runs; parameters and buffers broadcast from rank 0."""
    if d.active and d.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(d.device)
    if d.active:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)
    return model


def average_gradients(model: nn.Module, d: Dist) -> None:
    """Mean of every parameter's gradient over the ranks (missing gradients count as zero)."""
    if not d.active:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p))
        offset += n


def average_buffers(model: nn.Module, d: Dist) -> None:
    """Mean of the floating-point buffers (BatchNorm running statistics) over the ranks."""
    if not d.active:
        return
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b.data)
            b.data /= d.world


def any_rank(flag: bool, d: Dist) -> bool:
    """True on every rank when ``flag`` is true on any (a stop request, a non-finite loss)."""
    if not d.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
