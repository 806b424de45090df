"""GradientSync on two gloo ranks: bucketed, overlapped all-reduce gives exactly the mean gradient."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 2),
                         nn.Linear(2, 2))  # the last layer is unused below: its bucket gets zeros


def _grads(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    net.zero_grad(set_to_none=True)
    net[:5](x).square().sum().backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


def _rank(rank: int, world: int, store: str, result) -> None:
    from reenact.train.distributed import Dist, GradientSync

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.manual_seed(1)
        inputs = [torch.randn(2, 3, 8, 8) for _ in range(world)]  # every rank knows every rank's batch
        net = _net()
        expected = [torch.stack(g).mean(0) for g in zip(*[_grads(net, x) for x in inputs])]
        sync = GradientSync(net, Dist(rank, world, rank, torch.device("cpu")), bucket_mb=0.001)  # several buckets
        net.zero_grad(set_to_none=True)
        sync.arm()
        net[:5](inputs[rank]).square().sum().backward()
        sync.finish()
        ok = all(torch.allclose(p.grad, e, atol=1e-6) for p, e in zip(net.parameters(), expected))
        result[rank] = (ok, len(sync.buckets))
    finally:
        dist.destroy_process_group()


def test_gradient_sync_gives_the_mean_gradient_on_two_ranks(tmp_path):
    result = mp.Manager().dict()
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), result), nprocs=2, join=True)
    assert result[0][0] and result[1][0], dict(result)
    assert result[0][1] > 2, "the test covers several buckets"
