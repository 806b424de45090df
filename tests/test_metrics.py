"""AKD, APD and AED: closed-form checks, and real videos measured with the MediaPipe fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import read_frames
from reenact.metrics.landmarks import akd
from reenact.metrics.pose_expression import aed, apd


def test_closed_forms_and_missing_frames():
    ref = np.zeros((3, 68, 2))
    gen = ref + [3.0, -4.0]  # mean absolute difference per coordinate (pose-evaluation): 3.5
    gen[1] = np.nan  # no face in generated frame 1
    assert akd(gen, ref) == (3.5, 1)
    assert apd(np.array([[1.0, 2, 3], [np.nan] * 3]), np.zeros((2, 3))) == (2.0, 1)
    assert aed(np.full((2, 52), 0.5), np.zeros((2, 52))) == (0.5, 0)
    assert np.isnan(akd(np.full((2, 68, 2), np.nan), ref[:2])[0])


@pytest.fixture(scope="module")
def measurer():
    from reenact.metrics.measure import MeasureOptions, Measurer

    m = Measurer(MeasureOptions(landmarks="mediapipe", identity=None), torch.device("cpu"))
    yield m
    m.close()


def _crops_256(testdata, every: int = 15) -> list[np.ndarray]:
    """lp_d11 (512x512, a head that turns) at 256x256: one image pixel = one scoring pixel."""
    import cv2

    frames = read_frames(testdata / "videos" / "lp_d11.mp4")[::every]
    return [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames]


def test_akd_is_zero_against_itself_and_half_k_against_a_k_pixel_shift(testdata, measurer):
    frames = _crops_256(testdata)
    a = measurer(frames)
    assert a.backend.startswith("MediaPipe-68") and not a.missing.any()
    assert akd(a.landmarks, a.landmarks) == (0.0, 0)
    for k in (4, 8):
        b = measurer([np.roll(f, k, axis=1) for f in frames])
        value, excluded = akd(b.landmarks, a.landmarks)
        print(f"AKD of a {k}-px shifted copy: {value:.2f} px")
        # x moves by k and y by 0: the mean per coordinate is k / 2
        assert excluded == 0 and abs(value - k / 2) < 0.125 * k + 0.5
        assert apd(b.pose, a.pose)[0] < 2.0 and aed(b.expression, a.expression)[0] < 0.05


def _yaw_flip_check(m, frames, turn: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    a, b = m(frames), m([np.ascontiguousarray(f[:, ::-1]) for f in frames])
    yaw, yaw_flipped = a.pose[:, 0], b.pose[:, 0]
    turned = np.abs(yaw) > turn  # frontal frames carry a degree or two of bias
    print(f"{a.backend}: yaw {np.round(yaw, 1)} / flipped {np.round(yaw_flipped, 1)}; APD {apd(b.pose, a.pose)[0]:.2f} deg")
    assert turned.sum() >= 3, "the clip should contain turned heads"
    assert (np.sign(yaw_flipped[turned]) == -np.sign(yaw[turned])).all()
    return yaw, yaw_flipped


def test_apd_of_a_flipped_clip_shows_opposite_yaw(testdata, measurer):
    yaw, flipped = _yaw_flip_check(measurer, _crops_256(testdata, every=8))
    assert np.abs(yaw + flipped).max() < 0.35 * np.abs(yaw).max() + 2


def test_flame_pose_of_a_flipped_clip_shows_opposite_yaw(testdata, tmp_path):
    """The FLAME path of APD/AED with a synthetic FLAME model (the real one needs registration)."""
    import shutil

    from conftest import SHARED
    from flame_synth import read_obj, synthetic_arrays, write_generic_model
    from reenact.metrics.measure import MeasureOptions, Measurer

    assets = SHARED / "reference" / "flame_assets"
    if not assets.is_dir():
        pytest.skip(f"FLAME test assets not found: {assets}")
    write_generic_model(tmp_path / "generic_model.pkl", synthetic_arrays(*read_obj(assets / "head_template.obj")))
    shutil.copy(assets / "landmark_embedding.npy", tmp_path / "landmark_embedding.npy")
    m = Measurer(MeasureOptions(landmarks="mediapipe", face_model="flame", identity=None, flame_dir=str(tmp_path)),
                 torch.device("cpu"))
    try:
        _yaw_flip_check(m, _crops_256(testdata, every=8), turn=5.0)  # the synthetic model is not symmetric
        assert "FLAME" in m.labels["pose_expression"] and m(_crops_256(testdata)[:2]).expression.shape[1] == m.flame.model.n_exp
    finally:
        m.close()
