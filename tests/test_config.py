"""Config loading: every shipped config loads; unknown keys and bad overrides are clear errors."""

from __future__ import annotations

import pytest

from conftest import ROOT
from reenact.config import ConfigError, load_config, to_dict


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.guidance in ("geom_disp", "neural_codes", "both")
    if path.name.startswith("official_"):
        assert cfg.model.warp == "official" and cfg.loss.gan_mode == "ls" and cfg.discriminator.scales == [1]
    if path.name.startswith("paper_"):
        assert cfg.loss.gan_mode == "hinge" and cfg.discriminator.scales == [1, 2, 4]


def test_overrides_and_unknown_keys(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["train.lr=1e-3", "loss.weights.pix=0", "model.guidance=both"])
    assert cfg.train.lr == 1e-3 and cfg.loss.weights["pix"] == 0 and cfg.model.guidance == "both"
    assert to_dict(cfg)["model"]["guidance"] == "both"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  guidence: both\n")
    with pytest.raises(ConfigError, match="guidence"):
        load_config(bad)
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(None, ["train.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_wrong_types_are_rejected():
    with pytest.raises(ConfigError, match="train.steps"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ConfigError, match="model.spectral_norm"):
        load_config(None, ["model.spectral_norm=3"])


def test_bundled_configs_resolve_by_name_and_a_real_path_wins(tmp_path, monkeypatch):
    from reenact.config import bundled_configs, resolve_config

    names = set(bundled_configs())
    assert {"tiny", "paper_geom_disp", "official_geom_disp"} <= names
    monkeypatch.chdir(tmp_path)  # an empty folder, as after `pip install reenact`
    for value in ("tiny", "tiny.yaml", "configs/tiny.yaml"):
        assert resolve_config(value) == bundled_configs()["tiny"]
    (tmp_path / "tiny.yaml").write_text("train: {steps: 1}\n")
    assert resolve_config("tiny.yaml").resolve() == tmp_path / "tiny.yaml" and load_config("tiny.yaml").train.steps == 1
    with pytest.raises(ConfigError, match="bundled configs: .*tiny"):
        resolve_config("nope")


def test_train_lists_the_bundled_configs():
    from conftest import run_cli

    res = run_cli("train", "--list-configs")
    assert res.returncode == 0 and "paper_geom_disp" in res.stderr and "tiny" in res.stderr
