"""FaceFit: the per-frame geometry contract shared by every backend (DESIGN §2.2)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class FaceFit:
    """One face in one frame, in the pixel coordinates of its square crop.

    Coordinates: x right, y down, z in pixels increasing *away* from the viewer (OpenCV camera
    convention; the rasterizer's z-buffer keeps the smallest z). The mesh is the backend's
    canonical shape ``canonical`` placed by a similarity: ``vertices = scale * canonical @ rotation.T
    + translation``.

    Attributes:
        vertices: (V, 3) mesh vertices in crop pixels.
        topology: the backend's topology id; triangles come from :func:`reenact.face.mesh.topology`.
        pose: (3,) yaw, pitch, roll in degrees.
        expression: the backend's expression vector (MediaPipe: 52 blendshape scores).
        identity: the identity vector where the backend has one (MediaPipe: None).
        landmarks68: (68, 2) iBUG-order landmarks in crop pixels.
        rotation, scale, translation: the similarity placing ``canonical`` into the crop.
        canonical: (V, 3) the face's own pose-free shape, in the backend's canonical units.
        params: backend-specific codes (FLAME: shape, expression, pose, cam); None for MediaPipe.
    """

    vertices: np.ndarray
    topology: str
    pose: np.ndarray
    expression: np.ndarray
    identity: np.ndarray | None
    landmarks68: np.ndarray
    rotation: np.ndarray
    scale: float
    translation: np.ndarray
    canonical: np.ndarray
    params: dict | None = None

    def with_geometry(self, canonical: np.ndarray, rotation: np.ndarray, scale: float,
                      translation: np.ndarray) -> "FaceFit":
        """A copy with a new canonical shape and placement; vertices and 68 landmarks are recomputed."""
        from reenact.face.landmarks68 import mediapipe_to_68
        from reenact.face.mesh import MEDIAPIPE

        vertices = scale * canonical @ rotation.T + translation
        lm68 = mediapipe_to_68(vertices).astype(np.float32) if self.topology == MEDIAPIPE else self.landmarks68
        return replace(self, vertices=vertices.astype(np.float32), rotation=rotation, scale=float(scale),
                       translation=translation, canonical=canonical, landmarks68=lm68)
