"""Built-in geometry backend: MediaPipe Face Landmarker (Tasks API) -> FaceFit.

MediaPipe gives, per face, 478 normalized landmarks (x, y in [0, 1] of the image, z on x's scale,
smaller = nearer), 52 blendshape scores and a 4x4 facial transformation matrix (canonical model ->
metric camera space, OpenGL axes). We use the first 468 landmarks: MediaPipe's canonical-topology
mesh (the last 10 are irises).

Placement: a weighted similarity (Umeyama) from the canonical mesh to the observed vertices, on
MediaPipe's own 33-point Procrustes basis, gives rotation, scale and translation in crop pixels;
the face's own pose-free shape is the observed mesh mapped back through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reenact.face.crop import apply_affine
from reenact.face.detect import iou, mp_image
from reenact.face.fit import FaceFit
from reenact.face.landmarks68 import mediapipe_to_68
from reenact.face.mediapipe_tasks import model_options, tasks
from reenact.face.mesh import MEDIAPIPE, canonical_vertices, procrustes_basis

N_MESH = 468


@dataclass(frozen=True)
class Detection:
    """One face as MediaPipe reports it, in image pixels.

    points: (478, 3) — x, y in pixels, z in pixels on x's scale, increasing away from the viewer.
    blendshapes: (52,) scores in [0, 1].
    matrix: (4, 4) facial transformation matrix.
    """

    points: np.ndarray
    blendshapes: np.ndarray
    matrix: np.ndarray

    @property
    def box(self) -> np.ndarray:
        """[x0, y0, x1, y1] of the mesh landmarks."""
        p = self.points[:N_MESH, :2]
        return np.concatenate([p.min(0), p.max(0)])

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return float((x1 - x0) * (y1 - y0))

    def shifted(self, dx: float, dy: float) -> "Detection":
        pts = self.points.copy()
        pts[:, 0] += dx
        pts[:, 1] += dy
        return Detection(pts, self.blendshapes, self.matrix)


def pose_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees: intrinsic Y-X-Z Euler angles of the matrix's rotation.

    R = Ry(yaw) Rx(pitch) Rz(roll) in MediaPipe's metric frame (x to the image right, y up, z toward
    the camera). yaw = atan2(R02, R22), pitch = asin(-R12), roll = atan2(R10, R11).
    """
    r = np.asarray(matrix, np.float64)[:3, :3]
    r = r / np.cbrt(max(np.linalg.det(r), 1e-12))
    yaw = math.atan2(r[0, 2], r[2, 2])
    pitch = math.asin(float(np.clip(-r[1, 2], -1.0, 1.0)))
    roll = math.atan2(r[1, 0], r[1, 1])
    return np.degrees([yaw, pitch, roll])


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Weighted similarity (s, R, t) minimising sum w |dst - (s R src + t)|^2 (Umeyama 1991)."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, d, vt = np.linalg.svd(cov)
    e = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[2, 2] = -1.0
    rot = u @ e @ vt
    var_s = (w * (xs ** 2).sum(1)).sum()
    scale = float(np.trace(np.diag(d) @ e) / var_s)
    return scale, rot, mu_d - scale * rot @ mu_s


def fit_in_crop(det: Detection, affine: np.ndarray) -> FaceFit:
    """Express ``det`` in the crop of ``affine`` (image -> crop) as a FaceFit."""
    k = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    pts = det.points[:N_MESH].astype(np.float64)
    verts = np.concatenate([apply_affine(affine, pts[:, :2]), pts[:, 2:3] * k], axis=1)  # (468, 3)
    return fit_from_vertices(verts, pose_from_matrix(det.matrix), det.blendshapes,
                             mediapipe_to_68(apply_affine(affine, det.points[:, :2])))


def fit_from_vertices(verts: np.ndarray, pose: np.ndarray, expression: np.ndarray,
                      landmarks68: np.ndarray | None = None) -> FaceFit:
    """A FaceFit from 468 mesh vertices in crop pixels (as ``reenact preprocess`` stores them): the
    canonical shape and similarity come from a weighted Procrustes onto MediaPipe's canonical face."""
    verts = np.asarray(verts, np.float64)
    canon_ref = canonical_vertices(MEDIAPIPE).astype(np.float64)
    ids, weights = procrustes_basis()
    scale, rot, trans = umeyama(canon_ref[ids], verts[ids], weights)
    canonical = (verts - trans) @ rot / scale
    lm68 = mediapipe_to_68(verts[:, :2]) if landmarks68 is None else landmarks68
    return FaceFit(
        vertices=verts.astype(np.float32), topology=MEDIAPIPE, pose=np.asarray(pose, np.float64),
        expression=np.asarray(expression, np.float32), identity=None, landmarks68=np.asarray(lm68, np.float32),
        rotation=rot, scale=scale, translation=trans, canonical=canonical)


class MediaPipeFaces:
    """A MediaPipe Face Landmarker in IMAGE or VIDEO mode. Use as a context manager.

    ``detect`` (IMAGE mode) falls back to overlapping tiles when the whole image shows no face,
    so small faces in wide shots are found. ``track`` (VIDEO mode) needs increasing timestamps.
    """

    def __init__(self, model_path: str | Path, video: bool = False, num_faces: int = 1,
                 min_confidence: float = 0.5):
        _, vision = tasks()
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        opts = vision.FaceLandmarkerOptions(
            base_options=model_options(model_path), running_mode=mode, num_faces=num_faces,
            min_face_detection_confidence=min_confidence, min_face_presence_confidence=min_confidence,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        self._lm = vision.FaceLandmarker.create_from_options(opts)
        self._last_ts = -1

    def close(self) -> None:
        if self._lm is not None:
            self._lm.close()
            self._lm = None

    def __enter__(self) -> "MediaPipeFaces":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _convert(self, result, w: int, h: int) -> list[Detection]:
        out = []
        for i, lms in enumerate(result.face_landmarks):
            pts = np.array([[p.x * w, p.y * h, p.z * w] for p in lms], np.float32)
            bs = np.array([c.score for c in result.face_blendshapes[i]], np.float32) if result.face_blendshapes \
                else np.zeros(52, np.float32)
            mat = np.array(result.facial_transformation_matrixes[i], np.float64) \
                if result.facial_transformation_matrixes else np.eye(4)
            out.append(Detection(pts, bs, mat))
        return out

    def detect(self, rgb: np.ndarray, search: bool = True) -> list[Detection]:
        """All faces in a still image, largest first.

        If the whole image shows none and ``search`` is set, search overlapping tiles (1, 1/2, 1/4 of the short side),
        each upright and rotated by +-35 degrees: BlazeFace misses small and strongly tilted faces. The
        whole image is also tried upside down (a scan or a photo taken turned over, without an EXIF
        orientation): the detector sees no face turned by 180°.
        """
        h, w = rgb.shape[:2]
        dets = self._convert(self._lm.detect(mp_image(rgb)), w, h)
        for level in (1, 2, 4):
            if dets or not search:
                break
            dets = self._detect_tiles(rgb, max(64, min(h, w) // level), angles=((35, -35, 180) if level == 1 else (0, 35, -35)))
        return sorted(dets, key=lambda d: -d.area)

    def _detect_tiles(self, rgb: np.ndarray, tile: int, angles: tuple[int, ...]) -> list[Detection]:
        h, w = rgb.shape[:2]
        found: list[Detection] = []
        for angle in angles:
            for y in range(0, max(h - tile, 0) + 1, tile // 2):
                for x in range(0, max(w - tile, 0) + 1, tile // 2):
                    for d in self.detect_turned(rgb[y:y + tile, x:x + tile], angle):
                        d = d.shifted(x, y)
                        if all(iou(d.box, f.box) < 0.3 for f in found):
                            found.append(d)
            if found:
                break
        return found

    def detect_turned(self, sub: np.ndarray, angle: float) -> list[Detection]:
        """Detect in ``sub`` rotated by ``angle`` degrees (counter-clockwise), mapped back upright."""
        import cv2

        h, w = sub.shape[:2]
        if angle == 0:
            return self._convert(self._lm.detect(mp_image(np.ascontiguousarray(sub))), w, h)
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(sub, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
        back = cv2.invertAffineTransform(rot)
        th = np.radians(angle)
        undo = np.eye(4)
        undo[:2, :2] = [[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]  # Rz(-angle), y up
        out = []
        for d in self._convert(self._lm.detect(mp_image(turned)), w, h):
            pts = d.points.copy()
            pts[:, :2] = d.points[:, :2] @ back[:, :2].T + back[:, 2]
            out.append(Detection(pts, d.blendshapes, undo @ d.matrix))
        return out

    def track(self, rgb: np.ndarray, timestamp_ms: int) -> list[Detection]:
        """Faces in one video frame (VIDEO mode)."""
        ts = max(int(timestamp_ms), self._last_ts + 1)
        self._last_ts = ts
        h, w = rgb.shape[:2]
        return sorted(self._convert(self._lm.detect_for_video(mp_image(rgb), ts), w, h), key=lambda d: -d.area)

