"""The ReenactError family. Library code raises these; only ``reenact.cli`` prints and exits."""

from __future__ import annotations

import re


class ReenactError(Exception):
    """Base class of every error the CLI turns into one line and exit code 1."""


class BadInputError(ReenactError):
    """An input file is missing, unreadable, or not what it claims to be."""


class NoFaceError(ReenactError):
    """No face was found where one is required (the source, or every driver frame)."""


class MissingWeightsError(ReenactError):
    """A model file is absent. The message names the file, where it was looked for, and how to get it."""


class CorruptWeightsError(ReenactError):
    """A model file is present but its sha256 does not match the manifest."""


class OutputExistsError(ReenactError):
    """The output path exists and ``--force`` was not given."""


class OutputError(ReenactError):
    """An output cannot be written: its folder is read-only, or the disk is full."""


class DeviceError(ReenactError):
    """The requested compute device is not available."""


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(?=[^/])")  # two letters or more: not a Windows drive


def is_url(text: str) -> bool:
    """Whether ``text`` is a network address ("rtsp://cam/stream", "http://phone:8080/video"), not a path."""
    return "://" in text and _URL.match(text) is not None


def file_not_found(path) -> BadInputError:
    """The error for a missing input file. A web address is named as one: reenact reads local files
    (``Path`` has already folded its ``https://`` to ``https:/``)."""
    url = _URL.match(str(path))
    if url is not None:
        return BadInputError(f"{_URL.sub(url.group(1) + '://', str(path), count=1)}: is a web address; "
                             "reenact reads local files (download it first)")
    return BadInputError(f"{path}: file not found")
