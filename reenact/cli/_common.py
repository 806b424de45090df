"""Shared CLI plumbing: one-line errors with exit code 1, the console."""

from __future__ import annotations

import contextlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from reenact.errors import ReenactError

console = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def user_errors():
    """Turn ReenactError (and Ctrl-C) into one red line on stderr and exit code 1; never a traceback."""
    try:
        yield
    except ReenactError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # permission denied, disk full, ...: the user's environment, not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(f"[bold red]error:[/] {escape(where + str(exc.strerror or exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: no output was written")
        raise typer.Exit(130) from None


def quiet_native_logs() -> None:
    """MediaPipe / TFLite write INFO lines to stderr from C++; keep them off the user's terminal."""
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
