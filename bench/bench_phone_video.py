"""Reading phone and camcorder video: frames/s of `VideoReader` on the clips they make, and colour error.

Clips are made from testdata videos/lp_d18.mp4 with the ffmpeg that imageio-ffmpeg bundles (its
zscale is an HDR converter that is not ours), in a temporary folder:
- `portrait-4k`: 2160 × 3840 upright, stored 3840 × 2160 with a 90° display matrix, HEVC;
- `hlg-1080p`: 1920 × 1080 HLG (BT.2020, what iPhones film by default), HEVC 10-bit;
- `pq-1080p`: the same in PQ (HDR10);
- `sdr-1080p`: the same in plain SDR BT.709, the reference;
- `hdv-1080i`: a camcorder's 1080i, stored 1440 × 1080 at pixel aspect 4:3, interlaced (top field
  first, two source frames woven into one), H.264;
- `dv-576i`: PAL widescreen DV, stored 720 × 576 at 64:45 (shown 1024 × 576), interlaced, H.264.
For each: frames/s of decoding alone, and of `VideoReader` (upright 8-bit BT.709 RGB); for the HDR
clips (and the 1080i one, woven frame k against frame 2k) also the mean difference in levels from the
SDR clip's frames as read.

Usage: python bench/bench_phone_video.py [--frames 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import TESTDATA, machine

SCALE = "scale=1920:1080:flags=bicubic"
TO_HDR = "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={t}:m=bt2020nc:p=bt2020:r=tv:npl=203,format=yuv420p10le"


def make(folder: Path, frames: int) -> dict[str, Path]:
    import imageio_ffmpeg

    ff = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(TESTDATA / "videos" / "lp_d18.mp4"),
          "-frames:v", str(frames), "-an"]
    x265 = ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "16"]
    clips = {"portrait-4k": "scale=2160:2160,pad=2160:3840:0:840,transpose=2", "sdr-1080p": SCALE,
             "hlg-1080p": SCALE + "," + TO_HDR.format(t="arib-std-b67"), "pq-1080p": SCALE + "," + TO_HDR.format(t="smpte2084")}
    tags = {"hlg-1080p": "arib-std-b67", "pq-1080p": "smpte2084"}
    out = {}
    for name, vf in clips.items():
        path = folder / f"{name}.mp4"
        params = "log-level=error" + (f":colorprim=bt2020:transfer={tags[name]}:colormatrix=bt2020nc" if name in tags else "")
        tag709 = [] if name in tags else ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
        subprocess.run(ff + ["-vf", vf, *x265, "-x265-params", params, *tag709, str(path)], check=True)
        out[name] = path
    camcorders = {"hdv-1080i": ("1920:1080", "1440:1080", "4/3"), "dv-576i": ("1024:576", "720:576", "64/45")}
    for name, (square, stored_size, sar) in camcorders.items():
        path = out[name] = folder / f"{name}.mp4"
        vf = f"scale={square},interlace=scan=tff:lowpass=off,scale={stored_size}:interl=1,setsar={sar}"
        subprocess.run(ff + ["-vf", vf, "-c:v", "libx264", "-crf", "16", "-flags", "+ildct+ilme",
                             "-x264-params", "tff=1", str(path)], check=True)
    stored = out.pop("portrait-4k")  # stored sideways, shown upright: the display matrix phones write
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", "-90",
                    "-i", str(stored), "-c", "copy", str(folder / "portrait.mp4")], check=True)
    return {"portrait-4k": folder / "portrait.mp4", **out}


def rate(fn) -> tuple[float, list]:
    t = time.perf_counter()
    items = fn()
    return len(items) / (time.perf_counter() - t), items


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    import av

    from reenact.io import VideoReader

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        clips = make(Path(tmp), args.frames)
        sdr = None
        for name, path in clips.items():
            def decode():
                with av.open(str(path)) as c:
                    c.streams.video[0].thread_type = "AUTO"
                    return [None for _ in c.decode(video=0)]

            dec, _ = rate(decode)
            fps, frames = rate(lambda: list(VideoReader(path)))
            line = f"{name:12s} {frames[0].shape[1]}x{frames[0].shape[0]}: decode {dec:6.1f} frames/s, VideoReader {fps:6.1f}"
            if name == "sdr-1080p":
                sdr = np.stack(frames).astype(np.float32)
            elif sdr is not None and frames[0].shape == sdr.shape[1:]:
                truth = sdr[::2][:len(frames) // 2] if name.endswith("i") else sdr  # a woven frame k: frames 2k, 2k+1
                ours = np.stack(frames[:len(truth)]).astype(np.float32)
                line += f", {np.abs(ours - truth).mean():.2f} levels from the SDR clip"
            print(line)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
