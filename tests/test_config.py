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
