"""Where outputs go: refusal beats clobbering, and a file appears only when it is complete.

:func:`atomic_output` writes to a temporary file beside the target and renames it into place only on
success, so a failed or interrupted run never leaves a half-written file and never destroys an
existing one. Videos, images, reports, features and checkpoints are all written through it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from reenact.errors import BadInputError, OutputExistsError


def check_output(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing ``path`` unless ``force``; make sure its folder can be written."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists (use --force to overwrite)")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = check_output(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        check_output(path, force)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; a finished output gets the usual mode
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
