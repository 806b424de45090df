"""Shared fixtures: the ../shared test material, the MediaPipe landmarker, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REENACT_SHARED", ROOT.parent / "shared"))
TESTDATA = SHARED / "testdata"
TASK = ROOT / "weights" / "face_landmarker_v2.task"


def need_shared() -> Path:
    if not TESTDATA.is_dir():
        pytest.skip(f"test material not found: {TESTDATA} (set REENACT_SHARED)")
    return TESTDATA


@pytest.fixture(scope="session")
def testdata() -> Path:
    return need_shared()


@pytest.fixture(scope="session")
def landmarker():
    """A MediaPipe landmarker in IMAGE mode, shared by the session."""
    from reenact.face.mediapipe_backend import MediaPipeFaces

    faces = MediaPipeFaces(TASK, num_faces=1)
    yield faces
    faces.close()


@pytest.fixture(scope="session")
def pipeline():
    """The face pipeline (detector + landmarker), shared by the session."""
    from reenact.face.pipeline import FacePipeline

    with FacePipeline() as faces:
        yield faces


def fit_largest(pipeline, image: np.ndarray, size: int = 256):
    """(crop, affine, fit) of the largest face of ``image``, through the face pipeline."""
    from reenact.face.pipeline import crop_and_fit

    det = pipeline.largest(np.ascontiguousarray(image))
    assert det is not None, "no face"
    return crop_and_fit(image, det, size)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run ``python -m reenact ARGS`` and capture its output (a CompletedProcess)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run([sys.executable, "-m", "reenact", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def user_lines(stderr: str) -> list[str]:
    """stderr lines that reenact wrote (MediaPipe/TFLite/absl log chatter filtered out)."""
    noise = ("W0000", "I0000", "E0000", "WARNING: All log", "INFO: Created TensorFlow", "WARNING: Logging before")
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith(noise)]


def read_frames(path: Path) -> list[np.ndarray]:
    from reenact.io import VideoReader

    return [f.copy() for f in VideoReader(path)]


def drive_fits(pipeline, testdata, face: str, video: str, frames, face_index: int | None = None):
    """The source ``face`` (testdata/faces, or a path; its face ``face_index``, default the largest),
    the transferred fits of ``video`` at ``frames`` and those driver frames (for the gaze)."""
    import itertools

    from reenact.animator import driver_frame, prepare_sources
    from reenact.drive import driver_stream
    from reenact.face.geometry import make_geometry
    from reenact.io import VideoReader, read_image

    geo = make_geometry("mediapipe")
    path = Path(face) if Path(face).is_absolute() else testdata / "faces" / face
    src = prepare_sources(path, read_image(path), pipeline, 256, face_index, geo)[0]
    stream = driver_stream(VideoReader(testdata / "videos" / video), pipeline, 256, geo, True)
    wanted = set(frames)
    items = [(item, fit) for i, (item, fit) in enumerate(itertools.islice(stream.items, max(frames) + 1)) if i in wanted]
    return src, [geo.transfer(src.fit, fit, stream.reference, True) for _, fit in items], [driver_frame(i) for i, _ in items]
