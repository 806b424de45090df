"""Every face of a group photo: `reenact faces`, `--face-index k`, and `--face-index all`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import read_frames, run_cli
from media import mouth_opening
from reenact.io import read_image


@pytest.fixture(scope="module")
def group(testdata, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("group")
    photo = testdata / "faces" / "group_t1.jpg"
    res = run_cli("faces", photo, "--json", "--annotate", tmp / "faces.png")
    assert res.returncode == 0, res.stderr
    faces = json.loads(res.stdout)["faces"]
    return photo, faces, mouth_opening(testdata / "videos", tmp / "mouth.mp4"), tmp


def _change(out: np.ndarray, photo: np.ndarray, box) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return float(np.abs(out[y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1]).mean())


def test_faces_lists_five_faces_numbered_by_size(group):
    _, faces, _, tmp = group
    sizes = [f["size"] for f in faces]
    assert len(faces) >= 5 and [f["index"] for f in faces] == list(range(len(faces)))
    assert sizes == sorted(sizes, reverse=True) and min(sizes) > 60
    boxes = np.array([f["box"] for f in faces])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert min(np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]) > 80, "distinct faces"
    assert read_image(tmp / "faces.png").shape == (886, 1280, 3)


@pytest.mark.slow
def test_face_index_k_animates_face_k_and_all_moves_every_face(group):
    photo_path, faces, driver, tmp = group
    photo = read_image(photo_path)
    moved, table = {}, []
    for k in range(len(faces)):
        out = tmp / f"k{k}.mp4"
        res = run_cli("drive", photo_path, driver, "-o", out, "--paste-back", "--face-index", str(k))
        assert res.returncode == 0, res.stderr
        last = read_frames(out)[-1]
        change = [_change(last, photo, f["box"]) for f in faces]
        moved[k] = int(np.argmax(change))
        table.append(_change(last, photo, (0, 650, 1280, 886)))
        print(f"--face-index {k}: change per face box {np.round(change, 1).tolist()}")
        assert moved[k] == k and change[k] > 4 * max(c for i, c in enumerate(change) if i != k)
    res = run_cli("drive", photo_path, driver, "-o", tmp / "all.mp4", "--face-index", "all")
    assert res.returncode == 0 and "animating 5 faces" in res.stderr, res.stderr
    last = read_frames(tmp / "all.mp4")[-1]
    change = [_change(last, photo, f["box"]) for f in faces]
    print(f"--face-index all: change per face box {np.round(change, 1).tolist()}")
    assert last.shape == photo.shape and min(change) > 3
    # The table, far from every face, stays as it was: no more change than H.264 leaves with one face.
    print(f"table region: {_change(last, photo, (0, 650, 1280, 886)):.2f} (one face animated: {max(table):.2f})")
    assert _change(last, photo, (0, 650, 1280, 886)) <= max(table) + 0.2
