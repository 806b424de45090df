"""Counting what one call of a function costs: torch ops, host syncs, FLOPs, VGG-19 passes (bench_train)."""

from __future__ import annotations

import traceback
from collections import Counter
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

# aten ops that make the host wait for the device: a scalar read, or an output whose size depends on data
SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "repeat_interleave"}
HOST_READS = ("tolist", "cpu", "numpy")  # .item() dispatches _local_scalar_dense, counted there


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.syncs = 0, Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        name = func.overloadpacket.__name__
        if name == "_local_scalar_dense" and _in_optimizer():
            self.syncs["optimizer step counters (CPU tensors: no device sync on a GPU)"] += 1
        elif name in SYNC_OPS and not (name == "repeat_interleave" and (kwargs or {}).get("output_size") is not None):
            self.syncs[name] += 1
        elif name == "index" and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None):
            self.syncs["boolean index"] += 1
        return func(*args, **(kwargs or {}))


def _in_optimizer() -> bool:
    """Whether the current call comes from torch.optim: plain Adam reads each parameter's ``step``
    counter, a CPU tensor even when training on a GPU."""
    return any("/torch/optim/" in f.filename.replace("\\", "/") for f in traceback.extract_stack(limit=12))


@contextmanager
def _host_reads(counter: Counter):
    """Count Python-level reads of tensor values that dispatch no aten op on CPU (.tolist(), .cpu(), .numpy())."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def wrap(name):
        def call(self, *a, **k):
            counter[f".{name}()"] += 1
            return originals[name](self, *a, **k)
        return call

    for name in HOST_READS:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield
    finally:
        for name, f in originals.items():
            setattr(torch.Tensor, name, f)


def _vgg_modules(objective) -> list[torch.nn.Module]:
    from reenact.losses.perceptual import VGGFeatures

    return [m for m in objective.modules() if isinstance(m, VGGFeatures)]


def count_step(run, objective) -> dict:
    """Run ``run()`` once under the counters; ops, syncs (total and by kind), FLOPs and VGG passes."""
    reads, passes = Counter(), [0]
    hooks = [m.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1)) for m in _vgg_modules(objective)]
    flops = FlopCounterMode(display=False)
    try:
        with _host_reads(reads), _Ops() as ops:
            run()
        with flops:
            run()
    finally:
        for h in hooks:
            h.remove()
    syncs = ops.syncs + reads
    if "_local_scalar_dense" in syncs:  # .item(), float(t), bool(t), int(t)
        syncs["scalar read"] = syncs.pop("_local_scalar_dense")
    counted = sum(v for k, v in syncs.items() if not k.startswith("optimizer step counters"))
    return {"ops": ops.ops, "syncs": counted, "sync_detail": dict(syncs),
            "flops": flops.get_total_flops(), "vgg": passes[0] // 2}
