"""`reenact evaluate`: the paper's results table (supplementary §3) on a preprocessed split.

For each protocol (:mod:`~reenact.metrics.eval_data`) and each row (:mod:`~reenact.metrics.eval_rows`),
every pair is driven (or read), its frames' features are extracted (:mod:`~reenact.metrics.eval_features`)
and the per-frame values of CSIM, AKD, APD and AED are computed against the protocol's comparison side
(:func:`~reenact.metrics.per_frame.per_frame`). A row's value is the masked mean over all its frames, the
same function the per-frame CSV is checked against; FID compares the row's frames with the comparison
set (same-identity: the ground-truth frames; cross-identity: the source frames).

Resumable: driven frames (``EVAL/cache/driven``), features (``EVAL/cache/features``) and Fréchet
distances (``EVAL/cache/fid``) are stored atomically as they are made and reused by any later run.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from reenact.data import clips, layout
from reenact.devices import resolve_device
from reenact.errors import BadInputError
from reenact.metrics.eval_data import PROTOCOLS, Pair, load_split, make_pairs
from reenact.metrics.eval_features import Extractor, Features
from reenact.metrics.eval_rows import CopyRow, EngineRow, MethodRow
from reenact.metrics.per_frame import PAIRED, masked_mean, per_frame

METRICS = ("fid", *PAIRED)
STRIP_FRAMES = 4


@dataclass
class EvaluateOptions:
    split: str = "test"  # test | train | all
    checkpoints: tuple[str, ...] = ()
    methods: tuple[tuple[str, str], ...] = ()  # (name, folder)
    protocol: str = "both"  # same | cross | both
    clips: int | None = None
    every: int = 1
    pairs_seed: int = 0
    device: str = "auto"
    landmarks: str = "auto"
    identity: str = "auto"
    fid_model: str = "nvidia"
    weights_dir: str | None = None
    strips: int = 3  # pairs per protocol shown as frame strips in report.html


@dataclass
class RowResult:
    """One row of one protocol: per-pair per-frame values, FID features, strip frames."""

    values: dict[str, list[np.ndarray]] = field(default_factory=lambda: {m: [] for m in PAIRED})
    inception: list[np.ndarray] = field(default_factory=list)
    per_pair: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # pair -> metric -> (T,)
    strips: dict[str, list[np.ndarray]] = field(default_factory=dict)


def validate(opts: EvaluateOptions) -> None:
    if opts.split not in ("test", "train", "all"):
        raise BadInputError(f"--split {opts.split}: expected test, train or all")
    if opts.protocol not in ("same", "cross", "both"):
        raise BadInputError(f"--protocol {opts.protocol}: expected same, cross or both")
    if opts.every < 1 or (opts.clips is not None and opts.clips < 1):
        raise BadInputError("--every and --clips must be at least 1")
    names = ["copy", "warp", *(Path(c).stem for c in opts.checkpoints), *(n for n, _ in opts.methods)]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise BadInputError(f"two rows are named {dup[0]!r}: rename a checkpoint file or a --method")
    for c in opts.checkpoints:
        if not Path(c).is_file():
            raise BadInputError(f"--checkpoint {c}: not found")
    for name, folder in opts.methods:
        if not Path(folder).is_dir():
            raise BadInputError(f"--method {name}={folder}: not a folder")


def evaluate(data: str | Path, out: str | Path, opts: EvaluateOptions,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Evaluate the rows on ``data``'s split into ``out``; returns the results (also ``results.json``)."""
    from reenact.metrics.eval_report import check_out_dir, write_reports

    validate(opts)
    out = check_out_dir(out)
    clips = load_split(data, opts.split, opts.clips)
    protocols = PROTOCOLS if opts.protocol == "both" else (opts.protocol,)
    pairs, notes = {}, []
    for p in protocols:
        pairs[p], why = make_pairs(clips, p, opts.every, opts.pairs_seed)
        notes += why
    device = resolve_device(opts.device)
    rows = [CopyRow(), EngineRow(device), *(EngineRow(device, c) for c in opts.checkpoints),
            *(MethodRow(n, f) for n, f in opts.methods)]
    for row in rows:  # other tools' outputs: counts and framing, before the models load
        for p in (p for ps in pairs.values() for p in ps if row.has(p)):
            row.check(p)
    run = _Run(out, rows, pairs, progress)
    extractor = Extractor(device, out / "cache", opts.landmarks, opts.identity, opts.fid_model, opts.weights_dir)
    try:
        results = {p: run.protocol(p, extractor, opts.strips) for p in protocols}
    finally:
        extractor.close()
    summary = {"data": str(data), "split": opts.split, "every": opts.every, "pairs_seed": opts.pairs_seed,
               "clips": len(clips), "notes": notes + run.notes, "models": extractor.labels,
               "rows": {r.name: {"kind": r.kind, "label": r.label} for r in rows},
               "cache": {"driven_hit": run.driven_hits, "driven_miss": run.driven_misses,
                         "features_hit": extractor.hits, "features_miss": extractor.misses,
                         "fid_hit": run.fid_hits, "fid_miss": run.fid_misses},
               "timing": {"driving": {"seconds": run.drive_seconds, "frames": run.driven_frames},
                          **{k: {"seconds": s, "frames": n} for k, (s, n) in extractor.timings.items()}}}
    return write_reports(out, results, summary, pairs, run.per_frame_rows)


class _Run:
    """The state of one evaluation: rows, pairs, caches and counters."""

    def __init__(self, out: Path, rows: list, pairs: dict[str, list[Pair]], progress):
        self.out, self.rows, self.pairs, self.progress = out, rows, pairs, progress
        self.driven_hits = self.driven_misses = self.driven_frames = self.fid_hits = self.fid_misses = 0
        self.drive_seconds = 0.0
        self.per_frame_rows: list[dict] = []
        self.notes: list[str] = []
        per_row = sum(len(p.indices) for ps in pairs.values() for p in ps)
        self.total = per_row * (len(rows) + sum(r.drives for r in rows) + 1)
        self.done = 0

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)

    def protocol(self, protocol: str, extractor: Extractor, strips: int) -> dict:
        pairs = self.pairs[protocol]
        comparison = {p.name: self._comparison(p, extractor) for p in pairs}
        table = {}
        for row in self.rows:
            usable = [p for p in pairs if row.has(p)]
            self._tick(sum(len(p.indices) for p in pairs if p not in usable) * (1 + row.drives))
            if len(usable) < len(pairs):
                self.notes.append(f"{protocol}: {row.name} has outputs for {len(usable)} of {len(pairs)} pairs"
                                  + ("; its values are over those pairs only" if usable else "; row left out"))
            if not usable:
                continue
            res = RowResult()
            for i, p in enumerate(usable):
                frames = self._driven(row, p)
                feats = extractor(frames, identity=True)
                self._tick(len(frames))
                self._gather(res, row.name, p, feats, comparison[p.name])
                if i < strips:
                    res.strips[p.name] = _strip(frames)
            ref_feats = [comparison[p.name]["frames" if protocol == "same" else "source"].inception for p in usable]
            table[row.name] = self._row_result(res, ref_feats)
            table[row.name]["pairs"] = len(usable)
        return table

    def _comparison(self, p: Pair, extractor: Extractor) -> dict[str, Features]:
        """Same-identity: the ground-truth frames. Cross: the source frame (FID, CSIM) and the driver (APD, AED)."""
        drv = extractor(p.driver.read(p.indices))  # with identity: one cache entry serves both protocols
        self._tick(len(p.indices))
        if p.protocol == "same":
            return {"frames": drv}
        return {"source": extractor(p.source.read([0])), "driver": drv}

    def _driven(self, row, p: Pair) -> list[np.ndarray]:
        """The row's frames for ``p``: from ``cache/driven`` when present, else made (and stored)."""
        if not row.drives:
            return row.frames(p)
        key = hashlib.sha256(json.dumps([row.key, p.describe(), _clip_stamp(p)], sort_keys=True).encode()).hexdigest()
        path = self.out / "cache" / "driven" / f"{key[:32]}.npy"
        if path.is_file():
            self.driven_hits += 1
            self._tick(len(p.indices))
            return list(np.load(path))
        t0 = time.perf_counter()
        frames = row.frames(p)
        self.drive_seconds += time.perf_counter() - t0
        self.driven_frames += len(frames)
        self.driven_misses += 1
        _save_npy(path, np.stack(frames))
        self._tick(len(frames))
        return frames

    def _gather(self, res: RowResult, row: str, p: Pair, feats: Features, comparison: dict[str, Features]) -> None:
        gen = feats.measurements
        against = ({m: comparison["frames"] for m in PAIRED} if p.protocol == "same" else
                   {"csim": comparison["source"], "apd": comparison["driver"], "aed": comparison["driver"]})
        values = {}
        for metric, other in against.items():
            v = per_frame(metric, gen, other.measurements)
            if v is not None:
                values[metric] = v
                res.values[metric].append(v)
        res.per_pair[p.name] = values
        res.inception.append(feats.inception)
        frame_index = p.driver.geometry["frame_index"][p.indices]
        ref = (comparison["frames"] if p.protocol == "same" else comparison["driver"]).measurements
        for t in range(len(p.indices)):
            entry = {"protocol": p.protocol, "row": row, "pair": p.name, "frame": int(frame_index[t]),
                     "generated_face": int(not gen.missing[t]), "reference_face": int(not ref.missing[t])}
            entry.update({m: float(v[t]) for m, v in values.items()})
            self.per_frame_rows.append(entry)

    def _row_result(self, res: RowResult, ref_feats: list[np.ndarray]) -> dict:
        out: dict = {}
        gen = np.concatenate(res.inception)
        out["fid"] = self._fid(gen, np.concatenate(ref_feats))
        details = {}
        for m in PAIRED:
            if not res.values[m]:
                out[m] = None
                continue
            value, used, excluded = masked_mean(np.concatenate(res.values[m]))
            out[m] = None if np.isnan(value) else value
            details[m] = {"frames": used, "excluded": excluded}
        out["frames"] = len(gen)
        out["excluded"] = max((d["excluded"] for d in details.values()), default=0)
        out["fid_reference_images"] = len(np.concatenate(ref_feats))
        out["details"] = details
        out["_strips"] = res.strips
        out["_per_pair"] = res.per_pair
        return out

    def _fid(self, gen: np.ndarray, ref: np.ndarray) -> float | None:
        """Fréchet distance of two feature sets, cached by their content (sqrtm of 2048² costs seconds)."""
        from reenact.metrics.fid import frechet_distance, statistics

        if len(gen) < 2 or len(ref) < 2:
            return None
        key = hashlib.sha256(gen.tobytes() + b"|" + ref.tobytes()).hexdigest()[:32]
        path = self.out / "cache" / "fid" / f"{key}.json"
        if path.is_file():
            self.fid_hits += 1
            return json.loads(path.read_text())["fid"]
        self.fid_misses += 1
        value = float(frechet_distance(*statistics(gen), *statistics(ref)))
        layout.write_json(path, {"fid": value})
        return value


def _clip_stamp(p: Pair) -> list:
    """What the driven frames depend on besides the row: the clips' stored geometry (size and time)."""
    stats = [(c.folder / name).stat() for c in (p.source, p.driver) for name in (clips.GEOMETRY, clips.VERTICES)]
    return [[s.st_size, s.st_mtime_ns] for s in stats]


def _strip(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A few frames, evenly spaced, at most 128 px, for report.html."""
    import cv2

    idx = np.linspace(0, len(frames) - 1, min(STRIP_FRAMES, len(frames))).round().astype(int)
    return [cv2.resize(frames[i], (128, 128), interpolation=cv2.INTER_AREA) for i in idx]


def _save_npy(path: Path, array: np.ndarray) -> None:
    from reenact.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
