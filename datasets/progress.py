"""Progress bars of dataset processing (a bar over molecules / graphs, shown on a terminal only).

``progress(iterable, total, desc, unit)`` wraps an iterable in a ``tqdm`` bar written to stderr; it is
disabled when stderr is not a terminal (logs stay free of carriage-return updates) or when
``SYMPE_PROGRESS=0``, and forced on with ``SYMPE_PROGRESS=1``.
"""
from __future__ import annotations

import os
import sys

__all__ = ["progress"]


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "graph"):
    """``iterable`` with a progress bar (module docstring)."""
    from tqdm.auto import tqdm

    flag = os.environ.get("SYMPE_PROGRESS")
    disable = None if flag is None else flag == "0"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, mininterval=0.5,
                dynamic_ncols=True)
