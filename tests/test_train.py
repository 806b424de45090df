"""`reenact train` on the tiny config, on CPU, with data preprocessed from the real test clips:
learning, samples and checkpoints, SIGKILL + --resume, SIGINT, two gloo ranks, --init-from an
imported official checkpoint, driving with the trained checkpoint, and bad inputs."""

from __future__ import annotations

import json
import math
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_cli, user_lines

pytestmark = pytest.mark.slow
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def data(testdata, tmp_path_factory):
    """The three face clips (24 frames each); single_face is the held-out test identity."""
    root = tmp_path_factory.mktemp("train") / "data"
    split = root.parent / "split.csv"
    split.write_text("identity,split\nsingle_face,test\nlp_d11,train\nlp_d18,train\n")
    res = run_cli("preprocess", testdata / "videos", "--out", root, "--identity-from", "none",
                  "--max-frames", "24", "--split-csv", split)
    assert res.returncode == 0, res.stderr[-2000:]
    return root


def _train(data, out, *sets, extra=(), check=True):
    args = ["train", "--config", TINY, "--data", data, "--out", out, "--device", "cpu", *extra]
    for s in sets:
        args += ["--set", s]
    res = run_cli(*args)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    _train(data, run, "train.steps=60", "train.val_every=30", "train.sample_every=30", "train.checkpoint_every=30")
    return run


def test_tiny_training_learns_and_writes_samples_and_checkpoints(trained):
    rows = _metrics(trained)
    losses = [r for r in rows if "g_total" in r]
    assert losses and all(math.isfinite(v) for r in losses for k, v in r.items() if isinstance(v, float))
    assert {"pix", "perceptual", "gan", "feat_match", "warp_perceptual", "d_rec"} <= set(losses[0])
    train_l1 = [(r["step"], r["train_l1"]) for r in rows if "train_l1" in r]
    val = [r["val_l1"] for r in rows if "val_l1" in r]
    print(f"reconstruction L1 on training pairs: {train_l1}; held-out: {val}")
    assert train_l1[-1][0] <= 300 and train_l1[-1][1] <= 0.7 * train_l1[0][1]
    assert len(val) == len(train_l1) and all(math.isfinite(v) for v in val)
    assert (trained / "samples" / "step_00000060.png").is_file()
    from PIL import Image

    assert Image.open(trained / "samples" / "step_00000060.png").size == (5 * 64, 2 * 64)  # 5 panels, batch 2
    ckpts = sorted(p.name for p in (trained / "checkpoints").iterdir())
    assert ckpts == ["step_00000030.pt", "step_00000060.pt"]
    assert "lr: 0.001" in (trained / "config.yaml").read_text()


def test_drive_with_the_trained_checkpoint(trained, testdata, tmp_path):
    out = tmp_path / "out.mp4"
    res = run_cli("drive", ROOT / "examples" / "source.png", testdata / "videos" / "single_face.mp4", "-o", out,
                  "--checkpoint", trained / "checkpoints" / "step_00000060.pt", "--max-frames", "10", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-2000:]
    from conftest import read_frames

    frames = read_frames(out)
    assert len(frames) == 10 and frames[0].shape[:2] == (64, 64)


def test_sigkill_then_resume_continues_at_the_same_step(data, tmp_path):
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "reenact", "train", "--config", str(TINY), "--data", str(data), "--out", str(run),
           "--device", "cpu", "--set", "train.steps=1000", "--set", "train.checkpoint_every=5",
           "--set", "train.val_every=1000", "--set", "train.keep_checkpoints=5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not (run / "checkpoints" / "step_00000010.pt").is_file():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from reenact.train import state

    last = state.latest(run)
    step = int(last.stem.split("_")[1])
    assert step >= 10 and not list((run / "checkpoints").glob("*.partial"))
    res = _train(data, run, f"train.steps={step + 3}", "train.log_every=1", extra=["--resume"])
    assert f"resumed from {last.name} (step {step})" in res.stderr
    after = [r["step"] for r in _metrics(run) if "g_total" in r]
    assert after[-3:] == [step + 1, step + 2, step + 3]
    assert state.latest(run).name == f"step_{step + 3:08d}.pt"


def test_resume_restores_the_optimizer_state_exactly(trained, data):
    from reenact.config import load_config
    from reenact.data.layout import read_topology
    from reenact.train import distributed, state
    from reenact.train.setup import build_parts, restore

    ckpt = state.read(trained / "checkpoints" / "step_00000060.pt")
    cfg = load_config(trained / "config.yaml")
    dist = distributed.Dist(0, 1, 0, torch.device("cpu"))
    parts = build_parts(cfg, dist, read_topology(data), None, None, print)
    restore(parts, ckpt)
    assert parts.step == 60
    for name, opt in (("optimizer_g", parts.opt_g), ("optimizer_d", parts.opt_d)):
        saved, now = getattr(ckpt.resume, name)["state"], opt.state_dict()["state"]
        assert saved.keys() == now.keys() and len(now) > 10
        for k in saved:
            for field in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(saved[k][field], now[k][field]), (name, k, field)
    for k, v in ckpt.generator.items():
        assert torch.equal(v, parts.gen.state_dict()[k])


def test_sigint_writes_a_checkpoint_and_exits_0(data, tmp_path):
    run = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "reenact", "train", "--config", str(TINY), "--data", str(data), "--out", str(run),
           "--device", "cpu", "--set", "train.steps=1000", "--set", "train.log_every=1", "--set", "train.val_every=1000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not ((run / "metrics.jsonl").is_file() and len(_metrics(run)) >= 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by signal at step" in err
    step = int(err.split("stopped by signal at step ")[1].split(":")[0])
    assert (run / "checkpoints" / f"step_{step:08d}.pt").is_file() and step < 1000


def test_two_gloo_ranks_keep_identical_parameters(data, tmp_path):
    run, dump = tmp_path / "ddp", tmp_path / "dump"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", "-m", "reenact",
           "train", "--config", str(TINY), "--data", str(data), "--out", str(run), "--device", "cpu",
           "--set", "train.steps=20", "--set", "train.val_every=1000", "--dump-rank-state", str(dump)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for net in ("generator", "discriminator"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    assert (run / "checkpoints" / "step_00000020.pt").is_file()
    assert [r["step"] for r in _metrics(run) if "g_total" in r][-1] == 20


def test_init_from_an_imported_official_checkpoint_starts_training(data, tmp_path):
    from test_models_golden import fake_official

    official = tmp_path / "PWM_geom_disp.pth"
    torch.save({"generator": fake_official("geom_disp"), "discriminator": fake_official("discriminator"),
                "global_step": 5}, official)
    converted = tmp_path / "pwm_geom_disp.pt"
    assert run_cli("weights", "import-official", official, "-o", converted).returncode == 0
    run = tmp_path / "finetune"
    res = run_cli("train", "--config", ROOT / "configs" / "official_geom_disp.yaml", "--data", data, "--out", run,
                  "--device", "cpu", "--init-from", converted, "--set", "train.steps=2", "--set", "train.batch_size=1",
                  "--set", "train.workers=0", "--set", "loss.vgg=random", "--set", "loss.weights={pix: 10.0, gan: 1.0}",
                  "--set", "train.val_pairs=1", "--set", "train.log_every=1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "model settings taken from the checkpoint" in res.stderr and "spectral_norm=False" in res.stderr
    rows = [r for r in _metrics(run) if "g_total" in r]
    assert rows and rows[-1]["step"] == 2 and math.isfinite(rows[-1]["g_total"])


def test_bad_train_inputs_give_one_line_and_exit_1(data, tmp_path):
    cases = [
        (["--set", "model.guidence=both"], "guidence"),
        (["--data", tmp_path], "manifest.json"),
        (["--resume", "--out", tmp_path / "fresh"], "no checkpoint"),
    ]
    for extra, needle in cases:
        args = ["train", "--config", TINY, "--data", data, "--out", tmp_path / "run", "--device", "cpu", *extra]
        res = run_cli(*args)
        lines = user_lines(res.stderr)
        assert res.returncode == 1 and len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr, res.stderr


def test_repeated_non_finite_losses_stop_with_a_message(data, tmp_path):
    res = _train(data, tmp_path / "nan", "train.lr=1e30", "train.max_nan_steps=3", "train.steps=50", check=False)
    lines = user_lines(res.stderr)
    assert res.returncode == 1 and re.search(r"\b([3-9]|\d\d) steps in a row had non-finite losses", lines[-1]), res.stderr[-2000:]


def test_drive_loads_the_ema_generator_when_the_checkpoint_has_one():
    from reenact.build import build_generator
    from reenact.config import load_config
    from reenact.models.checkpoint import Checkpoint

    cfg = load_config(TINY)
    raw, ema = build_generator(cfg.model), build_generator(cfg.model)
    ckpt = Checkpoint(raw.state_dict(), cfg.model, generator_ema=ema.state_dict())
    loaded = ckpt.build_generator(torch.device("cpu")).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in ema.state_dict().items())
    assert not all(torch.equal(loaded[k], v) for k, v in raw.state_dict().items())


def test_ema_generator_copies_batchnorm_statistics_and_spectral_norm_vectors(data, tmp_path):
    """stylegan3's EMA: parameters are averaged, buffers copied. After one step the EMA generator's
    BatchNorm running statistics (and spectral-norm u/v vectors) equal G's, and differ from their
    initial values."""
    run = tmp_path / "ema"
    _train(data, run, "train.ema=0.999", "train.steps=1", "train.checkpoint_every=1")
    ckpt = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=True, map_location="cpu")
    gen, ema = ckpt["generator"], ckpt["generator_ema"]
    stats = [k for k in gen if k.endswith(("running_mean", "running_var"))]
    vectors = [k for k in gen if k.endswith(("_u", "_v", "weight_u", "weight_v"))]
    assert stats, "the tiny generator has BatchNorm layers"
    for k in stats + vectors:
        assert torch.equal(ema[k], gen[k]), k
    moved = [k for k in stats if k.endswith("running_mean") and gen[k].abs().sum() > 0]
    assert moved, "the statistics moved from their initial zeros, so the comparison means something"


def test_channels_last_trains_and_checkpoints_keep_plain_keys(data, tmp_path):
    run = tmp_path / "nhwc"
    _train(data, run, "train.channels_last=true", "train.steps=3", "train.checkpoint_every=3")
    ckpt = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=True, map_location="cpu")
    assert not any(k.startswith("_orig_mod") for k in ckpt["generator"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["g_total"]) for r in rows if "g_total" in r)
