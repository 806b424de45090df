"""Dataset layout 2 on the real test clips: four files per clip whatever its length, 0.1 data refused
in one line and converted by `preprocess --upgrade` byte for byte, and training on the new reader gives
the same losses, step for step, as reenact 0.1's reader on the same data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT, run_cli, user_lines
from legacy_reader import LegacyPairDataset, downgrade, legacy_to_device

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(testdata, tmp_path_factory):
    """single_face (72 frames) and lp_d11 (225 frames), whole, both in the train split."""
    root = tmp_path_factory.mktemp("layout") / "data"
    split = root.parent / "split.csv"
    split.write_text("identity,split\nsingle_face,train\nlp_d11,train\n")
    res = run_cli("preprocess", testdata / "videos" / "single_face.mp4", testdata / "videos" / "lp_d11.mp4",
                  "--out", root, "--identity-from", "none", "--split-csv", split)
    assert res.returncode == 0, res.stderr[-2000:]
    return root


def test_a_clip_is_four_files_whatever_its_length(data):
    from reenact.data.clips import ClipReader
    from reenact.data.layout import read_clips, read_manifest

    assert {r["id"]: r["frames"] for r in read_clips(data).rows()} == {"lp_d11": 225, "single_face": 72}
    for clip in ("lp_d11", "single_face"):
        folder = data / "clips" / clip
        assert len(list(folder.iterdir())) <= 4
        reader = ClipReader(folder)
        assert reader.vertices([0, len(reader) - 1]).shape == (2, 468, 3) and reader.frame(len(reader) - 1).dtype == np.uint8
    m = read_manifest(data)
    assert (m["version"], m["clips"], m["frames"], m["train"], m["test"]) == (2, 2, 297, 2, 0)


def test_data_of_reenact_0_1_is_refused_then_upgraded_byte_for_byte(data, testdata, tmp_path):
    old = tmp_path / "old"
    downgrade(data, old)
    for args in (("train", "--config", "tiny", "--data", old, "--out", tmp_path / "run", "--device", "cpu"),
                 ("preprocess", testdata / "videos" / "lp_d18.mp4", "--out", old, "--identity-from", "none")):
        res = run_cli(*args)
        lines = user_lines(res.stderr)
        assert res.returncode == 1 and len(lines) == 1 and "layout 1" in lines[0] and "--upgrade" in lines[0], res.stderr
    res = run_cli("preprocess", "--upgrade", old)
    assert res.returncode == 0 and "2 clip(s) converted" in res.stderr and "297 frames" in res.stderr, res.stderr
    for clip in ("lp_d11", "single_face"):
        for name in ("frames.bin", "vertices.npy"):
            assert (old / "clips" / clip / name).read_bytes() == (data / "clips" / clip / name).read_bytes(), name
        assert sorted(p.name for p in (old / "clips" / clip).iterdir()) == sorted(p.name for p in (data / "clips" / clip).iterdir())
    assert (old / "clips.npy").read_bytes() == (data / "clips.npy").read_bytes()
    assert json.loads((old / "manifest-layout1.json").read_text())["version"] == 1, "the old manifest is kept"
    res = run_cli("preprocess", "--upgrade", old)
    assert res.returncode == 0 and "0 clip(s) converted" in res.stderr, "a second upgrade is a no-op"


def test_training_losses_match_the_0_1_reader_step_for_step(data, tmp_path, monkeypatch):
    """Seeded tiny runs (64² from 256² crops: resize, flip and jitter all exercised) on layout 2 with the
    new reader, and on the same data written as layout 1 and read by 0.1's reader: equal losses."""
    import reenact.data.dataset as dataset
    from reenact.config import load_config
    from reenact.train.loop import TrainOptions, train

    cfg = lambda: load_config(ROOT / "configs" / "tiny.yaml", ["train.steps=6", "train.log_every=1"])  # noqa: E731
    train(TrainOptions(cfg(), str(data), str(tmp_path / "new"), device="cpu"), notify=lambda _: None)
    old = tmp_path / "old"
    downgrade(data, old)
    monkeypatch.setattr(dataset, "PairDataset", LegacyPairDataset)
    monkeypatch.setattr(dataset, "to_device", legacy_to_device)
    train(TrainOptions(cfg(), str(old), str(tmp_path / "legacy"), device="cpu"), notify=lambda _: None)
    rows = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("new", "legacy")]
    losses = [[{k: v for k, v in r.items() if k not in ("time",)} for r in run if "g_total" in r] for run in rows]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
