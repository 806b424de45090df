"""How well can global pose be recovered from 68 noisy landmarks? The fitter against the information limit.

For the fitter's test problem (``tests/flame_synth.landmark_clip``: 8 frames, one identity, per-frame
expression, 1 px noise at 256²), per seed this prints:
  - the fitter's global-pose error (max / mean over frames, degrees), camera-scale error and residual;
  - the Laplace posterior std of each frame's global pose at the true parameters, under the prior the
    data were drawn from (shape, expression ~ N(0, 0.5²); pose and camera free):
        Σ = (JᵀJ / σ² + diag(1/0.5², ..., 0, ...))⁻¹,   J = ∂ landmarks / ∂ (β, ψ, θ_global, θ_jaw, log s, t)
    i.e. the spread that even the Bayes-optimal estimator cannot beat on this model;
  - with ``--lm``: the minimum of the fitter's own objective found by Levenberg–Marquardt (dense, float64)
    started from the truth and from the fitter's answer; if both land on the same point, the fitter has
    found its objective's minimum and the remaining error belongs to the objective and the data.

The synthetic model's blendshapes are smooth random fields (tests/flame_synth.py); ``--flame-dir DIR``
runs the same on the real FLAME 2020 model where the user has it.

Usage: python bench/flame_fit_bound.py [--seeds 1 2 3 4] [--lm] [--flame-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from _common import ROOT, SHARED, machine

sys.path.insert(0, str(ROOT / "tests"))
PRIOR_STD = 0.5  # what landmark_clip draws shape and expression from


def load_model(flame_dir: str | None, assets: Path):
    from flame_synth import load_synthetic
    from reenact.face.flame import FlameLandmarks, FlameModel
    from reenact.face.flame_backend import resolve_flame
    from reenact.face.safe_pickle import load_object_npy

    if flame_dir:
        model_path, emb_path = resolve_flame(flame_dir)
        model = FlameModel.from_file(model_path)
        return model, FlameLandmarks(load_object_npy(emb_path), model.faces), f"real FLAME ({model_path})"
    return (*load_synthetic(assets), "synthetic FLAME")


class Problem:
    """The fitter's variables as one float64 vector x = (β, ψ, θ_global, θ_jaw, log s, t), and its objective
    as a residual vector r(x) with Σ r² equal to ``FlameFitter._loss(..., "all")``."""

    def __init__(self, fitter, target: torch.Tensor):
        self.f, self.target, self.n = fitter, target.double(), target.shape[0]
        n, m = self.n, fitter.model
        self.sizes = [m.n_shape, n * m.n_exp, n * 3, n * 3, n, n * 2]

    def pack(self, shape, expression, glob, jaw, cam) -> torch.Tensor:
        parts = (shape, expression, glob, jaw, cam[:, :1].log(), cam[:, 1:])
        return torch.cat([p.reshape(-1) for p in parts]).double()

    def unpack(self, x: torch.Tensor):
        n, m = self.n, self.f.model
        s, e, g, j, ls, tr = torch.split(x, self.sizes)
        return s.view(1, m.n_shape), e.view(n, m.n_exp), g.view(n, 3), j.view(n, 3), ls.view(n, 1), tr.view(n, 2)

    def landmarks(self, x: torch.Tensor) -> torch.Tensor:
        s, e, g, j, ls, tr = self.unpack(x)
        return self.f._landmarks(s, e, self.f._pose(g, j), torch.cat([ls.exp(), tr], 1))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        f, n = self.f, self.n
        s, e, g, j, ls, tr = self.unpack(x)
        r = [(self.landmarks(x) - self.target).reshape(-1) / (n * 68) ** 0.5,
             f.w_shape ** 0.5 * s.reshape(-1), (f.w_exp / n) ** 0.5 * e.reshape(-1)]
        if n > 1:
            per_frame = torch.cat([e, g, j, ls, tr], 1)
            r.append((f.w_smooth / (n - 1)) ** 0.5 * (per_frame[1:] - per_frame[:-1]).reshape(-1))
        return torch.cat(r)

    def posterior_pose_std(self, x_true: torch.Tensor) -> torch.Tensor:
        """(n, 3) Laplace std (degrees) of each frame's global pose; landmark noise σ = 1 px."""
        jac = torch.autograd.functional.jacobian(lambda x: self.landmarks(x).reshape(-1), x_true, vectorize=True)
        precision = torch.zeros(x_true.numel(), dtype=torch.float64)
        precision[: self.sizes[0] + self.sizes[1]] = 1 / PRIOR_STD ** 2
        cov = torch.linalg.inv(jac.T @ jac + torch.diag(precision))
        g0 = self.sizes[0] + self.sizes[1]
        return torch.rad2deg(cov.diagonal()[g0:g0 + self.sizes[2]].view(self.n, 3).sqrt())

    def levenberg_marquardt(self, x: torch.Tensor, iters: int = 100) -> tuple[torch.Tensor, float]:
        lam, r = 1e-3, self.residual(x)
        cost = float((r ** 2).sum())
        for _ in range(iters):
            jac = torch.autograd.functional.jacobian(self.residual, x, vectorize=True)
            h, grad = jac.T @ jac, jac.T @ r
            while lam < 1e8:
                step = torch.linalg.solve(h + lam * torch.diag(h.diagonal() + 1e-9), -grad)
                r_new = self.residual(x + step)
                if float((r_new ** 2).sum()) < cost:
                    x, r, cost, lam = x + step, r_new, float((r_new ** 2).sum()), max(lam / 3, 1e-9)
                    break
                lam *= 4
            if lam >= 1e8 or step.abs().max() < 1e-8:
                break
        return x, cost


def main() -> None:
    from flame_synth import landmark_clip, pose_error_deg
    from reenact.face.flame_fit import FlameFitter

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--lm", action="store_true", help="also find the objective's minimum with Levenberg-Marquardt")
    ap.add_argument("--flame-dir", default=None)
    ap.add_argument("--assets", default=str(SHARED / "reference" / "flame_assets"))
    args = ap.parse_args()
    model, lmk, label = load_model(args.flame_dir, Path(args.assets))
    print(f"machine: {machine()}\nmodel: {label}")
    for seed in args.seeds:
        clip = landmark_clip(model, lmk, seed)
        t0 = time.perf_counter()
        fitter = FlameFitter(model, lmk)
        fit = fitter.fit(clip["noisy"])
        secs = time.perf_counter() - t0
        err = pose_error_deg(fit.pose[:, 0], clip["pose"][:, 0])
        scale = 100 * (fit.cam[:, 0] / clip["cam"][:, 0] - 1).abs().max()
        print(f"seed {seed}: fitter pose error max {err.max():.2f} / mean {err.mean():.2f} deg, scale error max "
              f"{scale:.2f} %, residual max {fit.residual.max():.2f} px ({secs:.1f} s)")
        fitter.model.double(), fitter.lmk.double()
        prob = Problem(fitter, clip["noisy"])
        x_true = prob.pack(clip["shape"], clip["expression"], clip["pose"][:, 0], clip["pose"][:, 2], clip["cam"])
        std = prob.posterior_pose_std(x_true)
        print(f"  posterior std of global pose (Bayes limit): per axis max {std.max(0).values.numpy().round(2)} deg, "
              f"per frame rms max {std.pow(2).sum(1).sqrt().max():.2f} deg")
        if args.lm:
            x_fit = prob.pack(fit.shape, fit.expression, fit.pose[:, 0], fit.pose[:, 2], fit.cam)
            check = float((prob.residual(x_fit) ** 2).sum())
            with torch.no_grad():
                own = float(fitter._loss(clip["noisy"].double(), *prob.unpack(x_fit), "all"))
            assert abs(check - own) < 1e-6 * max(1.0, own), (check, own)
            for start, x0 in (("truth", x_true), ("fitter", x_fit)):
                x, cost = prob.levenberg_marquardt(x0)
                e = pose_error_deg(prob.unpack(x)[2], clip["pose"][:, 0].double())
                print(f"  LM minimum from the {start}: objective {cost:.4f} (fitter's {own:.4f}), pose error max "
                      f"{e.max():.2f} / mean {e.mean():.2f} deg")
        fitter.model.float(), fitter.lmk.float()


if __name__ == "__main__":
    main()
