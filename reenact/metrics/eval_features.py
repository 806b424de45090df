"""Every feature `reenact evaluate` needs from a list of frames, in one pass, cached by content.

One call runs the face measurements (MediaPipe faces, 68 landmarks, pose and expression, identity
embeddings: :class:`~reenact.metrics.measure.Measurer`) and the FID Inception (batched) on the same
decoded frames. Results are stored in ``cache/features/<key>.npz`` (written atomically), the key being a
hash of the frames' bytes and of every extractor's identity, so a re-run, or a new row whose frames
happen to repeat, extracts nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reenact.metrics.landmarks import FaceMeasurements


@dataclass
class Features:
    """One frame list's measurements (NaN rows where no face) and pool3 features (T, 2048)."""

    measurements: FaceMeasurements
    inception: np.ndarray


class Extractor:
    """Measurer + Inception, with the per-content cache and per-extractor timings."""

    def __init__(self, device: torch.device, cache_dir: Path, landmarks: str = "auto", identity: str = "auto",
                 fid_model: str = "nvidia", weights_dir: str | None = None, resolution: int = 256):
        from reenact.metrics.fid import make_inception
        from reenact.metrics.measure import MeasureOptions, Measurer

        self.inception = make_inception(fid_model, device, weights_dir)
        self.measurer = Measurer(MeasureOptions(landmarks=landmarks, identity=identity, weights_dir=weights_dir,
                                                resolution=resolution), device)
        self.cache_dir = cache_dir / "features"
        self.labels = {"fid": self.inception.label, **self.measurer.labels,
                       "faces": "MediaPipe Face Landmarker v2 + BlazeFace full range (face_landmarker_v2.task)"}
        self.identity = "|".join([self.inception.model_id, *map(str, sorted(self.labels.items())), str(resolution)])
        self.hits = self.misses = 0
        self.inception_time = [0.0, 0]  # seconds, frames

    @property
    def timings(self) -> dict[str, list[float]]:
        """extractor -> [seconds, frames] over this run's extractions."""
        return {"inception": self.inception_time, **self.measurer.timings}

    def close(self) -> None:
        self.measurer.close()

    def __call__(self, frames: list[np.ndarray], identity: bool = True) -> Features:
        from reenact.metrics.fid import content_key

        key = content_key([np.ascontiguousarray(f).tobytes() for f in frames], self.identity, f"identity={identity}")
        path = self.cache_dir / f"{key}.npz"
        if path.is_file():
            self.hits += 1
            return _load(path)
        self.misses += 1
        feats = self._extract(frames, identity)
        _save(path, feats)
        return feats

    def _extract(self, frames: list[np.ndarray], identity: bool) -> Features:
        if len({id(f) for f in frames}) == 1 and len(frames) > 1:  # one frame repeated (the copy row)
            one = self._extract(frames[:1], identity)
            m = one.measurements
            tile = lambda a: None if a is None else np.repeat(a, len(frames), 0)  # noqa: E731
            return Features(FaceMeasurements(tile(m.landmarks), tile(m.pose), tile(m.expression), m.backend,
                                             tile(m.embedding)), tile(one.inception))
        t0 = time.perf_counter()
        inception = self.inception(frames)
        self.inception_time[0] += time.perf_counter() - t0
        self.inception_time[1] += len(frames)
        return Features(self.measurer(frames, identity=identity), inception)


def _save(path: Path, f: Features) -> None:
    from reenact.io import atomic_output

    m = f.measurements
    arrays = {"landmarks": m.landmarks, "pose": m.pose, "expression": m.expression, "inception": f.inception,
              "backend": np.array(m.backend)}
    if m.embedding is not None:
        arrays["embedding"] = m.embedding
    with atomic_output(path, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load(path: Path) -> Features:
    with np.load(path) as z:
        emb = z["embedding"] if "embedding" in z.files else None
        m = FaceMeasurements(z["landmarks"], z["pose"], z["expression"], str(z["backend"]), emb)
        return Features(m, z["inception"])
