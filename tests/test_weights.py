"""Weights manifest, search order, and the missing-file error."""

from __future__ import annotations

import pytest

from conftest import TASK, run_cli
from reenact import weights
from reenact.errors import MissingWeightsError


def test_bundled_task_file_resolves_and_matches_manifest_checksum():
    path = weights.resolve("mediapipe_face_landmarker")
    assert path.is_file()
    assert weights.sha256_of(path) == weights.entry("mediapipe_face_landmarker").sha256


def test_manifest_covers_every_model_the_project_uses():
    files = {w.filename for w in weights.MANIFEST}
    for name in ("face_landmarker_v2.task", "2DFAN4-cd938726ad.zip", "s3fd-619a316812.pth", "vgg19-dcbb9e9d.pth",
                 "pt_inception-2015-12-05-6726825d.pth", "default_1.pt", "arcface_r100.pth", "generic_model.pkl",
                 "landmark_embedding.npy", "PWM_geom_disp.pth", "PWM_neural_codes.pth", "PWM_both.pth"):
        assert name in files
    for w in weights.MANIFEST:
        assert w.licence and w.source and w.how


def test_search_order_weights_dir_then_env(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "PWM_both.pth").write_bytes(b"a")
    (b / "PWM_both.pth").write_bytes(b"b")
    monkeypatch.setenv(weights.ENV_VAR, str(b))
    monkeypatch.chdir(tmp_path)
    assert weights.resolve("pwm_both", a) == a / "PWM_both.pth"
    assert weights.resolve("pwm_both") == b / "PWM_both.pth"


def test_missing_file_error_names_file_places_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingWeightsError) as err:
        weights.resolve("flame_model", tmp_path / "mine")
    msg = str(err.value)
    assert "generic_model.pkl" in msg and str(tmp_path / "mine") in msg and "flame.is.tue.mpg.de" in msg


def test_weights_command_prints_present_and_missing(tmp_path):
    res = run_cli("weights", "--verify", cwd=tmp_path, env={"COLUMNS": "300"})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "face_landmarker_v2.task" in out and "present" in out and "missing" in out and "sha256 ok" in out
    assert str(TASK.parent.name) in out or "_weights" in out
