"""`reenact drive SOURCE DRIVER -o OUT`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from reenact.cli._common import console, keep_freed_memory, user_errors
from reenact.errors import BadInputError


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class FaceModel(str, Enum):
    mediapipe = "mediapipe"
    flame = "flame"


def drive_command(
    source: Path = typer.Argument(..., help="Source portrait (jpg/png/...): the face to animate."),
    driver: Path = typer.Argument(..., help="Driving video (or an animated GIF, WebP or PNG, or a folder of frames at 25 frames/s): head pose and expression come from it."),
    output: Path = typer.Option(..., "-o", "--output", help="Output video: .mp4, .mov or .mkv, or an animated .gif or .webp (no sound); written atomically. The face crop, or the full frame with --paste-back."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="A reenact checkpoint (e.g. from `reenact weights import-official`). Without one: the geometric warp."),
    size: int = typer.Option(None, "--size", help="Face crop resolution: 256 (default) or 512; with --checkpoint, the checkpoint's."),
    relative: bool = typer.Option(True, "--relative/--absolute",
                                  help="Motion relative to the driver's first face frame (default), or the driver's absolute pose."),
    paste_back: bool = typer.Option(False, "--paste-back", help="Write the source's full resolution, face animated in place."),
    max_side: int = typer.Option(None, "--max-side", metavar="PX", min=1, help="With --paste-back or --face-index all: scale the photo down to this longest side first (faster, smaller video)."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Write \\[source | driver | output] panels side by side."),
    face_index: str = typer.Option(None, "--face-index", metavar="N|all",
                                   help="Which source face: its number in `reenact faces SOURCE` (0 = largest, the default), or all."),
    face_model: FaceModel = typer.Option(None, "--face-model", help="3D face geometry backend (default: mediapipe, or the checkpoint's)."),
    flame_dir: Path = typer.Option(None, "--flame-dir", help="Folder with FLAME 2020 generic_model.pkl and DECA's landmark_embedding.npy (--face-model flame)."),
    device: Device = typer.Option(Device.auto, "--device", help="auto, cpu or cuda."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
    find_best_frame: bool = typer.Option(False, "--find-best-frame",
                                         help="Relative motion from the driver frame closest to the source's pose and expression, not the first."),
    max_frames: int = typer.Option(None, "--max-frames", min=1, help="Only the first N driver frames (a quick preview)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Animate SOURCE with the head motion and expression of DRIVER."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reenact.io.inputs import check_drive_inputs

    with user_errors():  # before torch and the models load: a wrong path costs a fraction of a second
        check_drive_inputs(source, driver, output, force, checkpoint)
        index = parse_face_index(face_index)
    keep_freed_memory()
    from reenact.drive import DriveOptions, drive

    opts = DriveOptions(size=size, relative=relative, paste_back=paste_back, side_by_side=side_by_side,
                        face_index=index, face_model=face_model.value if face_model else None, flame_dir=str(flame_dir) if flame_dir else None, device=device.value, force=force,
                        weights_dir=str(weights_dir) if weights_dir else None, max_frames=max_frames,
                        checkpoint=str(checkpoint) if checkpoint else None, find_best_frame=find_best_frame,
                        max_side=max_side)
    with user_errors(), Progress(TextColumn("reenacting"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("drive", total=None)
        summary = drive(source, driver, output, opts,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                        notify=lambda msg: console.print(f"[yellow]note:[/] {msg}", soft_wrap=True))
    console.print(summary_line(summary), soft_wrap=True)


def parse_face_index(value: str | None) -> int | str | None:
    """--face-index: None, "all", or a face number >= 0."""
    if value is None or value == "all":
        return value
    if not value.isdigit():
        raise BadInputError(f"--face-index {value}: expected a face number (0, 1, ...) or all")
    return int(value)


def summary_line(s) -> str:
    """One line: what was written, how long it lasts, the processing speed, faceless frames, audio."""
    faceless = f"{s.frames_without_face} driver frame(s) without a face"
    if s.rejected:
        faceless += f" ({s.rejected} rejected as implausible)"
    return (f"wrote {s.output} ({s.size[0]}x{s.size[1]}, {s.frames} frame{'' if s.frames == 1 else 's'}, {s.duration:.2f} s"
            f"{', driver audio' if s.audio else ''}); processing speed {s.fps:.1f} frames/s; {faceless}")
