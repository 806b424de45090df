"""Person segmentation: MediaPipe selfie segmentation (``vision.ImageSegmenter``, Apache-2.0).

The geometric warp needs to know which source pixels belong to the person (hair, ears, neck and
body) and which are background: the head's rigid motion is carried only by the person, the
background stays still, and background uncovered by the moving head is filled from background.
The source is a still image, so this runs once per source (about 6 ms on one core for a 600×700
photo), never per driver frame: the driven frame's person mask is the source's, moved by the warp.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reenact.face.detect import mp_image


class PersonSegmenter:
    """Selfie segmentation in IMAGE mode; ``seg(rgb)`` is the (H, W) float32 person confidence in
    [0, 1] at the image's resolution. Use as a context manager."""

    def __init__(self, model_path: str | Path):
        from mediapipe.tasks.python import BaseOptions, vision

        opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                            running_mode=vision.RunningMode.IMAGE,
                                            output_confidence_masks=True, output_category_mask=False)
        self._seg = vision.ImageSegmenter.create_from_options(opts)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        masks = self._seg.segment(mp_image(rgb)).confidence_masks
        return np.clip(np.array(masks[0].numpy_view(), np.float32).reshape(rgb.shape[:2]), 0.0, 1.0)

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
