"""The ReenactError family. Library code raises these; only ``reenact.cli`` prints and exits."""

from __future__ import annotations


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


class DeviceError(ReenactError):
    """The requested compute device is not available."""
