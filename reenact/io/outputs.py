"""Where outputs go: refusal beats clobbering, and a file appears only when it is complete.

:func:`atomic_output` writes to a temporary file beside the target and renames it into place only on
success, so a failed or interrupted run never leaves a half-written file and never destroys an
existing one. Videos, images, reports, features and checkpoints are all written through it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path
from typing import Iterator

from reenact.errors import BadInputError, OutputError, OutputExistsError


def check_output(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing ``path`` unless ``force``; make sure its folder can be written
    (a file is made there and removed: a read-only folder or disk fails now, before models load)."""
    path = _not_existing(Path(path), force)
    os.unlink(_temporary(path, ".probe"))
    return path


def _temporary(path: Path, suffix: str) -> Path:
    """A new empty hidden file beside ``path`` (its folder made first); :class:`OutputError` if it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    os.close(fd)
    return Path(tmp)


def _not_existing(path: Path, force: bool) -> Path:
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists (use --force to overwrite)")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory")
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failure to write the temporary file (the disk full) is an :class:`OutputError` naming ``path``.
    Files a writer made beside it, named after it (a GIF's lossless first pass, audio muxing's copy),
    are removed with it.
    """
    path = Path(path)
    tmp_path = _temporary(_not_existing(path, force), f".partial{path.suffix}")  # its making tests the folder
    try:
        yield tmp_path
        _not_existing(path, force)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; a finished output gets the usual mode
        os.replace(tmp_path, path)
    except BaseException as exc:
        # A writer stopped midway may leave files named after ours beside it; finished writers remove
        # theirs, so the folder is searched only on failure (a feature cache holds thousands of files).
        for left in path.parent.glob(glob.escape(tmp_path.stem) + "*"):
            with contextlib.suppress(FileNotFoundError):
                left.unlink()
        if isinstance(exc, OSError) and str(exc.filename or "").startswith(str(tmp_path.with_suffix(""))):
            raise OutputError(f"{path}: could not be written ({exc.strerror or exc}); nothing was left there") from None
        raise
