"""The result of `reenact score`: one row per metric with its model label, and per-frame values.

Written as JSON, CSV (one row per metric) and an optional per-frame CSV, each atomically.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

NO_FACE_POLICY = "excluded"  # frames without a face on either side are left out, and counted
PER_FRAME_FIELDS = ("clip", "frame", "generated_face", "reference_face", "csim", "akd", "apd", "aed")


@dataclass
class MetricResult:
    """One metric: value (None when it could not be computed; ``note`` says why)."""

    metric: str
    value: float | None
    model: str
    against: str
    frames: int = 0  # frame pairs (or images, for FID) that entered the value
    excluded_no_face: int = 0
    policy: str = NO_FACE_POLICY
    note: str = ""


@dataclass
class ScoreReport:
    protocol: str
    generated: str
    inputs: dict[str, str]
    results: list[MetricResult]
    notes: list[str] = field(default_factory=list)
    per_frame: list[dict] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # FID: per-clip feature and per-set statistics cache hits

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "generated": self.generated, "inputs": self.inputs,
                "metrics": {r.metric: {k: _finite(v) for k, v in asdict(r).items() if k != "metric"} for r in self.results},
                "notes": self.notes, "fid_cache": self.cache}


def _finite(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_json(report: ScoreReport, path: str | Path, force: bool = False) -> None:
    from reenact.io import atomic_output

    with atomic_output(path, force) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def write_csv(report: ScoreReport, path: str | Path, force: bool = False) -> None:
    from reenact.io import atomic_output

    fields = ("metric", "value", "model", "against", "frames", "excluded_no_face", "policy", "note")
    with atomic_output(path, force) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in report.results:
            w.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})


def write_per_frame(report: ScoreReport, path: str | Path, force: bool = False) -> None:
    from reenact.io import atomic_output

    with atomic_output(path, force) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=PER_FRAME_FIELDS)
        w.writeheader()
        for row in report.per_frame:
            w.writerow({k: _cell(row.get(k)) for k in PER_FRAME_FIELDS})


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)
