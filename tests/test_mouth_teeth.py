"""A source that shows its own teeth, driven to open wider (render/mouth.py, render/teeth.py): its
teeth hang from its lips at their own size.

Sources: faces/Image_with_alpha.png (a laughing man, inner-lip gap 0.36 of the mouth width, upper
teeth, tongue and lower teeth showing; lp_d11.mp4 opens it to 0.46-0.57 at frames 60, 90, 117 and
162) and examples/source.png (a smile, 0.155, the upper teeth only; lp_d18.mp4 opens it to 0.87-0.98
at frames 84 and 136).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reenact.face import regions

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CORNER, OTHER = 0, 10  # inner-ring positions of the mouth corners (78 and 308)


def under_the_upper_lip(image: np.ndarray, verts: np.ndarray, along: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(len(along) * len(depth), 3) pixels of ``image`` under its upper inner lip: at each ``along`` px
    from the middle of the corner line, each ``depth`` px below the lip (across the corner line)."""
    ring = np.asarray(verts, np.float64)[regions.INNER_LIPS, :2]
    c0, width = ring[CORNER], np.linalg.norm(ring[OTHER] - ring[CORNER])
    a = (ring[OTHER] - c0) / width
    down = np.array([-a[1], a[0]])
    upper = ring[CORNER:OTHER + 1] - c0  # the upper inner lip, corner to corner
    lip = np.interp(along + width / 2, upper @ a, upper @ down)
    pts = c0 + (along + width / 2)[:, None, None] * a + (lip[:, None] + depth[None, :])[..., None] * down
    xy = np.round(pts.reshape(-1, 2) - 0.5).astype(int)
    return image[xy[:, 1], xy[:, 0]].astype(np.float64)


@pytest.mark.parametrize("face, video, frames, paste_back, bar", [
    ("Image_with_alpha.png", "lp_d11.mp4", [60, 90, 117, 162], False, 12),
    (str(EXAMPLES / "source.png"), "lp_d18.mp4", [84, 136], False, 12),
    (str(EXAMPLES / "source.png"), "lp_d18.mp4", [84, 136], True, 20),
], ids=["laughing", "smile", "smile-paste-back"])
def test_an_open_source_mouth_keeps_its_upper_teeth_under_its_lip(pipeline, testdata, face, video, frames,
                                                                   paste_back, bar):
    """Measure: the source's pixels under its upper inner lip (0.3 mouth widths either side of the
    middle, 1 px to 0.08 widths deep: its upper teeth) against the output's at the same places under
    the driven upper lip, mean absolute difference in levels. Under 12: the teeth hang from the lip
    at their size (measured 6.9-8.6 laughing, 5.7-5.9 smile). With one translation per lip and a
    straight cut between the halves they did not: 18.0-31.4 laughing (the upper teeth ended in a
    straight edge over a flat pink band), 28.8-61.5 smile (the cut ran through the teeth, and their
    lower half went down with the lower lip). With --paste-back (the demo's mode) the mouth is read in
    the full source, where it is 45 px wide and the band only 3.6 px deep, so a pixel's misplacement
    counts for more: under 20, measured 12.6 and 15.6, against 60.5 and 31.6 before (and 26.7 and
    30.4 with a bite search whose depth steps held no pixel centre: it cut at the first row there)."""
    import torch
    from conftest import drive_fits

    from reenact.engines import GeometricWarp
    from reenact.face.crop import apply_affine, invert_affine
    from reenact.render.mouth import opening

    src, fits, drivers = drive_fits(pipeline, testdata, face, video, frames)
    to_image = (lambda v: apply_affine(invert_affine(src.affine), np.asarray(v)[:, :2])) if paste_back else (  # noqa: E731
        lambda v: np.asarray(v)[:, :2])
    verts = to_image(src.fit.vertices)
    ring = verts[regions.INNER_LIPS]
    width = np.linalg.norm(ring[OTHER] - ring[CORNER])
    along, depth = np.linspace(-0.3 * width, 0.3 * width, 25), np.arange(1.0, 0.08 * width, 0.5)
    want = under_the_upper_lip(np.asarray(src.image if paste_back else src.crop), verts, along, depth)
    engine = GeometricWarp(src, torch.device("cpu"), paste_back)
    assert engine.mouth.open > 0.12, "the source shows its teeth"
    out = engine(fits, drivers)  # (B, H, W, 3) uint8
    for k, fit in enumerate(fits):
        driven = to_image(fit.vertices)
        wider = opening(driven[None, regions.INNER_LIPS, :2])[0] - engine.mouth.open
        err = np.abs(under_the_upper_lip(out[k], driven, along, depth) - want).mean()
        print(f"frame {frames[k]}: opens {wider:.2f} wider; under the upper lip off by {err:.1f} levels")
        assert wider > 0.08
        assert err < bar
