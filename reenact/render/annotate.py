"""Annotated pictures for people: the faces found in an image, numbered as ``--face-index`` uses them."""

from __future__ import annotations

import numpy as np

_COLOURS = ((255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (200, 64, 255), (0, 210, 210))


def annotate_faces(image: np.ndarray, boxes: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """A copy of ``image`` with each [x0, y0, x1, y1] box drawn and its label written above it."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    thick = max(2, round(max(image.shape[:2]) / 400))
    scale = max(0.6, max(image.shape[:2]) / 1000)
    for i, (box, label) in enumerate(zip(boxes, labels)):
        colour = _COLOURS[i % len(_COLOURS)]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(y0 - 4, th + 4)
        cv2.rectangle(out, (x0, ty - th - 4), (x0 + tw + 6, ty + base - 2), colour, -1)
        cv2.putText(out, label, (x0 + 3, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out
