"""The authors' crop constants, the affine, and the pixel convention of the crop."""

from __future__ import annotations

import numpy as np

from reenact.face.crop import CropBox, apply_affine, invert_affine, warp_crop
from reenact.face.smoothing import BOX_BETA, BOX_MIN_CUTOFF
from reenact.face.smoothing import OneEuro


def test_box_follows_the_authors_constants():
    lm = np.array([[100.0, 200.0], [180.0, 200.0], [100.0, 300.0], [180.0, 300.0]] * 17)
    box = CropBox.from_landmarks(lm)
    old = ((80 + 100) / 2) * 1.1
    assert np.isclose(box.side, 1.35 * old)
    assert np.isclose(box.cx, 140) and np.isclose(box.cy, 250)
    assert np.isclose(box.top, 250 - 0.6 * box.side), "3/5 of the box above the landmark centre"
    a = box.affine(256)
    corners = apply_affine(a, np.array([[box.left, box.top], [box.left + box.side, box.top + box.side]]))
    assert np.allclose(corners, [[0, 0], [256, 256]])
    assert np.allclose(apply_affine(invert_affine(a), corners), [[box.left, box.top],
                                                                 [box.left + box.side, box.top + box.side]])


def test_crop_samples_at_pixel_centres():
    # A ramp image whose value is the column index: a crop at scale 1 must copy columns exactly.
    img = np.tile(np.arange(200, dtype=np.uint8)[None, :, None], (200, 1, 3))
    box = CropBox(cx=110.0, cy=110.0, side=64.0)  # left = 78
    crop = warp_crop(img, box.affine(64), 64)
    assert np.array_equal(crop[10, :, 0], np.arange(78, 78 + 64))


def test_box_smoothing_removes_jitter_on_a_still_head():
    rng = np.random.default_rng(0)
    f = OneEuro(min_cutoff=BOX_MIN_CUTOFF, beta=BOX_BETA)
    raw = np.array([100.0, 120.0, 200.0]) + rng.normal(0, 1.5, (200, 3))
    smooth = np.array([f(x, float(i)) for i, x in enumerate(raw)])
    assert smooth[50:].std(0).max() < 0.5 * raw[50:].std(0).min(), "jitter at least halved"
