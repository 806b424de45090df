"""What users bring: variable frame rates, rotated phone video, other rates, HEVC, faces that leave
and come back, and the first minute (no C++ log lines, fast input checks, corrupt model files)."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest

from conftest import ROOT, read_frames, run_cli
import media
from media import face_then_gone, ffmpeg, has_encoder, mean_abs, rotated
from reenact.io import VideoReader, VideoWriter, probe_video

SOURCE = ROOT / "examples" / "source.png"
# Any line a C++ library logs: absl/glog records ("W0000 00:00:..."), TFLite/LiteRT INFO/WARNING lines.
NATIVE = re.compile(r"^(?:[IWEF]\d{4} |INFO: |WARNING: |E0000|\[mediapipe)")


def _drive(driver, out, *extra):
    res = run_cli("drive", SOURCE, driver, "-o", out, *extra)
    assert res.returncode == 0, res.stderr
    return res


# --- time -------------------------------------------------------------------------------------------

def test_variable_rate_clip_decodes_its_stored_frames_with_their_times(testdata):
    reader = VideoReader(testdata / "videos" / "vfr_lp_d18.mp4")
    frames = list(reader.timed())
    steps = np.diff([f.time for f in frames])
    assert len(frames) == 101 and reader.info.n_frames == 101
    assert abs(reader.info.duration - 7.20) < 0.01 and abs(reader.info.fps - 101 / 7.2) < 0.01
    assert (steps > 0).all() and steps.max() > 2.5 * steps.min(), "irregular gaps, never a duplicate"


@pytest.mark.parametrize("degrees", [90, -90])
def test_display_rotation_is_applied_as_ffmpeg_shows_it(testdata, tmp_path, degrees):
    clip = rotated(testdata / "videos" / "single_face.mp4", tmp_path / "r.mp4", degrees)
    ffmpeg("-i", clip, "-frames:v", "1", tmp_path / "cli.png")  # the ffmpeg CLI autorotates
    from reenact.io import read_image

    shown = read_image(tmp_path / "cli.png")
    info = probe_video(clip)
    first = next(iter(VideoReader(clip)))
    assert info.size == (360, 640) and info.rotation == degrees % 360
    assert first.shape == shown.shape == (640, 360, 3) and mean_abs(first, shown) < 1.0


@pytest.mark.parametrize("rate", ["50", "12.5"])
def test_constant_rates_other_than_the_source(testdata, tmp_path, rate):
    out = tmp_path / f"r{rate}.mp4"
    ffmpeg("-i", testdata / "videos" / "lp_d11.mp4", "-t", "4", "-vf", f"fps={rate}", "-c:v", "libx264", "-an", out)
    reader = VideoReader(out)
    times = [f.time for f in reader.timed()]
    assert len(times) == round(4 * float(rate)) and abs(reader.info.fps - float(rate)) < 0.01
    assert np.allclose(np.diff(times), 1 / float(rate), atol=1e-3)


def test_a_raw_h264_stream_without_timestamps_keeps_its_own_rate(testdata, tmp_path):
    """A raw H.264 elementary stream (a Raspberry Pi camera's .h264, a dashcam's dump) has no container
    timestamps. Its frames were placed from -0.96 s at FFmpeg's default 25 frames/s, the first second
    squeezed into a few microseconds; they now start at 0, a frame period apart, at the stream's own
    rate (30 frames/s, from its SPS)."""
    raw = tmp_path / "clip.h264"
    ffmpeg("-i", testdata / "videos" / "lp_d18.mp4", "-t", "3", "-an", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", raw)
    reader = VideoReader(raw)
    times = [f.time for f in reader.timed()]
    assert reader.info.fps == 30 and len(times) >= 89
    assert times[0] == 0 and np.allclose(np.diff(times), 1 / 30)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_broken_timestamps_are_replaced_by_the_streams_own_rate(testdata, tmp_path, suffix):
    """A file whose muxer wrote every timestamp as zero (made here with FFmpeg's setts filter; MP4's
    muxer turns them into reordered ticks 65 µs apart). Its 90 frames were placed microseconds apart,
    and a drive's output lasted a few milliseconds. They are now a frame period apart at the
    stream's own rate (30 frames/s), and `probe_video` says 30 frames/s (MP4: 3.0 s)."""
    broken = tmp_path / f"zero{suffix}"
    ffmpeg("-i", testdata / "videos" / "lp_d18.mp4", "-frames:v", "90", "-an", "-c:v", "libx264", tmp_path / "v.mp4")
    ffmpeg("-i", tmp_path / "v.mp4", "-bsf:v", "setts=ts=0", "-c", "copy", broken)
    reader = VideoReader(broken)
    times = [f.time for f in reader.timed()]
    assert reader.info.fps == 30 and len(times) == 90
    assert times[0] == 0 and np.allclose(np.diff(times), 1 / 30)
    if suffix == ".mp4":
        assert reader.info.duration == 3.0


def test_a_folder_of_camcorder_and_old_phone_clips_is_searched_for_all_of_them(testdata, tmp_path):
    """`preprocess FOLDER` (and `score`) searched only .mp4/.mov/.mkv/.avi/.webm/.m4v: an AVCHD
    camcorder's .mts, an old phone's .3gp, a raw .h264 and an animated GIF (what `drive` takes, and
    what other tools' outputs may be for `score --method`) were passed over without a word."""
    from reenact.data.sources import expand

    lp = testdata / "videos" / "lp_d18.mp4"
    ffmpeg("-i", lp, "-t", "1", "-c", "copy", "-f", "mpegts", tmp_path / "00001.MTS")
    ffmpeg("-i", lp, "-t", "1", "-c:v", "libx264", "-c:a", "aac", "-ac", "1", "-ar", "8000", tmp_path / "call.3gp")
    ffmpeg("-i", lp, "-t", "1", "-an", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", tmp_path / "pi.h264")
    ffmpeg("-i", lp, "-frames:v", "8", "-vf", "scale=120:-1", tmp_path / "reaction.gif")
    (tmp_path / "notes.txt").write_text("not a clip")
    found = sorted(p.name for p in expand([tmp_path]))
    assert found == ["00001.MTS", "call.3gp", "pi.h264", "reaction.gif"], found
    assert all(probe_video(tmp_path / name).n_frames or name.endswith(".h264") for name in found)


# --- drive on phone-style media ---------------------------------------------------------------------

@pytest.mark.slow
def test_drive_keeps_a_variable_rate_drivers_duration_frames_and_audio(testdata, tmp_path):
    driver = testdata / "videos" / "vfr_lp_d18.mp4"
    out = tmp_path / "vfr.mp4"
    res = _drive(driver, out)
    info, src = probe_video(out), probe_video(driver)
    print(f"VFR drive: {info.n_frames} frames, {info.duration:.3f} s, audio {info.audio_duration:.3f} s "
          f"(driver audio {src.audio_duration:.3f} s)")
    assert abs(info.duration - 7.20) <= 0.15 and abs(len(read_frames(out)) - 101) <= 1
    assert info.audio_codec == "aac" and abs(info.audio_duration - src.audio_duration) <= 0.15
    times_out = [f.time for f in VideoReader(out).timed()]
    times_in = [f.time for f in VideoReader(driver).timed()]
    assert np.allclose(times_out, times_in, atol=2e-3), "each output frame at its driver frame's time"
    noise = [ln for ln in res.stderr.splitlines() + res.stdout.splitlines() if NATIVE.match(ln)]
    assert not noise, f"C++ log lines reached the user: {noise[:3]}"
    assert "processing speed" in res.stderr and "101 frames" in res.stderr and "7.20 s" in res.stderr


def test_a_song_with_cover_art_is_named_as_sound_and_a_video_with_a_cover_reads_its_video(testdata, tmp_path):
    """A music file's cover picture is a one-frame "video" stream to FFmpeg: `drive photo.jpg song.mp3`
    (someone hoping to animate a face from sound) wrote a 0.04 s video from the cover. It is now one
    line saying the file has only sound and a cover. An MP4 given its cover first still reads its real
    video, all 216 frames (as before: a guard for the cover rule)."""
    lp, cover = testdata / "videos" / "lp_d18.mp4", testdata / "faces" / "lp_s6.jpg"
    ffmpeg("-i", lp, "-i", cover, "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "mjpeg",
           "-disposition:v", "attached_pic", "-id3v2_version", "3", tmp_path / "song.mp3")
    ffmpeg("-i", lp, "-vn", "-c:a", "aac", tmp_path / "voice.m4a")
    for song, what in (("song.mp3", "only sound and a cover picture"), ("voice.m4a", "only sound;")):
        res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", tmp_path / song, "-o", tmp_path / "o.mp4")
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert res.returncode == 1 and len(lines) == 1 and what in lines[0], res.stderr
    ffmpeg("-i", cover, "-i", lp, "-map", "0:v", "-map", "1", "-c", "copy", "-c:v:0", "mjpeg",
           "-disposition:v:0", "attached_pic", tmp_path / "cover_first.mp4")
    info = probe_video(tmp_path / "cover_first.mp4")
    assert info.size == (480, 480) and sum(1 for _ in VideoReader(tmp_path / "cover_first.mp4")) == 216


def test_an_audio_track_ffmpeg_cannot_decode_is_named_and_left_out(testdata, tmp_path):
    """A driver whose only audio track has a codec FFmpeg does not know was a traceback
    ("'NoneType' object has no attribute 'codec'"). Now the drive goes on without sound, saying why."""
    driver = media.unknown_audio(testdata / "videos", tmp_path / "d.mkv")
    res = _drive(driver, tmp_path / "o.mp4", "--max-frames", "6")
    notes = [ln for ln in res.stderr.splitlines() if "audio track's codec cannot be decoded" in ln]
    assert len(notes) == 1 and "the output has no sound" in notes[0] and "Traceback" not in res.stderr
    assert probe_video(tmp_path / "o.mp4").audio_codec is None


def test_the_first_audio_track_ffmpeg_can_decode_is_carried(testdata, tmp_path):
    info = probe_video(media.unknown_audio(testdata / "videos", tmp_path / "d.mkv", then_aac=True))
    assert (info.audio_codec, info.audio_index, info.audio_note) == ("aac", 1, None)
    frame = np.zeros((64, 64, 3), np.uint8)
    with VideoWriter(tmp_path / "o.mp4", (64, 64), 25, audio_from=info) as w:
        for _ in range(25):
            w.write(frame)
    out = probe_video(tmp_path / "o.mp4")
    assert out.audio_codec == "aac" and abs(out.audio_duration - 1.0) < 0.05


@pytest.mark.slow
def test_drive_with_a_rotated_hevc_phone_clip_tracks_the_upright_face(testdata, tmp_path):
    if not has_encoder("libx265"):
        pytest.skip("the bundled ffmpeg has no libx265 encoder")
    hevc = tmp_path / "phone.mov"
    # A portrait phone recording: the sensor stores it sideways (transposed) and a display matrix turns it upright.
    ffmpeg("-i", testdata / "videos" / "single_face.mp4", "-vf", "transpose=2", "-c:v", "libx265", "-tag:v", "hvc1",
           "-x265-params", "log-level=error", "-c:a", "aac", tmp_path / "sideways.mov")
    rotated(tmp_path / "sideways.mov", hevc, -90)
    assert probe_video(hevc).size == (640, 360), "shown upright, landscape again"
    out = tmp_path / "out.mov"
    res = _drive(hevc, out, "--side-by-side")
    info = probe_video(out)
    assert "0 driver frame(s) without a face" in res.stderr, res.stderr
    assert info.n_frames == 72 and abs(info.duration - 2.4) <= 0.05 and info.audio_codec == "aac"


@pytest.mark.slow
def test_constant_rate_driver_is_unchanged(testdata, tmp_path):
    out = tmp_path / "cfr.mp4"
    _drive(testdata / "videos" / "single_face.mp4", out)
    info = probe_video(out)
    assert info.n_frames == 72 and abs(info.duration - 2.4) <= 0.01 and abs(info.fps - 30) < 0.01
    assert np.allclose(np.diff([f.time for f in VideoReader(out).timed()]), 1 / 30, atol=1e-3)


# --- faces that come and go -------------------------------------------------------------------------

@pytest.mark.slow
def test_a_face_leaving_holds_then_eases_to_the_source_without_smearing(testdata, tmp_path):
    """single_face, then a still blurred title card (2 s), then no_face.

    The policy (reenact.face.pipeline): hold the last fit for 0.5 s, ease to the source's own face over
    0.4 s, stay there. Held frames are within 6/255 of the held frame, settled frames within 6/255 of
    the first output frame. Frames in the ease lie between the two: their distance from the held frame
    grows and from the source shrinks, frame by frame, and neither strays past the two frames' own
    difference (a smear would).
    """
    clip, k = face_then_gone(testdata / "videos", tmp_path / "gone.mp4")
    res = _drive(clip, tmp_path / "out.mp4")
    out = read_frames(tmp_path / "out.mp4")
    held, first = out[k - 1], out[0]
    hold, ease = round(0.5 * 30), round(0.4 * 30)
    d_held = np.array([mean_abs(f, held) for f in out[k:]])
    d_first = np.array([mean_abs(f, first) for f in out[k:]])
    span = mean_abs(held, first)
    print(f"held vs first {span:.2f}/255; hold max {d_held[:hold].max():.2f}; settled max {d_first[hold + ease + 1:].max():.2f}; "
          f"ease min(d_held, d_first) max {np.minimum(d_held, d_first)[hold:hold + ease + 1].max():.2f}")
    assert len(out) == k + len(d_held) and f"{len(d_held)} driver frame(s) without a face" in res.stderr
    assert d_held[:hold].max() <= 6 and d_first[hold + ease + 1:].max() <= 6
    e_held, e_first = d_held[hold - 1:hold + ease + 2], d_first[hold - 1:hold + ease + 2]
    assert (np.diff(e_held) > -0.5).all() and (np.diff(e_first) < 0.5).all(), "a monotone transition"
    assert (np.maximum(e_held, e_first) <= span + 1).all()


@pytest.mark.slow
def test_frames_before_the_face_appears_show_the_source(testdata, tmp_path):
    clip, k = face_then_gone(testdata / "videos", tmp_path / "late.mp4", reverse=True)
    res = _drive(clip, tmp_path / "out.mp4")
    out = read_frames(tmp_path / "out.mp4")
    worst = max(mean_abs(f, out[0]) for f in out[:k])
    print(f"faceless lead-in of {k} frames: max {worst:.2f}/255 from the first output frame")
    assert worst <= 6 and f"{k} driver frame(s) without a face" in res.stderr


# --- the first minute -------------------------------------------------------------------------------

def test_a_missing_source_is_one_line_and_exit_1_within_a_second(testdata, tmp_path):
    t = time.perf_counter()
    res = run_cli("drive", tmp_path / "nope.png", testdata / "videos" / "single_face.mp4", "-o", tmp_path / "o.mp4")
    elapsed = time.perf_counter() - t
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and lines == [f"error: {tmp_path / 'nope.png'}: file not found"], res.stderr
    assert elapsed < 1.0, f"{elapsed:.2f} s"


@pytest.mark.parametrize("bad", ["dir", "image_as_driver", "text"])
def test_bad_inputs_are_named_without_internals(testdata, tmp_path, bad):
    (tmp_path / "t.png").write_text("not an image")
    src, drv = {"dir": (tmp_path, testdata / "videos" / "single_face.mp4"),
                "image_as_driver": (SOURCE, SOURCE),
                "text": (tmp_path / "t.png", testdata / "videos" / "single_face.mp4")}[bad]
    res = run_cli("drive", src, drv, "-o", tmp_path / "o.mp4")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert not re.search(r"\([A-Z][a-zA-Z]+Error\)|Traceback|0x[0-9a-f]{6}", res.stderr)


def test_a_corrupt_model_file_is_named_and_verify_exits_1(testdata, tmp_path):
    wdir = tmp_path / "w"
    wdir.mkdir()
    bad = wdir / "face_landmarker_v2.task"
    shutil.copy(ROOT / "weights" / "face_landmarker_v2.task", bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00corrupt\x00")
    res = run_cli("weights", "--verify", "--weights-dir", wdir)
    assert res.returncode == 1 and "MISMATCH" in res.stdout and "checksum mismatch" in res.stderr
    ok = run_cli("weights", "--verify")
    assert ok.returncode == 0, ok.stderr
    res = run_cli("drive", SOURCE, testdata / "videos" / "single_face.mp4", "-o", tmp_path / "o.mp4",
                  "--weights-dir", wdir)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(lines) == 1 and str(bad) in lines[0] and "checksum mismatch" in lines[0]


@pytest.mark.parametrize("command", ["drive", "preprocess", "score", "train", "weights"])
def test_help_reads_in_the_users_words(command):
    res = run_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    assert not re.search(r"<(?:bool|int|float|str|path|list\[\w+\])[^>]*>", res.stdout), res.stdout
    assert f"Example: reenact {command}" in " ".join(res.stdout.split())
    if command == "drive":
        assert "Usage: reenact drive [OPTIONS] SOURCE DRIVER" in res.stdout and "auto|cpu|cuda" in res.stdout


# --- --find-best-frame ------------------------------------------------------------------------------

@pytest.mark.slow
def test_find_best_frame_picks_a_reference_like_the_source_and_akd_does_not_worsen(testdata, tmp_path):
    """Self-reenactment: source = single_face frame 0 (neutral); driver = the clip from frame 24 on, which
    starts in a broad smile and ends near neutral. The best frame must be near the end, and AKD against
    the true frames (the score's own AKD, MediaPipe-68 fallback at 256²) must be no worse than with frame 0."""
    import torch
    from PIL import Image

    from reenact.metrics.landmarks import akd
    from reenact.metrics.measure import MeasureOptions, Measurer

    frames = read_frames(testdata / "videos" / "single_face.mp4")
    Image.fromarray(frames[0]).save(tmp_path / "source.png")
    driver = tmp_path / "smiling_start.mp4"
    ffmpeg("-i", testdata / "videos" / "single_face.mp4", "-vf", "select='gte(n\\,24)',setpts=N/30/TB", "-an",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", driver)
    measure = Measurer(MeasureOptions(identity=None), torch.device("cpu"))
    try:
        truth = measure(read_frames(driver)).landmarks
        scores = {}
        for name, extra in (("frame 0", ()), ("best", ("--find-best-frame",))):
            res = run_cli("drive", tmp_path / "source.png", driver, "-o", tmp_path / f"{name}.mp4", "--paste-back", *extra)
            assert res.returncode == 0, res.stderr
            scores[name] = akd(measure(read_frames(tmp_path / f"{name}.mp4")).landmarks, truth)[0]
    finally:
        measure.close()
    chosen = re.search(r"reference is driver frame (\d+)", res.stderr)
    print(f"AKD with frame 0 as reference {scores['frame 0']:.2f} px, with the best frame ({chosen.group(1)}) "
          f"{scores['best']:.2f} px")
    assert chosen and int(chosen.group(1)) >= 40, "a near-neutral frame at the end of the clip"
    assert scores["best"] <= scores["frame 0"]
