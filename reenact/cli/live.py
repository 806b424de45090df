"""`reenact live SOURCE`: animate a portrait from a camera in real time."""

from __future__ import annotations

from pathlib import Path

import typer

from reenact.cli._common import console, keep_freed_memory, user_errors
from reenact.cli.drive import Device, FaceModel, parse_face_index


def live_command(
    source: Path = typer.Argument(..., help="Source portrait (jpg/png/...): the face to animate."),
    camera: str = typer.Option("0", "--camera", metavar="INDEX|PATH|URL",
                               help="A camera index (0 = the first) or device (/dev/video0); a video file (paced at its own frame rate; the run ends at its end); or a stream URL (rtsp://..., a phone camera app's http://...)."),
    mirror: bool = typer.Option(None, "--mirror/--no-mirror", help="Flip the camera left to right, so the portrait moves as your reflection does (default: on for a camera index or device, off for a file or stream)."),
    window: bool = typer.Option(None, "--window/--no-window", help="Show a window (default: when a display exists). Keys: r new reference, q quit."),
    virtual_cam: bool = typer.Option(False, "--virtual-cam", help="Also send the output to a virtual camera (pyvirtualcam; v4l2loopback on Linux, OBS elsewhere)."),
    record: Path = typer.Option(None, "--record", help="Also record the output to this .mp4/.mov/.mkv, or an animated .gif/.webp (written atomically, at the real frame times)."),
    stats: Path = typer.Option(None, "--stats", help="Write fps, frames shown and dropped, and latency p50/p95/max to this JSON file."),
    size: int = typer.Option(None, "--size", help="Face crop resolution: 256 (default) or 512; with --checkpoint, the checkpoint's."),
    paste_back: bool = typer.Option(False, "--paste-back", help="Show the source's full frame with the face animated in place."),
    max_side: int = typer.Option(1280, "--max-side", metavar="PX", min=0, help="With --paste-back or --face-index all: scale the photo down to this longest side first, to keep up with the camera (0: its own size)."),
    face_index: str = typer.Option(None, "--face-index", metavar="N|all", help="Which source face (`reenact faces SOURCE` numbering), or all."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A reenact checkpoint: the PWM generator. Without one: the geometric warp."),
    face_model: FaceModel = typer.Option(None, "--face-model", help="3D face geometry backend (default: mediapipe, or the checkpoint's)."),
    flame_dir: Path = typer.Option(None, "--flame-dir", help="Folder with FLAME's generic_model.pkl and landmark_embedding.npy."),
    device: Device = typer.Option(Device.auto, "--device", help="auto, cpu or cuda."),
    reference_delay: float = typer.Option(None, "--reference-delay", metavar="S", help="Take the reference face again S seconds after the start."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
    force: bool = typer.Option(False, "--force", help="Overwrite --record / --stats files if they exist."),
) -> None:
    """Animate SOURCE live from a camera: to a window, a virtual camera or a recording."""
    from reenact.live_outputs import check_live_inputs

    with user_errors():  # paths and outputs first: before torch, the camera and the models
        opts = dict(camera=camera, mirror=mirror, window=window, virtual_cam=virtual_cam, record=_s(record), stats=_s(stats),
                           size=size, paste_back=paste_back, max_side=max_side, face_index=parse_face_index(face_index),
                           checkpoint=_s(checkpoint), face_model=face_model.value if face_model else None,
                           flame_dir=_s(flame_dir), weights_dir=_s(weights_dir), device=device.value,
                           reference_delay=reference_delay, force=force)
        check_live_inputs(source, **{k: opts[k] for k in ("record", "stats", "checkpoint", "window", "virtual_cam", "force", "camera")})
    keep_freed_memory()
    from reenact.live import LiveOptions, live

    with user_errors():
        result = live(source, LiveOptions(**opts), notify=lambda msg: console.print(f"[yellow]note:[/] {msg}", soft_wrap=True))
    lat = result.latency_ms
    console.print(f"live: {result.frames_shown} frames shown in {result.seconds:.1f} s ({result.fps:.1f} frames/s), "
                  f"{result.frames_dropped} dropped of {result.frames_captured} captured; latency p50 {lat['p50']} ms, "
                  f"p95 {lat['p95']} ms, max {lat['max']} ms; {result.frames_without_face} frame(s) without a face; "
                  f"{result.ended.split(':')[0]}" + (f"; recorded {record}" if record else "")
                  + (f"; stats in {stats}" if stats else ""), soft_wrap=True)
    if result.ended.startswith("camera lost"):
        raise typer.Exit(1)


def _s(p) -> str | None:
    return str(p) if p is not None else None
