"""FLAME landmark fitter: batched optimisation of shape, expression, pose and camera to 68 landmarks.

Camera (the authors' DECA projection, official_pwm.md §6, taken straight into an S-pixel crop):
    x_pix = (s·(x + tx)·0.5 + 0.5)·S,   y_pix = (-s·(y + ty)·0.5 + 0.5)·S,   z_pix = -s·z·0.5·S
so y points down and z away from the viewer, as in FaceFit.

Objective, for frames t of one clip (or one source image):
    mean_t mean_k |P(FLAME(β, ψ_t, θ_t))_k - l_{t,k}|²   (pixels²)
  + w_shape |β|² + w_exp mean_t |ψ_t|²                     (Gaussian priors; FLAME coefficients are unit-variance)
  + w_smooth mean_t (|ψ_t - ψ_{t-1}|² + |θ_t - θ_{t-1}|² + |c_t - c_{t-1}|²)   (temporal smoothness)
with one identity β per clip, and per frame expression ψ_t, global and jaw pose θ_t, camera c_t.
Two stages: camera and global pose alone, then everything. Adam, deterministic for a given seed.
``init`` warm-starts every frame from a previous fit's last frame (streaming chunk by chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reenact.face.flame import FlameLandmarks, FlameModel


@dataclass
class FlameFit:
    """Per clip: shape (1, n_shape). Per frame: expression (N, n_exp), pose (N, 5, 3), cam (N, 3) = (s, tx, ty),
    residual (N,) mean landmark distance in pixels, landmarks (N, 68, 2) fitted, in crop pixels."""

    shape: torch.Tensor
    expression: torch.Tensor
    pose: torch.Tensor
    cam: torch.Tensor
    residual: torch.Tensor
    landmarks: torch.Tensor


def project(points: torch.Tensor, cam: torch.Tensor, size: int) -> torch.Tensor:
    """FLAME space (B, P, 3) -> crop pixels (B, P, 3) with the orthographic camera (B, 3)."""
    s, tx, ty = cam[:, None, 0:1], cam[:, None, 1:2], cam[:, None, 2:3]
    x = (s * (points[..., 0:1] + tx) * 0.5 + 0.5) * size
    y = (-s * (points[..., 1:2] + ty) * 0.5 + 0.5) * size
    z = -s * points[..., 2:3] * 0.5 * size
    return torch.cat([x, y, z], -1)


class FlameFitter:
    def __init__(self, model: FlameModel, landmarks: FlameLandmarks, size: int = 256, rigid_steps: int = 150,
                 steps: int = 300, lr: float = 0.02, w_shape: float = 1e-2, w_exp: float = 1e-2,
                 w_smooth: float = 10.0, seed: int = 0):
        ids = landmarks.vertex_ids()  # pose only the ~300 vertices the landmarks read: same values, far less work
        self.model, self.lmk, self.size = model.subset(ids), landmarks.subset(ids), size
        self.rigid_steps, self.steps, self.lr = rigid_steps, steps, lr
        self.w_shape, self.w_exp, self.w_smooth, self.seed = w_shape, w_exp, w_smooth, seed

    def _landmarks(self, shape, expression, pose, cam) -> torch.Tensor:
        n = expression.shape[0]
        verts, _ = self.model(shape.expand(n, -1), expression, pose)
        return project(self.lmk(verts, pose), cam, self.size)[..., :2]  # (N, 68, 2)

    def _init_cam(self, target: torch.Tensor) -> torch.Tensor:
        """Scale and translation that put the template's landmarks over the observed ones."""
        tmpl = self.lmk.static(self.model.v_template[None])[0, :, :2]  # (68, 2) model units, on the subset
        extent = (tmpl.max(0).values - tmpl.min(0).values).mean()
        obs = (target.max(1).values - target.min(1).values).mean(1)  # (N,)
        s = 2 * obs / (extent * self.size)
        centre = (target.mean(1) / self.size - 0.5) * 2  # NDC, y down
        tx = centre[:, 0] / s - tmpl[:, 0].mean()
        ty = -centre[:, 1] / s - tmpl[:, 1].mean()
        return torch.stack([s, tx, ty], 1)

    def fit(self, target: torch.Tensor, init: FlameFit | None = None, fix_shape: bool = False) -> FlameFit:
        """Fit (N, 68, 2) crop-pixel landmarks of one identity. ``fix_shape`` keeps ``init``'s identity."""
        torch.manual_seed(self.seed)
        n, dev = target.shape[0], target.device
        m = self.model
        shape = torch.zeros(1, m.n_shape, device=dev) if init is None else init.shape.clone()
        expr = torch.zeros(n, m.n_exp, device=dev) if init is None else init.expression[-1:].repeat(n, 1)
        glob = torch.zeros(n, 3, device=dev) if init is None else init.pose[-1:, 0].repeat(n, 1)
        jaw = torch.zeros(n, 3, device=dev) if init is None else init.pose[-1:, 2].repeat(n, 1)
        cam = self._init_cam(target) if init is None else init.cam[-1:].repeat(n, 1)
        log_s, trans = cam[:, :1].log(), cam[:, 1:]
        free = (expr, glob, jaw, log_s, trans) if fix_shape and init is not None else (shape, expr, glob, jaw, log_s, trans)
        variables = [v.requires_grad_() for v in free]
        for stage, steps in (("rigid", self.rigid_steps), ("all", self.steps)):
            params = [glob, log_s, trans] if stage == "rigid" else variables
            opt = torch.optim.Adam(params, lr=self.lr)
            for _ in range(steps):
                opt.zero_grad()
                loss = self._loss(target, shape, expr, glob, jaw, log_s, trans, stage)
                loss.backward()
                opt.step()
        with torch.no_grad():
            pose, cam = self._pose(glob, jaw), torch.cat([log_s.exp(), trans], 1)
            lm = self._landmarks(shape, expr, pose, cam)
            residual = (lm - target).norm(dim=-1).mean(1)
        return FlameFit(shape.detach(), expr.detach(), pose, cam, residual, lm)

    @staticmethod
    def _pose(glob: torch.Tensor, jaw: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros_like(glob)
        return torch.stack([glob, zero, jaw, zero, zero], 1)  # global, neck, jaw, eyes

    def _loss(self, target, shape, expr, glob, jaw, log_s, trans, stage: str) -> torch.Tensor:
        cam = torch.cat([log_s.exp(), trans], 1)
        lm = self._landmarks(shape, expr, self._pose(glob, jaw), cam)
        loss = ((lm - target) ** 2).sum(-1).mean()
        if stage == "all":
            loss = loss + self.w_shape * (shape ** 2).sum() + self.w_exp * (expr ** 2).sum(1).mean()
            if len(target) > 1:
                per_frame = torch.cat([expr, glob, jaw, log_s, trans], 1)
                loss = loss + self.w_smooth * ((per_frame[1:] - per_frame[:-1]) ** 2).sum(1).mean()
        return loss
