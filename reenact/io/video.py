"""Streaming video I/O over imageio-ffmpeg. Memory stays constant in the video's length.

Outputs are written to a temporary file beside the target and renamed into place only on
success (:func:`atomic_output`), so a failed or interrupted run never leaves a half-written file
and never destroys an existing one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from reenact.errors import BadInputError, OutputExistsError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})  # inputs read as videos


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video: pixel size (width, height), fps, frame estimate, audio."""

    path: Path
    size: tuple[int, int]
    fps: float
    n_frames: int
    audio_codec: str | None


def _ffmpeg_reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Invalid data" in ln or "moov atom" in ln or "Error" in ln]
    return (useful or lines or [exc.__class__.__name__])[-1][:160]


def probe_video(path: str | Path) -> VideoInfo:
    """Read the header of ``path``. Raises :class:`BadInputError` if it is not a decodable video."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: file is empty")
    gen = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise BadInputError(f"{path}: not a readable video ({_ffmpeg_reason(exc)})") from None
    finally:
        gen.close()
    if not meta.get("size") or not meta.get("fps"):
        raise BadInputError(f"{path}: no video stream")
    fps = float(meta["fps"])
    return VideoInfo(path, tuple(meta["size"]), fps, int(round(float(meta.get("duration") or 0) * fps)),
                     meta.get("audio_codec"))


class VideoReader:
    """Iterate the frames of a video as (H, W, 3) uint8 RGB arrays, one at a time.

    ``loops`` > 1 replays the file that many times (used by the long-video memory benchmark).
    """

    def __init__(self, path: str | Path, loops: int = 1):
        self.info = probe_video(path)
        self.loops = loops

    def __iter__(self) -> Iterator[np.ndarray]:
        import imageio_ffmpeg

        w, h = self.info.size
        for _ in range(self.loops):
            gen = imageio_ffmpeg.read_frames(str(self.info.path))
            try:
                next(gen)
                for buf in gen:
                    yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            except RuntimeError as exc:
                raise BadInputError(f"{self.info.path}: decoding failed ({_ffmpeg_reason(exc)})") from None
            finally:
                gen.close()


class VideoWriter:
    """Encode RGB frames to H.264 mp4 at ``fps``; mux the audio of ``audio_from`` if it has any.

    Frames must all have the same even width and height (yuv420p needs even sizes). Audio is muxed
    after the last frame (:func:`mux_audio`), cut to the video's exact duration, so the video keeps
    every frame even when the audio track is a little shorter.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float,
                 audio_from: VideoInfo | None = None, quality: float = 8.0):
        import imageio_ffmpeg

        w, h = size
        if w % 2 or h % 2:
            raise ValueError(f"frame size must be even, got {w}x{h}")
        self.path, self.size, self.fps, self.n_frames = Path(path), (w, h), fps, 0
        self._audio = audio_from if audio_from is not None and audio_from.audio_codec else None
        self._gen = imageio_ffmpeg.write_frames(
            str(self.path), (w, h), fps=fps, codec="libx264", quality=quality, macro_block_size=1,
            ffmpeg_log_level="error", output_params=["-movflags", "+faststart"])
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame."""
        if frame.shape[1::-1] != self.size:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, writer expects {self.size}")
        self._gen.send(np.ascontiguousarray(frame, dtype=np.uint8))
        self.n_frames += 1

    def close(self) -> None:
        if self._gen is None:
            return
        self._gen.close()
        self._gen = None
        if self._audio is not None and self.n_frames:
            mux_audio(self.path, self._audio.path, self.n_frames / self.fps)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mux_audio(video: Path, audio_source: Path, duration: float) -> None:
    """Replace ``video`` by itself plus the first audio track of ``audio_source`` (AAC), cut to ``duration`` s."""
    import subprocess

    import imageio_ffmpeg

    tmp = video.with_name(video.stem + ".mux" + video.suffix)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(video), "-i", str(audio_source),
           "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-t", f"{duration:.6f}",
           "-movflags", "+faststart", str(tmp)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise BadInputError(f"{audio_source}: could not mux its audio ({res.stderr.strip()[-160:]})")
        os.replace(tmp, video)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def check_output(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing ``path`` unless ``force``; make sure its folder can be written."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists (use --force to overwrite)")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = check_output(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        check_output(path, force)
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
