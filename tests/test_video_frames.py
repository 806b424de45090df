"""Video frames read as a player shows them: HDR phone clips tone-mapped to SDR, untagged HD as BT.709."""

from __future__ import annotations

import numpy as np
import pytest

import media
from conftest import read_frames
from reenact.io import VideoReader
from reenact.io.video_frames import HLG, PQ, sdr_from_hdr


@pytest.mark.parametrize("transfer, primaries", [("arib-std-b67", "bt2020"), ("smpte2084", "bt2020"),
                                                  ("arib-std-b67", "bt709")])
def test_an_hdr_phone_clip_reads_as_its_sdr_original(testdata, tmp_path, transfer, primaries):
    """lp_d18 made HLG (iPhones) or PQ (HDR10) by zimg, with SDR white at 203 cd/m², reads back within
    3 levels of the SDR frames on average, each channel within 2.5. Read as plain numbers (FFmpeg's
    default conversion, what the reader did before), the HLG clip was 15.6 levels off, the PQ one 29.
    Some cameras film HLG in BT.709's primaries; those are not converted from BT.2020's."""
    import av

    clip = media.hdr_clip(testdata / "videos", tmp_path / "hdr.mp4", transfer, primaries)
    sdr = np.stack(read_frames(testdata / "videos" / "lp_d18.mp4")[:12]).astype(float)
    ours = np.stack(list(VideoReader(clip))).astype(float)
    with av.open(str(clip)) as c:
        plain = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(float)
    err, bias = np.abs(ours - sdr).mean(), (ours - sdr).mean(axis=(0, 1, 2))
    print(transfer, primaries, "mean", round(err, 2), "bias", bias.round(2), "plain", round(np.abs(plain - sdr).mean(), 2))
    assert err < 3 and np.abs(bias).max() < 2.5
    assert np.abs(plain - sdr).mean() > 10


@pytest.mark.parametrize("degrees", [90, 180, -90])
def test_a_rotated_hdr_phone_clip_reads_upright_and_in_sdr(testdata, tmp_path, degrees):
    """Portrait phone video: an HLG clip with a display matrix reads upright (FFmpeg's transpose or
    flips on the decoded frame) and still tone-mapped, within 3 levels of the rotated SDR original."""
    clip = media.rotated(media.hdr_clip(testdata / "videos", tmp_path / "hdr.mp4", "arib-std-b67", frames=4),
                         tmp_path / "r.mp4", degrees)
    sdr = [np.rot90(f, degrees // 90) for f in read_frames(testdata / "videos" / "lp_d18.mp4")[:4]]
    ours = list(VideoReader(clip))
    assert [f.shape for f in ours] == [f.shape for f in sdr]
    assert np.abs(np.stack(ours).astype(float) - np.stack(sdr)).mean() < 3


def _pq_signal(nits: float) -> float:
    """SMPTE ST 2084's inverse EOTF, written out here rather than taken from reenact."""
    m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
    y = (nits / 10000) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def test_the_hdr_mapping_keeps_reference_white_grey_and_hue():
    """BT.2408's anchors: HLG at 75 % and PQ at 203 cd/m² are both reference white, shown near SDR's
    white (250 of 255 after the highlight knee). Greys stay grey and rise with the signal; BT.709's
    pure red, carried in BT.2020, comes back pure red; the brightest HDR signal stays within range."""
    white_hlg = sdr_from_hdr(np.full(3, 0.75), HLG)
    white_pq = sdr_from_hdr(np.full(3, _pq_signal(203.0)), PQ)
    assert np.abs(white_hlg - white_pq).max() < 0.01
    assert 0.97 < white_pq[0] < 0.99 and np.ptp(white_pq) < 1e-9
    greys = sdr_from_hdr(np.repeat(np.linspace(0, 1, 101)[:, None], 3, 1), HLG)
    assert np.all(np.diff(greys[:, 0]) > 0) and np.ptp(greys, axis=1).max() < 1e-9 and greys.max() <= 1
    red709_in_2020 = np.array([0.6274, 0.0691, 0.0164]) * 100  # cd/m², BT.2087's BT.709 -> BT.2020 matrix
    red = sdr_from_hdr(np.array([_pq_signal(v) for v in red709_in_2020]), PQ)
    assert red[0] > 0.7 and red[1:].max() < 0.03, red


@pytest.mark.parametrize("size, untagged_matrix", [((1280, 720), "ITU709"), ((640, 360), "ITU601")])
def test_untagged_video_is_read_with_the_matrix_players_assume(tmp_path, size, untagged_matrix):
    """An untagged HD clip encoded with BT.709's matrix (as most cameras and editors do) reads within
    3 levels of its colours; an untagged SD clip with BT.601's, likewise. Before, HD was read with
    BT.601's: the green (40, 160, 60) came out about (24, 142, 56)."""
    import av

    colours = np.array([(220, 170, 140), (200, 40, 40), (40, 160, 60), (50, 70, 200), (128, 128, 128)], np.uint8)
    w, h = size
    img = np.repeat(colours, w // 5, axis=0)[None].repeat(h, 0)  # (H, W, 3): five vertical bars
    path = tmp_path / "untagged.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        space = getattr(av.video.reformatter.Colorspace, untagged_matrix)
        for _ in range(3):
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace=space)))
        c.mux(s.encode(None))
    with av.open(str(path)) as c:
        assert next(c.decode(video=0)).colorspace == 2  # unspecified
    frame = next(iter(VideoReader(path)))
    seen = frame[h // 2, [i * w // 5 + w // 10 for i in range(5)]].astype(int)
    assert np.abs(seen - colours).max() <= 3, seen.tolist()


@pytest.mark.parametrize("sar", ["4/3", "8/9"])
def test_non_square_pixels_are_shown_square(testdata, tmp_path, sar):
    """Camcorder and broadcast video stores non-square pixels (HDV's 1440 x 1080 shows 1920 x 1080 at
    4:3; NTSC DV's are 8:9). lp_d18 stored so reads back at its own 480 x 480, within 2 levels of the
    original frames. Before, it came out 360 (or 540) pixels wide: a squeezed face, whose drive gave
    a narrower mouth (6.0 levels from the square driver's output, 1.6 after)."""
    src = testdata / "videos" / "lp_d18.mp4"
    clip = media.anamorphic(src, tmp_path / "anamorphic.mp4", sar)
    info = VideoReader(clip).info
    ours = np.stack(list(VideoReader(clip))).astype(float)
    truth = np.stack(read_frames(src)[:12]).astype(float)
    assert info.size == (480, 480) and str(info.pixel_aspect) == sar and ours.shape == truth.shape
    assert np.abs(ours - truth).mean() < 2


def test_non_square_pixels_are_made_square_before_rotating(testdata, tmp_path):
    """A 480 x 320 crop of lp_d18 stored 360 x 320 at 4:3, in a portrait phone's display matrix:
    the pixel aspect applies to the stored frame, then the rotation. It reads 320 x 480 upright."""
    src = testdata / "videos" / "lp_d18.mp4"
    stored = media.anamorphic(src, tmp_path / "anamorphic.mp4", "4/3", size=(480, 320), frames=4)
    clip = media.rotated(stored, tmp_path / "portrait.mp4", 90)
    truth = np.stack([np.rot90(f[80:400], 1) for f in read_frames(src)[:4]]).astype(float)
    ours = np.stack(list(VideoReader(clip))).astype(float)
    assert VideoReader(clip).info.size == (320, 480) and ours.shape == truth.shape
    assert np.abs(ours - truth).mean() < 2


def test_interlaced_video_is_deinterlaced_at_its_own_times(testdata, tmp_path, landmarker):
    """lp_d11's frames 40-99 (its head turn), woven into 30 interlaced frames as a camcorder films
    them. Read as stored, the moving face is combed, two faces 1/25 s apart: MediaPipe's landmarks
    fall 0.028 eye distances from those on the true frames on average (0.040 at worst). Deinterlaced
    (bwdif), they fall within 0.01 at worst, and the frames within 1.2 levels of the true ones. Every
    stored frame comes out once, at its own time, the last one (held by the deinterlacer) too."""
    import av

    src = testdata / "videos" / "lp_d11.mp4"
    clip = media.interlaced(src, tmp_path / "interlaced.mp4", start=40, frames=60)
    truth = read_frames(src)[40:100:2]
    timed = list(VideoReader(clip).timed())
    with av.open(str(clip)) as c:
        woven = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(timed) == len(truth) == 30
    assert np.allclose([f.time for f in timed], np.arange(30) * 0.08, atol=1e-6)
    assert np.mean([media.mean_abs(f.image, t) for f, t in zip(timed, truth)]) < 1.2

    def error(image, true):
        (ours,), (want,) = landmarker.detect(image, search=False), landmarker.detect(true, search=False)
        eyes = np.linalg.norm(want.points[33, :2] - want.points[263, :2])
        return np.linalg.norm(ours.points[:, :2] - want.points[:, :2], axis=1).mean() / eyes

    ours = [error(f.image, t) for f, t in zip(timed, truth)]
    stored = [error(np.ascontiguousarray(w), t) for w, t in zip(woven, truth)]
    print("landmark error, deinterlaced", np.mean(ours).round(4), np.max(ours).round(4),
          "as stored", np.mean(stored).round(4), np.max(stored).round(4))
    assert max(ours) < 0.01 and np.mean(stored) > 5 * np.mean(ours)
