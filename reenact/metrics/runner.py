"""The extraction loop of `reenact score`: decode each generated clip and its comparison clips once,
run the extractors, and gather per-frame arrays (formulas live in the metric modules)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from reenact.devices import resolve_device
from reenact.metrics.inputs import Clip, check_counts, check_framing
from reenact.metrics.report import MetricResult


@dataclass
class Sides:
    """Per-frame metric values gathered over all clips (NaN where a side has no face), FID features, rows."""

    values: dict[str, list] = field(default_factory=lambda: {k: [] for k in ("csim", "akd", "apd", "aed")})  # per frame
    fid_gen: list = field(default_factory=list)
    fid_ref: list = field(default_factory=list)
    per_frame: list = field(default_factory=list)
    cache: dict = field(default_factory=lambda: {"features_hit": 0, "features_miss": 0, "statistics_hit": 0})
    notes: list = field(default_factory=list)


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reenact" / "score"


class Runner:
    """Models chosen by the options (each with its label), and the per-clip extraction."""

    def __init__(self, opts):

        self.opts, self.device = opts, resolve_device(opts.device)
        wanted = set(opts.metrics) - ({"akd"} if opts.protocol == "cross" else set())
        self.cache_dir = Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()
        self.inception = self._inception() if "fid" in wanted else None
        self.measurer = None
        if wanted & {"csim", "akd", "apd", "aed"}:
            from reenact.metrics.measure import MeasureOptions, Measurer

            mo = MeasureOptions(landmarks=opts.landmarks, face_model=opts.face_model if wanted & {"apd", "aed"} else "mediapipe",
                                identity=opts.identity if "csim" in wanted else None, flame_dir=opts.flame_dir,
                                weights_dir=opts.weights_dir, resolution=opts.resolution)
            self.measurer = Measurer(mo, self.device)
        self._measured: dict[tuple[str, str], tuple] = {}  # (role, clip name) -> (frame shape, measurements)

    def _inception(self):
        from reenact.metrics.fid import make_inception

        return make_inception(self.opts.fid_model, self.device, self.opts.weights_dir)

    def close(self) -> None:
        if self.measurer is not None:
            self.measurer.close()

    def label(self, metric: str) -> str:
        if metric == "fid":
            return self.inception.label if self.inception else "-"
        if self.measurer is None:
            return "-"
        key = {"csim": "identity", "akd": "landmarks", "apd": "pose_expression", "aed": "pose_expression"}[metric]
        return self.measurer.labels[key]

    def run(self, gen: list[Clip], refs: dict[str, list[Clip]], pairs: dict, progress: Callable | None):
        sides, every = Sides(), self.opts.every
        total = sum(_estimate(c, every) for c in gen)
        done = 0
        for clip in gen:
            frames = clip.frames()[::every]
            self._clip(clip, frames, pairs, sides)
            done += len(frames)
            if progress:
                progress(done, max(total, done))
        if self.inception is not None:
            self._fid_comparison(refs, pairs, sides)
        return sides

    def _clip(self, clip: Clip, frames: list[np.ndarray], pairs: dict, sides) -> None:
        opts = self.opts
        if self.inception is not None:
            sides.fid_gen.append(self._features(frames, sides))
        if self.measurer is None:
            return
        partner = {role: dict((g.name, r) for g, r in p)[clip.name] for role, p in pairs.items() if p is not None}
        role = "reference" if opts.protocol == "same" else "driver"
        comparison = {}
        if role in partner:
            shape, measured = self._measure(partner[role], role, sides)
            n_ref = len(measured.landmarks)
            if n_ref != len(frames) and opts.allow_unpaired:
                sides.notes.append(f"{clip.name}: {len(frames)} vs {n_ref} frames; used for FID only")
                return
            check_counts(clip, len(frames), partner[role], n_ref, role)
            if role == "reference" and "akd" in opts.metrics:
                check_framing(clip, frames[0].shape, partner[role], shape, role)
            _note_sizes(sides, clip, frames[0].shape, shape)
            comparison["frames"] = measured
        m_gen = self.measurer(frames)
        if "source" in partner and "csim" in opts.metrics:
            comparison["source"] = self._measure(partner["source"], "source", sides)[1]
        _gather(sides, clip, m_gen, comparison, opts)

    def _measure(self, clip: Clip, role: str, sides) -> tuple[tuple, object]:
        """(frame shape, measurements) of a comparison clip, decoded and measured once even when it is
        shared by several generated clips (one driver, one source). A source is its first frame; a
        reference also feeds the FID comparison set."""
        key = (role, clip.name)
        if key not in self._measured:
            frames = clip.frames()[:1] if role == "source" else clip.frames()[::self.opts.every]
            if role == "reference" and self.inception is not None:
                sides.fid_ref.append(self._features(frames, sides))
            self._measured[key] = (frames[0].shape, self.measurer(frames, identity=role != "driver"))
        return self._measured[key]

    def _features(self, frames: list[np.ndarray], sides) -> tuple[str, np.ndarray]:
        """(content key, pool3 features) of one clip's frames, from the per-clip cache when present."""
        from reenact.io import atomic_output
        from reenact.metrics.fid import content_key

        key = content_key([np.ascontiguousarray(f).tobytes() for f in frames], self.inception.model_id)
        path = self.cache_dir / f"feat-{key}.npy"
        if self.opts.use_cache and path.is_file():
            sides.cache["features_hit"] += 1
            return key, np.load(path)
        sides.cache["features_miss"] += 1
        feats = self.inception(frames)
        if self.opts.use_cache:
            with atomic_output(path, force=True) as tmp:
                np.save(tmp, feats)
        return key, feats

    def _fid_comparison(self, refs: dict, pairs: dict, sides) -> None:
        """The FID comparison set where the paired loop did not read it: unpaired references, or sources."""
        if self.opts.protocol == "same" and (pairs.get("reference") is None or self.measurer is None):
            for clip in refs["reference"]:
                sides.fid_ref.append(self._features(clip.frames()[::self.opts.every], sides))
        elif self.opts.protocol == "cross" and "source" in refs:
            paired = pairs.get("source")
            clips = list({r.name: r for _, r in paired}.values()) if paired is not None else refs["source"]
            firsts = [c.frames()[0] for c in clips]
            sides.fid_ref.append(self._features(firsts, sides))

    def fid_result(self, sides, against: str) -> MetricResult:
        from reenact.metrics.fid import cached_statistics, content_key, frechet_distance, statistics

        label = self.inception.label
        n_gen, n_ref = sum(len(f) for _, f in sides.fid_gen), sum(len(f) for _, f in sides.fid_ref)
        if n_gen < 2 or n_ref < 2:
            return MetricResult("fid", None, label, against, n_gen,
                                note=f"needs at least 2 images per set (generated {n_gen}, {against} {n_ref})")
        stats = []
        for parts in (sides.fid_gen, sides.fid_ref):
            feats = lambda parts=parts: np.concatenate([f for _, f in parts])  # noqa: E731
            if not self.opts.use_cache:
                stats.append(statistics(feats()))
                continue
            key = content_key([k.encode() for k, _ in parts], "statistics")
            sides.cache["statistics_hit"] += (self.cache_dir / f"fid-{key}.npz").is_file()
            stats.append(cached_statistics(key, feats, self.cache_dir))
        value = frechet_distance(*stats[0], *stats[1])
        note = f"{n_gen} generated vs {n_ref} {against} images"
        if min(n_gen, n_ref) < 2048:
            note += " (fewer than 2048: rank-deficient covariance, biased upward; compare like with like)"
        return MetricResult("fid", value, label, against, n_gen, 0, "no face needed", note)


def _gather(sides, clip: Clip, m_gen, comparison: dict, opts) -> None:
    """Append one clip's per-frame values (one array per metric) and its per-frame CSV rows."""
    from reenact.metrics.per_frame import per_frame

    n, every = len(m_gen.landmarks), opts.every
    frames_side, source = comparison.get("frames"), comparison.get("source")
    against = {"csim": source if source is not None else (frames_side if opts.protocol == "same" else None),
               "akd": frames_side if opts.protocol == "same" else None, "apd": frames_side, "aed": frames_side}
    values: dict[str, np.ndarray] = {}
    for metric, other in against.items():
        if other is not None and metric in opts.metrics and (v := per_frame(metric, m_gen, other)) is not None:
            values[metric] = v
            sides.values[metric].append(v)
    ref_missing = frames_side.missing if frames_side is not None else (
        np.repeat(source.missing, n) if source is not None else np.zeros(n, bool))
    for t in range(n):
        row = {"clip": clip.name, "frame": t * every, "generated_face": int(not m_gen.missing[t]),
               "reference_face": int(not ref_missing[t])}
        row.update({k: float(v[t]) for k, v in values.items()})
        sides.per_frame.append(row)


def _note_sizes(sides, clip: Clip, g: tuple, r: tuple) -> None:
    if g != r and not any("rescal" in n for n in sides.notes):
        sides.notes.append(f"{clip.name}: generated frames are {g[1]}x{g[0]}, comparison frames {r[1]}x{r[0]}; "
                           "landmarks are compared after rescaling both to the scoring resolution")


def _estimate(clip: Clip, every: int) -> int:
    if clip.is_video:
        from reenact.io import probe_video

        return max(1, -(-probe_video(clip.paths[0]).n_frames // every))
    return -(-len(clip.paths) // every)
