"""Writing video: H.264 over PyAV, each frame at its own time, the driver's audio muxed in.

**Output-rate policy: variable-rate passthrough.** :class:`VideoWriter` stamps output frame *i* with
the presentation time of the input frame it was made from, and gives the last frame the input's
remaining duration. The output therefore has the driver's stored frame count, its real duration,
and its audio (muxed from the driver, cut to that duration) stays in sync. The stream's nominal rate
is the driver's average rate (frames / duration). Writers given no times (a constant-rate source)
place frame *i* at *i / fps*.

**Animated images.** A ``.gif`` or ``.webp`` output (to share, or as a messenger sticker) is
encoded losslessly first (FFV1, RGB), then converted by the ffmpeg CLI at its end: a GIF with one
palette made for the whole clip (``palettegen``, ``paletteuse`` with error diffusion), an animated
WebP at quality 85. Neither carries sound. Frame times are kept (GIF's in hundredths of a second).

Outputs go through :func:`reenact.io.outputs.atomic_output`: a failed or interrupted run never
leaves a half-written file and never destroys an existing one.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError
from reenact.io.video import VideoInfo

OUTPUT_SUFFIXES = (".mp4", ".mov", ".mkv", ".gif", ".webp")  # what the writer produces (see the module)
ANIMATED_SUFFIXES = (".gif", ".webp")  # animated images: no sound
_TIME_BASE = Fraction(1, 90000)  # output timestamps: the MPEG clock, exact for 24/25/30/50/60 and NTSC rates
BT709 = 1  # ITU-R BT.709: its code in H.264's colour tags (matrix, primaries, transfer)


class VideoWriter:
    """Encode RGB frames to H.264 (yuv420p) at their own times; mux the audio of ``audio_from`` if any.
    A ``.gif`` or ``.webp`` path gets an animated image instead (see the module), without sound.

    ``write(frame, t)`` places the frame at ``t`` seconds (see the module's output-rate policy);
    without ``t``, at ``n / fps``. Frames must all have the same even width and height. Audio is
    muxed after the last frame (:func:`mux_audio`), cut to the video's exact duration. ``end``, if
    given to :meth:`close`, is where the last frame ends (the driver's duration).
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float,
                 audio_from: VideoInfo | None = None, crf: int = 18):
        import av

        w, h = size
        if w % 2 or h % 2:
            raise ValueError(f"frame size must be even, got {w}x{h}")
        self.path, self.size, self.fps, self.n_frames = Path(path), (w, h), fps, 0
        self.animated = self.path.suffix.lower() in ANIMATED_SUFFIXES
        self._audio = audio_from if audio_from is not None and audio_from.audio_codec and not self.animated else None
        self._lossless = self.path.with_name(self.path.name + ".ffv1.mkv") if self.animated else None
        fmt = {".mov": "mov", ".mkv": "matroska"}.get(self.path.suffix.lower(), "mp4")
        self._c = av.open(str(self._lossless or self.path), "w", format="matroska" if self.animated else fmt,
                          container_options={"movflags": "+faststart"} if fmt == "mp4" else None)
        self._s = self._c.add_stream("ffv1" if self.animated else "libx264", rate=Fraction(fps).limit_denominator(90000))
        self._s.width, self._s.height, self._s.pix_fmt = w, h, "bgr0" if self.animated else "yuv420p"
        self._s.codec_context.time_base = _TIME_BASE
        if not self.animated:
            cc = self._s.codec_context  # BT.709, limited range, as _encode converts: players read the tags
            cc.colorspace = cc.color_primaries = cc.color_trc = BT709
            cc.color_range = 1  # MPEG (limited)
            self._s.options = {"crf": str(crf), "preset": "veryfast"}
        self._pending: tuple[np.ndarray, int] | None = None
        self._durations: dict[int, int] = {}
        self._end: int | None = None  # pts where the last frame ends, once closed
        self._last_pts = -1

    @property
    def has_audio(self) -> bool:
        """Whether the output carries the source's sound (not for GIF or WebP, nor without one)."""
        return self._audio is not None

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Append one (H, W, 3) uint8 frame, shown from ``t`` seconds (default: n / fps)."""
        if frame.shape[1::-1] != self.size:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, writer expects {self.size}")
        t = self.n_frames / self.fps if t is None else t
        pts = max(int(round(t / _TIME_BASE)), self._last_pts + 1)
        self._last_pts = pts
        if self._pending is not None:
            self._encode(*self._pending, duration=pts - self._pending[1])
        self._pending = (np.ascontiguousarray(frame, dtype=np.uint8), pts)
        self.n_frames += 1

    def _encode(self, image: np.ndarray | None, pts: int = 0, duration: int = 0) -> None:
        import av

        if image is None:
            packets = self._s.encode(None)
        else:
            # Converted with BT.709's matrix and tagged so. Untagged, the frames were converted with
            # BT.601's, and players take untagged HD video as BT.709: Chromium showed a --paste-back
            # output's green (40, 160, 60) as (30, 143, 61) and its red (200, 40, 40) as (213, 55, 39).
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf = vf.reformat(format="bgr0") if self.animated else vf.reformat(
                format="yuv420p", dst_colorspace=av.video.reformatter.Colorspace.ITU709)
            vf.pts, vf.time_base, vf.duration = pts, _TIME_BASE, max(duration, 1)
            self._durations[pts] = max(duration, 1)
            packets = self._s.encode(vf)
        for packet in packets:  # the encoder reorders frames; give each packet its own frame's duration
            if packet.pts is not None and packet.time_base == _TIME_BASE:
                packet.duration = self._durations.pop(packet.pts, packet.duration)
        self._c.mux(packets)

    @property
    def duration(self) -> float:
        """Seconds written: where the last frame ends (after :meth:`close`), else 1 / fps after its start."""
        if self._end is not None:
            return self._end * float(_TIME_BASE)
        return (self._last_pts * float(_TIME_BASE) + 1 / self.fps) if self.n_frames else 0.0

    def close(self, end: float | None = None) -> None:
        """Finish the file; ``end`` (seconds) is where the last frame stops, else 1 / fps after it starts."""
        if self._c is None:
            return
        try:
            if self._pending is not None:
                image, pts = self._pending
                stop = int(round(end / _TIME_BASE)) if end is not None else pts + int(round(1 / self.fps / _TIME_BASE))
                self._end = max(stop, pts + 1)
                self._encode(image, pts, self._end - pts)
                self._pending = None
            self._encode(None)
        finally:
            self._c.close()
            self._c = None
        if self._lossless is not None:
            try:
                to_animated_image(self._lossless, self.path)
            finally:
                self._lossless.unlink(missing_ok=True)
        if self._audio is not None and self.n_frames:
            mux_audio(self.path, self._audio.path, self.duration, self._audio.audio_index, self._audio.video_offset)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


LEVEL_52_MACROBLOCKS = 36864  # H.264 level 5.1/5.2's largest frame (4096 x 2304): what 4K-class decoders take


def largest_side_within_level(size: tuple[int, int]) -> int | None:
    """None when a frame of ``size`` (W, H) fits H.264 level 5.2's frame size; else the longest side
    (a multiple of 16) that a frame of the same shape may have to fit it."""
    def fits(w: float, h: float) -> bool:
        return ((round(w) + 15) // 16) * ((round(h) + 15) // 16) <= LEVEL_52_MACROBLOCKS

    w, h = size
    if fits(w, h):
        return None
    long, short = max(w, h), min(w, h)
    side = int(long * (LEVEL_52_MACROBLOCKS * 256 / (w * h)) ** 0.5) // 16 * 16
    while not fits(side, short * side / long):  # the short side's rounding up to whole macroblocks
        side -= 16
    return side


def even_frame(frame: np.ndarray) -> np.ndarray:
    """Pad by one replicated row/column where needed: H.264 (yuv420p) needs even sizes."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frame


def to_animated_image(video: Path, out: Path) -> None:
    """Convert ``video`` into the animated GIF or WebP ``out`` (by its suffix; see the module)."""
    if out.suffix.lower() == ".gif":
        codec = ["-filter_complex", "split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=sierra2_4a",
                 "-f", "gif"]
    else:
        codec = ["-c:v", "libwebp_anim", "-quality", "85", "-f", "webp"]
    _ffmpeg(["-i", str(video), *codec, "-loop", "0", str(out)], f"{out}: could not be written")


def _ffmpeg(args: list[str], failure: str) -> None:
    """Run the bundled ffmpeg CLI; raise BadInputError(``failure (its last line)``) if it fails."""
    import subprocess

    import imageio_ffmpeg

    res = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
        raise BadInputError(f"{failure} ({last.split('] ')[-1][:120]})")


def mux_audio(video: Path, audio_source: Path, duration: float, index: int = 0, offset: float = 0.0) -> None:
    """Replace ``video`` by itself plus audio track ``index`` of ``audio_source`` (AAC), cut to ``duration`` s.

    ``offset``: seconds from ``audio_source``'s start to its first video frame, which ``video`` starts
    with: the audio before it is dropped, so sound and picture stay together (a driver whose audio
    started 0.5 s before its picture gave an output whose sound was 0.5 s late). The video stream is
    copied, so its per-frame timestamps (variable rate) are kept.
    """
    tmp = video.with_name(video.stem + ".mux" + video.suffix)
    try:
        _ffmpeg(["-i", str(video), *(["-ss", f"{offset:.6f}"] if offset > 0 else []), "-i", str(audio_source),
                 "-map", "0:v:0", "-map", f"1:a:{index}", "-c:v", "copy", "-c:a", "aac", "-t", f"{duration:.6f}",
                 "-movflags", "+faststart", str(tmp)], f"{audio_source}: could not mux its audio")
        os.replace(tmp, video)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
