"""AKD, APD and AED: closed-form checks, and real videos measured with the MediaPipe fallback."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import read_frames
from reenact.metrics.landmarks import akd, measure_mediapipe
from reenact.metrics.pose_expression import aed, apd


def test_closed_forms_and_missing_frames():
    ref = np.zeros((3, 68, 2))
    gen = ref + [3.0, -4.0]  # L1 per landmark: 7
    gen[1] = np.nan  # no face in generated frame 1
    assert akd(gen, ref) == (7.0, 1)
    assert apd(np.array([[1.0, 2, 3], [np.nan] * 3]), np.zeros((2, 3))) == (2.0, 1)
    assert aed(np.full((2, 52), 0.5), np.zeros((2, 52))) == (0.5, 0)
    assert np.isnan(akd(np.full((2, 68, 2), np.nan), ref[:2])[0])


def test_real_video_against_itself_and_a_shifted_copy(testdata, landmarker):
    frames = read_frames(testdata / "videos" / "single_face.mp4")[::6]
    shifted = [np.roll(f, 16, axis=1) for f in frames]  # 16 px right at 640 wide = 6.4 px at 256
    a = measure_mediapipe(frames, landmarker)
    b = measure_mediapipe(shifted, landmarker)
    assert a.backend.startswith("mediapipe") and not a.missing.any()
    assert akd(a.landmarks, a.landmarks) == (0.0, 0)
    value, excluded = akd(b.landmarks, a.landmarks)
    print(f"AKD of a 16-px shifted copy: {value:.2f} px at 256 (expected about 6.4 in x)")
    assert excluded == 0 and 5.0 < value < 8.5
    assert apd(b.pose, a.pose)[0] < 2.0 and aed(b.expression, a.expression)[0] < 0.05
