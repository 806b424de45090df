"""Every face of a group photo: `reenact faces`, `--face-index k`, and `--face-index all`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

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


def test_the_faces_of_one_photo_share_its_layers_and_generator(pipeline, testdata):
    """`--face-index all` builds the full image's layers (person alpha, background plate) and a
    checkpoint's generator once, not once a face (each face's layers took 1.4 s on a 3840 × 2658 photo,
    `bench/bench_large_photo.py`), and the frames are the same as with each face's own. A crop's layers
    (no --paste-back) are the face's own."""
    import itertools

    from reenact.animator import make_engine, prepare_sources
    from reenact.config import ModelConfig
    from reenact.drive import driver_stream
    from reenact.engines import EveryFace, GeneratorEngine, GeometricWarp
    from reenact.face.geometry import make_geometry
    from reenact.face.mesh import MEDIAPIPE
    from reenact.io import VideoReader
    from reenact.models.checkpoint import Checkpoint
    from reenact.models.generator import PWMGenerator

    geo, cpu, path = make_geometry("mediapipe"), torch.device("cpu"), testdata / "faces" / "group_t1.jpg"
    model = ModelConfig("geom_disp", num_levels=4, shrink=0.125, embed_dim=4, spectral_norm=False, image_size=64)
    torch.manual_seed(0)
    ckpt = Checkpoint(PWMGenerator.from_config(model).state_dict(), model, "a test", MEDIAPIPE, step=0)
    for size, ck in ((256, None), (64, ckpt)):
        sources = prepare_sources(path, read_image(path), pipeline, size, "all", geo)
        stream = driver_stream(VideoReader(testdata / "videos" / "lp_d11.mp4"), pipeline, size, geo, True)
        _, fit = next(itertools.islice(stream.items, 110, None))
        fits = [[geo.transfer(s.fit, fit, stream.reference, True)] for s in sources]
        shared = make_engine(sources, cpu, True, ck, "tiny.pt", lambda _: None)
        heads = [e if ck is None else e.head for e in shared.engines]
        assert len(heads) >= 5 and all(h.layers is heads[0].layers for h in heads)
        if ck is None:
            own = EveryFace([GeometricWarp(s, cpu, True) for s in sources])
            crops = make_engine(sources, cpu, False, None, None, lambda _: None).engines
            assert crops[1].layers is not crops[0].layers
        else:
            assert all(e.gen is shared.engines[0].gen for e in shared.engines)
            own = EveryFace([GeneratorEngine(s, cpu, True, ck, "tiny.pt") for s in sources])
        a, b = shared(fits), own(fits)
        print(f"{len(sources)} faces, {'checkpoint' if ck else 'geometric warp'}: frame changed by "
              f"{np.abs(a.astype(int) - read_image(path)).mean():.2f}, shared vs own max difference "
              f"{np.abs(a.astype(int) - b).max()}")
        assert np.array_equal(a, b)
        if ck is None:
            assert _composited_on_the_whole_frames(shared, fits) <= 1e-4


def _composited_on_the_whole_frames(every, fits) -> float:
    """Each face of ``every`` (geometric warp) composited over the frames so far as `--face-index all`
    does, reading only the window it samples (render/layers.reach), against the same on the whole
    frames (as before 2026-12-07, half of the time spent): the largest difference (RGB in [0, 1])."""
    from reenact.render.layers import composite

    frames = every.engines[0].src.expand(len(fits[0]), -1, -1, -1).clone()
    worst = 0.0
    for engine, batch in zip(every.engines, fits):
        windowed, box, _ = engine._render(batch, None, frames)
        pos, _, mirrored = engine._positions(batch, None)
        layers = engine.layers.over(frames)
        whole, _ = composite(layers, pos, box)
        whole = engine._fills(whole, box, mirrored, batch, None)
        worst = max(worst, float((windowed - whole).abs().max()))
        engine.composite(batch, frames)
    print(f"windowed vs whole frames: max difference {worst:.2e}")
    return worst


def test_a_face_moves_its_own_head_not_its_neighbours(pipeline, testdata):
    """group_t1's face 0 driven by lp_d11 frames 110-124 (a nod and a turn) with --paste-back: the
    mean change (levels of 255, over the frames) inside each other face's head (within 0.6 of its face
    heights of its centre; faces 1-4). Without the other faces' heads (render/head.Head.owned) his
    head weight reached into his neighbours' and moved them: 0.0 / 0.0 / 7.78 / 5.91 (faces 3 and 4
    beside him; face 3's hair edge and the arm beside it, which in `--face-index all` then showed as
    a bright streak beside face 3's head, frames 117-120). With them: 0.0 for all four."""
    from conftest import drive_fits

    from reenact.engines import GeometricWarp

    src, fits, drivers = drive_fits(pipeline, testdata, "group_t1.jpg", "lp_d11.mp4", range(110, 125, 2), 0)
    discs = src.others
    assert len(discs) == 4
    h, w = src.image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    change = {}
    for name, others in (("alone", None), ("with the others", discs)):
        src.others = others
        out = GeometricWarp(src, torch.device("cpu"), True)(fits, drivers).astype(int)  # (B, H, W, 3)
        diff = np.abs(out - src.image.astype(int)).mean(-1).mean(0)  # (H, W) over the frames
        change[name] = [float(diff[(xx - x) ** 2 + (yy - y) ** 2 < (0.6 * s) ** 2].mean()) for x, y, s in discs]
        print(f"{name}: mean change inside faces 1-4's heads {np.round(change[name], 2).tolist()}")
    assert max(change["alone"]) > 3.0, "the premise: without the others his head weight moves a neighbour"
    assert max(change["with the others"]) < 1.0
