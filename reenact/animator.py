"""What drive and live share: before the first frame, the checkpoint, the working size and face
model, the source faces (cropped and fitted) and the engine that animates them; per frame, what the
engine takes from the driver frame besides its fit (:func:`driver_frame`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from reenact.engines import EveryFace, GeneratorEngine, GeometricWarp, Source
from reenact.errors import BadInputError
from reenact.face.pipeline import FacePipeline, Tracked, crop_face
from reenact.io.image import fit_within
from reenact.render.driver_frame import DriverFrame

FACE_MODELS = ("mediapipe", "flame")


def prepare_sources(path: Path, image: np.ndarray, faces: FacePipeline, size: int, face_index: int | str | None,
                    geometry) -> list[Source]:
    """The source face chosen by ``face_index`` (``reenact faces`` numbering), or every face for "all",
    each cropped and fitted, with the image's person mask and the other faces' heads."""
    found = faces.find_faces(image)
    everyone = found[0]
    if face_index == "all":
        chosen = everyone or [faces.select(image, 0, path, found)]  # none: raises the no-face error
    else:
        chosen = [faces.select(image, face_index, path, found)]
    person = faces.person_mask(image)  # once per source image, shared by its faces
    out = []
    for face in chosen:
        crop, affine = crop_face(image, face.detection, size)
        others = np.array([f.disc for f in everyone if f.index != face.index]).reshape(-1, 3)
        out.append(Source(image, crop, affine, geometry.fit_source(face.detection, affine), face.detection, person,
                          others))
    return out


SOFT_MAGNIFICATION = 2.0  # a source crop magnified more than this from the photo's pixels looks soft


def magnification_note(path: Path, sources: list[Source], size: int) -> str | None:
    """A note when the smallest source face is magnified more than :data:`SOFT_MAGNIFICATION` times to
    fill the ``size``² crop (a distant face, a group photo, ``--size 512`` on a small portrait): a crop
    output is then an enlargement of few pixels and looks soft. None otherwise. (A full-frame output
    puts the face back at the photo's own scale, so it needs no note.)"""
    sides = [size / float(np.sqrt(abs(np.linalg.det(s.affine[:2, :2])))) for s in sources]  # photo px per crop side
    side = min(sides)
    if size / side <= SOFT_MAGNIFICATION:
        return None
    which = "the face" if len(sources) == 1 else "its smallest face"
    smaller = ", or --size 256" if size > 256 and 256 / side <= SOFT_MAGNIFICATION else ""
    return (f"{path}: {which} is {side:.0f} px across in the photo; the {size}x{size} crop enlarges it "
            f"{size / side:.1f}x and will look soft (a closer or larger photo suits better{smaller})")


def fit_full_frame(path: Path, image: np.ndarray, max_side: int | None, why: str,
                   notify: Callable[[str], None]) -> np.ndarray:
    """The photo for a full-frame output (``--paste-back``, ``--face-index all``): scaled down to
    ``max_side`` on its longest side (0 or None: as it is), with a note saying so and ``why``."""
    if not max_side or max(image.shape[:2]) <= max_side:
        return image
    h, w = image.shape[:2]
    image = fit_within(image, max_side)
    notify(f"{path}: animated at {image.shape[1]}x{image.shape[0]} (from {w}x{h}){why}")
    return image


def load_checkpoint(path: str | None):
    """The :class:`reenact.models.checkpoint.Checkpoint` at ``path``, or None."""
    if path is None:
        return None
    from reenact.models.checkpoint import Checkpoint

    return Checkpoint.load(path)


def resolve_size_and_face_model(opts, ckpt, notify):
    """--size defaults to the checkpoint's image size (else 256); --face-model to the backend of the
    checkpoint's topology: FLAME for a FLAME-trained checkpoint when it needs it or its files are found.
    ``opts`` is a dataclass with size, face_model, checkpoint, flame_dir and weights_dir; a copy is returned."""
    size, face_model = opts.size, opts.face_model
    if ckpt is not None:
        trained = ckpt.model.image_size
        if size not in (None, trained):
            raise BadInputError(f"{opts.checkpoint}: this checkpoint works at {trained}x{trained}; use --size {trained}")
        size = trained
        if face_model is None and str(ckpt.topology or "").startswith("flame"):
            from reenact.face.flame_backend import flame_files_found

            if ckpt.model.guidance != "geom_disp" or flame_files_found(opts.flame_dir, opts.weights_dir):
                face_model = "flame"
                notify("the checkpoint was trained on FLAME geometry: using --face-model flame")
    size = size or 256
    if ckpt is None and size not in (256, 512):
        raise BadInputError(f"--size {size}: expected 256 or 512")
    face_model = face_model or "mediapipe"
    if face_model not in FACE_MODELS:
        raise BadInputError(f"--face-model {face_model}: available: {', '.join(FACE_MODELS)}")
    return dataclasses.replace(opts, size=size, face_model=face_model)


def driver_frame(item: Tracked) -> DriverFrame | None:
    """What the geometric warp reads from a driver frame (the mouth interior, the gaze); None
    without an accepted face."""
    return None if item.detection is None else DriverFrame(item.frame.image, item.detection.points)


def warm_up(engine, sources: list[Source]) -> None:
    """One untimed call, so the first real frame does not pay torch's first-call costs (seconds on a CPU)."""
    engine([[src.fit] for src in sources])


def make_engine(sources: list[Source], device: torch.device, paste_back: bool, ckpt,
                checkpoint_path: str | None, notify: Callable[[str], None]) -> object:
    """The generator of ``ckpt``, or the geometric warp when there is no checkpoint (said once), for each
    source face, behind :class:`EveryFace` (called with one batch of fits per face)."""
    engines = []
    for src in sources:  # the faces of one photo share what does not depend on the face
        like = engines[0] if engines else None
        engines.append(GeometricWarp(src, device, paste_back, like) if ckpt is None else
                       GeneratorEngine(src, device, paste_back, ckpt, checkpoint_path, like))
    if ckpt is None:
        notify(f"No --checkpoint given: using the {engines[0].name} (rendered 3D displacement, no network).")
    engine = EveryFace(engines)
    if getattr(engine, "warning", None):
        notify(engine.warning)
    return engine


@contextlib.contextmanager
def cpu_threads_beside_tracker(device: torch.device):
    """On CPU, leave half the cores to the MediaPipe tracking thread (drive's prefetch thread, live's capture):
    oversubscribing 2 cores costs drive a quarter of its speed. Restores torch's setting after."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    try:
        yield
    finally:
        torch.set_num_threads(before)
