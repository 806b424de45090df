"""Image reading (EXIF, RGBA, grayscale) and streaming video I/O with audio, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import read_frames
from reenact.errors import BadInputError, OutputExistsError
from reenact.io import VideoReader, VideoWriter, atomic_output, probe_video, read_image


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3), "displayed upright: width and height swapped"
    assert out[:20].mean() > 200 and out[20:].mean() < 50, "left half ends on top after a clockwise turn"


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_phone_formats_are_read_upright(testdata, tmp_path, suffix):
    """HEIC (iPhones' default) and AVIF, saved from lp_s0.jpg with EXIF orientation 6: read upright,
    within a few levels of the JPEG turned; and in a fresh process the face is found in it."""
    import pillow_heif

    from conftest import run_cli

    jpg = Image.open(testdata / "faces" / "lp_s0.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / f"lp_s0{suffix}"
    if suffix == ".heic":
        pillow_heif.register_heif_opener()  # to write it; reading registers it by itself (the CLI run below)
    jpg.save(path, quality=90, exif=exif.tobytes())
    out = read_image(path)
    upright = np.asarray(jpg.transpose(Image.Transpose.ROTATE_270))  # turned 90° clockwise
    assert out.shape == upright.shape == (600, 704, 3)
    assert np.abs(out.astype(int) - upright).mean() < 4
    res = run_cli("faces", path, "--json")
    assert res.returncode == 0, res.stderr
    faces = json.loads(res.stdout)["faces"]
    assert len(faces) == 1 and abs(abs(faces[0]["roll"]) - 90) < 15, faces  # upright: the face lies on its side


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_grayscale_photo_keeps_its_range(testdata, tmp_path, suffix):
    """lp_s0.jpg's red channel as a 16-bit grayscale file (Pillow mode I;16): read within a level of
    the 8-bit channel, and its face found. Pillow's own conversion clipped it to white (no face)."""
    import cv2

    from conftest import run_cli

    red = np.asarray(Image.open(testdata / "faces" / "lp_s0.jpg"))[..., 0]
    path = tmp_path / f"scan16{suffix}"
    cv2.imwrite(str(path), red.astype(np.uint16) * 257)
    assert Image.open(path).mode.startswith("I;16")
    out = read_image(path)
    assert out.shape == (*red.shape, 3) and np.abs(out.astype(int) - red[..., None]).max() <= 1
    res = run_cli("faces", path, "--json")
    assert res.returncode == 0 and len(json.loads(res.stdout)["faces"]) == 1, res.stderr


def test_a_large_photo_reads_quietly_and_a_huge_one_is_refused(tmp_path):
    """90 MP is past Pillow's decompression-bomb warning (89 MP): a user's own photo reads with no
    warning (it printed two lines of Pillow's internals); 182 MP, past Pillow's refusal, is one clear error."""
    import warnings

    Image.new("L", (9500, 9500), 128).save(tmp_path / "large.png")
    Image.new("L", (13500, 13500), 128).save(tmp_path / "huge.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "large.png").shape == (9500, 9500, 3)
    with pytest.raises(BadInputError, match=r"huge.png: image is too large \(182 MP; reenact reads photos up to 179 MP\)"):
        read_image(tmp_path / "huge.png")


def _srgb_from(rgb: np.ndarray, colorants, gamma: float | str) -> np.ndarray:
    """The sRGB pixels of ``rgb`` (uint8) in a matrix profile (``colorants`` at D50, one ``gamma`` or
    "srgb"'s curve), computed here: linear light, XYZ, linear sRGB (its D50-adapted colorants), clipped, encoded."""
    srgb = np.array([[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169],
                     [0.0139322, 0.0971045, 0.7141733]])
    e = rgb / 255.0
    decoded = np.where(e <= 0.04045, e / 12.92, ((e + 0.055) / 1.055) ** 2.4) if gamma == "srgb" else e ** gamma
    lin = decoded @ (np.linalg.inv(srgb) @ np.array(colorants).T).T
    lin = np.clip(lin, 0, 1)
    enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.round(enc * 255)


def test_a_photo_in_display_p3_is_read_in_srgb(testdata, tmp_path):
    """lp_s0.jpg's pixels tagged with a Display P3 profile (what phones embed) read as their sRGB
    colours, as computed here: 0.03 levels off on average. Read as plain numbers they were 2.31 off
    (a muted portrait; its reds most). An sRGB profile changes nothing."""
    from PIL import ImageCms

    from media import DISPLAY_P3, matrix_icc

    rgb = np.asarray(Image.open(testdata / "faces" / "lp_s0.jpg"))
    Image.fromarray(rgb).save(tmp_path / "p3.png", icc_profile=matrix_icc(DISPLAY_P3, 2.2))
    expected = _srgb_from(rgb.astype(np.float64), DISPLAY_P3, 2.2)
    out = read_image(tmp_path / "p3.png").astype(np.float64)
    print(f"P3-tagged: {np.abs(out - expected).mean():.2f} levels from its sRGB colours, "
          f"{np.abs(rgb - expected).mean():.2f} as numbers")
    assert np.abs(out - expected).mean() < 0.5 and np.abs(rgb - expected).mean() > 1.5
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(tmp_path / "srgb.png", icc_profile=srgb)
    assert np.array_equal(read_image(tmp_path / "srgb.png"), rgb)


def test_a_heic_in_display_p3_without_an_icc_profile_is_read_in_srgb(testdata, tmp_path):
    """Some phones describe a HEIC's colour by an nclx box alone (Display P3 primaries, sRGB's curve).
    It reads as its sRGB colours, as computed here from Apple's D50-adapted P3 colorants: within 0.3
    levels on average. It was read as plain numbers: 1.5 levels off, its reds muted."""
    import pillow_heif

    from media import DISPLAY_P3

    pillow_heif.register_heif_opener()
    im = Image.open(testdata / "faces" / "lp_s0.jpg").convert("RGB")
    im.info.pop("icc_profile", None)
    im.save(tmp_path / "p3.heic", quality=95, color_primaries=12, transfer_characteristic=13,
            matrix_coefficients=6, full_range_flag=1, save_nclx_profile=True)
    with Image.open(tmp_path / "p3.heic") as stored:
        assert "icc_profile" not in stored.info and stored.info["nclx_profile"]["color_primaries"] == 12
        numbers = np.asarray(stored.convert("RGB")).astype(np.float64)
    expected = _srgb_from(numbers, DISPLAY_P3, "srgb")
    out = read_image(tmp_path / "p3.heic").astype(np.float64)
    print(f"P3 nclx HEIC: {np.abs(out - expected).mean():.2f} levels from its sRGB colours, "
          f"{np.abs(numbers - expected).mean():.2f} as numbers")
    assert np.abs(out - expected).mean() < 0.3 and np.abs(numbers - expected).mean() > 1


def test_rgba_and_grayscale_become_rgb(testdata):
    rgba = read_image(testdata / "faces" / "Image_with_alpha.png")
    gray = read_image(testdata / "faces" / "BWPictureHuman.jpg")
    assert rgba.shape == (1036, 1524, 3) and rgba.dtype == np.uint8
    assert gray.shape == (1912, 2560, 3)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])


def test_transparent_pixels_composite_over_white(tmp_path):
    arr = np.zeros((32, 32, 4), np.uint8)
    arr[:16, :, :] = [255, 0, 0, 255]
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert (out[:16] == [255, 0, 0]).all() and (out[16:] == 255).all()


@pytest.mark.parametrize("content", [b"", b"this is not an image\n"])
def test_bad_images_raise_bad_input(tmp_path, content):
    p = tmp_path / "x.png"
    p.write_bytes(content)
    with pytest.raises(BadInputError, match="x.png"):
        read_image(p)


def test_reader_streams_every_frame(testdata):
    info = probe_video(testdata / "videos" / "single_face.mp4")
    assert info.size == (640, 360) and info.fps == 30 and info.audio_codec == "mp3"
    frames = read_frames(testdata / "videos" / "single_face.mp4")
    assert len(frames) == 72 and frames[0].shape == (360, 640, 3)
    assert sum(1 for _ in VideoReader(testdata / "videos" / "single_face.mp4", loops=2)) == 144


def test_writer_keeps_fps_and_muxes_audio(testdata, tmp_path):
    src = probe_video(testdata / "videos" / "lp_d18.mp4")
    frames = read_frames(testdata / "videos" / "lp_d18.mp4")[:60]
    with VideoWriter(tmp_path / "o.mp4", (480, 480), src.fps, audio_from=src) as w:
        for f in frames:
            w.write(f)
    out = probe_video(tmp_path / "o.mp4")
    assert out.fps == 30 and out.audio_codec == "aac" and out.size == (480, 480)
    back = read_frames(tmp_path / "o.mp4")
    assert len(back) == 60
    assert np.abs(back[30].astype(int) - frames[30]).mean() < 4, "lossy but faithful"


def _tone_onset(path: Path) -> float:
    """Seconds from the video's first frame to where the audio first rises above 0.1."""
    import av

    with av.open(str(path)) as c:
        video = c.streams.video[0]
        start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
        for frame in c.decode(c.streams.audio[0]):
            loud = np.abs(frame.to_ndarray()).max(axis=0) > 0.1
            if loud.any():
                return float(frame.pts * frame.time_base) + int(np.argmax(loud)) / frame.sample_rate - start
    raise AssertionError("no tone")


@pytest.mark.parametrize("lead", [0.5, -0.5])
def test_sound_stays_with_the_picture_when_one_starts_first(testdata, tmp_path, lead):
    """A driver whose audio starts ``lead`` s before its first frame (a screen recording, a clip cut
    by stream copy), or after it: a tone that sounds with frame 45 (1.5 s into the picture) sounds
    1.5 s into the output too. Before, audio that started 0.5 s early was kept, and the tone came
    at 2.0 s: the output's sound was half a second late."""
    import media

    video, tone, clip = tmp_path / "v.mp4", tmp_path / "tone.m4a", tmp_path / "driver.mp4"
    media.ffmpeg("-i", testdata / "videos" / "lp_d18.mp4", "-frames:v", "90", "-an", "-c:v", "libx264", video)
    onset = 1.5 + lead  # in the audio track's own time
    media.ffmpeg("-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=4", "-af",
                 f"volume='if(gte(t,{onset}),1,0)':eval=frame", "-c:a", "aac", tone)
    offset = ["-itsoffset", str(abs(lead))]
    media.ffmpeg(*(offset if lead > 0 else []), "-i", video, *(offset if lead < 0 else []), "-i", tone,
                 "-map", "0:v", "-map", "1:a", "-c", "copy", clip)
    assert abs(_tone_onset(clip) - 1.5) < 0.03  # the driver itself: the tone with frame 45
    info = probe_video(clip)
    with VideoWriter(tmp_path / "o.mp4", (480, 480), info.fps, audio_from=info) as w:
        for frame in VideoReader(clip, info=info).timed():
            w.write(frame.image, frame.time)
        w.close(end=info.duration)
    assert abs(_tone_onset(tmp_path / "o.mp4") - 1.5) < 0.03


PATCHES = [(220, 170, 140), (200, 40, 40), (40, 160, 60), (50, 70, 200), (128, 128, 128), (240, 240, 240)]


def _patches(tmp_path, size=(1280, 720)) -> Path:
    """A video of six colour patches (skin, red, green, blue, grey, white) at an HD size."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    for i, c in enumerate(PATCHES):
        img[:, i * w // 6:(i + 1) * w // 6] = c
    with VideoWriter(tmp_path / "patches.mp4", size, 25) as wr:
        for _ in range(5):
            wr.write(img)
    return tmp_path / "patches.mp4"


def _patch_colours(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return np.array([img[h // 2, i * w // 6 + w // 12] for i in range(6)], int)


def test_the_writer_converts_and_tags_bt709(tmp_path):
    """H.264 frames carry BT.709 tags (matrix, primaries, transfer; limited range) and are converted
    with BT.709's matrix, so a player's reading matches ours. Untagged, HD frames converted with
    BT.601's read wrong in players, which take untagged HD video as BT.709."""
    import av

    with av.open(str(_patches(tmp_path))) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range) == (1, 1, 1, 1)
        frame = next(c.decode(video=0))
    assert np.abs(_patch_colours(frame.to_ndarray(format="rgb24")) - PATCHES).max() <= 3


def test_a_browser_shows_the_written_colours(tmp_path):
    """Chromium, headless, shows the first frame of an HD video from VideoWriter: each patch within 8
    levels of what was written. With the frames converted by BT.601 and untagged, it showed the
    green (40, 160, 60) as (30, 143, 61) and the red (200, 40, 40) as (213, 55, 39)."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs chromium (apt-get install chromium)")
    _patches(tmp_path)
    page = tmp_path / "page.html"
    page.write_text('<html><body style="margin:0;background:#000"><video id=v src="patches.mp4" muted '
                    'style="display:block"></video><script>const v = document.getElementById("v"); '
                    'v.addEventListener("loadeddata", () => { v.currentTime = 0.1; }); v.load();</script></body></html>')
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--force-color-profile=srgb",
                    "--virtual-time-budget=5000", "--window-size=1280,720", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    seen = _patch_colours(np.asarray(Image.open(shot).convert("RGB")))
    print("written", PATCHES, "shown", seen.tolist())
    assert np.abs(seen - PATCHES).max() <= 8


def test_writer_without_audio_source(testdata, tmp_path):
    with VideoWriter(tmp_path / "o.mp4", (64, 48), 25.0) as w:
        for _ in range(5):
            w.write(np.zeros((48, 64, 3), np.uint8))
    assert probe_video(tmp_path / "o.mp4").audio_codec is None


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_refuses_and_preserves_existing(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        with atomic_output(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_output(target, force=True) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("fails half way")
    assert target.read_bytes() == b"precious" and len(list(tmp_path.iterdir())) == 1
    with atomic_output(target, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_a_folder_of_frames_is_read_in_frame_order_past_macos_files(testdata, tmp_path):
    """Frames dumped by `ffmpeg -i clip.mp4 %d.png` (1.png ... 12.png) in a folder copied from a Mac
    (.DS_Store, a "._3.png" beside a frame). Plain sorting read 1, 10, 11, 12, 2, ...; the "._" file
    was read as a frame (and failed), and .DS_Store made the folder not a frame folder at all for
    `preprocess`. Now `preprocess`, `score` and `evaluate` read the twelve frames in order."""
    from reenact.data.preprocess import _frames
    from reenact.data.sources import expand
    from reenact.io.image import image_files
    from reenact.metrics.inputs import discover

    video = read_frames(testdata / "videos" / "lp_d18.mp4")[:12]
    folder = tmp_path / "set" / "clip"
    folder.mkdir(parents=True)
    for k, frame in enumerate(video, start=1):
        Image.fromarray(frame).save(folder / f"{k}.png")
    (folder / "._3.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert [p.name for p in image_files(folder)] == [f"{k}.png" for k in range(1, 13)]
    assert list(expand([tmp_path / "set"])) == [folder]
    fps, frames, _ = _frames(folder)
    assert fps == 25
    assert all(np.array_equal(f.image, v) for f, v in zip(frames, video))
    (clip,) = discover(tmp_path / "set")
    assert [p.name for p in clip.paths] == [f"{k}.png" for k in range(1, 13)]


def test_macos_twins_and_hidden_folders_are_not_taken_for_clips(testdata, tmp_path):
    """A dataset copied from a Mac to a USB drive: macOS writes "._clip.mp4" (AppleDouble metadata,
    4 kB) beside every clip, and the drive has .Trashes and .Spotlight-V100 folders. `preprocess`'s
    search found the twins as clips (each then failed to decode) and walked the hidden folders;
    `score`'s and `evaluate`'s found "._clip" as a clip to pair. Only the real clip is found now."""
    from reenact.data.sources import expand
    from reenact.metrics.inputs import discover

    root = tmp_path / "drive"
    (root / "id1").mkdir(parents=True)
    (root / ".Trashes" / "501").mkdir(parents=True)
    clip = root / "id1" / "clip.mp4"
    clip.write_bytes((testdata / "videos" / "lp_d18.mp4").read_bytes())
    (root / "id1" / "._clip.mp4").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))
    (root / ".Trashes" / "501" / "old.mp4").write_bytes(clip.read_bytes())
    assert list(expand([root])) == [clip]
    assert [c.name for c in discover(root / "id1")] == ["clip"]
