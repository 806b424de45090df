"""The `reenact` Typer app. Only commands that work are registered."""

from __future__ import annotations

import typer

from reenact import __version__
from reenact.cli.drive import drive_command
from reenact.cli.preprocess import preprocess_command
from reenact.cli.score import score_command
from reenact.cli.train import train_command
from reenact.cli.weights import weights_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="One-shot face reenactment (Progressive Warping Module, BMVC 2022).")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reenact {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """One-shot face reenactment."""


app.command("preprocess")(preprocess_command)
app.command("train")(train_command)
app.command("drive")(drive_command)
app.command("score")(score_command)
app.add_typer(weights_app, name="weights")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
