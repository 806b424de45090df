"""`reenact preprocess INPUTS... --out DATA/`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from reenact.cli._common import console, user_errors
from reenact.cli.drive import FaceModel
from reenact.cli.score import Landmarks
from reenact.errors import BadInputError


class IdentityFrom(str, Enum):
    parent = "parent"
    grandparent = "grandparent"
    none = "none"


class ImageFormat(str, Enum):
    jpg = "jpg"
    png = "png"


def preprocess_command(
    inputs: list[Path] = typer.Argument(None, help="Video files, folders (searched recursively; a folder of images is one clip), or .txt/.lst files listing clips (used as listed: nothing is walked or stat-ed)."),
    out: Path = typer.Option(None, "--out", "-o", help="Dataset folder (created; re-runs skip finished clips)."),
    finalize: Path = typer.Option(None, "--finalize", metavar="DATA", help="Merge the manifest parts of every shard of DATA into its manifest (after a job array), then exit."),
    upgrade: Path = typer.Option(None, "--upgrade", metavar="DATA", help="Convert DATA written by reenact 0.1 (dataset layout 1) to this layout in place, then exit."),
    identity_from: IdentityFrom = typer.Option(IdentityFrom.parent, "--identity-from", help="Identity label: the clip's parent folder, grandparent (VoxCeleb id/video/clip.mp4), or none."),
    size: int = typer.Option(256, "--size", help="Crop resolution."),
    image_format: ImageFormat = typer.Option(ImageFormat.jpg, "--format", help="Frame files: jpg or png."),
    jpeg_quality: int = typer.Option(95, "--jpeg-quality", min=1, max=100, help="JPEG quality."),
    min_frames: int = typer.Option(8, "--min-frames", min=1, help="Skip clips with fewer frames with a face."),
    max_frames: int = typer.Option(None, "--max-frames", min=1, help="Read at most N frames per clip."),
    test_fraction: float = typer.Option(0.1, "--test-fraction", help="Fraction of identities held out as the test split."),
    split_csv: Path = typer.Option(None, "--split-csv", help="CSV with columns identity,split (train/test); overrides --test-fraction."),
    landmarks: Landmarks = typer.Option(Landmarks.auto, "--landmarks", help="68 landmarks: FAN when 2DFAN4 is present (auto), or MediaPipe-68."),
    face_model: FaceModel = typer.Option(FaceModel.mediapipe, "--face-model", help="Also fit FLAME per clip (needs the FLAME files)."),
    flame_dir: Path = typer.Option(None, "--flame-dir", help="Folder with generic_model.pkl and landmark_embedding.npy."),
    workers: int = typer.Option(1, "--workers", min=1, help="Parallel processes."),
    shard: str = typer.Option("0/1", "--shard", help="i/n: process only every n-th clip starting at i (spread over machines)."),
    retry_skipped: bool = typer.Option(False, "--retry-skipped", help="Look again at clips skipped by an earlier run."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
) -> None:
    """Turn talking-head videos into a training set: face crops, 68 landmarks and 3D geometry per frame."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reenact.data.preprocess import PreprocessOptions, preprocess

    if finalize is not None or upgrade is not None:
        return _maintenance(finalize, upgrade, test_fraction, split_csv)
    with user_errors():
        if not inputs or out is None:
            raise BadInputError("give INPUTS... and --out DATA (or --finalize DATA after sharded runs)")
        opts = PreprocessOptions(
            size=size, image_format=image_format.value, jpeg_quality=jpeg_quality, identity_from=identity_from.value,
            min_frames=min_frames, max_frames=max_frames, test_fraction=test_fraction,
            split_csv=str(split_csv) if split_csv else None, landmarks=landmarks.value, face_model=face_model.value,
            flame_dir=str(flame_dir) if flame_dir else None, weights_dir=str(weights_dir) if weights_dir else None,
            workers=workers, shard=_shard(shard), retry_skipped=retry_skipped)
        with Progress(TextColumn("preprocessing"), BarColumn(), MofNCompleteColumn(), TextColumn("clips"),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("clips", total=None)

            def progress(result, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
                if result.status in ("skipped", "failed") and "recorded earlier" not in result.reason:
                    bar.console.print(f"[yellow]{result.status}[/] {result.clip_id}: {result.reason}", soft_wrap=True)

            summary = preprocess(inputs, out, opts, progress)
    listed = (f"manifest lists {summary.manifest['clips']} clip(s) of {summary.manifest['identities']} "
              f"identit(y/ies)") if summary.manifest else \
        f"shard {opts.shard[0]}/{opts.shard[1]} part written; after every shard: reenact preprocess --finalize {out}"
    console.print(f"{out}: {summary.count('done')} clip(s) done ({summary.frames} frames), "
                  f"{summary.count('exists')} already done, {summary.count('skipped')} skipped, "
                  f"{summary.count('failed')} failed; {listed}", soft_wrap=True)
    for r in summary.results:
        if r.status in ("skipped", "failed"):
            console.print(f"  {r.status}: {r.clip_id}: {r.reason}", soft_wrap=True)
    if summary.count("failed"):  # a job array must see a failed task fail; skipped clips are policy
        raise typer.Exit(1)


def _maintenance(finalize: Path | None, upgrade: Path | None, test_fraction: float, split_csv: Path | None) -> None:
    """--finalize DATA or --upgrade DATA: work on an existing dataset instead of adding clips."""
    with user_errors():
        if finalize is not None and upgrade is not None:
            raise BadInputError("give --finalize DATA or --upgrade DATA, not both")
        if finalize is not None:
            _finalize(finalize, test_fraction, split_csv)
        else:
            _upgrade(upgrade)


def _finalize(data: Path, test_fraction: float, split_csv: Path | None) -> None:
    from reenact.data.preprocess import finalize

    _totals(data, finalize(data, test_fraction, str(split_csv) if split_csv else None))


def _totals(data: Path, manifest: dict, before: str = "") -> None:
    console.print(f"{data}: {before}manifest lists {manifest['clips']} clip(s) ({manifest['frames']} frames) of "
                  f"{manifest['identities']} identit(y/ies); {manifest['train']} train, {manifest['test']} test",
                  soft_wrap=True)


def _upgrade(data: Path) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reenact.data.upgrade import upgrade

    with Progress(TextColumn("upgrading"), BarColumn(), MofNCompleteColumn(), TextColumn("clips"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("clips", total=None)
        converted, manifest = upgrade(data, lambda done, total: bar.update(task, completed=done, total=total))
    _totals(data, manifest, f"{converted} clip(s) converted to dataset layout {manifest['version']}; ")


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BadInputError(f"--shard {text}: expected i/n, e.g. 0/4") from None
    return i, n
