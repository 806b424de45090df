"""`reenact weights`: which model files are present, which are missing, and how to get them."""

from __future__ import annotations

from pathlib import Path

import typer

from reenact.cli._common import user_errors


def weights_command(
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search first."),
    verify: bool = typer.Option(False, "--verify", help="Check sha256 of present files with a known checksum."),
) -> None:
    """List every model file reenact uses, where it was found, or how to obtain it."""
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
        if r["sha256"] not in ("-",):
            status += f" (sha256 {r['sha256']})"
        table.add_row(r["file"], status, r["purpose"], r["path"] or r["how"], r["licence"])
    console = Console()
    console.print(table)
    console.print("searched: " + ", ".join(str(d) for d in weights.search_dirs(weights_dir)))
