"""Image and video input/output: streaming, atomic, audio-preserving."""

from reenact.io.image import read_image, write_image
from reenact.io.video import VideoInfo, VideoReader, VideoWriter, atomic_output, probe_video

__all__ = ["read_image", "write_image", "VideoInfo", "VideoReader", "VideoWriter", "atomic_output", "probe_video"]
