"""Errors of sample files: one message naming the file, the graph and the problem, which the commands print as one
line (``sympe.diffusion.runs.options.user_errors``)."""
from __future__ import annotations

from typing import NoReturn

__all__ = ["SampleFileError", "SampleFileMissing", "fail"]


class SampleFileError(ValueError):
    """A sample file that cannot be read as asked; the message names the file, the graph and the problem.
    ``user_error``: the commands print it as one line (``sympe.diffusion.runs.options.user_errors``)."""

    user_error = True


class SampleFileMissing(FileNotFoundError):
    """``samples=`` names no file (``user_error`` as :class:`SampleFileError`)."""

    user_error = True


def fail(path, problem: str, expected: str | None = None) -> NoReturn:
    """Raise :class:`SampleFileError` ``"samples file '<path>': <problem>; expected <expected>"``."""
    msg = f"samples file {str(path)!r}: {problem}"
    if expected:
        msg += f"; expected {expected}"
    raise SampleFileError(msg)
