"""Frames per second of each `reenact score` extractor on real frames (256x256 crops of lp_d11.mp4).

Usage: python bench/bench_score.py [--device cpu|cuda] [--frames N]

Extractors: the NVIDIA FID Inception (offline file), MediaPipe detection + 68 landmarks + pose +
blendshapes, the dlib CSIM fallback, ArcFace iresnet100 and IR-SE50 (random weights of the real
architectures: the speed does not depend on the values), and the FLAME fitter on a synthetic FLAME
model (per clip, all frames jointly). Figures are printed; record them in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import SHARED, TESTDATA, machine  # noqa: E402


def _frames(n: int) -> list[np.ndarray]:
    import cv2

    from reenact.io import VideoReader

    out = []
    for f in VideoReader(TESTDATA / "videos" / "lp_d11.mp4"):
        out.append(cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA))
        if len(out) == n:
            break
    return out


def _rate(name: str, n: int, fn) -> None:
    fn()  # warm-up
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"{name:<48} {n / dt:8.1f} frames/s  ({dt * 1000 / n:.1f} ms/frame)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=32)
    args = ap.parse_args()
    device = torch.device(args.device)
    frames = _frames(args.frames)
    n = len(frames)
    print(machine())
    print(f"{n} frames of lp_d11.mp4 at 256x256, device {device}")

    from reenact.face.landmarks68 import mediapipe_to_68
    from reenact.metrics.arcface import IRSE, IResNet
    from reenact.metrics.fid import InceptionFeatures
    from reenact.metrics.identity import ArcFaceEmbedder, DlibEmbedder
    from reenact.metrics.measure import MeasureOptions, Measurer

    inception = InceptionFeatures(device)
    _rate("FID Inception (NVIDIA TorchScript, batch 16)", n, lambda: inception(frames))
    m = Measurer(MeasureOptions(landmarks="mediapipe", identity=None), device)
    _rate("MediaPipe: detect + 68 + pose + blendshapes", n, lambda: m(frames))
    lms = [mediapipe_to_68(m.faces.detect(f, search=False)[0].points[:, :2]) for f in frames]
    dlib_emb = DlibEmbedder()
    _rate("CSIM fallback: dlib ResNet v1", n, lambda: dlib_emb(frames, lms))
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in (("ArcFace iresnet100 (random weights)", IResNet((3, 13, 30, 3))),
                          ("ArcFace IR-SE50 (random weights)", IRSE((3, 4, 14, 3)))):
            torch.save(net.state_dict(), Path(tmp) / "arcface_r100.pth")
            emb = ArcFaceEmbedder(device, weights_dir=tmp)
            _rate(f"CSIM: {name}", n, lambda emb=emb: emb(frames, lms))
        _flame(frames, device, tmp)
    m.close()


def _flame(frames, device, tmp: str) -> None:
    import shutil

    from flame_synth import read_obj, synthetic_arrays, write_generic_model
    from reenact.metrics.measure import MeasureOptions, Measurer

    assets = SHARED / "reference" / "flame_assets"
    if not assets.is_dir():
        print(f"FLAME fitter: skipped ({assets} not found)")
        return
    write_generic_model(Path(tmp) / "generic_model.pkl", synthetic_arrays(*read_obj(assets / "head_template.obj")))
    shutil.copy(assets / "landmark_embedding.npy", Path(tmp) / "landmark_embedding.npy")
    m = Measurer(MeasureOptions(landmarks="mediapipe", face_model="flame", identity=None, flame_dir=tmp), device)
    _rate("APD/AED: MediaPipe + FLAME fitter (synthetic model)", len(frames), lambda: m(frames))
    m.close()


if __name__ == "__main__":
    main()
