"""The `reenact` Typer app. Only commands that work are registered."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from reenact import __version__
from reenact.cli._common import console, quiet_native_logs
from reenact.cli.drive import drive_command
from reenact.cli.evaluate import evaluate_command
from reenact.cli.faces import faces_command
from reenact.cli.live import live_command
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


COMMANDS = {  # name: (function, one example for its --help)
    "preprocess": (preprocess_command, "reenact preprocess vox/dev/mp4 --out data/vox --identity-from grandparent --workers 8"),
    "train": (train_command, "reenact train --config paper_geom_disp --data data/vox --out runs/geom"),
    "drive": (drive_command, "reenact drive face.jpg driver.mp4 -o out.mp4 --paste-back"),
    "faces": (faces_command, "reenact faces group.jpg --annotate faces.png"),
    "live": (live_command, "reenact live face.jpg --camera 0 --virtual-cam"),
    "score": (score_command, "reenact score generated/ --reference ground_truth/ --json scores.json"),
    "evaluate": (evaluate_command, "reenact evaluate data/vox --out eval/ --checkpoint runs/geom/checkpoints/last.pt --every 4"),
}
for _name, (_function, _example) in COMMANDS.items():
    app.command(_name, epilog=f"Example: {_example}")(_function)
app.add_typer(weights_app, name="weights", epilog="Example: reenact weights --verify")


def _tidy_help(command) -> None:
    """Help in the user's words: ``SOURCE DRIVER`` in the usage line, value names (FILE, N, a|b) instead
    of Python types such as ``<bool>`` or ``<list[Path]>``, and nothing after on/off flags."""
    # Typer 0.29 renders arguments as ``{SOURCE}`` with a ``<path>`` type and every option with a Python
    # type; these instance-level overrides keep its layout and change only the words.
    help_option = command.get_help_option

    def quiet_help_option(ctx):
        opt = help_option(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    command.get_help_option = quiet_help_option
    for param in command.params:
        if param.metavar is not None:
            continue
        if param.param_type_name == "argument":
            name = param.name.upper() + ("..." if param.nargs == -1 else "")
            param.metavar = name
            param._usage_display_name = lambda name=name, required=param.required: name if required else f"[{name}]"
            param.display_type_rich = lambda ctx: None
            continue
        desc = param.type_descriptor
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif desc.is_choice:
            param.metavar = "|".join(str(getattr(c, "value", c)) for c in desc.choices)
        elif desc.is_path:
            param.metavar = "PATH"
        else:
            param.metavar = {int: "N", float: "X"}.get(desc.annotation, "TEXT")
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


# click's UsageError (BadParameter's base), wherever this Typer keeps click: Typer 0.29 vendors it.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def main() -> None:
    """Run the CLI. A usage error (a missing argument, an unknown option, a value out of range) is one
    line and exit code 1, as every other bad input; click's default is a boxed message and code 2."""
    quiet_native_logs()
    command = typer.main.get_command(app)
    _tidy_help(command)
    try:
        code = command.main(prog_name="reenact", standalone_mode=False)
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `reenact` alone: its help, as click shows it
            typer.echo(exc.ctx.get_help())
            code = 0
        else:
            where = exc.ctx.command_path if exc.ctx else "reenact"
            message = exc.format_message().replace("Value error, ", "")  # Typer's pydantic-style prefix
            console.print(f"[bold red]error:[/] {escape(message)} (see `{where} --help`)", soft_wrap=True)
            code = 1
    except typer.Abort:  # Ctrl-C outside a command's own handling
        console.print("[bold red]interrupted[/]")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
