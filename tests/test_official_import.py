"""Official checkpoint files: import through the CLI, parity after the round trip, drive with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import read_frames, run_cli, user_lines
from test_models_golden import GOLDEN, fake_official
from reenact.models import checkpoint


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    """Fake release files with the official key names, shapes and file structure (official_pwm.md §8)."""
    tmp = tmp_path_factory.mktemp("official")
    files = {}
    disc = fake_official("discriminator")
    for guidance in ("geom_disp", "neural_codes"):
        files[guidance] = tmp / f"PWM_{guidance}.pth"
        torch.save({"generator": fake_official(guidance), "discriminator": disc, "global_step": 1234}, files[guidance])
    return files


@pytest.fixture(scope="module")
def converted(official_files, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("converted")
    out = {}
    for guidance, path in official_files.items():
        out[guidance] = tmp / f"{guidance}.pt"
        res = run_cli("weights", "import-official", path, "-o", out[guidance])
        assert res.returncode == 0, res.stderr
        out[guidance + "_log"] = " ".join(res.stderr.split())
    return out


def test_import_reports_placed_folded_and_dropped(converted):
    log = converted["geom_disp_log"]
    assert "guidance geom_disp" in log and "61 spectral-norm convs folded" in log and "step 1234" in log
    assert "discriminator converted" in log
    assert "unused by the release's forward" in log and "fixed Gaussian anti-alias kernel" in log
    assert "FLAME triangles" in log
    ckpt = checkpoint.Checkpoint.load(converted["neural_codes"])
    assert ckpt.model.warp == "official" and ckpt.topology == "flame5023" and ckpt.n_vertices == 5023
    assert ckpt.generator["codes"].shape == (5023, 16) and ckpt.model == checkpoint.official_model("neural_codes")


def test_converted_file_reproduces_the_golden_output(converted):
    gen = checkpoint.Checkpoint.load(converted["geom_disp"]).build_generator(torch.device("cpu"))
    z = np.load(GOLDEN / "golden_geom_disp.npz")
    with torch.no_grad():
        out = gen(torch.from_numpy(z["img_s"]), disp=torch.from_numpy(z["disp_map"].astype(np.float32)))
    assert np.abs(out.out_img[:1].numpy() - z["out_img"]).max() <= 5e-5


def test_import_refuses_existing_output_and_code_carrying_pickles(official_files, tmp_path):
    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp_path / 'pwned'}",)

    evil = tmp_path / "PWM_evil.pth"
    torch.save({"generator": Payload()}, evil)
    res = run_cli("weights", "import-official", evil, "-o", tmp_path / "o.pt")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert any("PWM_evil.pth" in ln for ln in user_lines(res.stderr))
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "o.pt").exists()
    existing = tmp_path / "keep.pt"
    existing.write_bytes(b"mine")
    res = run_cli("weights", "import-official", official_files["geom_disp"], "-o", existing)
    assert res.returncode == 1 and existing.read_bytes() == b"mine"


def test_drive_with_converted_geom_disp_checkpoint(converted, testdata, tmp_path):
    out = tmp_path / "gen.mp4"
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4", "-o", out,
                  "--checkpoint", converted["geom_disp"], "--max-frames", "3", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stderr.split())
    assert "trained on flame5023 displacements" in text and "geometric warp" not in text
    frames = read_frames(out)
    assert len(frames) == 3 and frames[0].shape == (256, 256, 3)


def test_drive_refuses_codes_without_flame_and_raw_official_files(converted, official_files, testdata, tmp_path):
    args = (testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4", "-o", tmp_path / "o.mp4")
    res = run_cli("drive", *args, "--checkpoint", converted["neural_codes"])
    assert res.returncode == 1 and "--face-model flame" in " ".join(res.stderr.split())
    res = run_cli("drive", *args, "--checkpoint", official_files["geom_disp"])
    assert res.returncode == 1 and "import-official" in " ".join(res.stderr.split())
    assert not (tmp_path / "o.mp4").exists()
