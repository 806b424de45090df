"""``--face-model flame``: FLAME fits per frame, the authors' motion transfer, FLAME-topology meshes.

Per frame, MediaPipe's 68 landmarks (in the crop) are fitted with :class:`FlameFitter`: the source
and the driver's first face with the full two-stage fit; later driver frames warm-start from the
previous one with the identity fixed (one identity per clip). Driver codes are smoothed with the
authors' One-Euro filter (min cutoff 0.5, beta 0, t = frame index).

Transfer (official_pwm.md §6, the authors' demo): the source's shape with the driver's expression,
global and jaw pose and camera. Relative (default): the driver's changes since its reference frame
are applied to the source's own codes: ψ = ψ_s + (ψ_d - ψ_ref), R = R_d R_ref^T R_s, jaw_s + (jaw_d -
jaw_ref), s = s_s·s_d/s_ref, t = t_s + (t_d - t_ref).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reenact import weights
from reenact.errors import MissingWeightsError
from reenact.face.crop import apply_affine
from reenact.face.fit import FaceFit
from reenact.face.flame import FlameLandmarks, FlameModel, rodrigues
from reenact.face.flame_fit import FlameFit, FlameFitter, project
from reenact.face.landmarks68 import mediapipe_to_68
from reenact.face.mediapipe_backend import Detection, pose_from_matrix
from reenact.face.mesh import register_topology
from reenact.face.safe_pickle import load_object_npy
from reenact.face.smoothing import OneEuro

TOPOLOGY = "flame5023"
FILES = (("flame_model", "generic_model.pkl"), ("flame_landmark_embedding", "landmark_embedding.npy"))


def resolve_flame(flame_dir: str | Path | None, weights_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Paths of generic_model.pkl and landmark_embedding.npy; ``--flame-dir`` is searched first."""
    dirs = ([Path(flame_dir)] if flame_dir else []) + weights.search_dirs(weights_dir)
    found = {name: next((d / name for d in dirs if (d / name).is_file()), None) for _, name in FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MissingWeightsError(
            f"--face-model flame needs generic_model.pkl and landmark_embedding.npy; missing: {', '.join(missing)}. "
            f"Looked in: {', '.join(str(d) for d in dirs)}. Register at https://flame.is.tue.mpg.de and download "
            f"FLAME 2020 (generic_model.pkl); landmark_embedding.npy is in DECA's data/ folder "
            f"(https://github.com/YadiraF/DECA). Put both in one folder and pass --flame-dir.")
    return found["generic_model.pkl"], found["landmark_embedding.npy"]


def flame_files_found(flame_dir: str | Path | None, weights_dir: str | Path | None = None) -> bool:
    try:
        resolve_flame(flame_dir, weights_dir)
    except MissingWeightsError:
        return False
    return True


def _rotvec(r: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(r).as_rotvec()


class FlameGeometry:
    name, topology = "flame", TOPOLOGY

    def __init__(self, model: FlameModel, landmarks: FlameLandmarks, size: int = 256):
        register_topology(TOPOLOGY, model.faces.cpu().numpy())
        self.model, self.lmk, self.size = model.eval(), landmarks, size
        self.fitter = FlameFitter(model, landmarks, size)
        self.tracker = FlameFitter(model, landmarks, size, rigid_steps=0, steps=60)

    @classmethod
    def from_dirs(cls, flame_dir=None, weights_dir=None, size: int = 256) -> "FlameGeometry":
        model_path, emb_path = resolve_flame(flame_dir, weights_dir)
        model = FlameModel.from_file(model_path)
        return cls(model, FlameLandmarks(load_object_npy(emb_path), model.faces), size)

    def _target(self, det: Detection, affine: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(apply_affine(affine, mediapipe_to_68(det.points)), dtype=torch.float32)[None]

    @torch.no_grad()
    def _facefit(self, p: dict[str, np.ndarray]) -> FaceFit:
        shape, expr, pose, cam = (torch.as_tensor(p[k], dtype=torch.float32)[None] for k in ("shape", "expression", "pose", "cam"))
        verts, _ = self.model(shape, expr, pose)
        pix = project(verts, cam, self.size)[0]
        lm = project(self.lmk(verts, pose), cam, self.size)[0, :, :2]
        rot = rodrigues(pose[0, 0]).numpy().astype(np.float64)
        mat = np.eye(4)
        mat[:3, :3] = rot
        flip = np.diag([1.0, -1.0, -1.0])
        s = float(cam[0, 0]) * self.size / 2
        return FaceFit(vertices=pix.numpy(), topology=TOPOLOGY, pose=pose_from_matrix(mat), expression=p["expression"],
                       identity=p["shape"], landmarks68=lm.numpy(), rotation=flip @ rot @ flip, scale=s,
                       translation=project(torch.zeros(1, 1, 3), cam, self.size)[0, 0].numpy(), canonical=verts[0].numpy(), params=p)

    @staticmethod
    def _params(fit: FlameFit, i: int = -1) -> dict[str, np.ndarray]:
        return {"shape": fit.shape[0].numpy(), "expression": fit.expression[i].numpy(),
                "pose": fit.pose[i].numpy(), "cam": fit.cam[i].numpy()}

    def fit_source(self, det: Detection, affine: np.ndarray) -> FaceFit:
        return self._facefit(self._params(self.fitter.fit(self._target(det, affine))))

    def driver_fitter(self, smooth: bool):
        """(detection, affine, t) -> FaceFit for one driver clip: identity from the first frame, warm starts."""
        state: dict = {"prev": None}
        euro = OneEuro(min_cutoff=0.5, beta=0.0) if smooth else None

        def fit(det: Detection, affine: np.ndarray, t: float) -> FaceFit:
            target = self._target(det, affine)
            prev = state["prev"]
            res = self.fitter.fit(target) if prev is None else self.tracker.fit(target, init=prev, fix_shape=True)
            state["prev"] = res
            p = self._params(res)
            if euro is not None:
                codes = euro(np.concatenate([p["expression"], p["pose"].ravel(), p["cam"]]), t)
                n = len(p["expression"])
                p = {**p, "expression": codes[:n], "pose": codes[n:n + 15].reshape(5, 3), "cam": codes[n + 15:]}
            return self._facefit(p)

        return fit

    def blend(self, a: FaceFit, b: FaceFit, w: float) -> FaceFit:
        """(1 - w)·a + w·b of the FLAME codes (axis-angle poses interpolated linearly: small steps)."""
        if w <= 0.0 or w >= 1.0:
            return a if w <= 0.0 else b
        return self._facefit({k: (1 - w) * np.asarray(a.params[k]) + w * np.asarray(b.params[k]) for k in a.params})

    def transfer(self, source: FaceFit, driver: FaceFit, reference: FaceFit, relative: bool) -> FaceFit:
        s, d, r = source.params, driver.params, reference.params
        if not relative:
            return self._facefit({**d, "shape": s["shape"]})
        pose = s["pose"].copy()
        rot = rodrigues(torch.as_tensor(np.stack([d["pose"][0], r["pose"][0], s["pose"][0]]))).numpy()
        pose[0] = _rotvec(rot[0] @ rot[1].T @ rot[2])
        pose[2] = s["pose"][2] + (d["pose"][2] - r["pose"][2])
        cam = np.array([s["cam"][0] * d["cam"][0] / r["cam"][0], *(s["cam"][1:] + d["cam"][1:] - r["cam"][1:])])
        return self._facefit({"shape": s["shape"], "expression": s["expression"] + d["expression"] - r["expression"],
                              "pose": pose, "cam": cam})
