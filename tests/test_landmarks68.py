"""MediaPipe -> iBUG 68 mapping against dlib ground truth on real frames."""

from __future__ import annotations

import json

import numpy as np

from reenact.face.landmarks68 import inter_ocular, mediapipe_to_68
from reenact.io import read_image


def test_mapping_error_against_dlib_ground_truth(testdata, landmarker):
    errors = []
    for i in range(5):
        img = read_image(testdata / "landmarks_gt" / f"{i:05d}.jpg")
        gt = np.array(json.loads((testdata / "landmarks_gt" / f"{i:05d}.json").read_text()), float)
        det = landmarker.detect(img)[0]
        pred = mediapipe_to_68(det.points)
        errors.append(np.linalg.norm(pred - gt, axis=1).mean() / inter_ocular(gt))
    mean = float(np.mean(errors))
    print(f"68-point mapping: mean error {100 * mean:.2f}% of inter-ocular distance over 5 frames")
    assert mean <= 0.06
