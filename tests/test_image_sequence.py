"""Videos made of images, as drivers: animated WebP (stickers, what messengers serve), animated PNG,
and folders of frames.

PyAV 18's FFmpeg (Python 3.11) cannot decode animated WebP; before, such a driver was refused as
"an image". Pillow reads them on every Python. A folder of frames was refused as "a directory".
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import media
from conftest import read_frames, run_cli, user_lines
from reenact.io import VideoReader, VideoWriter, probe_video


def test_an_animated_webp_reads_as_its_video(testdata, tmp_path):
    """lp_d18's first 24 frames, written as a lossless animated WebP by FFmpeg's libwebp, read back
    as 24 frames of 480 x 480 within 2 levels of the video's (1.02: the ffmpeg CLI's own YUV to RGB
    conversion), at the video's times (WebP keeps whole milliseconds: within 1 ms), lasting 0.8 s."""
    src = testdata / "videos" / "lp_d18.mp4"
    webp = tmp_path / "sticker.webp"
    media.ffmpeg("-i", src, "-frames:v", "24", "-c:v", "libwebp", "-lossless", "1", "-loop", "0", webp)
    info = probe_video(webp)
    timed = list(VideoReader(webp).timed())
    video = read_frames(src)[:24]
    assert info.kind == "animation" and info.size == (480, 480) and info.n_frames == len(timed) == 24
    assert abs(info.duration - 0.8) < 0.002 and info.audio_codec is None
    assert np.allclose([f.time for f in timed], np.arange(24) / 30, atol=0.001)
    assert np.mean([media.mean_abs(f.image, v) for f, v in zip(timed, video)]) < 2


def test_an_animated_png_keeps_its_delays_and_shows_transparency_as_white(tmp_path):
    """An APNG of three frames with delays of 50, 5 and 80 ms and a transparent border: the frames
    start at 0, 0.05 and 0.15 s (a delay of 10 ms or less is shown as 100 ms, as browsers do), the
    animation lasts 0.23 s, and the border reads white."""
    frames = []
    for level in (60, 120, 180):
        rgba = np.zeros((64, 80, 4), np.uint8)
        rgba[8:56, 8:72] = (level, level // 2, 30, 255)
        frames.append(Image.fromarray(rgba, "RGBA"))
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[50, 5, 80], loop=0)
    info = probe_video(path)
    timed = list(VideoReader(path).timed())
    assert info.size == (80, 64) and info.n_frames == 3 and abs(info.duration - 0.23) < 1e-9
    assert np.allclose([f.time for f in timed], [0, 0.05, 0.15])
    assert [tuple(f.image[30, 40]) for f in timed] == [(60, 30, 30), (120, 60, 30), (180, 90, 30)]
    assert all((f.image[2, 2] == 255).all() for f in timed)


def test_drive_takes_an_animated_webp_and_refuses_a_still_image(testdata, tmp_path):
    """`reenact drive` with an animated WebP driver writes one frame per WebP frame over its
    duration; a still WebP or PNG given as the driver is one line and exit code 1."""
    webp = tmp_path / "sticker.webp"
    media.ffmpeg("-i", testdata / "videos" / "lp_d18.mp4", "-frames:v", "12", "-c:v", "libwebp", "-loop", "0", webp)
    res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", webp, "-o", tmp_path / "out.mp4")
    assert res.returncode == 0, res.stderr
    out = probe_video(tmp_path / "out.mp4")
    assert out.n_frames == 12 and abs(out.duration - 0.4) < 0.01
    for still in ("still.webp", "still.png"):
        Image.open(testdata / "faces" / "lp_s6.jpg").save(tmp_path / still)
        res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", tmp_path / still, "-o", tmp_path / "o.mp4")
        lines = user_lines(res.stderr)
        assert res.returncode == 1 and len(lines) == 1 and "is a still image" in lines[0], res.stderr


def test_drive_takes_a_folder_of_frames_at_25_fps(testdata, tmp_path):
    """lp_d18's first 12 frames as 1.png ... 12.png (``ffmpeg %d.png``): `reenact drive` writes 12
    frames over 0.48 s, and they follow the frames in number order (the output's mouth opening
    matches a drive from the video itself within 3 levels). A folder whose frames differ in size,
    and one without images, are one line each."""
    frames = tmp_path / "frames"
    frames.mkdir()
    media.ffmpeg("-i", testdata / "videos" / "lp_d18.mp4", "-frames:v", "12", frames / "%d.png")
    res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", frames, "-o", tmp_path / "out.mp4")
    assert res.returncode == 0, res.stderr
    out = probe_video(tmp_path / "out.mp4")
    assert out.n_frames == 12 and abs(out.duration - 0.48) < 0.01 and out.audio_codec is None
    res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", testdata / "videos" / "lp_d18.mp4", "-o",
                  tmp_path / "video.mp4", "--max-frames", "12")
    assert res.returncode == 0, res.stderr
    ours, video = read_frames(tmp_path / "out.mp4"), read_frames(tmp_path / "video.mp4")
    assert np.mean([media.mean_abs(a, b) for a, b in zip(ours, video)]) < 3
    Image.open(frames / "5.png").resize((240, 240)).save(frames / "5.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    for driver, words in ((frames, "5.png: is 240x240, the folder's first frame 480x480"),
                          (empty, "is a folder without images")):
        res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", driver, "-o", tmp_path / "o.mp4")
        lines = user_lines(res.stderr)
        assert res.returncode == 1 and words in lines[-1] and lines[-1].startswith("error:"), res.stderr


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_an_animated_gif_or_webp_output_keeps_the_frames_and_their_times(testdata, tmp_path, suffix):
    """lp_d18's first 24 frames written as an animated GIF (one palette for the clip) or WebP: 24
    frames back, at the video's times (a GIF's to the hundredth of a second), lasting 0.8 s, within a
    2.5 levels of the frames (GIF 1.16, WebP 1.27 measured), and no sound though the source has some."""
    src = testdata / "videos" / "lp_d18.mp4"
    info = probe_video(src)
    frames = list(VideoReader(src).timed())[:24]
    out = tmp_path / f"out{suffix}"
    with VideoWriter(out, (480, 480), info.fps, audio_from=info) as w:
        for f in frames:
            w.write(f.image, f.time)
        w.close(end=0.8)
        assert not w.has_audio
    back = list(VideoReader(out).timed())
    assert len(back) == 24 and abs(probe_video(out).duration - 0.8) < 0.011
    assert np.allclose([f.time for f in back], [f.time for f in frames], atol=0.006)
    err = np.mean([media.mean_abs(b.image, f.image) for b, f in zip(back, frames)])
    print(suffix, round(err, 2))
    assert err < 2.5


def test_drive_to_a_gif_says_it_has_no_sound(testdata, tmp_path):
    res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", testdata / "videos" / "lp_d18.mp4", "-o",
                  tmp_path / "out.gif", "--max-frames", "6")
    assert res.returncode == 0, res.stderr
    assert ".gif outputs have no sound" in res.stderr and "driver audio" not in res.stderr
    assert probe_video(tmp_path / "out.gif").n_frames == 6 and sorted(p.name for p in tmp_path.iterdir()) == ["out.gif"]
