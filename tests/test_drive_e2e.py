"""`reenact drive` end to end on real faces and videos (no mocks), through the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import read_frames, run_cli
from reenact.face.landmarks68 import inter_ocular, mediapipe_to_68
from reenact.face.mediapipe_backend import pose_from_matrix
from reenact.io import probe_video, read_image


def _per_frame(faces, frames, measure):
    """``measure(detection)`` for the largest face of every frame, None where there is none."""
    out = []
    for f in frames:
        det = faces.largest(f)
        out.append(measure(det) if det is not None else None)
    return out


def _landmarks(faces, frames):
    return _per_frame(faces, frames, lambda d: mediapipe_to_68(d.points))


def _poses(faces, frames):
    return _per_frame(faces, frames, lambda d: pose_from_matrix(d.matrix))


@pytest.fixture(scope="module")
def self_reenactment(testdata, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("self")
    video = testdata / "videos" / "single_face.mp4"
    frames = read_frames(video)
    from PIL import Image

    Image.fromarray(frames[0]).save(tmp / "frame0.png")
    res = run_cli("drive", tmp / "frame0.png", video, "-o", tmp / "out.mp4", "--paste-back")
    assert res.returncode == 0, res.stderr
    return frames, read_frames(tmp / "out.mp4"), res


def test_self_reenactment_beats_copying_the_source(self_reenactment, pipeline):
    truth, output, _ = self_reenactment
    assert len(output) == len(truth) == 72 and output[0].shape == truth[0].shape
    lm_true = _landmarks(pipeline, truth)
    lm_out = _landmarks(pipeline, output)
    d_out, d_copy = [], []
    for t, o in zip(lm_true, lm_out):
        if t is None or o is None:
            continue
        iod = inter_ocular(t)
        d_out.append(np.linalg.norm(o - t, axis=1).mean() / iod)
        d_copy.append(np.linalg.norm(lm_true[0] - t, axis=1).mean() / iod)
    ratio = np.mean(d_out) / np.mean(d_copy)
    print(f"self-reenactment: output {np.mean(d_out):.4f} IOD, copy-source {np.mean(d_copy):.4f} IOD, "
          f"ratio {ratio:.3f} over {len(d_out)} frames")
    assert len(d_out) >= 60
    assert ratio <= 0.6


def test_summary_line_and_geometric_warp_notice(self_reenactment):
    *_, res = self_reenactment
    lines = [ln for ln in res.stderr.splitlines() if "geometric warp" in ln or "wrote" in ln]
    assert any("geometric warp" in ln for ln in lines)
    summary = " ".join(res.stderr.split())
    assert "72 frames" in summary and "processing speed" in summary and "without a face" in summary


def test_cross_identity_follows_driver_pose_and_keeps_audio(testdata, tmp_path, pipeline):
    driver = testdata / "videos" / "lp_d18.mp4"
    out = tmp_path / "cross.mp4"
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", driver, "-o", out)
    assert res.returncode == 0, res.stderr
    info = probe_video(out)
    frames = read_frames(out)
    assert len(frames) == 216 and info.fps == 30 and info.audio_codec is not None
    p_out = _poses(pipeline, frames)
    p_drv = _poses(pipeline, read_frames(driver))
    errs = []
    for i in range(1, 216):
        if all(p is not None for p in (p_out[i], p_out[i - 1], p_drv[i], p_drv[i - 1])):
            errs.append(np.abs((p_out[i] - p_out[i - 1]) - (p_drv[i] - p_drv[i - 1])))
    errs = np.array(errs)
    drv = np.array([p for p in p_drv if p is not None])
    print(f"cross-identity: frame-to-frame yaw/pitch/roll change MAE {errs.mean(0).round(2)} deg "
          f"(mean {errs.mean():.2f}) over {len(errs)} pairs; driver pose range {np.ptp(drv, 0).round(1)} deg")
    assert len(errs) >= 200
    assert errs.mean() <= 5.0


def test_paste_back_keeps_resolution_and_far_pixels(testdata, tmp_path):
    src = testdata / "faces" / "lp_s0.jpg"
    out = tmp_path / "paste.mp4"
    res = run_cli("drive", src, testdata / "videos" / "lp_d18.mp4", "-o", out, "--paste-back", "--max-frames", "40")
    assert res.returncode == 0, res.stderr
    image = read_image(src)
    frames = read_frames(out)
    assert frames[0].shape == image.shape == (704, 600, 3) and len(frames) == 40
    # Far from the face (bottom third of this wide shot) nothing moves: only codec noise remains.
    far = np.abs(frames[-1][480:].astype(int) - image[480:].astype(int)).mean()
    near = np.abs(frames[-1][60:230, 220:420].astype(int) - image[60:230, 220:420].astype(int)).mean()
    print(f"paste-back: mean |diff| far {far:.2f}, face region {near:.2f}")
    assert far < 2.0 and near > far


@pytest.mark.parametrize("name", ["Image_with_alpha.png", "grey"])
def test_rgba_and_grayscale_sources_work(testdata, tmp_path, name):
    """An RGBA PNG, and a large one-channel JPEG (lp_s0.jpg in grey at 2400 px wide: testdata's own
    grey photo, BWPictureHuman.jpg, has its face in profile, which is refused)."""
    from PIL import Image

    source = testdata / "faces" / name
    if name == "grey":
        source = tmp_path / "grey.jpg"
        Image.open(testdata / "faces" / "lp_s0.jpg").convert("L").resize((2400, 2816)).save(source, quality=92)
    out = tmp_path / "o.mp4"
    res = run_cli("drive", source, testdata / "videos" / "single_face.mp4", "-o", out,
                  "--max-frames", "12", "--side-by-side")
    assert res.returncode == 0, res.stderr
    frames = read_frames(out)
    assert len(frames) == 12 and frames[0].shape == (256, 3 * 256, 3), "[source crop | driver crop | output]"
    assert frames[0][:, 512:].std() > 10, "the output panel shows an image"


def test_absolute_mode_at_512(testdata, tmp_path):
    out = tmp_path / "abs.mp4"
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "lp_d11.mp4", "-o", out,
                  "--absolute", "--size", "512", "--max-frames", "10", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    frames = read_frames(out)
    assert len(frames) == 10 and frames[0].shape == (512, 512, 3)
    assert probe_video(out).fps == 25, "the driver's fps is kept"


def test_frames_without_a_face_hold_the_fit(testdata, tmp_path):
    """5 face-less frames, 20 face frames, 5 face-less, 10 face: 10 frames without a face are reported,
    every frame is written, and face-less frames repeat the neighbouring fit."""
    import cv2

    from reenact.io import VideoWriter

    face = read_frames(testdata / "videos" / "single_face.mp4")
    empty = [cv2.resize(f, (640, 360)) for f in read_frames(testdata / "videos" / "no_face.mp4")[:10]]
    frames = empty[:5] + face[:20] + empty[5:10] + face[20:30]
    driver = tmp_path / "gappy.mp4"
    with VideoWriter(driver, (640, 360), 30.0) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "o.mp4"
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", driver, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "10 driver frame(s) without a face" in " ".join(res.stderr.split())
    video = [f.astype(int) for f in read_frames(out)]
    assert len(video) == 40
    held = np.abs(video[27] - video[24]).mean()
    before = np.abs(video[2] - video[5]).mean()
    moving = max(np.abs(video[i] - video[24]).mean() for i in range(30, 40))
    print(f"held frames differ by {held:.2f} / {before:.2f}, moving frames by up to {moving:.2f}")
    assert held < 1.0 and before < 1.0 and moving > 2 * held


def test_a_small_source_face_in_a_crop_output_gets_a_note(testdata, tmp_path, pipeline):
    """lp_s0's face is 129 photo pixels across: at --size 256 its crop enlarges it 2.0x (no note); at
    512, 4.0x, and the drive says it will look soft, suggesting --size 256. group_t1's smallest face
    (139 px) at 512 is named as its smallest. A full-frame output (--paste-back) puts the face back at
    the photo's scale and gets no note."""
    from reenact.animator import magnification_note, prepare_sources
    from reenact.face.geometry import make_geometry

    geo = make_geometry("mediapipe")
    path = testdata / "faces" / "lp_s0.jpg"
    assert magnification_note(path, prepare_sources(path, read_image(path), pipeline, 256, 0, geo), 256) is None
    note = magnification_note(path, prepare_sources(path, read_image(path), pipeline, 512, 0, geo), 512)
    assert note is not None and "129 px" in note and "4.0x" in note and "--size 256" in note
    group = testdata / "faces" / "group_t1.jpg"
    note = magnification_note(group, prepare_sources(group, read_image(group), pipeline, 512, "all", geo), 512)
    assert note is not None and "smallest face is 139 px" in note
    for extra, expected in (((), True), (("--paste-back",), False)):
        res = run_cli("drive", path, testdata / "videos" / "lp_d18.mp4", "-o", tmp_path / f"o{len(extra)}.mp4",
                      "--size", "512", "--max-frames", "1", *extra)
        assert res.returncode == 0 and ("will look soft" in res.stderr) == expected, res.stderr
