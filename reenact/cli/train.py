"""`reenact train --config CFG --data DATA/ --out RUN/ [--set a.b=v]... [--resume] [--init-from CKPT]`."""

from __future__ import annotations

from pathlib import Path

import typer

from reenact.cli._common import console, user_errors


def train_command(
    config: str = typer.Option(None, "--config", "-c", metavar="NAME|FILE",
                               help="A bundled config's name (tiny, paper_geom_disp, ...: see --list-configs) or a YAML file. With --resume, defaults to RUN/config.yaml."),
    data: Path = typer.Option(None, "--data", help="A `reenact preprocess` output folder."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder: checkpoints/, samples/, metrics.jsonl, config.yaml."),
    list_configs: bool = typer.Option(False, "--list-configs", help="List the bundled configs and exit."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set train.lr=1e-4 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in RUN."),
    init_from: Path = typer.Option(None, "--init-from", help="Start from a reenact checkpoint's weights (e.g. an imported official one)."),
    device: str = typer.Option("auto", "--device", metavar="auto|cpu|cuda",
                               help="auto (CUDA when available, else CPU: fine for the tiny config), cuda or cpu."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files (VGG-19) first."),
    dump_rank_state: Path = typer.Option(None, "--dump-rank-state", hidden=True),
) -> None:
    """Train the PWM model (one GPU, or several with torchrun --nproc_per_node=N -m reenact train ...)."""
    from reenact.config import bundled_configs, resolve_config
    from reenact.errors import BadInputError
    from reenact.io.inputs import check_exists, check_file

    if list_configs:
        for name, path in bundled_configs().items():
            console.print(f"{name:24s} {_config_summary(path)}", soft_wrap=True)
        return
    rank0 = _rank() == 0
    with user_errors():  # the paths first: before torch loads
        if data is None or out is None:
            raise BadInputError("--data and --out are required (see reenact train --help)")
        if config is None and resume and (out / "config.yaml").is_file():
            config = str(out / "config.yaml")
        if config is None:
            raise BadInputError("--config is required: a bundled name (tiny, paper_geom_disp, ...; see --list-configs) or a file")
        if resume and init_from:
            raise BadInputError("--resume and --init-from exclude each other")
        config = resolve_config(config)
        check_exists(data, "data folder")
        check_file(init_from, "--init-from checkpoint")
        from reenact.config import load_config
        from reenact.train.loop import TrainOptions, train

        cfg = load_config(config, overrides)
        opts = TrainOptions(cfg, str(data), str(out), device, resume, str(init_from) if init_from else None,
                            str(weights_dir) if weights_dir else None, str(dump_rank_state) if dump_rank_state else None)
        result = _run_with_progress(train, opts, rank0)
    if rank0:
        how = "stopped by signal" if result.interrupted else "finished"
        console.print(f"{how} at step {result.step}: checkpoint {result.checkpoint}"
                      + (f"; {result.nan_skipped} non-finite step(s) skipped" if result.nan_skipped else ""), soft_wrap=True)


def _run_with_progress(train, opts, rank0: bool):
    """Run ``train`` with a progress bar (steps, rate, the latest G and D totals) on rank 0."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    def notify(msg: str) -> None:
        if rank0:
            console.print(f"[yellow]note:[/] {msg}", soft_wrap=True)

    if not rank0:
        return train(opts, notify=notify)
    with Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[losses]}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("train", total=opts.config.train.steps, losses="")

        def progress(step: int, total: int, terms: dict | None) -> None:
            losses = {"losses": f"G {terms['g_total']:.3f} D {terms['d_total']:.3f}"} if terms else {}
            bar.update(task, completed=step, total=total, **losses)  # losses only on logging steps: no sync

        return train(opts, notify=notify, progress=progress)


def _config_summary(path: Path) -> str:
    """The first sentence of a bundled config's leading comment: what it is for."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    return (text.split(". ")[0].rstrip(".") + ".") if text else str(path)


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))
