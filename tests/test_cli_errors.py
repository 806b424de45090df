"""Bad input through the CLI: exit code 1, one line naming the file and the problem, no traceback,
no half-written output; existing outputs are not overwritten without --force."""

from __future__ import annotations

import pytest
from PIL import Image

from conftest import run_cli, user_lines


def _assert_one_line_error(res, name: str, words: tuple[str, ...], out_dir):
    lines = user_lines(res.stderr)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, lines
    assert name in errors[0] and any(w in errors[0] for w in words), errors[0]
    assert not any(p.suffix == ".mp4" or ".partial" in p.name for p in out_dir.iterdir()), list(out_dir.iterdir())


@pytest.fixture
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_missing_source(testdata, tmp_path, out_dir):
    res = run_cli("drive", tmp_path / "nope.png", testdata / "videos" / "single_face.mp4", "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "nope.png", ("not found",), out_dir)


def test_missing_source_named_like_a_video(testdata, tmp_path, out_dir):
    res = run_cli("drive", tmp_path / "nope.mp4", testdata / "videos" / "single_face.mp4", "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "nope.mp4", ("file not found",), out_dir)


def test_text_file_named_mp4(testdata, tmp_path, out_dir):
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello, I am not a video\n")
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", fake, "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "fake.mp4", ("not a readable video",), out_dir)


def test_zero_byte_driver(testdata, tmp_path, out_dir):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", empty, "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "empty.mp4", ("empty",), out_dir)


def test_zero_byte_source(testdata, tmp_path, out_dir):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    res = run_cli("drive", empty, testdata / "videos" / "single_face.mp4", "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "empty.png", ("empty",), out_dir)


@pytest.mark.parametrize("command", ["drive", "faces", "live"])
def test_a_video_given_as_the_source_is_named_as_one(testdata, out_dir, command):
    video = testdata / "videos" / "lp_d18.mp4"
    args = {"drive": ("drive", video, testdata / "videos" / "lp_d11.mp4", "-o", out_dir / "o.mp4"),
            "faces": ("faces", video),
            "live": ("live", video, "--camera", testdata / "videos" / "lp_d11.mp4", "--no-window",
                     "--record", out_dir / "o.mp4")}[command]
    _assert_one_line_error(run_cli(*args), "lp_d18.mp4", ("is a video; the source must be a photo",), out_dir)


@pytest.mark.parametrize("command", ["drive", "faces", "live", "weights"])
def test_an_output_that_is_an_input_is_refused_even_with_force(testdata, tmp_path, out_dir, command):
    """``-o driver.mp4 --force`` replaced the user's driver with the output; now refused, the file kept."""
    import shutil

    photo, video = tmp_path / "me.jpg", tmp_path / "mine.mp4"
    shutil.copy(testdata / "faces" / "lp_s0.jpg", photo)
    shutil.copy(testdata / "videos" / "lp_d18.mp4", video)
    before = {p: p.read_bytes() for p in (photo, video)}
    args, name, what = {"drive": (("drive", photo, video, "-o", video, "--force"), "mine.mp4", "is the driver too"),
                        "faces": (("faces", photo, "--annotate", photo, "--force"), "me.jpg", "is the photo too"),
                        "live": (("live", photo, "--camera", video, "--no-window", "--record", video, "--force"),
                                 "mine.mp4", "is the camera too"),
                        "weights": (("weights", "import-official", video, "-o", video, "--force"), "mine.mp4",
                                    "is the official checkpoint too")}[command]
    _assert_one_line_error(run_cli(*args), name, (what,), out_dir)
    assert all(p.read_bytes() == b for p, b in before.items())


def test_a_damaged_photo_is_not_called_a_video(testdata, tmp_path, out_dir):
    """FFmpeg opens a truncated JPEG as a one-frame video; the error names the photo as damaged."""
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((testdata / "faces" / "lp_s0.jpg").read_bytes()[:30000])
    res = run_cli("drive", cut, testdata / "videos" / "lp_d11.mp4", "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "cut.jpg", ("not a readable image",), out_dir)


def test_driver_without_any_face(testdata, out_dir):
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "no_face.mp4", "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "no_face.mp4", ("no face",), out_dir)


def test_source_without_a_face(testdata, tmp_path, out_dir):
    from conftest import read_frames

    frame = read_frames(testdata / "videos" / "no_face.mp4")[0]
    Image.fromarray(frame).save(tmp_path / "scene.png")
    res = run_cli("drive", tmp_path / "scene.png", testdata / "videos" / "single_face.mp4", "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "scene.png", ("no face",), out_dir)


def test_face_landmarks_on_no_face_are_refused(testdata, out_dir):
    """BWPictureHuman.jpg: a soldier shouting in profile. The landmarker puts a face mesh on his temple
    and cheek, where the face detector sees no face; drive used to open a second mouth, with teeth,
    on his cheek. Now: one line saying why, exit 1."""
    res = run_cli("drive", testdata / "faces" / "BWPictureHuman.jpg", testdata / "videos" / "lp_d18.mp4",
                  "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "BWPictureHuman.jpg", ("do not hold up",), out_dir)
    assert "profile" in user_lines(res.stderr)[-1]


def test_existing_output_is_not_overwritten(testdata, out_dir):
    target = out_dir / "keep.mp4"
    target.write_bytes(b"my earlier render")
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4", "-o", target)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert any("keep.mp4" in ln and "--force" in ln for ln in user_lines(res.stderr))
    assert target.read_bytes() == b"my earlier render"
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4", "-o", target,
                  "--force", "--max-frames", "5")
    assert res.returncode == 0, res.stderr
    assert target.read_bytes()[:20] != b"my earlier render"[:20]


def test_face_index_out_of_range(testdata, out_dir):
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4",
                  "-o", out_dir / "o.mp4", "--face-index", "3")
    _assert_one_line_error(res, "lp_s6.jpg", ("out of range",), out_dir)


def test_version_and_commands():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("reenact ")
    res = run_cli("--help")
    for command in ("preprocess", "train", "drive", "score", "weights"):
        assert command in res.stdout


def test_cuda_request_without_gpu(testdata, out_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4",
                  "-o", out_dir / "o.mp4", "--device", "cuda")
    _assert_one_line_error(res, "cuda", ("no CUDA",), out_dir)


def test_output_must_be_a_video_file(testdata, out_dir):
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4",
                  "-o", out_dir / "result[1].png")
    _assert_one_line_error(res, "result[1].png", ("must be a video",), out_dir)
    assert list(out_dir.iterdir()) == []


def test_output_folder_that_is_a_file(testdata, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder should be")
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4",
                  "-o", blocker / "o.mp4")
    lines = [ln for ln in user_lines(res.stderr) if ln.startswith("error:")]
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(lines) == 1 and "notes.txt" in lines[0], lines
    assert blocker.read_text() == "a file where a folder should be"


@pytest.mark.parametrize("args, words", [
    (("drive",), ("Missing argument 'SOURCE'", "reenact drive --help")),
    (("drvie",), ("No such command 'drvie'", "Did you mean 'drive'")),
    (("drive", "{face}", "{video}", "-o", "{out}", "--max-frames", "0"), ("--max-frames", "greater than or equal to 1")),
    (("drive", "{face}", "{video}", "-o", "{out}", "--device", "tpu"), ("'tpu' is not one of",)),
    (("drive", "{face}", "{video}", "-o", "{out}", "--bogus"), ("No such option: --bogus",)),
])
def test_usage_errors_are_one_line_and_exit_code_1(testdata, out_dir, args, words):
    """Typer's (click's) usage errors were a boxed message and exit code 2, unlike every other bad input."""
    fill = {"face": testdata / "faces" / "lp_s6.jpg", "video": testdata / "videos" / "single_face.mp4",
            "out": out_dir / "o.mp4"}
    res = run_cli(*(a.format(**fill) for a in args))
    lines = user_lines(res.stderr)
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (res.returncode, lines)
    assert all(w in lines[0] for w in words) and "Value error" not in lines[0], lines[0]
    assert list(out_dir.iterdir()) == []


def test_help_without_a_command_still_shows_and_exits_0():
    res = run_cli()
    assert res.returncode == 0 and "Commands" in res.stdout and "drive" in res.stdout and not res.stderr.strip()


@pytest.mark.parametrize("role", ["source", "driver"])
def test_a_web_address_is_named_as_one(testdata, out_dir, role):
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    face, video = testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4"
    res = run_cli("drive", *((url, video) if role == "source" else (face, url)), "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, url, ("is a web address", "download it first"), out_dir)


def test_a_video_codec_ffmpeg_cannot_decode_is_named(testdata, tmp_path, out_dir):
    """It was a traceback: "'NoneType' object has no attribute 'width'"."""
    import media

    driver = media.unknown_video(testdata / "videos", tmp_path / "d.mkv")
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", driver, "-o", out_dir / "o.mp4")
    _assert_one_line_error(res, "d.mkv", ("its video codec cannot be decoded here",), out_dir)


def test_an_output_folder_that_cannot_be_written_is_one_line_before_models_load(testdata, tmp_path):
    """/proc cannot be written, by root either: `drive -o /proc/...` and `faces --annotate /proc/...`
    stop at once with one line naming the output. Before, `drive` loaded its models and then named its
    own temporary file ("/proc/.out.q0jq.partial.mp4: No such file or directory")."""
    res = run_cli("drive", testdata / "faces" / "lp_s0.jpg", testdata / "videos" / "lp_d18.mp4", "-o", "/proc/out.mp4")
    assert res.returncode == 1 and user_lines(res.stderr) == [
        "error: /proc/out.mp4: cannot be written (No such file or directory)"], res.stderr
    res = run_cli("faces", testdata / "faces" / "group_t1.jpg", "--annotate", "/proc/faces.png")
    assert res.returncode == 1 and user_lines(res.stderr)[-1].startswith("error: /proc/faces.png: cannot be written")


@pytest.mark.parametrize("name", ["out.mp4", "out.gif"])
def test_a_full_disk_names_the_output_and_leaves_nothing(testdata, tmp_path, out_dir, name):
    """The disk fills while the video is written (a 40 kB file size limit, RLIMIT_FSIZE: the output
    needs about 90 kB; a GIF's lossless first pass more). One line names the user's output, not
    reenact's temporary files, exit code 1, and nothing is left in the folder (the GIF's first pass
    was left there when it failed)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    res = subprocess.run([sys.executable, "-m", "reenact", "drive", str(testdata / "faces" / "lp_s0.jpg"),
                          str(testdata / "videos" / "lp_d18.mp4"), "-o", str(out_dir / name)],
                         capture_output=True, text=True, preexec_fn=limit, timeout=600)
    errors = [ln for ln in user_lines(res.stderr) if ln.startswith("error:")]
    assert res.returncode == 1 and errors == [
        f"error: {out_dir / name}: could not be written (File too large); nothing was left there"], res.stderr
    assert list(out_dir.iterdir()) == []
