"""`--paste-back` on large photos: the full-image layers are built in place, the warp is composited
and converted a strip of rows at a time, and large frames are rendered in small batches
(bench/bench_photo_memory.py prints the memory and speed this buys)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import reenact.render.layers as layers_module
from reenact.drive import BATCH, frames_per_batch
from reenact.engines import _to_tensor, _to_uint8
from conftest import run_cli
from reenact.io import probe_video, read_image
from reenact.io.video_writer import largest_side_within_level
from reenact.render.layers import composite, make_layers, pixel_grid, sample


def _photo(pipeline, testdata):
    rgb = read_image(testdata / "faces" / "group_t1.jpg")
    return rgb, _to_tensor(rgb, torch.device("cpu")), torch.from_numpy(pipeline.person_mask(rgb))[None, None]


def test_the_layers_are_built_without_touching_the_image(pipeline, testdata):
    """make_layers writes its planes in place; the image it is given stays as it was, also where no
    background is in view and the background plate is the image itself."""
    rgb, img, person = _photo(pipeline, testdata)
    assert torch.equal(img, torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255)  # _to_tensor, a channel at a time
    before = img.clone()
    layers = make_layers(img, person)
    assert torch.equal(img, before)
    p, a = layers.stack[:, :3], layers.stack[:, 3:]
    assert float((p + (1 - a) * layers.back - img).abs().max()) < 1e-5  # I = P + (1 − α) B̃
    everyone = make_layers(img, torch.ones_like(person))  # all person: nothing to fill the plate from
    assert torch.equal(img, before) and torch.equal(everyone.back, img)


def test_strips_of_rows_give_the_same_pixels(pipeline, testdata, monkeypatch):
    """The composite and the uint8 conversion, a few rows at a time, are their formulas on the whole
    box at once, exactly."""
    rgb, img, person = _photo(pipeline, testdata)
    layers = make_layers(img, person)
    h, w = rgb.shape[:2]
    box = (100, 50, w - 60, h - 30)
    q = pixel_grid(box[3] - box[1], box[2] - box[0], "cpu", x0=box[0], y0=box[1])
    c, s = np.cos(0.1), np.sin(0.1)
    centre = torch.tensor([w / 2, h / 3])
    turned = (q - centre) @ torch.tensor([[c, s], [-s, c]], dtype=q.dtype) + centre
    pos = torch.stack([q + torch.tensor([6.5, -3.25]), turned])  # (2, h, w, 2): shifted, turned
    moved = sample(layers.stack, pos)  # the composite's formula on the whole box at once
    whole, alpha = (1 - moved[:, 3:]) * layers.back[:, :, box[1]:box[3], box[0]:box[2]] + moved[:, :3], moved[:, 3:]
    monkeypatch.setattr(layers_module, "STRIP", 1 << 40)
    assert torch.equal(composite(layers, pos, box)[0], whole)
    reference = (whole * 255 + 0.5).clamp(0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
    assert np.array_equal(_to_uint8(whole), reference)
    monkeypatch.setattr(layers_module, "STRIP", 3 * 2 * (box[2] - box[0]) + 5)  # 3 rows of both frames
    assert len(layers_module.strips(2 * (box[2] - box[0]), box[3] - box[1])) > 200
    strips, strip_alpha = composite(layers, pos, box)
    assert torch.equal(strips, whole) and torch.equal(strip_alpha, alpha)
    assert np.array_equal(_to_uint8(whole), reference)
    assert float((whole - img[:, :, box[1]:box[3], box[0]:box[2]]).abs().amax()) > 0.5  # the head did move


def test_large_frames_are_rendered_in_small_batches():
    """Crops and small photos: 8 frames a batch. A 12 MP phone photo with --paste-back: 1 (8 took
    about 6 GB on a 4032 × 2741 photo, and ran slower than 2)."""
    assert frames_per_batch(256 * 256) == frames_per_batch(512 * 512) == frames_per_batch(1524 * 1036) == BATCH == 8
    assert frames_per_batch(3048 * 2072) == 3
    assert frames_per_batch(4032 * 2741) == 2
    assert frames_per_batch(4032 * 3024) == frames_per_batch(8064 * 6048) == 1


def test_the_largest_side_within_h264_level_5_2():
    """Level 5.2's frame is 36864 macroblocks (4096 x 2304); a larger frame gets the longest side, a
    multiple of 16, at which its shape fits."""
    assert largest_side_within_level((4096, 2304)) is None and largest_side_within_level((1524, 1036)) is None
    for size in ((4032, 3024), (3024, 4032), (4032, 2742), (3200, 3000), (8064, 5482)):
        side = largest_side_within_level(size)
        k = side / max(size)
        w, h = round(size[0] * k), round(size[1] * k)
        assert side % 16 == 0 and ((w + 15) // 16) * ((h + 15) // 16) <= 36864
        assert largest_side_within_level((round(size[0] * (side + 16) / max(size)), round(size[1] * (side + 16) / max(size))))


@pytest.mark.slow
def test_max_side_scales_a_large_photo_and_a_too_large_video_is_noted(testdata, tmp_path):
    """lp_s0.jpg at 3200 x 3755 (12 MP) with --paste-back: the output is beyond H.264 level 5.2's
    frame, and a note says so with the --max-side that fits; with it, the photo is scaled first (a
    note), and the video is that size, level 5.2 or below."""
    photo = tmp_path / "tall.jpg"
    Image.open(testdata / "faces" / "lp_s0.jpg").resize((3200, 3755), Image.LANCZOS).save(photo, quality=90)
    driver = testdata / "videos" / "lp_d18.mp4"
    res = run_cli("drive", photo, driver, "-o", tmp_path / "a.mp4", "--paste-back", "--max-frames", "2")
    assert res.returncode == 0, res.stderr
    notes = [ln for ln in res.stderr.splitlines() if "level 5.2" in ln]
    assert len(notes) == 1 and notes[0].endswith("--max-side 3312 keeps it within"), res.stderr
    assert probe_video(tmp_path / "a.mp4").size == (3200, 3756)  # made even
    res = run_cli("drive", photo, driver, "-o", tmp_path / "b.mp4", "--paste-back", "--max-frames", "2",
                  "--max-side", "3312")
    assert res.returncode == 0 and "level 5.2" not in res.stderr, res.stderr
    assert f"{photo}: animated at 2822x3312 (from 3200x3755)" in res.stderr
    import av

    with av.open(str(tmp_path / "b.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (2822, 3312)
        assert c.streams.video[0].codec_context.level <= 52, c.streams.video[0].codec_context.level
