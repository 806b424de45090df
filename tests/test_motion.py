"""Relative and absolute motion transfer, and fit smoothing, on real MediaPipe fits."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import fit_largest
from reenact.face.motion import FitSmoother, transfer
from reenact.io import read_image


def _rot_y(deg: float) -> np.ndarray:
    t = np.radians(deg)
    return np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])


@pytest.fixture(scope="module")
def fits(testdata, pipeline):
    return [fit_largest(pipeline, read_image(testdata / "faces" / name))[2] for name in ("lp_s6.jpg", "lp_s0.jpg")]


def test_fit_reconstructs_observed_vertices(fits):
    for f in fits:
        recon = f.scale * f.canonical @ f.rotation.T + f.translation
        assert np.abs(recon - f.vertices).max() < 1e-3
        assert np.isclose(np.linalg.det(f.rotation), 1.0)


def test_driver_at_reference_leaves_source_unchanged(fits):
    src, drv = fits
    out = transfer(src, drv, drv, relative=True)
    assert np.abs(out.vertices - src.vertices).max() < 1e-3


def test_relative_rotation_and_expression_offsets(fits):
    src, ref = fits
    turned = ref.with_geometry(ref.canonical + 0.1, _rot_y(10) @ ref.rotation, ref.scale, ref.translation)
    out = transfer(src, turned, ref, relative=True)
    assert np.allclose(out.rotation, _rot_y(10) @ src.rotation)
    assert np.allclose(out.canonical, src.canonical + 0.1)
    absolute = transfer(src, turned, ref, relative=False)
    assert np.allclose(absolute.rotation, turned.rotation) and np.isclose(absolute.scale, ref.scale)


def test_smoother_is_identity_on_constant_input_and_damps_noise(fits):
    src = fits[0]
    sm = FitSmoother()
    outs = [sm(src, float(i)) for i in range(5)]
    assert np.abs(outs[-1].vertices - src.vertices).max() < 1e-3
    rng = np.random.default_rng(0)
    sm = FitSmoother()
    noisy = [src.with_geometry(src.canonical, src.rotation, src.scale, src.translation + rng.normal(0, 2, 3))
             for _ in range(60)]
    outs = [sm(f, float(i)) for i, f in enumerate(noisy)]
    raw_std = np.std([f.translation for f in noisy], 0).mean()
    sm_std = np.std([f.translation for f in outs[10:]], 0).mean()
    assert sm_std < 0.8 * raw_std
