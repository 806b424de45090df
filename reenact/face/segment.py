"""Person segmentation: MediaPipe selfie segmentation (``vision.ImageSegmenter``, Apache-2.0).

The geometric warp needs to know which source pixels belong to the person (hair, ears, neck and
body) and which are background: the head's rigid motion is carried only by the person, the
background stays still, and background uncovered by the moving head is filled from background.
The source is a still image, so this runs once per source (about 6 ms on one core for a 600×700
photo), never per driver frame: the driven frame's person mask is the source's, moved by the warp.

The segmenter's edge is coarse (its model works at 256²): on dark hair against a dark wall it stops
well inside the hair (lp_d11's right pigtail: up to 20 px of a 512 px frame, a hair clip cut in two),
and whatever it leaves out stays behind as a ghost when the head moves. :func:`refine_edge` extends
the confidence by colour where the background beside the person is even enough to tell hair from
wall.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reenact.face.detect import mp_image
from reenact.face.mediapipe_tasks import model_options, tasks
from reenact.ramps import smoothstep


PERSON_FLOOR, PERSON_FULL = 0.02, 0.3  # confidence below: background; above: wholly person


def person_alpha(conf):
    """The person's alpha (coverage) from the segmenter's confidence: 0 below ``PERSON_FLOOR``, 1 from
    ``PERSON_FULL``, a smoothstep between. The segmenter is unsure of dark hair against a dark
    background (pigtails score 0.2-0.6), and whatever counts as background stays behind as a ghost
    when the head moves. NumPy array or torch tensor."""
    return smoothstep((conf - PERSON_FLOOR) / (PERSON_FULL - PERSON_FLOOR))


def confidence_of(alpha: np.ndarray) -> np.ndarray:
    """The inverse of :func:`person_alpha` on [0, 1]: a matte's alpha as a confidence, so that the
    alpha comes back (smoothstep⁻¹(y) = 1/2 − sin(asin(1 − 2y) / 3))."""
    x = 0.5 - np.sin(np.arcsin(np.clip(1 - 2 * alpha, -1, 1)) / 3)
    return (PERSON_FLOOR + (PERSON_FULL - PERSON_FLOOR) * x).astype(np.float32) * (alpha > 0)


class PersonSegmenter:
    """Selfie segmentation in IMAGE mode; ``seg(rgb)`` is the (H, W) float32 person confidence in
    [0, 1] at the image's resolution, its edge refined (:func:`refine_edge`). Use as a context manager."""

    def __init__(self, model_path: str | Path):
        _, vision = tasks()
        opts = vision.ImageSegmenterOptions(base_options=model_options(model_path),
                                            running_mode=vision.RunningMode.IMAGE,
                                            output_confidence_masks=True, output_category_mask=False)
        self._seg = vision.ImageSegmenter.create_from_options(opts)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return refine_edge(rgb, self.confidence(rgb))

    def confidence(self, rgb: np.ndarray) -> np.ndarray:
        """The segmenter's own confidence, without :func:`refine_edge`, its checkerboard smoothed
        (:func:`deripple`)."""
        return deripple(self.model_output(rgb))

    def model_output(self, rgb: np.ndarray) -> np.ndarray:
        """The model's confidence as it comes, at the image's resolution."""
        masks = self._seg.segment(mp_image(rgb)).confidence_masks
        return np.clip(np.array(masks[0].numpy_view(), np.float32).reshape(rgb.shape[:2]), 0.0, 1.0)

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MODEL_SIZE = 256  # the segmenter's input is 256 × 256 (shared/testdata README)


def deripple(conf: np.ndarray) -> np.ndarray:
    """``conf`` (H, W) blurred by one model cell (σ = W / 256 across, H / 256 down; done on a grid
    of two samples a cell and resized back).

    Where the model is unsure (0.1-0.6: skin beside another person, a shirt against a like wall) its
    output ripples by ±0.05 with a period of two model cells (10 px across group_t1's 1280 px), and
    :func:`person_alpha` stretches that by 3.6 into a comb of teeth between 0 and 1. When the head
    moved, the teeth's edges moved with it and showed as staircase blocks of plate (group_t1, the
    woman beside face 0, frame 110 at 2×). A Gaussian of half the period damps it by e^(−π²/2) ≈
    0.007; the model's edge is already spread over about two cells, so it barely widens."""
    import cv2

    h, w = conf.shape
    grid = (2 * MODEL_SIZE, 2 * MODEL_SIZE)  # two samples a cell carry what the model says: 20 ms at 4K, not 130
    small = cv2.resize(conf, grid, interpolation=cv2.INTER_AREA if h * w > grid[0] * grid[1] else cv2.INTER_LINEAR)
    return np.clip(cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


WORK = 320  # px on the long side that the edge refinement works at
BAND = 0.08  # of the long side: how far beyond the confident person (> 0.3) the person may extend; faded over its outer half
EDGE = 0.02  # of the long side: the person's colour is read this far inside its edge
NOISE_K, NOISE_FLOOR = 3.0, 0.03  # a pixel is unlike the wall beyond k × the wall's texture + floor (RGB in [0, 1])
SHADOW = 0.35  # the wall darkened to no less than this fraction looks like the wall in shadow ...
FRINGE = 0.02  # ... and is person only this far (of the long side) beyond the person: a dark fringe, not a cast shadow


def _local_mean(x: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: the Gaussian-weighted mean of ``x`` (H, W, C) over ``weight`` (H, W)
    and that weight's own blur (the support; near 0 where no weighted pixel is near)."""
    import cv2

    num = cv2.GaussianBlur(x * weight[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)
    return num / np.maximum(den, 1e-6)[..., None], den


def _distance(outside: np.ndarray) -> np.ndarray:
    """Pixels' distance to the nearest pixel where ``outside`` is False (0 there), capped at 10⁴ (OpenCV
    gives ~3·10³⁸ where there is none)."""
    import cv2

    return np.minimum(cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, 5), 1e4)


def _joined(alpha: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``alpha`` where its part over ``PERSON_FULL`` joins the person (confidence ``p`` over
    ``PERSON_FULL``, through pixels over ``PERSON_FLOOR``; 8-connected), 0 elsewhere."""
    import cv2

    reached = (alpha > PERSON_FULL) | (p > PERSON_FLOOR)
    _, label = cv2.connectedComponents(reached.astype(np.uint8), connectivity=8)
    joined = np.unique(label[p > PERSON_FULL])
    return np.where(np.isin(label, joined[joined > 0]), alpha, 0).astype(np.float32)


def refine_edge(rgb: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """``conf`` (H, W) raised, within ``BAND`` of the confident person, where the pixel's colour says
    person: a two-colour matte (I = α F + (1 − α) B) with local colours, at ``WORK`` px.

    * B, the wall's local mean over sure background (beyond the band; Gaussian σ = band); F, the
      person's local mean over its outer ``EDGE`` (σ = band / 2); t = ``NOISE_K`` · σ_B +
      ``NOISE_FLOOR``, σ_B the wall's texture (its RMS deviation from its own mean at σ = band / 3, so
      a lit gradient is not texture; on a door's panels or a flag t rises and nothing is added).
    * α = clip((|I − B| − t) / (|F − B| − t), 0, 1) where the colours are told apart (|F − B| > 2t),
      faded to 0 over the band's outer half.
    * A pixel near the line I = g B with g > ``SHADOW`` (off it by less than t) looks like the wall in
      shadow. Dark hair's fringe looks the same (a dark F mixed with B), so such pixels count only
      within ``FRINGE`` of the person and of what the colour alone added. Without this, lp_s0's dark
      shadow beside her hair moved with the head as a faint shading (driven by lp_d11, frame 60), and
      single_face's ring ratio was 0.511 against 0.505.
    * Only α whose part over 0.3 joins the person (8-connected) is kept, then blurred by 0.7 px.

    The result is max(conf, c(α)), upsampled, with c = :func:`confidence_of`, so that
    :func:`person_alpha` gives α back: a semi-transparent fringe or a light shadow moves as such. (Read
    as a confidence, α 0.3 meant wholly person: the head's shadows on lp_s0 and single_face's door moved
    with the head whole, and left a light, ragged band of plate behind.) 30-150 ms once per source
    photo on 2 CPU cores (the test photos, up to 2560 × 1912; ``bench/RESULTS.md``, issue 12 session 15)."""
    import cv2

    h, w = conf.shape
    k = min(1.0, WORK / max(h, w))
    size = (max(1, round(w * k)), max(1, round(h * k)))
    img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    p = cv2.resize(conf, size, interpolation=cv2.INTER_AREA)
    band = BAND * max(size)
    beyond_sure, beyond_any = _distance(p <= PERSON_FULL), _distance(p <= PERSON_FLOOR)
    inside = _distance(p > 0.5)
    wall = (beyond_any > band).astype(np.float32)
    rim = ((p > 0.5) & (inside < EDGE * max(size))).astype(np.float32)
    b, b_support = _local_mean(img, wall, band)
    even, _ = _local_mean(img, wall, band / 3)
    texture, _ = _local_mean(((img - even) * wall[..., None]) ** 2, wall, band)
    f, f_support = _local_mean(img, rim, band / 2)
    t = NOISE_K * np.sqrt(texture.sum(-1)) + NOISE_FLOOR
    apart = np.sqrt(((f - b) ** 2).sum(-1))
    alpha = np.clip((np.sqrt(((img - b) ** 2).sum(-1)) - t) / np.maximum(apart - t, 1e-6), 0, 1)
    gain = (img * b).sum(-1) / np.maximum((b * b).sum(-1), 1e-6)  # I ≈ gain · B in a shadow
    off_line = np.sqrt(((img - gain[..., None] * b) ** 2).sum(-1)) / t  # in thresholds
    shade = (1 - smoothstep(off_line - 0.5)) * smoothstep((gain - SHADOW) / 0.1)  # 1: the wall in shadow
    told = (apart > 2 * t) & (b_support > 0.01) & (f_support > 0.01) & (beyond_sure > 0)
    alpha = np.where(told, alpha * (1 - smoothstep(2 * beyond_sure / band - 1)), 0).astype(np.float32)
    person = (p > PERSON_FULL) | (_joined(alpha * (1 - shade), p) > PERSON_FULL)
    far = smoothstep(_distance(person == 0) / max(FRINGE * max(size), 1e-6) - 1)
    alpha = _joined(cv2.GaussianBlur(alpha * (1 - shade * far), (0, 0), 0.7), p)
    if not alpha.any():
        return conf
    alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    some = alpha > 0  # the inverse ramp only where needed: 0.2 s over a whole 4K photo
    out = conf.copy()
    out[some] = np.maximum(conf[some], confidence_of(alpha[some]))
    return out
