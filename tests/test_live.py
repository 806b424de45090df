"""`reenact live` with video files as cameras: recording, stats, faults, SIGINT, a virtual camera with a fake
backend (no v4l2loopback device exists here) and a real window under Xvfb."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from conftest import ROOT, read_frames, run_cli
import media
from media import ffmpeg, mean_abs
from reenact.errors import BadInputError
from reenact.io import probe_video, read_image

pytestmark = pytest.mark.slow
SOURCE = ROOT / "examples" / "source.png"


def test_file_camera_records_what_it_shows_and_reports_latency(testdata, tmp_path):
    res = run_cli("live", SOURCE, "--camera", testdata / "videos" / "lp_d11.mp4", "--record", tmp_path / "out.mp4",
                  "--no-window", "--stats", tmp_path / "s.json")
    assert res.returncode == 0, res.stderr
    stats = json.loads((tmp_path / "s.json").read_text())
    frames = read_frames(tmp_path / "out.mp4")
    info = probe_video(tmp_path / "out.mp4")
    print(f"live, file camera: {stats['frames_shown']} shown, {stats['frames_dropped']} dropped, {stats['fps']} fps, "
          f"latency {stats['latency_ms']}; recording {len(frames)} frames over {info.duration:.2f} s")
    # every shown frame is recorded, and shown + dropped are all 225 captured; how many are shown depends on
    # the machine's speed (about 0.9 of them on a normal day here, 0.55 on a 2.5x slower one): the rate is
    # bench/bench_live.py's to measure, so this only asks that the loop kept going
    assert stats["frames_shown"] == len(frames) >= 0.25 * 225
    assert stats["frames_shown"] + stats["frames_dropped"] == stats["frames_captured"] == 225
    assert stats["latency_ms"]["p95"] is not None and 0 < stats["latency_ms"]["p50"] <= stats["latency_ms"]["max"]
    assert abs(info.duration - 9.0) < 0.5, "frames at their real capture times: the clip's own length"
    assert "latency p50" in res.stderr and "look at the camera with a neutral face" in res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr


def test_a_stream_without_a_face_shows_the_source_still(testdata, tmp_path):
    res = run_cli("live", SOURCE, "--camera", testdata / "videos" / "no_face.mp4", "--record", tmp_path / "o.mp4",
                  "--no-window", "--stats", tmp_path / "s.json")
    assert res.returncode == 0, res.stderr
    stats = json.loads((tmp_path / "s.json").read_text())
    frames = read_frames(tmp_path / "o.mp4")
    assert stats["frames_without_face"] == stats["frames_shown"] == len(frames) > 80
    assert max(mean_abs(f, frames[0]) for f in frames) < 1.0, "the source, still"


def test_a_truncated_camera_file_ends_with_one_line_and_a_playable_recording(testdata, tmp_path):
    whole = tmp_path / "whole.mp4"
    ffmpeg("-i", testdata / "videos" / "lp_d11.mp4", "-c", "copy", "-movflags", "+faststart", whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    res = run_cli("live", SOURCE, "--camera", cut, "--record", tmp_path / "o.mp4", "--no-window")
    lost = [ln for ln in res.stderr.splitlines() if "frames (truncated)" in ln]
    assert res.returncode == 1 and len(lost) == 1 and "recording so far is kept" in lost[0], res.stderr
    assert 50 < len(read_frames(tmp_path / "o.mp4")) < 225


def test_a_large_photo_is_animated_at_a_live_size(testdata, tmp_path):
    """--paste-back shows the whole photo every frame: a 2560-wide one is scaled to --max-side (1280)
    first, with a note saying so (an 11 MP photo ran at 2.6 frames/s, 0.43 s behind the camera;
    9.0 at 1280, bench in the closing note); --max-side 0 keeps its size."""
    from PIL import Image

    photo = tmp_path / "group_2x.jpg"
    im = Image.open(testdata / "faces" / "group_t1.jpg")
    im.resize((im.width * 2, im.height * 2), Image.LANCZOS).save(photo, quality=92)
    camera = tmp_path / "camera.mp4"
    ffmpeg("-i", testdata / "videos" / "lp_d18.mp4", "-t", "1.5", "-c", "copy", camera)
    for extra, width in (((), 1280), (("--max-side", "0"), 2560)):
        out = tmp_path / f"o{width}.mp4"
        res = run_cli("live", photo, "--camera", camera, "--paste-back", "--record", out, "--no-window", *extra)
        assert res.returncode == 0, res.stderr
        notes = [ln for ln in res.stderr.splitlines() if "animated at" in ln]
        assert probe_video(out).size == (width, 1772 * width // 2560), probe_video(out).size
        assert notes == ([f"note: {photo}: animated at 1280x886 (from 2560x1772) to keep up with the camera; "
                          "--max-side 0 keeps its size"] if width == 1280 else []), res.stderr


def _long_camera(testdata, tmp_path):
    """lp_d11 eight times over (72 s). The file camera keeps to real time from before the models
    load, and under the suite's other worker the 9 s clip alone ended before the window test's q key
    came ("end of the camera stream", CI 2026-12-07); 27 s once did too (session 23, beside the
    drive tests). A test that stops the camera earlier pays nothing for the length."""
    camera = tmp_path / "camera.mp4"
    ffmpeg("-stream_loop", "7", "-i", testdata / "videos" / "lp_d11.mp4", "-c", "copy", camera)
    return camera


def test_sigint_stops_with_exit_0_and_a_playable_recording(testdata, tmp_path):
    out = tmp_path / "o.mp4"
    # SIGINT as a terminal gives it: a suite started in the background by a non-interactive shell
    # (`.ci/run &`) passes SIGINT on ignored, and the run then played the whole clip.
    proc = subprocess.Popen([sys.executable, "-m", "reenact", "live", str(SOURCE), "--camera",
                             str(_long_camera(testdata, tmp_path)), "--record", str(out), "--no-window"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".o.*partial.mp4")):
        time.sleep(0.1)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped (Ctrl-C)" in err and "Traceback" not in err, err
    frames = read_frames(out)
    assert 20 < len(frames) < 225


def test_no_camera_is_one_line_and_exit_1(tmp_path):
    """A camera index or Linux device path with no camera, and a missing file, are one line each. The
    device path is a camera for OpenCV, as its index is: FFmpeg read "/dev/video0" as a file and
    could not open it. (No camera device exists on this machine: the present-device case is not run.)"""
    from reenact.capture import device_index

    assert [device_index(c) for c in ("0", "/dev/video2", "clip.mp4", "rtsp://cam/1")] == [0, 2, None, None]
    for camera, words in (("7", "no camera with this index"), ("/dev/video7", "no camera with this index"),
                          (str(tmp_path / "missing.mp4"), "no such camera file")):
        res = run_cli("live", SOURCE, "--camera", camera, "--no-window")
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"error: --camera {camera}: {words}"), res.stderr


def test_a_phone_streaming_mjpeg_over_http_is_a_camera(testdata, tmp_path):
    """A phone camera app's MJPEG stream (45 frames at 15 frames/s): taken as its frames arrive, recorded
    at their arrival times (3 s; MJPEG's own made-up timestamps say 1.8 s); its end is a lost camera:
    one note, the recording kept, exit code 1. `--camera URL` was refused: the URL was checked as a file path."""
    with media.mjpeg_stream(testdata / "videos" / "lp_d18.mp4", frames=45, fps=15) as url:
        res = run_cli("live", SOURCE, "--camera", url, "--record", tmp_path / "o.mp4", "--no-window",
                      "--stats", tmp_path / "s.json")
    assert res.returncode == 1, res.stderr  # a network camera that stops is a lost camera, as a webcam unplugged
    stats = json.loads((tmp_path / "s.json").read_text())
    info = probe_video(tmp_path / "o.mp4")
    print(f"MJPEG camera: {stats['frames_captured']} captured, {stats['frames_shown']} shown, {info.duration:.2f} s")
    assert stats["frames_captured"] == 45 and stats["frames_shown"] == info.n_frames >= 10
    assert abs(info.duration - 3.0) < 0.4
    notes = [ln for ln in res.stderr.splitlines() if "stopped after 45 frame(s): the stream broke off" in ln]
    assert len(notes) == 1 and "recording so far is kept" in notes[0], res.stderr


def test_a_stream_that_cannot_be_reached_is_one_line_and_exit_1(tmp_path):
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}/video"
    res = run_cli("live", SOURCE, "--camera", url, "--no-window")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0] == f"error: --camera {url}: cannot be opened (Connection refused)", lines[0]


def test_mirror_flips_the_camera_so_the_portrait_moves_as_a_reflection(testdata, tmp_path, pipeline):
    """A camera showing lp_d11's frame 0 (the reference), then its frame 120 (head tilted about 10°).
    With --mirror the portrait tilts the other way than without: the camera is flipped left to right
    before tracking. A file camera is not mirrored by default; a camera index is."""
    from reenact.capture import Capture
    from reenact.face.mediapipe_backend import pose_from_matrix
    from reenact.io import VideoReader, VideoWriter

    frames = read_frames(testdata / "videos" / "lp_d11.mp4")
    clip = tmp_path / "tilt.mp4"
    with VideoWriter(clip, (512, 512), 25) as w:
        for k in range(70):
            w.write(frames[0] if k < 25 else frames[120])
    with Capture(str(clip), mirror=True) as cap:
        first = next(cap.frames())
    assert np.array_equal(first.image, list(VideoReader(clip))[first.index][:, ::-1])

    def tilt(*flags):
        out = tmp_path / f"o{len(flags)}.mp4"
        res = run_cli("live", SOURCE, "--camera", clip, "--record", out, "--no-window", *flags)
        assert res.returncode == 0, res.stderr
        shown = read_frames(out)
        start, end = (pose_from_matrix(pipeline.largest(f).matrix) for f in (shown[0], shown[-1]))
        return end - start  # (yaw, pitch, roll) change, degrees

    plain, mirrored = tilt(), tilt("--mirror")
    print(f"pose change (yaw, pitch, roll): plain {plain.round(1)}, mirrored {mirrored.round(1)}")
    assert abs(plain[2]) > 4 and plain[2] * mirrored[2] < 0 and abs(plain[2] + mirrored[2]) < 0.5 * abs(plain[2])


class _FakeCamera:
    """pyvirtualcam.Camera at its boundary: records what it is sent."""

    made: list = []

    def __init__(self, width, height, fps, fmt=None, **kw):
        self.size, self.fps, self.frames, self.closed = (width, height), fps, [], False
        _FakeCamera.made.append(self)

    def send(self, frame):
        assert frame.shape == (self.size[1], self.size[0], 3) and frame.dtype == np.uint8
        self.frames.append(frame.copy())

    def close(self):
        self.closed = True


def test_virtual_camera_gets_every_shown_frame_through_pyvirtualcams_interface(testdata, monkeypatch):
    from reenact.live import LiveOptions, live

    fake = types.SimpleNamespace(Camera=_FakeCamera, PixelFormat=types.SimpleNamespace(RGB="RGB"))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    _FakeCamera.made.clear()
    stats = live(SOURCE, LiveOptions(camera=str(testdata / "videos" / "single_face.mp4"), window=False, virtual_cam=True))
    cam = _FakeCamera.made[0]
    # every shown frame reaches the camera; how many are shown of the 72 depends on the machine's speed and
    # load (65+ alone, 56 inside a loaded full suite, 33 on a 2.5x slower day): bench/bench_live.py measures it
    assert cam.closed and len(cam.frames) == stats.frames_shown >= 18 and cam.size == (256, 256) and cam.fps == 30
    assert stats.frames_shown + stats.frames_dropped == stats.frames_captured == 72
    assert np.std(cam.frames[len(cam.frames) // 2]) > 20


def test_virtual_camera_without_pyvirtualcam_or_a_backend_is_one_clear_error(testdata, monkeypatch):
    from reenact.live import LiveOptions, live

    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # not installed
    opts = LiveOptions(camera=str(testdata / "videos" / "single_face.mp4"), window=False, virtual_cam=True)
    with pytest.raises(BadInputError, match="needs pyvirtualcam"):
        live(SOURCE, opts)

    def no_backend(**kw):
        raise RuntimeError("'v4l2loopback' module is not loaded\nmore")

    monkeypatch.setitem(sys.modules, "pyvirtualcam", types.SimpleNamespace(
        Camera=no_backend, PixelFormat=types.SimpleNamespace(RGB="RGB")))
    with pytest.raises(BadInputError, match="modprobe v4l2loopback"):
        live(SOURCE, opts)


def test_window_under_xvfb_shows_frames(testdata, tmp_path):
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb); .ci/run installs it where it can")
    display = f":{90 + os.getpid() % 9}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        camera = _long_camera(testdata, tmp_path)
        time.sleep(1.0)
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        proc = subprocess.Popen([sys.executable, "-m", "reenact", "live", str(SOURCE), "--camera",
                                 str(camera), "--window"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        shot, window = tmp_path / "window.png", np.zeros((1, 1, 3))
        deadline = time.time() + 45  # 20 s once saw only a black screen in CI, under the other worker's load
        while time.time() < deadline and window.std() <= 25 and proc.poll() is None:
            time.sleep(1.0)  # the models load, then frames play: look until the window shows them
            ffmpeg("-f", "x11grab", "-video_size", "800x600", "-i", display, "-frames:v", "1", shot)
            image = read_image(shot)
            window = image[:512, :512]
        if shutil.which("xdotool"):  # press r, then q, in the window, as a person would
            for key in ("r", "q", "q", "q"):  # q again while it runs: a busy machine can miss a key
                if proc.poll() is not None:
                    break
                subprocess.run(["xdotool", "search", "--name", "reenact live", "windowfocus", "--sync", "key", key],
                               env=env, capture_output=True, timeout=20)
                time.sleep(1.0 if key == "r" else 5.0)
            ending = "stopped (q or window closed)"
        else:
            proc.send_signal(signal.SIGINT)
            ending = "stopped (Ctrl-C)"
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and ending in err, err
        assert "new reference" in err or not shutil.which("xdotool"), err
        shutil.copy(shot, ROOT / "out" / "live_window.png") if (ROOT / "out").is_dir() else None
        print(f"screenshot: mean {image.mean():.1f}, window region std {window.std():.1f}")
        assert window.std() > 25, f"the window shows an animated face, not a blank screen; live's stderr:\n{err[-3000:]}"
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def test_reference_delay_takes_a_new_reference(testdata, tmp_path):
    res = run_cli("live", SOURCE, "--camera", testdata / "videos" / "single_face.mp4", "--no-window",
                  "--reference-delay", "1", "--record", tmp_path / "o.mp4")
    assert res.returncode == 0 and res.stderr.count("new reference: look at the camera") == 1, res.stderr
