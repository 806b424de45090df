"""Per-frame extraction for one clip: track, crop (smoothed box), save the crop, and gather geometry.

Faces, crops and fits come from :mod:`reenact.face.pipeline` (the smoothed crop policy). Models are
loaded once per process and kept (:func:`_models`), so a worker pays for them once.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from reenact import weights
from reenact.data.clips import FrameWriter, encode
from reenact.face.crop import warp_crop
from reenact.face.mediapipe_backend import fit_in_crop
from reenact.face.pipeline import CropPolicy, FacePipeline
from reenact.io.video import TimedFrame

_CACHE: dict = {}


def _models(opts) -> dict:
    """FAN (when chosen or found) and FLAME (when configured), once per process and settings."""
    import torch

    key = (opts.landmarks, opts.face_model, opts.flame_dir, opts.weights_dir, opts.size)
    if key not in _CACHE:
        release_models()
        models: dict = {"faces": FacePipeline(opts.weights_dir), "fan": None, "flame": None}
        if opts.landmarks == "fan" or (opts.landmarks == "auto" and weights.find("fan_2d", opts.weights_dir)):
            from reenact.face.fan import FanLandmarks

            models["fan"] = FanLandmarks(torch.device("cpu"), opts.weights_dir)
        if opts.face_model == "flame":
            from reenact.face.flame_backend import FlameGeometry

            models["flame"] = FlameGeometry.from_dirs(opts.flame_dir, opts.weights_dir, opts.size)
        _CACHE.clear()
        _CACHE[key] = models
    return _CACHE[key]


def release_models() -> None:
    """Close the models :func:`_models` keeps. Call it when a process is done with clips: MediaPipe cannot
    close its graphs once the interpreter has begun to shut down (its executor is gone by then)."""
    for models in _CACHE.values():
        models["faces"].close()
    _CACHE.clear()


class ClipExtractor:
    """Run :meth:`run` over a clip's frames; :meth:`finish` returns the geometry arrays and backend labels."""

    def __init__(self, opts, frames: FrameWriter):
        self.opts, self.frames = opts, frames
        self.models = _models(opts)
        self.rows: dict[str, list] = {k: [] for k in ("frame_index", "frame_time", "boxes", "landmarks", "vertices",
                                                      "pose", "expression")}
        self.fan_inputs: list[tuple[np.ndarray, np.ndarray]] = []
        self.count = self.seen = self.rejected = 0

    def run(self, frames: Iterable[TimedFrame], fps: float) -> None:
        """Track the clip's largest face (tracker policy: implausible faces rejected) and keep every accepted frame."""
        size = self.opts.size
        tracker = self.models["faces"].tracker(fps, CropPolicy.smoothed)
        for item in tracker.track(frames):
            self.seen += 1
            if item.detection is None:
                continue
            affine = item.box.affine(size)
            crop = warp_crop(item.frame.image, affine, size)
            self._save(crop)
            fit = fit_in_crop(item.detection, affine)
            for k, v in (("frame_index", item.frame.index), ("frame_time", item.frame.time), ("boxes", item.box.as_array()),
                         ("landmarks", fit.landmarks68), ("vertices", fit.vertices), ("pose", fit.pose),
                         ("expression", fit.expression)):
                self.rows[k].append(v)
            if self.models["fan"] is not None:
                x0, y0 = fit.vertices[:, :2].min(0)
                x1, y1 = fit.vertices[:, :2].max(0)
                self.fan_inputs.append((crop, np.array([x0, y0, x1, y1])))
            self.count += 1
        self.rejected = tracker.rejected

    def _save(self, crop: np.ndarray) -> None:
        self.frames.add(encode(crop, self.opts.image_format, self.opts.jpeg_quality))

    def finish(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        arrays = {k: np.asarray(v, np.int32 if k == "frame_index" else np.float32) for k, v in self.rows.items()}
        arrays["boxes"] = np.asarray(self.rows["boxes"], np.float64)
        arrays["frame_time"] = np.asarray(self.rows["frame_time"], np.float64)
        labels = {"landmarks": "mediapipe68", "face_model": "mediapipe", "topology": "mediapipe468"}
        fan = self.models["fan"]
        if fan is not None:
            for i in range(0, len(self.fan_inputs), 32):
                chunk = self.fan_inputs[i:i + 32]
                arrays["landmarks"][i:i + len(chunk)] = fan([c for c, _ in chunk], [b for _, b in chunk])
            labels["landmarks"] = "fan2d"
        if self.models["flame"] is not None:
            arrays.update(_flame_arrays(self.models["flame"], arrays["landmarks"]))
            labels.update(face_model="flame", topology=self.models["flame"].topology)
        return arrays, labels


def _flame_arrays(geo, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """FLAME fitted to the clip's crop-pixel landmarks (one shape), with its vertices in crop pixels."""
    import torch

    from reenact.face.flame_fit import project

    fit = geo.fitter.fit(torch.as_tensor(landmarks, dtype=torch.float32))
    with torch.no_grad():
        verts, _ = geo.model(fit.shape.expand(len(landmarks), -1), fit.expression, fit.pose)
        pix = project(verts, fit.cam, geo.size)
    return {"flame_shape": fit.shape.numpy(), "flame_expression": fit.expression.numpy(),
            "flame_pose": fit.pose.numpy(), "flame_cam": fit.cam.numpy(), "flame_vertices": pix.numpy().astype(np.float32)}
