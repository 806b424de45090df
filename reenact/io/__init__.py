"""Image and video input/output: streaming, atomic, audio-preserving."""

from reenact.io.image import read_image, write_image
from reenact.io.outputs import atomic_output, check_output
from reenact.io.video import VideoInfo, VideoReader, probe_video
from reenact.io.video_writer import VideoWriter

__all__ = ["read_image", "write_image", "VideoInfo", "VideoReader", "VideoWriter", "atomic_output", "check_output", "probe_video"]
