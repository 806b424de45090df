"""`reenact score` end to end: drive output scored under both protocols, the FID cache, bad inputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from conftest import ROOT, read_frames, run_cli, user_lines

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driven(testdata, tmp_path_factory):
    """Self-reenactment of single_face.mp4 (source = its frame 0, pasted back), and two cross-identity
    clips driven by it: generated/{astronaut,statue}.mp4 from sources/{astronaut.png,statue.jpg}."""
    from PIL import Image

    root = tmp_path_factory.mktemp("score")
    video = testdata / "videos" / "single_face.mp4"
    Image.fromarray(read_frames(video)[0]).save(root / "frame0.png")
    (root / "same").mkdir()
    (root / "cross").mkdir()
    (root / "sources").mkdir()
    shutil.copy(ROOT / "examples" / "source.png", root / "sources" / "astronaut.png")
    shutil.copy(testdata / "faces" / "lp_s6.jpg", root / "sources" / "statue.jpg")
    jobs = [(root / "frame0.png", root / "same" / "single_face.mp4", "--paste-back"),
            (root / "sources" / "astronaut.png", root / "cross" / "astronaut.mp4", "--size=256"),
            (root / "sources" / "statue.jpg", root / "cross" / "statue.mp4", "--size=256")]
    for src, out, flag in jobs:
        res = run_cli("drive", src, video, "-o", out, flag, "--device", "cpu")
        assert res.returncode == 0, res.stderr[-2000:]
    return root


def _score(*args, tmp_path):
    res = run_cli("score", *args, "--device", "cpu", "--cache-dir", tmp_path / "cache", "--every", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _check_all_five(report: dict) -> None:
    assert list(report["metrics"]) == ["fid", "csim", "akd", "apd", "aed"]
    for name, m in report["metrics"].items():
        assert m["model"] and m["model"] != "-", name
        assert m["policy"] in ("excluded", "no face needed"), name


def test_same_identity_protocol_scores_a_drive_output(driven, testdata, tmp_path):
    out = tmp_path / "same.json"
    res = _score(driven / "same", "--reference", testdata / "videos", "--json", out, "--csv", tmp_path / "same.csv",
                 "--per-frame", tmp_path / "frames.csv", tmp_path=tmp_path)
    report = json.loads(out.read_text())
    _check_all_five(report)
    m = {k: v["value"] for k, v in report["metrics"].items()}
    print("same-identity:", {k: round(v, 4) for k, v in m.items()})
    for label in ("NVIDIA TF-Inception", "dlib ResNet v1", "MediaPipe-68", "MediaPipe pose + 52 blendshapes"):
        assert label in res.stdout
    assert any("4 clip(s) without a generated clip were ignored" in n for n in report["notes"])
    assert m["csim"] > 0.9 and m["akd"] < 5.0 and m["apd"] < 3.0 and m["fid"] > 0
    assert report["metrics"]["akd"]["frames"] + report["metrics"]["akd"]["excluded_no_face"] == 18  # 72 frames, every 4th
    rows = list(csv.DictReader(open(tmp_path / "frames.csv")))
    assert len(rows) == 18 and rows[1]["frame"] == "4" and float(rows[0]["akd"]) >= 0
    assert [r["metric"] for r in csv.DictReader(open(tmp_path / "same.csv"))] == ["fid", "csim", "akd", "apd", "aed"]


def test_cross_identity_protocol_scores_against_sources_and_driver(driven, testdata, tmp_path):
    out = tmp_path / "cross.json"
    _score(driven / "cross", "--protocol", "cross", "--source", driven / "sources",
           "--driver", testdata / "videos" / "single_face.mp4", "--json", out, tmp_path=tmp_path)
    report = json.loads(out.read_text())
    _check_all_five(report)
    m = report["metrics"]
    print("cross-identity:", {k: v["value"] for k, v in m.items()})
    assert m["fid"]["against"] == "source" and m["fid"]["value"] > 0
    assert m["csim"]["against"] == "source" and m["apd"]["against"] == "driver"
    assert m["akd"]["value"] is None and "same-identity only" in m["akd"]["note"]
    assert m["apd"]["value"] < 5.0 and m["csim"]["frames"] == 36


def test_identical_inputs_reuse_the_cached_fid_statistics(testdata, tmp_path):
    clip = testdata / "videos" / "lp_d18.mp4"
    reports = []
    for i in range(2):
        _score(clip, "--reference", clip, "--metrics", "fid", "--json", tmp_path / f"{i}.json", tmp_path=tmp_path)
        reports.append(json.loads((tmp_path / f"{i}.json").read_text()))
    first, second = reports
    assert first["fid_cache"] == {"features_hit": 1, "features_miss": 1, "statistics_hit": 1}  # same clip twice
    assert second["fid_cache"] == {"features_hit": 2, "features_miss": 0, "statistics_hit": 2}
    assert abs(second["metrics"]["fid"]["value"]) < 1e-2 and first["metrics"]["fid"]["value"] == second["metrics"]["fid"]["value"]


def _one_line_error(res, *needles: str) -> str:
    lines = user_lines(res.stderr)
    assert res.returncode == 1 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_bad_inputs_give_one_line_and_exit_1(testdata, tmp_path):
    clip = testdata / "videos" / "single_face.mp4"
    (tmp_path / "empty").mkdir()
    _one_line_error(run_cli("score", tmp_path / "empty", "--reference", clip), "no videos or images")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png at all")
    _one_line_error(run_cli("score", tmp_path / "bad", "--reference", tmp_path / "bad", "--metrics", "akd"),
                    "broken.png", "not a readable image")
    short = tmp_path / "short"
    (short / "clip").mkdir(parents=True)  # a sub-folder of images is one clip
    from PIL import Image

    for i, f in enumerate(read_frames(clip)[:3]):
        Image.fromarray(f).save(short / "clip" / f"{i:05d}.png")
    _one_line_error(run_cli("score", short, "--reference", clip, "--metrics", "akd"), "3 generated frame(s) but 72")
    _one_line_error(run_cli("score", clip, "--reference", clip, "--metrics", "csim", "--identity", "arcface",
                            env={"REENACT_WEIGHTS": str(tmp_path)}), "arcface_r100.pth", "Looked in")
    _one_line_error(run_cli("score", clip, "--reference", clip, "--fid-model", "pytorch-fid", "--metrics", "fid"),
                    "pt_inception-2015-12-05-6726825d.pth")
    _one_line_error(run_cli("score", clip, "--protocol", "cross", "--metrics", "apd"), "--driver")
    (tmp_path / "r.json").write_text("{}")
    _one_line_error(run_cli("score", clip, "--reference", clip, "--metrics", "akd", "--json", tmp_path / "r.json"),
                    "already exists")
    assert (tmp_path / "r.json").read_text() == "{}"


def test_allow_unpaired_scores_fid_alone(testdata, tmp_path):
    clip = testdata / "videos" / "single_face.mp4"
    short = tmp_path / "short.mp4"
    res = run_cli("drive", ROOT / "examples" / "source.png", clip, "-o", short, "--max-frames", "20", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-2000:]
    out = tmp_path / "u.json"
    _score(short, "--reference", clip, "--metrics", "fid,akd", "--allow-unpaired", "--json", out, tmp_path=tmp_path)
    m = json.loads(out.read_text())
    assert m["metrics"]["fid"]["value"] > 0 and m["metrics"]["akd"]["value"] is None
    assert any("FID only" in n for n in m["notes"])
    assert np.isfinite(m["metrics"]["fid"]["value"])


def test_a_face_crop_scored_against_full_frames_is_refused(driven, testdata, tmp_path):
    """The same self-reenactment without --paste-back (the 256² crop) against the 640x360 clip: AKD would
    compare landmarks rescaled across two framings (40 px instead of 1), so the score refuses in one line.
    The --paste-back output of the same drive scores normally (test_same_identity_protocol_...)."""
    crop = tmp_path / "crop" / "single_face.mp4"
    res = run_cli("drive", driven / "frame0.png", testdata / "videos" / "single_face.mp4", "-o", crop, "--device", "cpu")
    assert res.returncode == 0, res.stderr[-2000:]
    res = run_cli("score", crop.parent, "--reference", testdata / "videos", "--device", "cpu", "--every", "4",
                  "--metrics", "akd", "--cache-dir", tmp_path / "cache")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(lines) == 1 and "different framing" in lines[0] and "--paste-back" in lines[0], res.stderr
