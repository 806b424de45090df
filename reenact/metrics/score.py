"""`reenact score`: FID, CSIM, AKD, APD and AED of generated clips (supplementary §3).

Protocols:

* ``same`` (same-identity reconstruction): every metric against the ground-truth driving frames
  (``reference``);
* ``cross`` (cross-identity): FID and CSIM against the source images, APD and AED against the
  driver; AKD does not apply (landmarks carry identity).

The formulas are in the metric modules (:mod:`~reenact.metrics.fid`, :mod:`~reenact.metrics.identity`,
:mod:`~reenact.metrics.landmarks`, :mod:`~reenact.metrics.pose_expression`). Frames without a face on
either side are excluded from CSIM, AKD, APD and AED, and counted. Inception features are cached per
clip and FID statistics per set, both keyed by content hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reenact.errors import BadInputError
from reenact.metrics.inputs import Clip, discover, pair, unmatched
from reenact.metrics.report import MetricResult, ScoreReport

METRICS = ("fid", "csim", "akd", "apd", "aed")
PAIRED = ("csim", "akd", "apd", "aed")


@dataclass
class ScoreOptions:
    protocol: str = "same"  # same | cross
    reference: str | None = None  # same: ground-truth driving frames
    source: str | None = None  # cross: source images (FID, CSIM)
    driver: str | None = None  # cross: driving clips (APD, AED)
    metrics: tuple[str, ...] = METRICS
    fid_model: str = "nvidia"  # nvidia | pytorch-fid
    landmarks: str = "auto"  # auto | fan | mediapipe
    face_model: str = "mediapipe"  # mediapipe | flame
    identity: str = "auto"  # auto | arcface | dlib
    flame_dir: str | None = None
    weights_dir: str | None = None
    device: str = "auto"
    every: int = 1
    allow_unpaired: bool = False
    cache_dir: str | None = None  # None: $XDG_CACHE_HOME/reenact/score
    use_cache: bool = True
    resolution: int = 256


def validate(opts: ScoreOptions) -> None:
    """Option combinations that cannot work, as one clear BadInputError."""
    unknown = [m for m in opts.metrics if m not in METRICS]
    if unknown or not opts.metrics:
        raise BadInputError(f"--metrics: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(METRICS)}")
    if opts.every < 1:
        raise BadInputError("--every must be at least 1")
    if opts.protocol == "same":
        if opts.reference is None:
            raise BadInputError("--protocol same needs --reference (the ground-truth driving frames)")
        if opts.source or opts.driver:
            raise BadInputError("--source and --driver are for --protocol cross; --protocol same uses --reference")
    elif opts.protocol == "cross":
        if opts.reference:
            raise BadInputError("--reference is for --protocol same; --protocol cross uses --source and --driver")
        if {"fid", "csim"} & set(opts.metrics) and not opts.source:
            raise BadInputError("--protocol cross needs --source for FID and CSIM (or leave them out with --metrics)")
        if {"apd", "aed"} & set(opts.metrics) and not opts.driver:
            raise BadInputError("--protocol cross needs --driver for APD and AED (or leave them out with --metrics)")
    else:
        raise BadInputError(f"--protocol {opts.protocol}: expected same or cross")


def score(generated: str | Path, opts: ScoreOptions,
          progress: Callable[[int, int], None] | None = None) -> ScoreReport:
    """Score the clips in ``generated`` under ``opts``; see the module docstring."""
    from reenact.metrics.runner import Runner

    validate(opts)
    gen = discover(generated)
    refs = _comparison_sets(opts)
    pairs = {role: pair(gen, clips, role, opts.allow_unpaired) for role, clips in refs.items()}
    runner = Runner(opts)
    try:
        sides = runner.run(gen, refs, pairs, progress)
    finally:
        runner.close()
    results = _results(opts, runner, sides, pairs)
    for role, clips in refs.items():
        if extra := unmatched(pairs[role], clips):
            sides.notes.append(f"{role}: {len(extra)} clip(s) without a generated clip were ignored ({', '.join(extra[:3])})")
    inputs = {k: str(v) for k, v in (("reference", opts.reference), ("source", opts.source), ("driver", opts.driver)) if v}
    return ScoreReport(opts.protocol, str(generated), inputs, results, sides.notes, sides.per_frame, sides.cache)


def _comparison_sets(opts: ScoreOptions) -> dict[str, list[Clip]]:
    if opts.protocol == "same":
        return {"reference": discover(opts.reference)}
    sets = {}
    if opts.source and {"fid", "csim"} & set(opts.metrics):
        sets["source"] = discover(opts.source)
    if opts.driver and {"apd", "aed"} & set(opts.metrics):
        sets["driver"] = discover(opts.driver)
    return sets


def _against(opts: ScoreOptions, metric: str) -> str:
    if opts.protocol == "same":
        return "reference"
    return "source" if metric in ("fid", "csim") else "driver"


def _results(opts: ScoreOptions, runner, sides, pairs: dict) -> list[MetricResult]:
    from reenact.metrics.per_frame import masked_mean

    out = []
    for m in opts.metrics:
        against = _against(opts, m)
        label = runner.label(m)
        if m == "fid":
            out.append(runner.fid_result(sides, against))
            continue
        if m == "akd" and opts.protocol == "cross":
            out.append(MetricResult(m, None, label, against, note="same-identity only (supplementary §3): landmarks carry identity"))
            continue
        if not sides.values[m]:
            why = "unpaired inputs" if pairs.get(against) is None else "no frame pairs"
            out.append(MetricResult(m, None, label, against, note=why))
            continue
        value, used, excluded = masked_mean(np.concatenate(sides.values[m]))
        out.append(MetricResult(m, None if np.isnan(value) else value, label, against, used, excluded,
                                note="no frame had a face on both sides" if np.isnan(value) else ""))
    return out
