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
