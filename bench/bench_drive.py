"""`drive` throughput on CPU in geometric-warp mode, against MediaPipe landmark detection alone.

Drives testdata faces/lp_s6.jpg with videos/lp_d18.mp4 (216 frames, 480²) and times:
  * drive end to end (decode, detect, fit, render, warp, encode, audio mux), library call;
  * MediaPipe Face Landmarker alone on the same, pre-decoded frames: IMAGE mode with up to four faces,
    as the tracker runs it since it stopped using VIDEO mode (issue 12; reenact/face/tracker.py), and,
    for reference, VIDEO mode as it ran before.
Target: drive time <= 2.5x detection time (IMAGE mode). Also the cost per frame of each stage the face pipeline
added in 0.2: PyAV decoding with timestamps, the BlazeFace detector (per call, and amortised as the
tracker calls it: on doubt, on jumps and every 15th frame), and the tracker as a whole.

The drive runs with the memory policy `reenact drive` sets (cli/_common.keep_freed_memory) unless
`--system-malloc`.

Usage: python bench/bench_drive.py [--device cpu|cuda] [--paste-back] [--system-malloc]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import ROOT, TESTDATA, machine


def detection_alone(frames, fps: float, video: bool = False) -> float:
    from reenact.face.mediapipe_backend import MediaPipeFaces
    from reenact.face.tracker import TRACK_FACES

    with MediaPipeFaces(ROOT / "weights" / "face_landmarker_v2.task", video=video,
                        num_faces=1 if video else TRACK_FACES) as faces:
        t = time.perf_counter()
        for i, f in enumerate(frames):
            if video:
                faces.track(f, int(i * 1000 / fps))
            else:
                faces.detect(f, search=False)
        return time.perf_counter() - t


def stage_costs(frames, fps: float, drv) -> dict[str, float]:
    """Milliseconds per frame of each stage, on the same frames."""
    from reenact.face.detect import FaceDetector
    from reenact.face.tracker import DriverTracker
    from reenact.io import VideoReader

    out = {}
    t = time.perf_counter()
    n = sum(1 for _ in VideoReader(drv).timed())
    out["decode (PyAV, timed)"] = (time.perf_counter() - t) / n * 1e3
    with FaceDetector(ROOT / "weights" / "face_detection_full_range_sparse.tflite") as det:
        t = time.perf_counter()
        for f in frames:
            det(f)
        out["BlazeFace full range, one call"] = (time.perf_counter() - t) / len(frames) * 1e3
        calls = [0]

        def counted(img):
            calls[0] += 1
            return det(img)

        tracker = DriverTracker(ROOT / "weights" / "face_landmarker_v2.task", counted, fps)
        timed = list(VideoReader(drv).timed())
        t = time.perf_counter()
        for _ in tracker.track(timed):
            pass
        out["tracker (landmarks + checks + confirmations)"] = (time.perf_counter() - t) / len(timed) * 1e3
    out["detector calls per frame"] = calls[0] / len(frames)
    return out


def main() -> None:
    from reenact.drive import DriveOptions, drive
    from reenact.io import VideoReader

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--paste-back", action="store_true")
    ap.add_argument("--system-malloc", action="store_true", help="leave glibc's allocation policy as it is")
    args = ap.parse_args()
    if not args.system_malloc:
        from reenact.cli._common import keep_freed_memory

        keep_freed_memory()
    src, drv = TESTDATA / "faces" / "lp_s6.jpg", TESTDATA / "videos" / "lp_d18.mp4"
    print(f"machine: {machine()}; memory policy: {'system' if args.system_malloc else 'keep freed memory (CLI)'}")
    reader = VideoReader(drv)
    frames = [f.copy() for f in reader]
    det = detection_alone(frames, reader.info.fps)
    det_video = detection_alone(frames, reader.info.fps, video=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = drive(src, drv, Path(tmp) / "o.mp4", DriveOptions(device=args.device, paste_back=args.paste_back))
        total = time.perf_counter() - t
    n = len(frames)
    print(f"MediaPipe detection alone: {det:6.2f} s for {n} frames = {n / det:6.1f} frames/s")
    print(f"drive (geometric warp, {args.device}{', paste-back' if args.paste_back else ''}): {total:6.2f} s "
          f"end to end = {n / total:6.1f} frames/s (frame loop alone {s.fps:.1f} frames/s)")
    print(f"drive / detection = {total / det:.2f}x (target <= 2.5x)")
    print(f"  (VIDEO-mode detection, as the tracker ran before: {det_video:6.2f} s; drive / that = "
          f"{total / det_video:.2f}x)")
    print(f"MediaPipe detection alone: {det / n * 1e3:.2f} ms/frame")
    for name, value in stage_costs(frames, reader.info.fps, drv).items():
        print(f"  {name}: {value:.2f}{'' if 'calls' in name else ' ms/frame'}")


if __name__ == "__main__":
    main()
