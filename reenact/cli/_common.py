"""Shared CLI plumbing: one-line errors with exit code 1, the console."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import re
import sys
import threading

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


# Native log lines that are not for the user: absl/glog INFO and WARNING records ("I0000 00:00:..."),
# TFLite/LiteRT INFO and WARNING lines, and absl's "before InitializeLog" banner. E and F records pass.
_NATIVE_NOISE = re.compile(r"^(?:[IW]\d{4} \d\d:\d\d:\d\d|INFO: |WARNING: (?:\[|Logging before|All log messages|"
                           r"Created TensorFlow))")
_FILTER: dict = {}


def keep_freed_memory() -> None:
    """Have glibc serve large blocks from the heap and keep them when freed, rather than map fresh
    pages for each and unmap them again: a CPU drive allocates and frees the same large tensors every
    batch, and each fresh mapping is faulted in page by page. With ``--paste-back`` on a 3048 × 2072
    photo that was a quarter of the time (32 frames of lp_d11: 18.8 → 13.7 s; peak memory 3.71 → 4.03
    GB, which then stays with the process until it exits). ``REENACT_MALLOC=system`` leaves glibc's
    policy alone; other C libraries are left alone. Set by ``drive`` and ``live`` only (they render
    frames on the CPU batch after batch), never on import: a library user's process keeps its own."""
    if os.environ.get("REENACT_MALLOC") == "system" or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's <malloc.h>
    mallopt(m_mmap_max, 0)  # no block gets its own mapping: all come from the heap and are reused
    mallopt(m_trim_threshold, 2**31 - 1)  # the heap's free top is not handed back (it would be faulted in again)


def is_native_noise(line: str) -> bool:
    """True for a MediaPipe / TensorFlow Lite / absl INFO or WARNING line (errors are never noise)."""
    return bool(_NATIVE_NOISE.match(line))


def quiet_native_logs() -> None:
    """Keep MediaPipe's and TFLite's C++ INFO/WARNING lines off the user's terminal; real errors still show.

    The C++ libraries write straight to file descriptor 2, whatever Python's logging says. So fd 2 becomes
    a pipe read by a daemon thread that forwards every other line to the real stderr; Python's own
    ``sys.stderr`` (rich's console and progress bars) is re-pointed at the real stderr so it keeps its
    terminal. Installed once per process by the CLI; undone at exit after the pipe is drained.
    """
    if _FILTER or os.environ.get("REENACT_NATIVE_LOGS") == "1":
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # camera probing logs [ WARN ] lines; our own message says it
    os.environ.setdefault("OPENCV_VIDEOIO_PRIORITY_OBSENSOR", "0")
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(real), "wb", buffering=0), encoding=sys.stderr.encoding or "utf-8",
                                  errors="backslashreplace", line_buffering=True)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace")
                if not is_native_noise(line):
                    os.write(real, raw)

    thread = threading.Thread(target=forward, name="reenact-native-logs", daemon=True)
    thread.start()
    _FILTER.update(real=real, thread=thread)
    atexit.register(_restore_stderr)


def _restore_stderr() -> None:
    """Put the real stderr back on fd 2 (closing the pipe's last writer) and let the filter drain."""
    sys.stderr.flush()
    os.dup2(_FILTER["real"], 2)
    _FILTER["thread"].join(timeout=2)
