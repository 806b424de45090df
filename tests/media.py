"""Test clips made from ../shared/testdata with the ffmpeg that imageio-ffmpeg bundles."""

from __future__ import annotations

import contextlib
import io
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly; fail the test with its stderr on error."""
    import imageio_ffmpeg

    res = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *map(str, args)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def has_encoder(name: str) -> bool:
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True)
    return f" {name} " in out.stdout


def rotated(src: Path, out: Path, degrees: int) -> Path:
    """``src`` with a display matrix of ``degrees`` (stream copy: the stored frames stay sideways)."""
    ffmpeg("-display_rotation", str(degrees), "-i", src, "-c", "copy", out)
    return out


def face_then_gone(videos: Path, out: Path, reverse: bool = False) -> tuple[Path, int]:
    """single_face (72 frames), then 2 s of a still, blurred title card, then no_face, all at 640x360,
    30 fps. ``reverse``: no_face first, then single_face. Returns the clip and its first faceless
    frame (reverse: its first face frame)."""
    norm = "fps=30,scale=640:360,setsar=1"
    if reverse:
        graph = f"[0:v]{norm}[a];[1:v]{norm}[b];[b][a]concat=n=2:v=1:a=0[v]"
    else:
        graph = (f"[0:v]{norm}[a];[1:v]{norm},split[b][b2];"
                 f"[b2]trim=start_frame=60:end_frame=61,setpts=PTS-STARTPTS,boxblur=8,loop=59:1:0,setpts=N/30/TB[card];"
                 f"[a][card][b]concat=n=3:v=1:a=0[v]")
    ffmpeg("-i", videos / "single_face.mp4", "-i", videos / "no_face.mp4", "-filter_complex", graph, "-map", "[v]",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", out)
    from reenact.io import VideoReader

    total = sum(1 for _ in VideoReader(out))
    return out, (total - 72 if reverse else 72)


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images, in units of 1/255."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def mouth_opening(videos: Path, out: Path) -> Path:
    """lp_d11's first 4 frames (a closed mouth: the reference), then frames 100-103 (open mouth, head tilt)."""
    ffmpeg("-i", videos / "lp_d11.mp4", "-vf", "select='lt(n\\,4)+between(n\\,100\\,103)',setpts=N/25/TB",
           "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", out)
    return out


def hdr_clip(videos: Path, out: Path, transfer: str, primaries: str = "bt2020", frames: int = 12) -> Path:
    """lp_d18's first ``frames`` frames as an HDR phone clip: HEVC 10-bit, ``transfer`` "arib-std-b67"
    (HLG, iPhones) or "smpte2084" (PQ, HDR10), ``primaries`` "bt2020" (or "bt709"), tagged so. Made by zimg (the bundled
    ffmpeg's zscale), which maps SDR white to 203 cd/m² (BT.2408): an HDR converter that is not ours."""
    ffmpeg("-i", videos / "lp_d18.mp4", "-frames:v", str(frames), "-an", "-vf",
           f"zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={transfer}:m=bt2020nc:p={primaries}:r=tv:npl=203,"
           "format=yuv420p10le", "-c:v", "libx265", "-preset", "fast", "-crf", "12",
           "-x265-params", f"log-level=error:colorprim={primaries}:transfer={transfer}:colormatrix=bt2020nc", out)
    return out


def anamorphic(src: Path, out: Path, sar: str, size: tuple[int, int] | None = None, frames: int = 12) -> Path:
    """``src`` (cropped to ``size`` (W, H) at its centre first) stored with non-square pixels of aspect
    ``sar`` ("4/3": HDV's 1440 x 1080 for 1920 x 1080; "8/9": NTSC DV's): its width divided by it."""
    crop = f"crop={size[0]}:{size[1]}," if size else ""
    ffmpeg("-i", src, "-frames:v", str(frames), "-an", "-vf", f"{crop}scale=trunc(iw/({sar})/2)*2:ih,setsar={sar}",
           "-c:v", "libx264", "-crf", "14", "-pix_fmt", "yuv420p", out)
    return out


def interlaced(src: Path, out: Path, start: int, frames: int) -> Path:
    """Frames ``start`` to ``start + frames`` of progressive ``src`` woven into interlaced ones, as a
    camcorder films (top field first): stored frame k holds the top field of ``start + 2k`` and the
    bottom field of ``start + 2k + 1``, at half the rate. H.264 coded as interlaced (field DCT)."""
    ffmpeg("-i", src, "-an", "-vf", f"trim=start_frame={start}:end_frame={start + frames},setpts=PTS-STARTPTS,"
           "interlace=scan=tff:lowpass=off", "-c:v", "libx264", "-crf", "14", "-pix_fmt", "yuv420p",
           "-flags", "+ildct+ilme", "-x264-params", "tff=1", out)
    return out


def unknown_video(videos: Path, out: Path) -> Path:
    """lp_d18's first 3 s as MKV whose video track has a codec FFmpeg does not know (codec ID patched)."""
    tmp = out.with_suffix(".avc.mkv")
    ffmpeg("-i", videos / "lp_d18.mp4", "-t", "3", "-c", "copy", tmp)
    data = tmp.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    out.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    return out


def unknown_audio(videos: Path, out: Path, then_aac: bool = False) -> Path:
    """lp_d18's first 3 s as MKV whose first audio track has a codec FFmpeg does not know (its codec
    ID patched, as a phone's newer codec looks to an older FFmpeg); ``then_aac``: a second, AAC track."""
    tmp = out.with_suffix(".pcm.mkv")
    aac = ["-map", "0:a", "-c:a:1", "aac"] if then_aac else []
    ffmpeg("-i", videos / "lp_d18.mp4", "-t", "3", "-map", "0:v", "-map", "0:a", *aac, "-c:v", "copy",
           "-c:a:0", "pcm_s16le", tmp)
    data = tmp.read_bytes()
    assert data.count(b"A_PCM/INT/LIT") == 1
    out.write_bytes(data.replace(b"A_PCM/INT/LIT", b"A_QQQ/INT/LIT"))
    return out


DISPLAY_P3 = ((0.515121, 0.241196, -0.001053), (0.291977, 0.692245, 0.041885), (0.157104, 0.066574, 0.784073))
"""Display P3's red, green and blue colorants (XYZ, adapted to D50), as Apple's profile lists them."""


def matrix_icc(colorants=DISPLAY_P3, gamma: float = 2.2, name: str = "Display P3 (test)") -> bytes:
    """An ICC v2 RGB display profile: ``colorants`` (red, green, blue XYZ at D50) and one ``gamma``
    curve for all three channels. What phones embed in their photos, without needing their files."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(s15(c) for c in v)

    ascii_name = name.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(ascii_name)) + ascii_name + bytes(8) + bytes(3) + bytes(67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(colorants[0])),
            (b"gXYZ", xyz(colorants[1])), (b"bXYZ", xyz(colorants[2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text" + bytes(4) + b"none\0\0\0\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)  # each tag starts on a 4-byte boundary
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(24) + struct.pack(">I", 0) + xyz((0.9642, 1.0, 0.8249))[8:] + bytes(4) + bytes(16) + bytes(28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


@contextlib.contextmanager
def mjpeg_stream(video: Path, frames: int, fps: float):
    """Serve ``video``'s first ``frames`` frames as a live MJPEG stream over HTTP at ``fps``, as phone
    camera apps (IP Webcam and the like) do (multipart/x-mixed-replace), then close it. Yields its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from reenact.io import VideoReader

    jpegs = []
    for k, image in zip(range(frames), VideoReader(video)):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=85)
        jpegs.append(buf.getvalue())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            start = time.perf_counter()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for k, jpg in enumerate(jpegs):
                    time.sleep(max(0.0, start + k / fps - time.perf_counter()))
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                                     + jpg + b"\r\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/video"
    finally:
        server.shutdown()
        server.server_close()
