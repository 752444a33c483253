"""Progress bars of dataset processing (a bar over molecules / graphs, shown on a terminal only).

``progress(iterable, total, desc, unit)`` wraps an iterable in a ``tqdm`` bar written to stderr; it is
disabled when stderr is not a terminal (logs stay free of carriage-return updates) or when
``SYMPE_PROGRESS=0``, and forced on with ``SYMPE_PROGRESS=1``.
"""
from __future__ import annotations

import os
import sys

__all__ = ["progress"]


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "graph", enable: bool | None = None):
    """``iterable`` with a progress bar (module docstring); ``iterable=None`` gives a bar advanced by hand
    (``bar.update(k)``). ``enable=False`` never draws it."""
    from tqdm.auto import tqdm

    flag = os.environ.get("SYMPE_PROGRESS")
    disable = None if flag not in ("0", "1") else flag == "0"
    if enable is False:
        disable = True
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, mininterval=0.5,
                dynamic_ncols=True)
