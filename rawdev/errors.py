"""The exception hierarchy of rawdev.

Every error a user can cause is a :class:`RawdevError`. Each class carries the process exit code the
command-line interface returns for it, so the CLI maps errors to exit codes in one place and prints a
single line ``rawdev: <file>: <reason>`` without a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RawdevError",
    "UsageError",
    "InputError",
    "UnsupportedFileError",
    "CorruptFileError",
    "OutputError",
    "OutputExistsError",
    "BackendError",
    "UnknownBackendError",
    "WeightsError",
    "ClusterError",
    "printable",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C and SIGTERM alike (128 + SIGINT, as shells report Ctrl-C)


def printable(path: str | Path) -> str:
    """``path`` as it can be shown on one line: control characters (a newline in a file name) are
    written as escapes (``\\n``), everything else, non-ASCII letters included, as it is."""
    s = str(path)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


class RawdevError(Exception):
    """Base class: a failure with a file it concerns and a one-line reason."""

    exit_code: int = EXIT_FAILED

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = " ".join(str(reason).split())  # one line, always
        self.path = None if path is None else Path(path)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{printable(self.path)}: {self.reason}" if self.path is not None else self.reason


class UsageError(RawdevError):
    """The command line or the API call asks for something inconsistent."""

    exit_code = EXIT_USAGE


class InputError(RawdevError):
    """The input file is missing, unreadable, or not a file."""


class UnsupportedFileError(InputError):
    """The file is not a RAW format LibRaw knows, or a kind of RAW rawdev cannot develop."""


class CorruptFileError(InputError):
    """The file claims to be a RAW but its data are truncated or damaged."""


class OutputError(RawdevError):
    """The output cannot be written (folder not writable, disk full, same path as the input)."""


class OutputExistsError(OutputError):
    """The output exists and ``overwrite`` was not asked for."""


class BackendError(RawdevError):
    """A back-end cannot run on this input or this machine."""


class UnknownBackendError(BackendError, UsageError):
    """No back-end, demosaic method or option value of that name."""

    exit_code = EXIT_USAGE


class WeightsError(BackendError):
    """Weights are missing, damaged (checksum) or do not fit the network."""


class ClusterError(RawdevError):
    """The Dask cluster of ``rawdev batch --cluster`` cannot be reached or has no worker."""
