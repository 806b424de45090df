"""FLAME (Li et al., SIGGRAPH Asia 2017) in pure, batched torch: shape and expression blendshapes,
pose correctives and linear blend skinning over 5 joints (global, neck, jaw, left eye, right eye).

The model file is FLAME 2020 ``generic_model.pkl`` (user-supplied; loaded through
:mod:`reenact.face.safe_pickle`, chumpy never imported). Parameters: shape = the first ``n_shape``
of 300 components, expression = the first ``n_exp`` of 100, pose = (B, 5, 3) axis-angle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from reenact.errors import BadInputError
from reenact.face.safe_pickle import load_pickle, to_numpy

SHAPE_SPACE, EXPRESSION_SPACE, N_JOINTS = 300, 100, 5


def rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) -> rotation matrices (..., 3, 3): R = I + sin θ K + (1 - cos θ) K²."""
    angle = torch.linalg.norm(rotvec + 1e-8, dim=-1, keepdim=True)  # (..., 1); the offset keeps θ=0 finite
    axis = rotvec / angle
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + s * k + (1 - c) * (k @ k)


def rigid_transforms(rot: torch.Tensor, joints: torch.Tensor, parents: list[int]):
    """Forward kinematics. rot (B, J, 3, 3), rest joints (B, J, 3) -> posed joints (B, J, 3) and the
    skinning transforms (B, J, 4, 4) that map rest-pose points to posed points."""
    b, n = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(b, n, 4, 4, dtype=rot.dtype, device=rot.device)
    local[..., :3, :3], local[..., :3, 3], local[..., 3, 3] = rot, rel, 1.0
    chain = [local[:, 0]]
    for i in range(1, n):
        chain.append(chain[parents[i]] @ local[:, i])
    world = torch.stack(chain, 1)  # (B, J, 4, 4)
    posed = world[..., :3, 3]
    skin = world.clone()
    skin[..., :3, 3] = world[..., :3, 3] - (world[..., :3, :3] @ joints[..., None])[..., 0]
    return posed, skin


class FlameModel(nn.Module):
    """FLAME layer. ``forward(shape, expression, pose)`` -> (vertices (B, V, 3), joints (B, 5, 3))."""

    def __init__(self, data: dict, n_shape: int = 100, n_exp: int = 50):
        super().__init__()
        shapedirs = to_numpy(data["shapedirs"]).astype(np.float32)  # (V, 3, 400)
        if shapedirs.shape[-1] < SHAPE_SPACE + n_exp or n_shape > SHAPE_SPACE:
            raise BadInputError(f"FLAME shapedirs has {shapedirs.shape[-1]} components; need 300 shape + {n_exp} expression")
        dirs = np.concatenate([shapedirs[..., :n_shape], shapedirs[..., SHAPE_SPACE:SHAPE_SPACE + n_exp]], -1)
        posedirs = to_numpy(data["posedirs"]).astype(np.float32)  # (V, 3, 36)
        kintree = to_numpy(data["kintree_table"]).astype(np.int64)
        self.n_shape, self.n_exp = n_shape, n_exp
        self.parents = [-1] + [int(p) for p in kintree[0, 1:]]
        self.register_buffer("v_template", torch.from_numpy(to_numpy(data["v_template"]).astype(np.float32)))
        self.register_buffer("dirs", torch.from_numpy(dirs))  # (V, 3, n_shape + n_exp)
        self.register_buffer("posedirs", torch.from_numpy(posedirs.reshape(-1, posedirs.shape[-1]).T.copy()))  # (36, V·3)
        j_reg = to_numpy(data["J_regressor"]).astype(np.float64)  # (5, V)
        # Joints are linear in the coefficients: J = J_reg v_template + (J_reg dirs) coeffs, precomputed so
        # that a vertex subset (FlameModel.subset) still poses exactly like the full mesh.
        self.register_buffer("j_template", torch.from_numpy((j_reg @ to_numpy(data["v_template"])).astype(np.float32)))
        self.register_buffer("j_dirs", torch.from_numpy(np.einsum("jv,vkl->jkl", j_reg, dirs).astype(np.float32)))
        self.register_buffer("weights", torch.from_numpy(to_numpy(data["weights"]).astype(np.float32)))  # (V, 5)
        self.register_buffer("faces", torch.from_numpy(to_numpy(data["f"]).astype(np.int64)))

    def subset(self, vertex_ids: torch.Tensor) -> "FlameModel":
        """The same model over ``vertex_ids`` only (faces dropped): what the landmark fitter needs."""
        import copy

        ids = torch.as_tensor(vertex_ids, dtype=torch.long, device=self.v_template.device)
        sub = copy.copy(self)
        sub._buffers = dict(self._buffers)
        sub.v_template, sub.dirs, sub.weights = self.v_template[ids], self.dirs[ids], self.weights[ids]
        sub.posedirs = self.posedirs.view(self.posedirs.shape[0], -1, 3)[:, ids].reshape(self.posedirs.shape[0], -1)
        sub.faces = self.faces[:0]
        return sub

    @classmethod
    def from_file(cls, path: str | Path, **kw) -> "FlameModel":
        data = load_pickle(path)
        if not isinstance(data, dict):
            raise BadInputError(f"{path}: expected a dict of FLAME arrays")
        missing = {"v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"} - set(data)
        if missing:
            raise BadInputError(f"{path}: not a FLAME model (missing {', '.join(sorted(missing))})")
        return cls(data, **kw)

    def forward(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor):
        """shape (B, n_shape), expression (B, n_exp), pose (B, 5, 3) axis-angle."""
        b = shape.shape[0]
        coeffs = torch.cat([shape, expression], -1)
        v_shaped = self.v_template + torch.einsum("bl,vkl->bvk", coeffs, self.dirs)  # (B, V, 3)
        joints = self.j_template + torch.einsum("bl,jkl->bjk", coeffs, self.j_dirs)  # (B, 5, 3)
        rot = rodrigues(pose)  # (B, 5, 3, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(b, -1)  # (B, 36)
        v_posed = v_shaped + (pose_feature @ self.posedirs).view(b, -1, 3)
        posed_joints, skin = rigid_transforms(rot, joints, self.parents)
        t = torch.einsum("vj,bjxy->bvxy", self.weights, skin)  # (B, V, 4, 4)
        verts = (t[..., :3, :3] @ v_posed[..., None])[..., 0] + t[..., :3, 3]
        return verts, posed_joints


class FlameLandmarks(nn.Module):
    """68 iBUG landmarks on FLAME vertices from DECA's ``landmark_embedding.npy``.

    Inner face (points 17-67): 51 static barycentric points. Jaw contour (points 0-16): chosen by the
    head's yaw, as DECA does: yaw of R_neck·R_root (Euler y = atan2(-R20, sqrt(R00² + R10²))) in whole
    degrees, clamped to [-39, 39]; table row = yaw for yaw >= 0, 39 - yaw for yaw < 0 (rows 40-78).
    ``static`` uses the embedding's fixed 68-point version instead (``full_lmk_*``).
    """

    def __init__(self, embedding: dict, faces: torch.Tensor):
        super().__init__()
        arr = {k: torch.as_tensor(to_numpy(v)) for k, v in embedding.items()}
        self.register_buffer("faces", torch.as_tensor(faces).long())
        self.register_buffer("static_idx", arr["static_lmk_faces_idx"].long().view(-1))
        self.register_buffer("static_bary", arr["static_lmk_bary_coords"].float().view(-1, 3))
        self.register_buffer("dyn_idx", arr["dynamic_lmk_faces_idx"].long())  # (79, 17)
        self.register_buffer("dyn_bary", arr["dynamic_lmk_bary_coords"].float())  # (79, 17, 3)
        self.register_buffer("full_idx", arr["full_lmk_faces_idx"].long().view(-1))
        self.register_buffer("full_bary", arr["full_lmk_bary_coords"].float().view(-1, 3))

    def _points(self, verts: torch.Tensor, face_idx: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
        """verts (B, V, 3); face_idx (B, L); bary (B, L, 3) -> (B, L, 3)."""
        corners = self.faces[face_idx]  # (B, L, 3)
        pts = torch.gather(verts, 1, corners.reshape(verts.shape[0], -1, 1).expand(-1, -1, 3))
        return (pts.view(*corners.shape, 3) * bary[..., None]).sum(-2)

    def vertex_ids(self) -> torch.Tensor:
        """Every vertex any landmark touches (static, dynamic and full tables)."""
        used = torch.cat([self.static_idx, self.dyn_idx.reshape(-1), self.full_idx])
        return torch.unique(self.faces[used].reshape(-1))

    def subset(self, vertex_ids: torch.Tensor) -> "FlameLandmarks":
        """The same landmarks on a model restricted to ``vertex_ids`` (see FlameModel.subset)."""
        import copy

        remap = torch.full((int(self.faces.max()) + 1,), -1, dtype=torch.long, device=self.faces.device)
        remap[vertex_ids] = torch.arange(len(vertex_ids), device=self.faces.device)
        sub = copy.copy(self)
        sub._buffers = dict(self._buffers)
        sub.faces = remap[self.faces].clamp(min=0)  # faces no landmark uses point at vertex 0: never read
        return sub

    def static(self, verts: torch.Tensor) -> torch.Tensor:
        b = verts.shape[0]
        return self._points(verts, self.full_idx.expand(b, -1), self.full_bary.expand(b, -1, -1))

    def contour_yaw(self, pose: torch.Tensor) -> torch.Tensor:
        """Yaw of the head relative to the neck, in degrees clamped to [-39, 39] (B,) (DECA)."""
        rot = rodrigues(pose[:, [1, 0]])  # (B, 2, 3, 3): neck, root
        rel = rot[:, 0] @ rot[:, 1]
        yaw = torch.atan2(-rel[:, 2, 0], torch.sqrt(rel[:, 0, 0] ** 2 + rel[:, 1, 0] ** 2))
        return torch.rad2deg(yaw).clamp(-39, 39)

    @staticmethod
    def _row(deg: torch.Tensor) -> torch.Tensor:
        """Row of the dynamic table for an integer yaw in degrees: 0..39, then 40..78 for -1..-39."""
        return torch.where(deg < 0, 39 - deg, deg)

    def contour_rows(self, pose: torch.Tensor) -> torch.Tensor:
        """Row of the dynamic table for each pose (B, 5, 3): DECA's yaw bucketing (rounded)."""
        return self._row(torch.round(self.contour_yaw(pose)).long())

    def forward(self, verts: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """verts (B, V, 3), pose (B, 5, 3) -> (B, 68, 3).

        The 17 jaw-contour points follow DECA's per-degree table, linearly interpolated between the two
        integer yaws around the head's (DECA rounds to one): the landmarks, and a fit's loss, are then
        continuous in the pose; at whole degrees both agree exactly.
        """
        b = verts.shape[0]
        deg = self.contour_yaw(pose)
        lo = torch.floor(deg).clamp(max=38)
        frac = (deg - lo)[:, None, None]  # (B, 1, 1)
        rows = [self._row(lo.long()), self._row(lo.long() + 1)]
        jaw_lo, jaw_hi = (self._points(verts, self.dyn_idx[r], self.dyn_bary[r]) for r in rows)
        jaw = jaw_lo + frac * (jaw_hi - jaw_lo)
        inner = self._points(verts, self.static_idx.expand(b, -1), self.static_bary.expand(b, -1, -1))
        return torch.cat([jaw, inner], 1)
