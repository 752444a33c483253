"""Whether to draw progress bars, and a bar over an iterable that follows that rule (no Lightning here).

Bars are drawn on a terminal only: output redirected to a file or a pipe gets no bar and no carriage
return. ``SYMPE_PROGRESS=1`` forces bars on, ``SYMPE_PROGRESS=0`` turns them off (the same switch as the
dataset-processing bars, :func:`progress`).
"""
from __future__ import annotations

import os
import sys

__all__ = ["bars_enabled", "progress_bar", "progress"]


def bars_enabled(stream=None) -> bool:
    """True when progress bars should be drawn on ``stream`` (default ``sys.stderr``): ``SYMPE_PROGRESS=1``
    forces them on, ``SYMPE_PROGRESS=0`` off; otherwise only when the stream is a terminal."""
    flag = os.environ.get("SYMPE_PROGRESS")
    if flag in ("0", "1"):
        return flag == "1"
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", leave: bool = False,
                 enable: bool | None = None):
    """A ``tqdm`` bar on stderr over ``iterable`` (or a manual one when ``iterable`` is None), drawn only when
    ``enable`` is True, or, with ``enable=None``, when :func:`bars_enabled` says so."""
    from tqdm.auto import tqdm

    show = bars_enabled(sys.stderr) if enable is None else bool(enable)
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not show, file=sys.stderr,
                dynamic_ncols=True)


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "graph", enable: bool | None = None):
    """``iterable`` with a bar that stays on screen when done (dataset processing, reference statistics), under
    the rule of :func:`bars_enabled`; ``iterable=None`` gives a bar advanced by hand (``bar.update(k)``).
    ``enable=False`` never draws it."""
    return progress_bar(iterable, total=total, desc=desc, unit=unit, leave=True,
                        enable=False if enable is False else None)
