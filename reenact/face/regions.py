"""Named regions of MediaPipe's 468-vertex face mesh: the face oval, the inner-lip contour, the eyes.

The geometric warp's mouth (render/mouth.py) and the benches and tests that judge the warp's head,
mouth and eyes read their vertex lists here, so there is one definition of each region.
"""

from __future__ import annotations

import numpy as np

CHIN, FOREHEAD = 152, 10  # chin tip, top of the forehead: the face's height, as the warp's head reads it
# MediaPipe FACEMESH_FACE_OVAL, in order around the face (forehead top first, clockwise in the image).
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
# Inner-lip contour, mouth corner 78 to corner 308: the upper lip's inner edge, then the lower lip's back.
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
INNER_LIPS = INNER_UPPER + INNER_LOWER[1:-1]  # the closed ring, 20 vertices
# Outer lip contour (the lips are between it and the inner contour).
OUTER_LIPS = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
# Eyes (subject's right = image left for a frontal face): corners and two lid pairs each.
EYES = {"right": dict(corners=(33, 133), lids=((159, 145), (158, 153))),
        "left": dict(corners=(362, 263), lids=((386, 374), (385, 380)))}
# Each eye's lid margin, corner to corner over the upper lid and back along the lower (FACEMESH_LEFT/RIGHT_EYE).
EYE_CONTOURS = {"right": [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7],
                "left": [362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382]}


def eye_opening(points: np.ndarray) -> float:
    """The eye aspect ratio of ``points`` (468+, 2+) averaged over both eyes: mean lid distance over
    corner distance (0.47 on lp_d11 frame 0, a wide-eyed child; near 0 closed)."""
    p = np.asarray(points, np.float64)[:, :2]
    ratios = []
    for eye in EYES.values():
        a, b = eye["corners"]
        width = np.linalg.norm(p[a] - p[b])
        ratios.append(np.mean([np.linalg.norm(p[u] - p[d]) for u, d in eye["lids"]]) / max(width, 1e-6))
    return float(np.mean(ratios))


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap (13 to 14) over mouth width (78 to 308): 0 closed, about 0.5 wide open."""
    p = np.asarray(points, np.float64)[:, :2]
    return float(np.linalg.norm(p[13] - p[14]) / max(np.linalg.norm(p[78] - p[308]), 1e-6))


def openings_mask(points: np.ndarray, shape: tuple[int, int], margin: int, eyes=("right", "left"),
                  lips: bool = True) -> np.ndarray:
    """(H, W) bool: the ``eyes``' lid margins and (with ``lips``) the inner lips of ``points`` (x, y
    pixels), filled and grown by ``margin`` px, where lids and lips meet. A closing eye or mouth jumps
    there by design."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    for ids in (*(EYE_CONTOURS[e] for e in eyes), *((INNER_LIPS,) if lips else ())):
        poly = np.round(np.asarray(points)[ids, :2]).astype(np.int32)
        cv2.fillPoly(mask, [poly], 1)
        cv2.polylines(mask, [poly], True, 1, thickness=2 * margin + 1)
    return mask.astype(bool)


def polygon_mask(points: np.ndarray, ids: list[int], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the polygon through ``points[ids]`` (x, y pixels)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points)[ids, :2]).astype(np.int32)], 1)
    return mask.astype(bool)
