"""Progress bars of dataset processing (a bar over molecules / graphs, shown on a terminal only).

``progress(iterable, total, desc, unit)`` wraps an iterable in a ``tqdm`` bar written to stderr, under the
project's one rule for bars (:func:`sympe.diffusion.bars.bars_enabled`): drawn only when stderr is a terminal
(logs stay free of carriage-return updates), forced on with ``SYMPE_PROGRESS=1`` and off with
``SYMPE_PROGRESS=0``.
"""
from __future__ import annotations

from sympe.diffusion.bars import progress_bar

__all__ = ["progress"]


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "graph", enable: bool | None = None):
    """``iterable`` with a progress bar (module docstring); ``iterable=None`` gives a bar advanced by hand
    (``bar.update(k)``). ``enable=False`` never draws it."""
    return progress_bar(iterable, total=total, desc=desc, unit=unit, leave=True,
                        enable=False if enable is False else None)
