"""`reenact drive SOURCE DRIVER -o OUT`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from reenact.cli._common import console, quiet_native_logs, user_errors


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class FaceModel(str, Enum):
    mediapipe = "mediapipe"
    flame = "flame"


def drive_command(
    source: Path = typer.Argument(..., help="Source portrait (jpg/png/...): the face to animate."),
    driver: Path = typer.Argument(..., help="Driving video: head pose and expression come from it."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 (written atomically)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A reenact checkpoint (e.g. from `reenact weights import-official`). Without one: the geometric warp."),
    size: int = typer.Option(None, "--size", help="Face crop resolution: 256 (default) or 512; with --checkpoint, the checkpoint's."),
    relative: bool = typer.Option(True, "--relative/--absolute",
                                  help="Motion relative to the driver's first face frame (default), or the driver's absolute pose."),
    paste_back: bool = typer.Option(False, "--paste-back", help="Write the source's full resolution, face animated in place."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Write \\[source | driver | output] panels side by side."),
    face_index: int = typer.Option(None, "--face-index", help="Which source face, 0 = largest (default)."),
    face_model: FaceModel = typer.Option(None, "--face-model", help="3D face geometry backend (default: mediapipe, or the checkpoint's)."),
    flame_dir: Path = typer.Option(None, "--flame-dir", help="Folder with FLAME 2020 generic_model.pkl and DECA's landmark_embedding.npy (--face-model flame)."),
    device: Device = typer.Option(Device.auto, "--device", help="auto, cpu or cuda."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
    max_frames: int = typer.Option(None, "--max-frames", min=1, help="Only the first N driver frames (a quick preview)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Animate SOURCE with the head motion and expression of DRIVER."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reenact.drive import DriveOptions, drive

    quiet_native_logs()
    opts = DriveOptions(size=size, relative=relative, paste_back=paste_back, side_by_side=side_by_side,
                        face_index=face_index, face_model=face_model.value if face_model else None, flame_dir=str(flame_dir) if flame_dir else None, device=device.value, force=force,
                        weights_dir=str(weights_dir) if weights_dir else None, max_frames=max_frames,
                        checkpoint=str(checkpoint) if checkpoint else None)
    with user_errors(), Progress(TextColumn("reenacting"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("drive", total=None)
        summary = drive(source, driver, output, opts,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                        notify=lambda msg: console.print(f"[yellow]note:[/] {msg}"))
    console.print(f"wrote {summary.output} ({summary.size[0]}x{summary.size[1]}): {summary.frames} frames, "
                  f"{summary.fps:.1f} fps, {summary.frames_without_face} driver frame(s) without a face"
                  f"{', driver audio muxed' if summary.audio else ''}")
