"""FLAME backend: safe loading of chumpy-era pickles and DECA's embedding; LBS parity with smplx."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from conftest import SHARED
from flame_synth import read_obj, synthetic_arrays, write_generic_model, write_smplx_model_dir
from reenact.face.flame import FlameModel
from reenact.face.safe_pickle import UnsafePickleError, load_object_npy, load_pickle, to_numpy

ASSETS = SHARED / "reference" / "flame_assets"


@pytest.fixture(scope="module")
def assets():
    if not ASSETS.is_dir():
        pytest.skip(f"FLAME test assets not found: {ASSETS}")
    template, faces = read_obj(ASSETS / "head_template.obj")
    return synthetic_arrays(template, faces), load_object_npy(ASSETS / "landmark_embedding.npy")


@pytest.fixture(scope="module")
def model_file(assets, tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_generic_model(path, assets[0])
    return path


def test_synthetic_file_is_stored_like_the_real_one(model_file):
    import pickletools

    globals_ = {arg for op, arg, _ in pickletools.genops(model_file.read_bytes()) if op.name == "GLOBAL"}
    assert "chumpy.ch Ch" in globals_ and any("csc_matrix" in g for g in globals_)


@pytest.mark.parametrize("protocol", [0, 2])
def test_generic_model_loads_without_chumpy(assets, tmp_path, protocol):
    import sys

    path = tmp_path / "generic_model.pkl"
    write_generic_model(path, assets[0], protocol=protocol)
    data = load_pickle(path)
    assert "chumpy" not in sys.modules
    for key in ("v_template", "shapedirs", "weights", "J_regressor", "posedirs", "f", "kintree_table"):
        assert np.allclose(to_numpy(data[key]), assets[0][key]), key
    assert to_numpy(data["shapedirs"]).shape == (5023, 3, 400)


def test_real_landmark_embedding_loads_through_the_allow_list(assets):
    emb = assets[1]
    assert to_numpy(emb["dynamic_lmk_faces_idx"]).shape == (79, 17)
    assert to_numpy(emb["full_lmk_bary_coords"]).shape == (1, 68, 3)
    assert isinstance(emb["dynamic_lmk_bary_coords"], torch.Tensor)


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": Evil()}))
    with pytest.raises(UnsafePickleError, match="os.system|posix.system|not on the allow-list"):
        load_pickle(bad)
    assert not marker.exists()
    npy = tmp_path / "landmark_embedding.npy"
    np.save(npy, np.array({"x": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError):
        load_object_npy(npy)
    assert not marker.exists()


def test_lbs_matches_smplx(assets, model_file, tmp_path):
    smplx = pytest.importorskip("smplx")
    arrays, emb = assets
    write_smplx_model_dir(tmp_path / "smplx", arrays, emb)
    b = 4
    ref = smplx.FLAME(model_path=str(tmp_path / "smplx"), gender="neutral", num_betas=100,
                      num_expression_coeffs=50, batch_size=b, use_face_contour=False, ext="pkl")
    ours = FlameModel.from_file(model_file, n_shape=100, n_exp=50)
    g = torch.Generator().manual_seed(0)
    shape, expr = torch.randn(b, 100, generator=g), torch.randn(b, 50, generator=g)
    pose = torch.randn(b, 5, 3, generator=g) * 0.3
    with torch.no_grad():
        out = ref(betas=shape, expression=expr, global_orient=pose[:, 0], neck_pose=pose[:, 1],
                  jaw_pose=pose[:, 2], leye_pose=pose[:, 3], reye_pose=pose[:, 4])
        verts, joints = ours(shape, expr, pose)
    dv = (verts - out.vertices).abs().max().item()
    dj = (joints - out.joints[:, :5]).abs().max().item()
    print(f"FLAME vs smplx: max |dv| {dv:.2e}, max |dj| {dj:.2e} (vertex extent {np.ptp(arrays['v_template'], 0).max():.3f})")
    assert dv < 1e-5 and dj < 1e-5
    assert (verts - ours.v_template).abs().max() > 0.01, "the parameters actually move the mesh"


def _barycentric_reference(verts: np.ndarray, faces: np.ndarray, idx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return np.einsum("lk,lkd->ld", bary, verts[faces[idx]])


def test_68_landmarks_on_the_template(assets, model_file):
    from reenact.face.flame import FlameLandmarks

    arrays, emb = assets
    model = FlameModel.from_file(model_file)
    lmk = FlameLandmarks(emb, model.faces)
    v = model.v_template[None].double()
    static = lmk.static(v.float())[0].numpy()
    ref = _barycentric_reference(arrays["v_template"], arrays["f"].astype(np.int64),
                                 to_numpy(emb["full_lmk_faces_idx"])[0], to_numpy(emb["full_lmk_bary_coords"])[0])
    assert np.abs(static - ref).max() < 1e-5
    zero = torch.zeros(1, 5, 3)
    dyn = lmk(v.float(), zero)[0].numpy()
    jaw_ref = _barycentric_reference(arrays["v_template"], arrays["f"].astype(np.int64),
                                     to_numpy(emb["dynamic_lmk_faces_idx"])[0], to_numpy(emb["dynamic_lmk_bary_coords"])[0])
    assert np.abs(dyn[:17] - jaw_ref).max() < 1e-5 and np.abs(dyn[17:] - static[17:]).max() < 1e-5
    turned = zero.clone()
    turned[0, 0, 1] = np.radians(-20)  # yaw -20 degrees at the root
    assert int(lmk.contour_rows(turned)) == 59 and int(lmk.contour_rows(-turned)) == 20


def _fit_clips(model, lmk, seeds):
    """Fit landmark_clip(seed) for each seed: (global-pose error (n,) deg, camera-scale error (n,), residual (n,))."""
    from flame_synth import landmark_clip, pose_error_deg
    from reenact.face.flame_fit import FlameFitter

    out = []
    for seed in seeds:
        clip = landmark_clip(model, lmk, seed)
        fit = FlameFitter(model, lmk).fit(clip["noisy"])
        out.append((pose_error_deg(fit.pose[:, 0], clip["pose"][:, 0]), (fit.cam[:, 0] / clip["cam"][:, 0] - 1).abs(),
                    fit.residual))
        print(f"seed {seed}: global pose error max {out[-1][0].max():.2f} / mean {out[-1][0].mean():.2f} deg, "
              f"scale error max {100 * out[-1][1].max():.2f} %, residual max {fit.residual.max():.2f} px")
    return [torch.cat(x) for x in zip(*out)]


def test_fitter_recovers_pose_and_camera_from_noisy_landmarks(assets, model_file):
    from flame_synth import landmark_clip
    from reenact.face.flame import FlameLandmarks
    from reenact.face.flame_fit import FlameFitter

    model = FlameModel.from_file(model_file)
    lmk = FlameLandmarks(assets[1], model.faces)
    pose_err, scale_err, residual = _fit_clips(model, lmk, seeds=(1, 2, 3, 4))
    # Issue 4's bar is pose within 1 deg and scale within 1 % on every frame. On this synthetic model that
    # is beyond what the data can tell (bench/flame_fit_bound.py): the Laplace posterior std of a frame's
    # global pose, under the prior the clip was drawn from, is 0.62-0.65 deg in pitch and yaw and 0.99 deg
    # in roll; and the minimum of the fitter's own objective, found by Levenberg-Marquardt from the truth
    # and from the fitter's answer alike, is 1.08-1.86 deg off at worst. The smooth random blendshapes
    # can mimic small rotations on 68 landmarks. Measured here (seeds 1-4, 8 frames each): pose max
    # 0.62-1.87, mean 0.42-1.20 deg; scale 0.44-1.82 %; residual <= 1.41 px. The bounds below are
    # what this model supports; test_fitter_meets_the_issue_bar_on_real_flame checks the issue's bar
    # on the real FLAME model.
    assert residual.max() <= 1.5
    assert pose_err.mean() < 1.0 and pose_err.max() < 2.5 and scale_err.max() < 0.025
    clip = landmark_clip(model, lmk, 1)
    assert torch.equal(FlameFitter(model, lmk).fit(clip["noisy"]).pose, FlameFitter(model, lmk).fit(clip["noisy"]).pose), \
        "deterministic for a given seed"


@pytest.mark.flame_real
def test_fitter_meets_the_issue_bar_on_real_flame():
    """Issue 4's bar on the real FLAME 2020 model: pose within 1 deg, scale within 1 %, residual <= 1.5 px."""
    from reenact.errors import MissingWeightsError
    from reenact.face.flame import FlameLandmarks
    from reenact.face.flame_backend import resolve_flame

    try:
        model_path, emb_path = resolve_flame(None)
    except MissingWeightsError as exc:
        pytest.skip(f"real FLAME files not installed: {str(exc).split('. Looked in')[0]}")
    model = FlameModel.from_file(model_path)
    pose_err, scale_err, residual = _fit_clips(model, FlameLandmarks(load_object_npy(emb_path), model.faces), (1, 2, 3, 4))
    assert pose_err.max() < 1.0 and scale_err.max() < 0.01 and residual.max() <= 1.5


def test_drive_with_flame_end_to_end(assets, model_file, testdata, tmp_path):
    import shutil

    from conftest import read_frames, run_cli
    from PIL import Image

    flame_dir = tmp_path / "flame"
    flame_dir.mkdir()
    shutil.copy(model_file, flame_dir / "generic_model.pkl")
    shutil.copy(ASSETS / "landmark_embedding.npy", flame_dir / "landmark_embedding.npy")
    video = testdata / "videos" / "single_face.mp4"
    Image.fromarray(read_frames(video)[0]).save(tmp_path / "src.png")
    out = tmp_path / "flame.mp4"
    res = run_cli("drive", tmp_path / "src.png", video, "-o", out, "--face-model", "flame", "--flame-dir", flame_dir,
                  "--paste-back", "--max-frames", "40")  # of 72: the head turns from frame 30 on
    assert res.returncode == 0, res.stderr
    frames = read_frames(out)
    assert len(frames) == 40 and frames[0].shape == (360, 640, 3)
    first = np.asarray(Image.open(tmp_path / "src.png"), int)
    moving = max(np.abs(f.astype(int) - first).mean() for f in frames[30:])
    assert moving > 1.0, "the face moves"


def test_missing_flame_files_name_both_files_and_the_registration_site(tmp_path, monkeypatch, testdata):
    from conftest import run_cli, user_lines

    monkeypatch.chdir(tmp_path)
    res = run_cli("drive", testdata / "faces" / "lp_s6.jpg", testdata / "videos" / "single_face.mp4",
                  "-o", tmp_path / "o.mp4", "--face-model", "flame", "--flame-dir", tmp_path / "nothing",
                  env={"XDG_CACHE_HOME": str(tmp_path), "REENACT_WEIGHTS": str(tmp_path / "w")})
    line = " ".join(ln for ln in user_lines(res.stderr) if ln.startswith("error:"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "generic_model.pkl" in line and "landmark_embedding.npy" in line and "flame.is.tue.mpg.de" in line
    assert str(tmp_path / "nothing") in line


def test_flip_map_is_an_involution_on_the_real_template(assets):
    from reenact.face.mesh import flip_map

    template = assets[0]["v_template"]
    flip = flip_map(template)
    mirrored = template[flip] * [-1, 1, 1]
    assert np.abs(mirrored - template).max() < 1e-3
    assert (flip[flip] == np.arange(len(flip))).mean() > 0.99
    assert (flip != np.arange(len(flip))).mean() > 0.9, "most vertices have a partner on the other side"


@pytest.mark.flame_real
def test_real_flame_files_load(tmp_path):
    """Runs only where the user's real FLAME files are installed (``reenact weights`` shows where)."""
    from reenact.errors import MissingWeightsError
    from reenact.face.flame_backend import resolve_flame

    try:
        model_path, emb_path = resolve_flame(None)
    except MissingWeightsError as exc:
        pytest.skip(f"real FLAME files not installed: {str(exc).split('. Looked in')[0]}")
    model = FlameModel.from_file(model_path)
    assert model.v_template.shape == (5023, 3) and model.faces.shape == (9976, 3)
    assert load_object_npy(emb_path)["full_lmk_faces_idx"].shape == (1, 68)
