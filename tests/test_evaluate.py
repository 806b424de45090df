"""`reenact evaluate` end to end on the three face clips of the test material (issue 14)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_frames, run_cli, user_lines

pytestmark = pytest.mark.slow
CLIPS = ("lp_d11", "lp_d18", "single_face")
STORED = {"lp_d11": 225, "lp_d18": 216, "single_face": 72}  # frames preprocess keeps of each clip
EVERY = "8"  # score every 8th frame (the default, 1, scores all; the test needs fewer)


def scored(clip: str) -> int:
    return len(range(0, STORED[clip], int(EVERY)))


@pytest.fixture(scope="module")
def data(testdata, tmp_path_factory) -> Path:
    """The three face clips preprocessed, every clip its own identity and in the test split."""
    root = tmp_path_factory.mktemp("evaluate")
    split = root / "split.csv"
    split.write_text("identity,split\n" + "".join(f"{c},test\n" for c in CLIPS))
    res = run_cli("preprocess", *(testdata / "videos" / f"{c}.mp4" for c in CLIPS), "--out", root / "data",
                  "--identity-from", "none", "--split-csv", split)
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "data"


def _evaluate(data: Path, out: Path, *args) -> dict:
    res = run_cli("evaluate", data, "--out", out, "--every", EVERY, "--device", "cpu", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def first(data) -> tuple[Path, dict]:
    out = data.parent / "eval"
    return out, _evaluate(data, out)


def test_table_has_both_protocols_and_the_warp_beats_copying_on_akd(first):
    out, r = first
    print("same:", {row: {k: v for k, v in x.items() if k in ("fid", "csim", "akd", "apd", "aed")} for row, x in r["same"].items()})
    print("cross:", {row: {k: v for k, v in x.items() if k in ("fid", "csim", "apd", "aed")} for row, x in r["cross"].items()})
    for row in ("copy", "warp"):
        assert all(r["same"][row][m] is not None for m in ("fid", "csim", "akd", "apd", "aed")), row
        assert all(r["cross"][row][m] is not None for m in ("fid", "csim", "apd", "aed")) and r["cross"][row]["akd"] is None
        assert r["same"][row]["frames"] == sum(map(scored, CLIPS)) == 29 + 27 + 9
    assert r["same"]["warp"]["akd"] < 0.5 * r["same"]["copy"]["akd"]
    assert r["same"]["warp"]["apd"] < r["same"]["copy"]["apd"] and r["cross"]["warp"]["aed"] < r["cross"]["copy"]["aed"]
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for label in ("NVIDIA TF-Inception", "dlib ResNet v1 (offline fallback", "MediaPipe-68 (fallback",
                  "MediaPipe pose + 52 blendshapes (fallback", "biased upward"):
        assert label in md and label in page, label
    assert page.count("<svg") >= 7 and page.count("data:image/jpeg") >= 6 * 4 * 4  # 6 strips of 4 frames x 4 columns
    assert "src='http" not in page and "href='http" not in page  # self-contained


def test_the_per_frame_csv_averages_to_the_reported_values(first):
    out, r = first
    rows = list(csv.DictReader(open(out / "per_frame.csv")))
    for protocol in ("same", "cross"):
        for row in ("copy", "warp"):
            mine = [x for x in rows if x["protocol"] == protocol and x["row"] == row]
            assert len(mine) == r[protocol][row]["frames"]
            for m in ("csim", "akd", "apd", "aed"):
                values = [float(x[m]) for x in mine if x.get(m)]
                if r[protocol][row][m] is None:
                    assert not values
                    continue
                assert len(values) == r[protocol][row]["details"][m]["frames"]
                assert np.mean(values) == pytest.approx(r[protocol][row][m], rel=1e-12), (protocol, row, m)


def test_a_second_run_drives_and_extracts_nothing_and_agrees(first, data):
    out, r = first
    assert r["cache"]["driven_miss"] == 6 and r["cache"]["driven_hit"] == 0  # warp x 3 pairs x 2 protocols
    again = _evaluate(data, out)
    cache = again["cache"]
    assert cache["driven_miss"] == 0 and cache["features_miss"] == 0 and cache["fid_miss"] == 0, cache
    assert cache["driven_hit"] == 6 and cache["features_hit"] > 0
    assert again["same"] == r["same"] and again["cross"] == r["cross"]


def test_other_tools_outputs_are_rows_in_crops_or_full_frames(first, data, testdata, tmp_path):
    """A folder of face crops (here the ground-truth crops themselves: an oracle) and a `drive --paste-back`
    output (full 640x360 frames, cut with the stored boxes) are scored as rows; a third framing is refused."""
    from reenact.data.clips import ClipReader
    from reenact.io.image import write_image

    out, r = first
    oracle = tmp_path / "oracle"
    for clip in ("lp_d18", "single_face"):  # not lp_d11: a row with outputs for 2 of 3 pairs
        reader = ClipReader(data / "clips" / clip)
        (oracle / clip).mkdir(parents=True)
        for k in range(len(reader)):  # the stored JPEG bytes, unchanged
            (oracle / clip / f"{k:05d}.jpg").write_bytes(reader.encoded(k))
    frame0 = tmp_path / "frame0.png"
    write_image(frame0, read_frames(testdata / "videos" / "single_face.mp4")[0])
    pasted = tmp_path / "pasted"
    res = run_cli("drive", frame0, testdata / "videos" / "single_face.mp4", "-o", pasted / "single_face.mp4",
                  "--paste-back", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-2000:]
    got = _evaluate(data, out, "--protocol", "same", "--method", f"oracle={oracle}", "--method", f"paste={pasted}")
    same = got["same"]
    print({k: {m: same[k][m] for m in ("fid", "csim", "akd", "apd", "aed")} for k in same})
    assert same["oracle"]["akd"] < 0.05 and same["oracle"]["csim"] > 0.999 and abs(same["oracle"]["fid"]) < 1e-3
    assert same["oracle"]["pairs"] == 2 and any("oracle has outputs for 2 of 3" in n for n in got["notes"])
    per_clip = {(x["row"], x["pair"]): x for x in csv.DictReader(open(out / "per_clip.csv")) if x["protocol"] == "same"}
    paste_akd, copy_akd = float(per_clip["paste", "single_face"]["akd"]), float(per_clip["copy", "single_face"]["akd"])
    print(f"single_face AKD: paste-back drive {paste_akd:.2f}, copy {copy_akd:.2f}, warp {float(per_clip['warp', 'single_face']['akd']):.2f}")
    assert paste_akd < copy_akd and same["paste"]["frames"] == scored("single_face")
    assert got["cache"]["driven_miss"] == 0  # copy and warp came from the cache

    small = tmp_path / "small"
    small.mkdir()
    import av

    with av.open(str(small / "single_face.mp4"), "w") as c:  # 320x180: neither a crop nor the 640x360 frame
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        for _ in range(72):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((180, 320, 3), np.uint8), format="rgb24")))
        c.mux(s.encode())
    res = run_cli("evaluate", data, "--out", out, "--every", EVERY, "--device", "cpu", "--protocol", "same",
                  "--method", f"small={small}")
    lines = user_lines(res.stderr)
    assert res.returncode == 1 and len(lines) == 1 and "different framing" in lines[0], res.stderr[-2000:]


def test_bad_evaluate_inputs_give_one_line_and_exit_1(data, tmp_path):
    for args, needle in ((("--out", tmp_path / "e", "--split", "train"), "no clips in the train split"),
                         (("--out", tmp_path / "e", "--method", "copy=" + str(tmp_path)), "built-in row"),
                         (("--out", tmp_path / "e", "--method", "x"), "NAME=FOLDER"),
                         (("--out", tmp_path / "e", "--checkpoint", tmp_path / "none.pt"), "not found")):
        res = run_cli("evaluate", data, *args)
        lines = user_lines(res.stderr)
        assert res.returncode == 1 and len(lines) == 1 and needle in lines[0], (args, res.stderr[-1500:])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    res = run_cli("evaluate", data, "--out", tmp_path / "mine")
    assert res.returncode == 1 and "did not write" in res.stderr and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_checkpoint_is_a_row_named_by_its_file(first, data, tmp_path):
    """A (random) tiny 64² geom_disp generator: driven at its own size, scored at the data's 256². On one
    clip's same-identity pair the copy and warp rows come from the first run's cache."""
    import torch

    from reenact.face.mesh import MEDIAPIPE
    from reenact.models import checkpoint
    from reenact.models.generator import PWMGenerator

    from reenact.config import ModelConfig

    model = ModelConfig("geom_disp", num_levels=4, shrink=0.125, embed_dim=4, spectral_norm=False, image_size=64)
    torch.manual_seed(0)
    gen = PWMGenerator.from_config(model)
    path = tmp_path / "tiny_random.pt"
    checkpoint.Checkpoint(gen.state_dict(), model, "a test", MEDIAPIPE, step=0).save(path)
    out, _ = first
    got = _evaluate(data, out, "--protocol", "same", "--clips", "1", "--checkpoint", path)
    row = got["same"]["tiny_random"]
    assert got["rows"]["tiny_random"]["kind"] == "model" and row["frames"] == scored("lp_d11")
    assert row["fid"] is not None and row["fid"] > got["same"]["warp"]["fid"]  # an untrained network
    assert got["cache"]["driven_miss"] == 1 and got["cache"]["driven_hit"] == 1  # only the checkpoint drove
