"""The person mask's edge (face/segment.refine_edge): hair the segmenter leaves out is found by colour,
and walls, backdrops and cast shadows are left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ROOT

from reenact.face.segment import MODEL_SIZE, person_alpha, refine_edge
from reenact.io import VideoReader, read_image
from reenact.render.layers import composite, make_layers, pixel_grid


def _raw_and_refined(pipeline, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pipeline.person_mask(rgb)  # loads the segmenter
    raw = pipeline._segmenter.confidence(rgb)
    return raw, refine_edge(rgb, raw)


def test_hair_the_segmenter_misses_moves_with_the_head(pipeline, testdata):
    """lp_d11's frame 0: dark pigtails on a green wall, whose right half the segmenter leaves out (up to
    20 px of 512; the hair clip cut in two). The person moved 10 px three ways: dark (lightness < 0.2,
    the wall there is 0.25-0.35) pixels of the right half showing background where the person was.
    Measured 1207 / 4715 / 2537 with the segmenter's own mask, 34 / 202 / 83 refined (the pigtail's
    outermost fringe is semi-transparent and leaves a faint trace; 1382 / 4949 / 2762 and 31 / 195 /
    78 before the confidence was derippled)."""
    rgb = np.ascontiguousarray(next(iter(VideoReader(testdata / "videos" / "lp_d11.mp4"))))
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    h, w = rgb.shape[:2]
    left = {}
    for name, mask in zip(("raw", "refined"), _raw_and_refined(pipeline, rgb)):
        layers = make_layers(img, torch.from_numpy(mask)[None, None])
        for shift in ((-10.0, 0.0), (10.0, 0.0), (0.0, 10.0)):
            out, moved = composite(layers, pixel_grid(h, w, "cpu")[None] + torch.tensor(shift), (0, 0, w, h))
            dark = (out.mean(1, keepdim=True) < 0.2) & (moved < 1e-3)
            left[name, shift] = int(dark[..., w // 2:].sum())
    print(left)
    assert min(v for (name, _), v in left.items() if name == "raw") > 1000, "the premise: the raw mask misses hair"
    assert max(v for (name, _), v in left.items() if name == "refined") <= 500


@pytest.mark.parametrize("image, most", [
    ("faces/lp_s6.jpg", 0.0005),  # a statue on a white wall
    ("faces/group_t1.jpg", 0.0005),  # six people, a lamp and pictures on the wall beside them
    ("examples/source.png", 0.0001),  # a mottled backdrop and a flag beside the shoulders
    ("faces/lp_s0.jpg", 0.003),  # a painting: dark hair beside her head's dark shadow on a blue-grey wall
])
def test_walls_and_backdrops_are_left_alone(pipeline, testdata, image, most):
    """The share of the image whose person alpha (face/segment.person_alpha) the refinement raises by
    more than 0.5: measured 0.000 %, 0.000 %, 0.000 % and 0.188 % (lp_s0: the hair's fringe). The
    first version of the matte, whose alpha was read as a confidence and so stretched, took in 1.28 %
    of lp_s0, her head's shadow included, which then moved with the head as a dark angular patch."""
    path = ROOT / image if image.startswith("examples/") else testdata / image
    rgb = np.ascontiguousarray(read_image(path)[..., :3])
    raw, refined = _raw_and_refined(pipeline, rgb)
    added = float((person_alpha(refined) - person_alpha(raw) > 0.5).mean())
    print(f"{path.name}: {100 * added:.3f} % taken in")
    assert added <= most
    assert np.all(refined >= raw)


def _teeth(alpha: np.ndarray, reach: int, axis: int) -> int:
    """Pixels where ``alpha`` stands more than 0.25 above, or below, all of it within ``reach`` px on
    both sides along ``axis``: a comb's teeth."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    side = {}
    for name, origin in (("before", reach // 2), ("after", -(reach // 2))):  # windows [x − reach, x], [x, x + reach]
        side[name] = (minimum_filter1d(alpha, reach + 1, axis=axis, origin=origin),
                      maximum_filter1d(alpha, reach + 1, axis=axis, origin=origin))
    peak = alpha - np.maximum(side["before"][0], side["after"][0]) > 0.25
    dip = np.minimum(side["before"][1], side["after"][1]) - alpha > 0.25
    return int((peak | dip).sum())


@pytest.mark.parametrize("image", ["faces/group_t1.jpg", "faces/BWPictureHuman.jpg"])
def test_the_segmenters_checkerboard_does_not_reach_the_alpha(pipeline, testdata, image):
    """Where the model is unsure (group_t1: the skin of the woman beside face 0) its confidence ripples
    with a period of two model cells, and the alpha's stretch made that a comb of teeth between 0 and
    1, which moved with the head as staircase blocks (seen at 2-3×, frames 110 and 200 of face 0
    driven by lp_d11). Teeth within two cells, per megapixel, rows + columns: the model's output
    refined 8632 (group_t1) / 4324 (BWPictureHuman), the shipped mask (derippled) 584 / 701; what
    is left are specks the size of a cell."""
    rgb = np.ascontiguousarray(read_image(testdata / image)[..., :3])
    h, w = rgb.shape[:2]
    count = {}
    pipeline.person_mask(rgb)  # loads the segmenter
    for name, conf in (("model", refine_edge(rgb, pipeline._segmenter.model_output(rgb))),
                       ("shipped", pipeline.person_mask(rgb))):
        alpha = person_alpha(conf)
        teeth = _teeth(alpha, round(2 * w / MODEL_SIZE), 1) + _teeth(alpha, round(2 * h / MODEL_SIZE), 0)
        count[name] = teeth / (h * w / 1e6)
    print(f"{image}: teeth per megapixel, model output {count['model']:.0f}, shipped {count['shipped']:.0f}")
    assert count["model"] > 3000, "the premise: the model's output is combed"
    assert count["shipped"] < 1500


def test_a_missed_dark_rim_is_taken_in_and_degenerate_masks_pass_through():
    """A dark disc (r 60) on a plain green wall whose confidence stops at r 50: the rim comes back as
    person (alpha 0.998 at r 52-58), nothing beyond r 65 does. Masks with no person, no background, or
    images of a pixel or a strip come back finite, never lower, and without a NumPy warning (OpenCV's
    distance transform gives ~3e38 where there is nothing to measure to)."""
    import warnings

    yy, xx = np.mgrid[:200, :200]
    d = np.hypot(yy - 100, xx - 100)
    rgb = np.full((200, 200, 3), (60, 140, 70), np.uint8)
    rgb[d < 60] = (40, 30, 30)
    alpha = person_alpha(refine_edge(rgb, (d < 50).astype(np.float32)))
    assert alpha[(d > 52) & (d < 58)].mean() > 0.95
    assert alpha[d > 65].max() == 0
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((64, 64), (1, 1), (5, 300)):
            rgb = rng.integers(0, 255, shape + (3,), dtype=np.uint8)
            for conf in (np.zeros(shape, np.float32), np.ones(shape, np.float32), rng.random(shape).astype(np.float32)):
                out = refine_edge(rgb, conf)
                assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all() and (out >= conf).all()
