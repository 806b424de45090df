"""`reenact preprocess` on the real test clips: done/skipped, idempotence, SIGKILL recovery, shards,
landmark accuracy, an unreadable video, and the pair dataset's flip."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli

pytestmark = pytest.mark.slow
ARGS = ("--identity-from", "none", "--max-frames", "40")
CLIPS = {"single_face", "lp_d11", "lp_d18", "vfr_lp_d18"}


def _preprocess(*args, **kw):
    res = run_cli("preprocess", *args, **kw)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _clips(root) -> dict:
    from reenact.data.layout import read_clips

    return {c["id"]: c["frames"] for c in read_clips(root).rows()}


def _geometry(root, clip: str) -> dict:
    from reenact.data.clips import ClipReader

    return ClipReader(root / "clips" / clip).geometry()


def _check_complete(root) -> None:
    """Every listed clip is whole: meta, geometry and frames agree, in four files; no temp dirs are left."""
    from reenact.data.clips import ClipReader

    for clip, n in _clips(root).items():
        folder = root / "clips" / clip
        meta = json.loads((folder / "meta.json").read_text())
        g = _geometry(root, clip)
        assert len(g["vertices"]) == len(g["landmarks"]) == len(g["boxes"]) == n == meta["frames"]
        assert len(ClipReader(folder)) == n and ClipReader(folder).frame(n - 1).shape == (256, 256, 3)
        assert sorted(p.name for p in folder.iterdir()) == ["frames.bin", "geometry.npz", "meta.json", "vertices.npy"]
    assert not list((root / "clips").glob(".tmp-*"))


@pytest.fixture(scope="module")
def data(testdata, tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "vox"
    res = _preprocess(testdata / "videos", "--out", root, *ARGS)
    return root, res


def test_three_clips_done_and_no_face_skipped_with_its_reason(data):
    root, res = data
    assert set(_clips(root)) == CLIPS
    assert "no_face: only 0 frame(s) with a face" in res.stderr
    assert "4 clip(s) done" in res.stderr and "1 skipped" in res.stderr
    _check_complete(root)
    meta = json.loads((root / "clips" / "single_face" / "meta.json").read_text())
    assert meta["fps"] == 30 and meta["size"] == 256 and meta["landmarks"] == "mediapipe68" and meta["versions"]["mediapipe"]


def test_variable_rate_clip_keeps_its_real_frame_times(data):
    """vfr_lp_d18: 101 stored frames over 7.2 s; the first 40 are stored once each, with their own times."""
    root, _ = data
    meta = json.loads((root / "clips" / "vfr_lp_d18" / "meta.json").read_text())
    g = _geometry(root, "vfr_lp_d18")
    times, index = g["frame_time"], g["frame_index"]
    steps = np.round(np.diff(times), 3)
    assert abs(meta["fps"] - 101 / 7.2) < 0.05 and meta["source_frames"] == 40
    assert (steps > 0).all() and len(set(steps)) > 1, "irregular, strictly increasing presentation times"
    assert list(index) == list(range(len(index)))


def test_a_second_run_does_no_work(data, testdata):
    root, _ = data
    before = {p: p.stat().st_mtime_ns for p in (root / "clips").rglob("*")}
    t = time.perf_counter()
    res = _preprocess(testdata / "videos", "--out", root, *ARGS)
    assert "0 clip(s) done" in res.stderr and "4 already done" in res.stderr and "1 skipped" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in (root / "clips").rglob("*")} == before
    print(f"second run: {time.perf_counter() - t:.1f} s")


def test_sigkill_mid_clip_then_rerun_leaves_no_partial_clip(testdata, tmp_path):
    root = tmp_path / "killed"
    cmd = [sys.executable, "-m", "reenact", "preprocess", str(testdata / "videos"), "--out", str(root),
           "--identity-from", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (root.is_dir() and any(p.stat().st_size > 300_000 for p in (root / "clips").glob(".tmp-*/frames.bin"))):
        time.sleep(0.05)  # about 20 frames written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((root / "clips").glob(".tmp-*")), "killed while a clip was being written"
    assert not (root / "manifest.json").exists() or len(_clips(root)) < 3
    _preprocess(testdata / "videos", "--out", root, "--identity-from", "none")
    assert set(_clips(root)) == CLIPS
    _check_complete(root)


def test_two_shards_then_finalize_make_the_full_set(data, testdata, tmp_path):
    full, _ = data
    root = tmp_path / "sharded"
    res = _preprocess(testdata / "videos", "--out", root, "--shard", "0/2", *ARGS)
    assert "--finalize" in res.stderr and not (root / "manifest.json").exists(), "a shard writes only its part"
    early = run_cli("preprocess", "--finalize", root)
    assert early.returncode == 1 and "missing 1/2" in early.stderr, early.stderr
    _preprocess(testdata / "videos", "--out", root, "--shard", "1/2", "--workers", "2", *ARGS)
    res = run_cli("preprocess", "--finalize", root)
    assert res.returncode == 0 and "manifest lists 4 clip(s)" in res.stderr, res.stderr
    assert _clips(root) == _clips(full) and len(list((root / "parts").glob("*.json"))) == 2
    _check_complete(root)


def test_stored_landmarks_meet_the_foundation_bound(testdata, tmp_path):
    from reenact.face.crop import CropBox, apply_affine, invert_affine
    from reenact.face.landmarks68 import inter_ocular

    clip = tmp_path / "in" / "talking"
    clip.mkdir(parents=True)
    for jpg in sorted((testdata / "landmarks_gt").glob("*.jpg")):
        shutil.copy(jpg, clip)
    root = tmp_path / "gt"
    _preprocess(clip, "--out", root, "--identity-from", "none", "--min-frames", "5", "--format", "png")
    g = _geometry(root, "talking")
    boxes, lms, index = g["boxes"], g["landmarks"], g["frame_index"]
    errors = []
    for box, lm, i in zip(boxes, lms, index):
        gt = np.array(json.loads((testdata / "landmarks_gt" / f"{i:05d}.json").read_text()), np.float64)
        back = apply_affine(invert_affine(CropBox(*box).affine(256)), lm)  # crop pixels -> frame pixels
        errors.append(np.linalg.norm(back - gt, axis=1).mean() / inter_ocular(gt))
    print(f"stored landmarks vs dlib ground truth: {100 * np.mean(errors):.2f} % of inter-ocular distance")
    assert len(errors) == 5 and np.mean(errors) <= 0.06


def test_an_unreadable_video_fails_the_run_while_the_others_finish(testdata, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(testdata / "videos" / "single_face.mp4", folder)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    root = tmp_path / "out"
    res = run_cli("preprocess", folder, "--out", root, *ARGS)
    assert res.returncode == 1, "a failed clip fails the run (a Slurm array task must show it)"
    assert _clips(root) == {"single_face": 40}
    assert "failed: broken" in res.stderr and "1 failed" in res.stderr
    assert not (root / "skipped" / "broken.json").exists(), "failures are retried by the next run, not recorded as skips"


def test_exit_codes_only_failures_fail(testdata, tmp_path):
    """Only an unreadable video: exit 1. FAN landmarks without FAN weights: exit 1. A clip skipped by
    policy (no face) with a good one: exit 0."""
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "broken.mp4").write_bytes(b"not a video at all")
    assert run_cli("preprocess", only_bad, "--out", tmp_path / "o1", *ARGS).returncode == 1
    res = run_cli("preprocess", testdata / "videos" / "single_face.mp4", "--out", tmp_path / "o2", *ARGS,
                  "--landmarks", "fan", env={"REENACT_WEIGHTS": str(tmp_path / "empty")})
    assert res.returncode == 1 and "2DFAN4" in res.stderr, res.stderr[-2000:]
    res = run_cli("preprocess", testdata / "videos" / "single_face.mp4", testdata / "videos" / "no_face.mp4",
                  "--out", tmp_path / "o3", *ARGS)
    assert res.returncode == 0 and "1 skipped" in res.stderr and "0 failed" in res.stderr, res.stderr[-2000:]


def test_pairs_flip_mirrors_images_and_mesh_consistently(data):
    from torch.utils.data import default_collate

    from reenact.data.dataset import PairDataset, to_device
    from reenact.render.rasterize import rasterize

    root, _ = data
    plain, flipped = PairDataset(root, flip=0.0), PairDataset(root, flip=1.0)
    a, b = plain[7], flipped[7]  # the same pair and jitter, flipped or not
    (src_a, drv_a), (src_b, _) = (to_device(default_collate([x]), torch.device("cpu"), 256) for x in (a, b))
    assert torch.allclose(src_a.flip(-1), src_b, atol=1e-6) and not torch.equal(src_a, drv_a)
    tris = torch.as_tensor(plain.triangles)
    ones = torch.ones(1, len(plain.flip_map), 1)
    cov_a = rasterize(a["verts_src"][None], tris, ones, (256, 256)).mask.flip(-1)
    cov_b = rasterize(b["verts_src"][None], tris, ones, (256, 256)).mask
    assert cov_b.sum() > 1000 and (cov_a == cov_b).float().mean() > 0.999  # culling kept: winding preserved
    left_eye_outer, right_eye_outer = 33, 263  # MediaPipe mesh ids
    assert abs(b["verts_src"][left_eye_outer, 0] - (256 - a["verts_src"][right_eye_outer, 0])) < 1e-3


def test_bad_preprocess_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("preprocess", tmp_path / "empty", "--out", tmp_path / "o")
    assert res.returncode == 1 and "no videos or frame folders" in res.stderr
    res = run_cli("preprocess", tmp_path / "empty", "--out", tmp_path / "o", "--shard", "3/2")
    assert res.returncode == 1 and "--shard" in res.stderr and "Traceback" not in res.stderr



def test_list_files_and_identity_rules(tmp_path):
    from reenact.data.sources import discover

    tree = tmp_path / "vox" / "id001" / "vidA"
    tree.mkdir(parents=True)
    (tree / "00001.mp4").write_bytes(b"x")
    (tree / "00002.mp4").write_bytes(b"x")
    frames = tmp_path / "frames" / "talk"
    frames.mkdir(parents=True)
    (frames / "0.png").write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# clips\n{tree / '00001.mp4'}\nframes/talk\n")
    jobs = discover([listing], "grandparent")
    assert {j.clip_id: j.identity for j in jobs} == {"id001/vidA/00001": "id001",  # relative to the list file
                                                     f"{tmp_path.name}/frames/talk": tmp_path.name}
    assert [j.clip_id for j in discover([tmp_path / "vox"], "parent")] == ["vidA/00001", "vidA/00002"]
    halves = [[j.clip_id for j in discover([tmp_path / "vox"], "none", shard=(i, 2))] for i in (0, 1)]
    assert sorted(halves[0] + halves[1]) == ["00001", "00002"], "shards are disjoint and cover the set"


def test_a_list_file_saved_by_windows_notepad_is_read(tmp_path):
    """A UTF-8 list with a byte-order mark and CRLF line ends, naming a clip with an accented name:
    the BOM was read as part of the first path ("\ufeffvox/..."), which then did not exist."""
    from reenact.data.sources import expand

    clip = tmp_path / "vox" / "Zoë" / "00001.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_bytes("\ufeffvox/Zoë/00001.mp4\r\n".encode("utf-8"))
    assert [Path(p) for p in expand([listing])] == [clip]


def test_flame_geometry_is_stored_with_face_model_flame(testdata, tmp_path):
    from conftest import SHARED
    from flame_synth import read_obj, synthetic_arrays, write_generic_model

    assets = SHARED / "reference" / "flame_assets"
    if not assets.is_dir():
        pytest.skip(f"FLAME test assets not found: {assets}")
    flame = tmp_path / "flame"
    flame.mkdir()
    write_generic_model(flame / "generic_model.pkl", synthetic_arrays(*read_obj(assets / "head_template.obj")))
    shutil.copy(assets / "landmark_embedding.npy", flame / "landmark_embedding.npy")
    root = tmp_path / "data"
    _preprocess(testdata / "videos" / "single_face.mp4", "--out", root, "--identity-from", "none",
                "--max-frames", "12", "--face-model", "flame", "--flame-dir", flame)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["face_model"] == "flame" and manifest["topology"] == "flame5023"
    g = _geometry(root, "single_face")
    verts, lms = g["vertices"], g["landmarks"]
    assert verts.shape == (12, 5023, 3) and g["flame_expression"].shape == (12, 50)
    assert g["mediapipe_vertices"].shape == (12, 468, 3)
    inside = (verts[..., :2] > 0) & (verts[..., :2] < 256)
    assert inside.mean() > 0.95 and np.abs(verts[:, :, :2].mean(1) - lms.mean(1)).max() < 40
    with np.load(root / "topology.npz") as z:
        assert str(z["name"]) == "flame5023" and z["flip"].shape == (5023,) and z["triangles"].shape[1] == 3
