"""AKD: average keypoint distance (supplementary §3), and the per-frame face measurements it and
APD/AED are computed from.

    AKD = mean_t mean_k ( |x̂_tk - x_tk| + |ŷ_tk - y_tk| )

the L1 distance between the 68 landmarks of generated and reference frame t, in pixels at the scoring
resolution (landmarks are rescaled from each frame's size to ``resolution``² before comparing).
Frames where either side has no detected face are excluded and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FaceMeasurements:
    """Per frame: 68 landmarks (T, 68, 2) at the scoring resolution, pose (T, 3) degrees, expression
    (T, E); rows are NaN where no face was found. ``backend`` labels where they came from."""

    landmarks: np.ndarray
    pose: np.ndarray
    expression: np.ndarray
    backend: str

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.landmarks).any(axis=(1, 2))


def measure_mediapipe(frames, faces, resolution: int = 256) -> FaceMeasurements:
    """MediaPipe-68 landmarks, pose from the transformation matrix and the 52 blendshapes (the labelled fallback)."""
    from reenact.face.landmarks68 import mediapipe_to_68
    from reenact.face.mediapipe_backend import pose_from_matrix

    lms, poses, exprs = [], [], []
    for frame in frames:
        h, w = frame.shape[:2]
        dets = faces.detect(np.ascontiguousarray(frame), search=False)
        if not dets:
            lms.append(np.full((68, 2), np.nan)), poses.append(np.full(3, np.nan)), exprs.append(np.full(52, np.nan))
            continue
        lms.append(mediapipe_to_68(dets[0].points) * [resolution / w, resolution / h])
        poses.append(pose_from_matrix(dets[0].matrix))
        exprs.append(dets[0].blendshapes.astype(np.float64))
    return FaceMeasurements(np.array(lms), np.array(poses), np.array(exprs), "mediapipe (fallback)")


def akd(generated: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """(AKD in pixels, frames excluded). Inputs (T, 68, 2) with NaN rows for frames without a face."""
    diff = np.abs(np.asarray(generated, np.float64) - np.asarray(reference, np.float64)).sum(-1)  # (T, 68)
    valid = ~np.isnan(diff).any(1)
    if not valid.any():
        return float("nan"), int(len(diff))
    return float(diff[valid].mean()), int((~valid).sum())
