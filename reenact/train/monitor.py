"""What a run writes besides checkpoints: ``metrics.jsonl`` lines, PNG sample grids, validation L1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class MetricsLog:
    """Appends one JSON object per line to ``RUN/metrics.jsonl`` (main process only)."""

    def __init__(self, run: Path, enabled: bool):
        self.path, self.enabled, self.t0 = run / "metrics.jsonl", enabled, time.time()

    def write(self, **fields) -> None:
        if not self.enabled:
            return
        row = {k: (float(v) if isinstance(v, (torch.Tensor, np.floating)) else v) for k, v in fields.items()}
        row["time"] = round(time.time() - self.t0, 3)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def guidance_image(maps: dict) -> torch.Tensor:
    """An RGB picture of the guidance: the displacement as (0.5 + 2·dx, 0.5 + 2·dy, 0.5), else 3 code channels."""
    if maps.get("disp") is not None:
        d = maps["disp"]
        return torch.cat([0.5 + 2 * d, torch.full_like(d[:, :1], 0.5)], 1).clamp(0, 1)
    return maps["codes_d"][:, :3].clamp(0, 1)


def save_grid(path: Path, columns: list[torch.Tensor], rows: int = 4) -> None:
    """PNG of ``columns`` (each (B, 3, H, W) in [0, 1]) side by side, the first ``rows`` samples."""
    from PIL import Image

    from reenact.io import atomic_output

    cols = [c[:rows].detach().float().cpu().clamp(0, 1) for c in columns]
    grid = torch.cat([torch.cat(list(c), 1) for c in cols], 2)  # (3, rows·H, cols·W)
    arr = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, force=True) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


@torch.no_grad()
def reconstruction_l1(gen, batches: list[dict], inputs) -> float:
    """Mean L1(Î, I) of ``gen`` (eval mode) over fixed pairs; ``inputs`` turns a batch into (src, drv,
    guidance maps) on the device."""
    was = gen.training
    gen.eval()
    total, count = 0.0, 0
    for b in batches:
        src, drv, maps = inputs(b)
        out = gen(src, **maps).out_img
        total += F.l1_loss(out.float(), drv, reduction="sum").item() / drv[0].numel()
        count += len(drv)
    gen.train(was)
    return total / max(count, 1)


def fixed_batches(dataset, n_pairs: int, batch: int, offset: int = 10**15) -> list[dict]:
    """``n_pairs`` deterministic pairs (sample numbers far from the training stream), in batches."""
    from torch.utils.data import default_collate

    items = [dataset[offset + i] for i in range(n_pairs)]
    return [default_collate(items[i:i + batch]) for i in range(0, len(items), batch)]
