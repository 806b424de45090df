"""Per-frame extraction for CSIM, AKD, APD and AED: faces, 68 landmarks, pose, expression, identity.

Every frame is first searched with MediaPipe (the face box and the fallbacks). On top of it, where the
user has the files: FAN landmarks (AKD), the FLAME fitter (APD/AED) and ArcFace (CSIM). Each choice
is recorded in :attr:`Measurer.labels`, so the score output can say which model produced what.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from reenact import weights
from reenact.face.landmarks68 import mediapipe_to_68
from reenact.face.mediapipe_backend import pose_from_matrix
from reenact.face.pipeline import FacePipeline
from reenact.metrics.landmarks import FaceMeasurements


@dataclass
class MeasureOptions:
    landmarks: str = "auto"  # auto | fan | mediapipe
    face_model: str = "mediapipe"  # mediapipe | flame
    identity: str | None = "auto"  # auto | arcface | dlib | None (no CSIM)
    flame_dir: str | None = None
    weights_dir: str | None = None
    resolution: int = 256


class Measurer:
    """Turns a list of RGB frames of one identity into :class:`FaceMeasurements` (NaN where no face)."""

    def __init__(self, opts: MeasureOptions, device: torch.device):
        self.opts, self.device = opts, device
        self.fan = None
        if opts.landmarks == "fan" or (opts.landmarks == "auto" and weights.find("fan_2d", opts.weights_dir)):
            from reenact.face.fan import FanLandmarks

            self.fan = FanLandmarks(device, opts.weights_dir)
        self.flame = _flame_fitter(opts) if opts.face_model == "flame" else None
        self.embedder = None
        if opts.identity:
            from reenact.metrics.identity import make_embedder

            self.embedder = make_embedder(opts.identity, device, opts.weights_dir)
        self.timings: dict[str, list[float]] = {}  # extractor -> [seconds, frames]
        self.faces = FacePipeline(opts.weights_dir)  # last: nothing after it can fail and leave it open
        self.labels = {
            "landmarks": self.fan.label if self.fan else "MediaPipe-68 (fallback, not FAN)",
            "pose_expression": ("FLAME fitter on the 68 landmarks: yaw/pitch/roll, expression coefficients" if self.flame
                                else "MediaPipe pose + 52 blendshapes (fallback, not FLAME)"),
            "identity": self.embedder.label if self.embedder else "-",
        }

    def close(self) -> None:
        self.faces.close()

    @contextlib.contextmanager
    def _timed(self, extractor: str, frames: int):
        t0 = time.perf_counter()
        yield
        entry = self.timings.setdefault(extractor, [0.0, 0])
        entry[0] += time.perf_counter() - t0
        entry[1] += frames

    def __call__(self, frames: list[np.ndarray], identity: bool = True) -> FaceMeasurements:
        n, res = len(frames), self.opts.resolution
        lm = np.full((n, 68, 2), np.nan)
        pose, expr = np.full((n, 3), np.nan), np.full((n, 52), np.nan)
        boxes: dict[int, np.ndarray] = {}
        with self._timed("mediapipe", n):
            for i, frame in enumerate(frames):
                det = self.faces.largest(frame)
                if det is not None:
                    lm[i] = mediapipe_to_68(det.points[:, :2])
                    pose[i], expr[i] = pose_from_matrix(det.matrix), det.blendshapes
                    boxes[i] = det.box
        found = sorted(boxes)
        if self.fan is not None and found:
            with self._timed("fan", len(found)):
                lm[found] = self.fan([frames[i] for i in found], [boxes[i] for i in found])
        if self.flame is not None and found:
            with self._timed("flame", len(found)):
                pose, expr = _flame_pose_expression(self.flame, lm, found, n)
        emb = None
        if self.embedder is not None and identity:
            emb = np.full((n, self.embedder.dim), np.nan)
            if found:
                with self._timed("identity", len(found)):
                    emb[found] = self.embedder([frames[i] for i in found], [lm[i] for i in found])
        scale = np.array([[res / f.shape[1], res / f.shape[0]] for f in frames])  # (T, 2) per-frame rescale
        return FaceMeasurements(lm * scale[:, None], pose, expr, self.labels["landmarks"], emb)


def _flame_fitter(opts: MeasureOptions):
    from reenact.face.flame_backend import FlameGeometry
    from reenact.face.flame_fit import FlameFitter

    geo = FlameGeometry.from_dirs(opts.flame_dir, opts.weights_dir)
    return FlameFitter(geo.model, geo.lmk, size=256, w_smooth=0.0)


def _flame_pose_expression(fitter, lm: np.ndarray, found: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit FLAME jointly to the found frames (one shared shape), each in its own authors' crop;
    return yaw/pitch/roll in degrees (T, 3) and expression coefficients (T, n_exp), NaN elsewhere."""
    from reenact.face.crop import CropBox, apply_affine
    from reenact.face.flame import rodrigues
    from reenact.face.mediapipe_backend import pose_from_matrix

    targets = np.stack([apply_affine(CropBox.from_landmarks(lm[i]).affine(256), lm[i]) for i in found])
    fit = fitter.fit(torch.as_tensor(targets, dtype=torch.float32))
    rots = rodrigues(fit.pose[:, 0]).double().numpy()  # (N, 3, 3) global rotation
    pose = np.full((n, 3), np.nan)
    expr = np.full((n, fit.expression.shape[1]), np.nan)
    for k, i in enumerate(found):
        mat = np.eye(4)
        mat[:3, :3] = rots[k]
        pose[i] = pose_from_matrix(mat)
        expr[i] = fit.expression[k].numpy()
    return pose, expr
