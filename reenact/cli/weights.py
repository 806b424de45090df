"""`reenact weights`: which model files are present, which are missing, and how to get them;
`reenact weights import-official FILE -o OUT.pt`: convert an authors' checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from reenact.cli._common import console, user_errors

weights_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                          help="List model files (present / missing / how to get them); import official checkpoints.")


@weights_app.callback()
def weights_command(
    ctx: typer.Context,
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search first."),
    verify: bool = typer.Option(False, "--verify", help="Check sha256 of present files with a known checksum."),
) -> None:
    """List every model file reenact uses, where it was found, or how to obtain it."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from reenact import weights

    with user_errors():
        rows = weights.status(weights_dir, verify=verify)
    table = Table(title="reenact model files", show_lines=False)
    for col in ("file", "status", "used for", "path / how to get it", "licence"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = "[green]present[/]" if r["present"] else "[red]missing[/]"
        if r["sha256"] != "-":
            status += f" (sha256 {r['sha256']})"
        table.add_row(r["file"], status, r["purpose"], r["path"] or r["how"], r["licence"])
    out = Console()
    out.print(table)
    out.print("searched: " + ", ".join(str(d) for d in weights.search_dirs(weights_dir)))
    bad = [r for r in rows if r["sha256"] == "MISMATCH"]
    for r in bad:
        console.print(f"[bold red]error:[/] {r['path']}: checksum mismatch for {r['file']}; remove or replace it",
                      soft_wrap=True)
    if bad:
        raise typer.Exit(1)


@weights_app.command("import-official")
def import_official_command(
    file: Path = typer.Argument(..., help="The authors' PWM_<guidance>.pth."),
    output: Path = typer.Option(..., "-o", "--output", help="The reenact checkpoint to write (.pt)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Convert an official PWM checkpoint into a reenact checkpoint (spectral norm folded, keys mapped)."""
    from reenact.models.checkpoint import import_official

    with user_errors():
        report = import_official(file, output, force=force)
    reasons: dict[str, int] = {}
    for reason in report.dropped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    console.print(f"wrote {output}: guidance {report.guidance}, {report.placed} tensors placed, "
                  f"{report.folded} spectral-norm convs folded, discriminator "
                  f"{'converted' if report.discriminator else 'absent'}, step {report.step}")
    for reason, n in sorted(reasons.items()):
        console.print(f"  dropped {n} key(s): {reason}")
    if report.guidance != "geom_disp":
        console.print(f"[yellow]note:[/] {report.guidance} needs FLAME geometry (--face-model flame) to drive")
