"""Streaming video input over PyAV (FFmpeg's own libraries). Memory stays constant in the video's length.

**Why PyAV.** imageio-ffmpeg's pipe reader asks the ffmpeg CLI for a constant-rate stream at the
container's nominal rate: a variable-frame-rate phone clip (101 stored frames over 7.2 s, "30 tbr")
comes out as 216 frames, duplicates included, and nothing says when each was shown. PyAV decodes the
stored frames themselves, each with its presentation timestamp, and exposes the display matrix that
phones use for portrait video. (imageio's ``pyav`` plugin wraps the same library but hides the
timestamps we need, so we use PyAV directly.)

**Time.** :meth:`VideoReader.timed` yields every stored frame once with its time in seconds from the
stream's start. Frames are never duplicated or dropped to reach a nominal rate. Timestamps that do
not advance by :data:`MIN_STEP` (a broken muxer's: all zero, or reordered garbage) are replaced: such
a frame is shown one nominal frame period after the one before.

**Geometry.** A display matrix (phones' portrait video) is applied on decode, as the ffmpeg CLI
does (with its filters), non-square pixels are made square and interlaced frames deinterlaced:
``VideoInfo.size`` is the upright, square-pixel size the frames come out at.

**Colour.** Frames come out as BT.709 RGB as a player shows them on an SDR screen: untagged HD video
is read with BT.709's matrix, and HDR video (HLG, PQ) is tone-mapped. Both, and the geometry, are
:mod:`reenact.io.video_frames`'s.

Animated images (WebP, APNG) and folders of frames are read as videos by
:mod:`reenact.io.image_sequence`. Writing is :mod:`reenact.io.video_writer`'s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from reenact.errors import BadInputError, file_not_found, is_url
from reenact.io.image import IMAGE_SUFFIXES
from reenact.io.image_sequence import (ANIMATION_SUFFIXES, FOLDER_FPS, probe_animation, probe_folder,
                                       sequence_frames)
from reenact.io.video_frames import FrameConverter, square_width

VIDEO_SUFFIXES = frozenset({  # inputs read as videos (what a folder given to preprocess or score is searched for)
    ".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v",
    ".mts", ".m2ts", ".ts", ".3gp", ".3g2", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv",  # camcorders, old phones
    ".h264", ".264", ".h265", ".hevc",  # raw streams: Raspberry Pi cameras, dashcams
    ".gif"})  # animated GIFs (FFmpeg reads them; animated WebP and PNG are image_sequence's)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    size: (width, height) as displayed (after rotation, in square pixels). fps: the average rate,
    stored frames / duration. n_frames: stored frames (an estimate where the container has no index).
    duration: seconds. rotation: degrees counter-clockwise applied on decode (0, 90, 180, 270).
    pixel_aspect: the stored pixels' aspect (SAR), undone on decode.
    """

    path: Path | str  # a str for a network stream (``probe_video(..., stream=True)``)
    size: tuple[int, int]
    fps: float
    n_frames: int
    audio_codec: str | None
    duration: float = 0.0
    rotation: int = 0
    audio_duration: float | None = None
    audio_index: int = 0  # which audio stream (of the container's audio streams) is carried
    stream: int = 0  # the video stream's index in the container (undecodable ones skipped)
    audio_note: str | None = None  # why an audio track present is not carried, else None
    pixel_aspect: Fraction = Fraction(1)
    kind: str = "video"  # "video" (FFmpeg), "animation" (an animated WebP or PNG) or "frames" (a folder)
    video_offset: float = 0.0  # seconds from the file's start (its earliest stream) to the first frame


class TimedFrame(NamedTuple):
    """One stored frame: its index, its presentation time in seconds, and the (H, W, 3) uint8 RGB image."""

    index: int
    time: float
    image: np.ndarray


def _av_reason(exc: Exception) -> str:
    """FFmpeg's own sentence for a failure ("Invalid data found when processing input"), no codes."""
    reason = getattr(exc, "strerror", None) or str(exc).split(":")[0]
    return str(reason).strip().rstrip(".")[:120] or "unreadable"


MAX_FPS = 1000.0  # no camera stores more frames a second (slow motion: 240): beyond, the timestamps are broken
MIN_STEP = 1 / MAX_FPS  # seconds a frame's timestamp must advance by to be believed
STREAM_TIMEOUT = 10.0  # seconds a network stream may take to open, and to deliver each packet


def _open(path: Path | str):
    import av

    options = {"timeout": STREAM_TIMEOUT} if isinstance(path, str) else {}  # a stream: never wait forever
    if int(av.__version__.split(".")[0]) < 19:  # PyAV 19 (Python 3.12+) reads metadata as UTF-8 with
        options["metadata_errors"] = "ignore"  # surrogateescape, and has no such argument: it was a TypeError
    try:
        return av.open(str(path), **options)
    except av.FFmpegError as exc:
        what = "cannot be opened" if isinstance(path, str) else "not a readable video"
        raise BadInputError(f"{path}: {what} ({_av_reason(exc)})") from None


def _seconds(value, time_base) -> float | None:
    return float(value * time_base) if value is not None and time_base is not None else None


def _rotation_of(container, stream) -> int:
    """Degrees counter-clockwise that make the first frame upright (its display matrix), or 0."""
    import av

    try:
        frame = next(container.decode(stream))
    except (StopIteration, av.FFmpegError):
        return 0
    return int(round((frame.rotation or 0) / 90.0)) % 4 * 90


def probe_video(path: str | Path, stream: bool = False) -> VideoInfo:
    """Read the header of ``path``. Raises :class:`BadInputError` if it is not a decodable video.

    ``stream``: ``path`` may also be a network address (an IP camera's RTSP, a phone's MJPEG over
    HTTP), given as a str; a live one has no duration (``duration`` 0, ``n_frames`` 0).
    """
    if stream and is_url(str(path)):
        path = str(path)
    else:
        path = Path(path)
        if path.is_dir():  # a folder of frames
            size, n = probe_folder(path)
            return VideoInfo(path, size, FOLDER_FPS, n, None, n / FOLDER_FPS, kind="frames")
        if not path.is_file():
            raise file_not_found(path)
        if path.stat().st_size == 0:
            raise BadInputError(f"{path}: file is empty")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return _probe_image(path)
    with _open(path) as c:
        s = _main_video(c, path)
        duration = _seconds(s.duration, s.time_base) or (c.duration / 1e6 if c.duration else 0.0)
        n = s.frames or int(round(duration * float(s.average_rate or s.guessed_rate or 25)))
        audio, audio_index, audio_note = _decodable_audio(c.streams.audio)
        a_dur = _seconds(audio.duration, audio.time_base) if audio is not None else None
        rotation = _rotation_of(c, s)
        # Read while the file is open: a closed container's streams hold stale values.
        # Without a duration (a raw .h264 stream, a live stream) the rate is FFmpeg's guess, which reads
        # the stream's own timing (an H.264 SPS), where the average is a default 25.
        rate = s.average_rate if duration else (s.guessed_rate or s.average_rate)
        w, h, index, nominal = s.codec_context.width, s.codec_context.height, s.index, float(rate or 25)
        guess = float(s.guessed_rate or 25)
        pixel_aspect = _pixel_aspect(s.sample_aspect_ratio)
        first = _seconds(s.start_time, s.time_base)
        offset = max(0.0, first - c.start_time / 1e6) if first is not None and c.start_time is not None else 0.0
        audio_codec = audio.codec_context.codec.canonical_name if audio is not None else None
    if not w or not h:
        raise BadInputError(f"{path}: no decodable video stream")
    w = square_width(w, pixel_aspect) if pixel_aspect != 1 else w
    if rotation in (90, 270):
        w, h = h, w
    fps = n / duration if duration > 0 and n > 1 else nominal
    if fps > MAX_FPS:  # the stored timestamps are broken: the codec's own rate, and the duration it gives
        fps = guess if guess <= MAX_FPS else 25.0
        duration = n / fps
    return VideoInfo(path, (w, h), fps, n, audio_codec, duration, rotation, a_dur,
                     audio_index=audio_index, audio_note=audio_note, stream=index, pixel_aspect=pixel_aspect,
                     video_offset=offset)


def _probe_image(path: Path) -> VideoInfo:
    """An animated image (:mod:`reenact.io.animation`) as a video; a still image is refused."""
    found = probe_animation(path) if path.suffix.lower() in ANIMATION_SUFFIXES else None
    if found is None:
        raise BadInputError(f"{path}: is a still image; a driver must be a video or an animated image "
                            "(GIF, WebP, PNG)")
    size, n, duration = found
    return VideoInfo(path, size, n / duration, n, None, duration, kind="animation")


def _pixel_aspect(sar) -> Fraction:
    """The stream's sample aspect ratio (FFmpeg's guess from container and codec) as a Fraction; 1 where
    unset (PyAV 18 gives None, 19 gives 0/1) or implausible (beyond 1:4 to 4:1, a broken header)."""
    if sar is None or sar.numerator <= 0 or sar.denominator <= 0:
        return Fraction(1)
    value = Fraction(int(sar.numerator), int(sar.denominator))
    return value if Fraction(1, 4) <= value <= 4 else Fraction(1)


def _codec_tag(stream) -> str:
    """" (fourcc)" of a stream FFmpeg cannot decode, for the user ("apac"); "" where it has none (MKV)."""
    tag = str(getattr(stream, "codec_tag", None) or "").strip()
    return f" ({tag})" if tag and tag.isprintable() else ""


ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: a "video" stream that is a still cover picture


def _main_video(container, path: Path):
    """The video stream to read: the first that FFmpeg can decode (a codec it does not know has no
    ``codec_context``) and that is not a cover picture. A music file (MP3, M4A) has only a cover: it is
    named as sound, not read as a one-frame video (it was, and a drive from a song wrote 0.04 s)."""
    streams = [s for s in container.streams.video if not int(s.disposition or 0) & ATTACHED_PIC]
    if not streams:
        cover = " and a cover picture" if container.streams.video else ""
        if container.streams.audio:
            raise BadInputError(f"{path}: has no video, only sound{cover}; a driver must be a video of a face "
                                "(reenact does not animate from sound)")
        raise BadInputError(f"{path}: no video stream")
    for stream in streams:
        if stream.codec_context is not None:
            return stream
    raise BadInputError(f"{path}: its video codec{_codec_tag(streams[0])} cannot be decoded here")


def _decodable_audio(streams) -> tuple[object | None, int, str | None]:
    """The first audio stream FFmpeg can decode, its index among ``streams``, and a note when there
    are audio streams but none it can (an unknown codec: its ``codec_context`` is None)."""
    for k, stream in enumerate(streams):
        if stream.codec_context is not None:
            return stream, k, None
    if not streams:
        return None, 0, None
    return None, 0, f"its audio track's codec{_codec_tag(streams[0])} cannot be decoded here; the output has no sound"


class VideoReader:
    """Iterate the stored frames of a video, upright, as (H, W, 3) uint8 RGB arrays, one at a time.

    :meth:`timed` gives each frame's presentation time too. ``loops`` > 1 replays the file that many
    times (the long-video memory benchmark); times then keep increasing across loops.
    """

    def __init__(self, path: str | Path, loops: int = 1, info: VideoInfo | None = None):
        self.info = info if info is not None else probe_video(path)  # ``info``: already probed
        self.loops = loops
        self.incomplete: str | None = None  # after a pass: why it ended early (a truncated file), else None

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.timed():
            yield frame.image

    def timed(self) -> Iterator[TimedFrame]:
        """Every stored frame once (per loop), with its time in seconds from the stream's start."""
        index = 0
        for loop in range(self.loops):
            offset = loop * self.info.duration
            info = self.info
            frames = self._decoded() if info.kind == "video" else sequence_frames(info.path, info.kind, info.size)
            for t, image in frames:
                yield TimedFrame(index, offset + t, image)
                index += 1

    def _decoded(self) -> Iterator[tuple[float, np.ndarray]]:
        """One pass over the file through FFmpeg: (time, image) of every stored frame."""
        import av

        with _open(self.info.path) as c:
            s = next(v for v in c.streams.video if v.index == self.info.stream)
            s.thread_type = "AUTO"
            # Upright, square-pixel, deinterlaced BT.709 RGB, HDR tone-mapped to SDR.
            to_rgb = FrameConverter(self.info.rotation, self.info.pixel_aspect)
            start, last, n = s.start_time or 0, -1.0, 0
            times: deque[float] = deque()  # of frames fed to to_rgb and not yet out (it may hold one)
            try:
                for frame in c.decode(s):
                    if frame.pts is not None:
                        t = float((frame.pts - start) * s.time_base)
                    else:  # no timestamps (a raw .h264 stream): one frame period apart, from 0
                        t = last + 1 / self.info.fps if last >= 0 else 0.0
                    last = t if t >= last + MIN_STEP else last + 1 / self.info.fps  # see "Time" above
                    times.append(last)
                    for image in to_rgb.convert(frame):
                        yield times.popleft(), image
                        n += 1
                for image in to_rgb.flush():
                    yield times.popleft(), image
                    n += 1
            except av.FFmpegError as exc:
                if isinstance(self.info.path, str):  # a network stream
                    raise BadInputError(f"{self.info.path}: the stream broke off ({_av_reason(exc)})") from None
                raise BadInputError(f"{self.info.path}: decoding failed after {n} frame(s) "
                                    f"({_av_reason(exc)})") from None
            # The index lists many more frames than the file holds (edit lists and dropped samples
            # account for a few): the file was cut off.
            if s.frames and n < 0.9 * s.frames - 1:
                self.incomplete = f"the file ends after {n} of its {s.frames} frames (truncated)"
