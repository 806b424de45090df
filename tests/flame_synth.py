"""A realistic synthetic FLAME 2020 ``generic_model.pkl`` for tests (the real one needs registration).

The template and triangles are FLAME's (``reference/flame_assets/head_template.obj``, read from
../shared, never copied); shape/expression blendshapes are smooth random functions of position,
pose correctives small, the J_regressor averages vertex groups near the neck, jaw and eyes, and the
kinematic tree is FLAME's (root -> neck -> jaw, left eye, right eye). The arrays are stored as the
real file stores them: chumpy ``Ch`` objects (pickled under the name ``chumpy.ch.Ch`` without chumpy
being installed) and a scipy sparse J_regressor.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts, faces = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts and parts[0] == "f":
            faces.append([int(p.split("/")[0]) - 1 for p in parts[1:4]])
    return np.array(verts, np.float64), np.array(faces, np.int64)


def synthetic_arrays(template: np.ndarray, faces: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = template
    lo, hi = v.min(0), v.max(0)
    u = (v - lo) / (hi - lo)  # (V, 3) in [0, 1]
    n_comp = 400
    freq = rng.uniform(0.5, 3.0, (n_comp, 3, 3))
    phase = rng.uniform(0, 2 * np.pi, (n_comp, 3))
    amp = np.where(np.arange(n_comp) < 300, 2e-3, 1e-3) / np.sqrt(1 + np.arange(n_comp) % 100)
    shapedirs = np.empty((len(v), 3, n_comp))
    for k in range(3):
        shapedirs[:, k, :] = amp * np.sin(np.einsum("vd,ld->vl", u, freq[:, k]) + phase[:, k])
    mouth = np.exp(-(((u[:, 1] - 0.3) / 0.15) ** 2))[:, None]  # expressions act on the lower face
    shapedirs[:, :, 300:] *= mouth[:, :, None]
    posedirs = 1e-4 * np.sin(np.einsum("vd,ld->vl", u, rng.uniform(0.5, 2, (36, 3))))[:, None, :].repeat(3, 1)
    groups = {
        0: u[:, 1] < 0.08,  # root: base of the neck
        1: (u[:, 1] > 0.08) & (u[:, 1] < 0.2),  # neck
        2: (u[:, 1] > 0.3) & (u[:, 1] < 0.45) & (u[:, 2] < 0.5),  # jaw hinge, behind the face
        3: (u[:, 1] > 0.55) & (u[:, 1] < 0.65) & (u[:, 0] > 0.55) & (u[:, 2] > 0.8),  # left eye
        4: (u[:, 1] > 0.55) & (u[:, 1] < 0.65) & (u[:, 0] < 0.45) & (u[:, 2] > 0.8),  # right eye
    }
    j_reg = np.zeros((5, len(v)))
    for j, sel in groups.items():
        assert sel.sum() > 0, j
        j_reg[j, sel] = 1.0 / sel.sum()
    joints = j_reg @ v
    d = np.linalg.norm(v[:, None] - joints[None], axis=2)  # (V, 5)
    logits = -d / (0.25 * np.linalg.norm(hi - lo))
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64)
    return {"v_template": v, "f": faces.astype(np.uint32), "shapedirs": shapedirs, "posedirs": posedirs,
            "J_regressor": j_reg, "weights": weights, "kintree_table": kintree}


def _fake_chumpy():
    """A stand-in 'chumpy.ch.Ch' class that pickles like the real one: copyreg + state dict with 'x'."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch, chumpy.ch = Ch, ch
    return chumpy, ch, Ch


def write_generic_model(path: Path, arrays: dict[str, np.ndarray], protocol: int = 2) -> None:
    """Pickle ``arrays`` the way FLAME 2020 stores them (Ch objects, sparse J_regressor)."""
    import scipy.sparse

    chumpy, ch, Ch = _fake_chumpy()
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch
    try:
        data = dict(arrays)
        for key in ("v_template", "shapedirs", "weights"):
            data[key] = Ch(arrays[key])
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        data["bs_style"], data["bs_type"] = "lbs", "lrotmin"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = m


def write_smplx_model_dir(folder: Path, arrays: dict[str, np.ndarray], embedding: dict) -> None:
    """The same model as plain numpy, in the layout smplx's FLAME layer reads (test reference only)."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = {k: np.asarray(v) for k, v in arrays.items()}
    (folder / "FLAME_NEUTRAL.pkl").write_bytes(pickle.dumps(plain))
    static = {"lmk_face_idx": np.asarray(embedding["static_lmk_faces_idx"]),
              "lmk_b_coords": np.asarray(embedding["static_lmk_bary_coords"])}
    (folder / "flame_static_embedding.pkl").write_bytes(pickle.dumps(static))


def load_synthetic(assets: Path):
    """(FlameModel, FlameLandmarks) of the synthetic model over ``assets`` (reference/flame_assets),
    read back through the real file format (a temporary ``generic_model.pkl``)."""
    import tempfile

    from reenact.face.flame import FlameLandmarks, FlameModel
    from reenact.face.safe_pickle import load_object_npy

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generic_model.pkl"
        write_generic_model(path, synthetic_arrays(*read_obj(assets / "head_template.obj")))
        model = FlameModel.from_file(path)
    return model, FlameLandmarks(load_object_npy(assets / "landmark_embedding.npy"), model.faces)


def landmark_clip(model, lmk, seed: int, n: int = 8, size: int = 256) -> dict:
    """The fitter's test problem: one identity (shape ~ N(0, 0.5²)), per-frame expression ~ N(0, 0.5²),
    a smooth head turn (pitch ±9°, yaw to 20°, roll ±6°) with jaw opening, an orthographic camera
    (scale 8: the landmarks span about 146 px of the ``size`` crop), and 1 px Gaussian noise per
    coordinate. Returns the true parameters, ``clean`` and ``noisy`` (n, 68, 2) crop-pixel landmarks."""
    import torch

    from reenact.face.flame_fit import project

    g = torch.Generator().manual_seed(seed)
    shape = torch.randn(1, model.n_shape, generator=g) * 0.5
    expr = torch.randn(n, model.n_exp, generator=g) * 0.5
    t = torch.linspace(0, 1, n)[:, None]
    pose = torch.zeros(n, 5, 3)
    pose[:, 0] = torch.cat([0.15 * torch.sin(3 * t), 0.35 * torch.sin(2 * t + 0.5), 0.1 * torch.cos(4 * t)], 1)
    pose[:, 2, 0] = (0.1 + 0.1 * torch.sin(5 * t))[:, 0]
    cam = torch.stack([torch.full((n,), 8.0), 0.01 * torch.sin(t[:, 0]), -0.02 + 0.01 * torch.cos(t[:, 0])], 1)
    with torch.no_grad():
        verts, _ = model(shape.expand(n, -1), expr, pose)
        clean = project(lmk(verts, pose), cam, size)[..., :2]
    noisy = clean + torch.randn(clean.shape, generator=g)
    return {"shape": shape, "expression": expr, "pose": pose, "cam": cam, "clean": clean, "noisy": noisy}


def pose_error_deg(a, b):
    """Geodesic angle (degrees) between axis-angle rotations a and b, (..., 3) each."""
    import torch

    from reenact.face.flame import rodrigues

    r = rodrigues(a) @ rodrigues(b).transpose(-1, -2)
    cos = ((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))
