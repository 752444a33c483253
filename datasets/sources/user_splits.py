"""Train / validation / test splits of a user's own data (``dataset=smiles``, ``dataset=graphs``).

:func:`assign_splits` puts each item in a split: by a ``split`` column when the data has one (values ``train``,
``val`` / ``valid`` / ``validation``, ``test``, any case), otherwise at random with fixed fractions and a seed:
``numpy.random.default_rng(seed).permutation(n)``, the first ``round(f_train * n)`` items of the permutation to
train, the next ``round(f_val * n)`` to validation, the rest to test. Every split must end up non-empty.
:func:`describe_splits` is the sentence a dataset summary prints about it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["SPLITS", "SPLIT_NAMES", "DEFAULT_FRACTIONS", "assign_splits", "describe_splits", "check_fractions",
           "check_split_options"]

SPLITS = ("train", "val", "test")
#: accepted values of a split column -> split
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def check_fractions(fractions, option: str = "dataset.params.split_fractions") -> tuple[float, float, float]:
    """``fractions`` as ``(train, val, test)``: three positive numbers summing to 1 (within 1e-6). Raises
    ``ValueError`` naming ``option``."""
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = ()
    if len(f) != 3 or any(not (0 < x < 1) for x in f) or abs(sum(f) - 1) > 1e-6:
        raise ValueError(f"{option}={fractions} is not accepted: expected three fractions in (0, 1) for train, val, "
                         f"test summing to 1, e.g. [0.8, 0.1, 0.1]")
    return f


def check_split_options(params: dict, prefix: str) -> tuple[float, float, float]:
    """``split_seed`` (an integer >= 0, default 0) and ``split_fractions`` (:func:`check_fractions`, default
    :data:`DEFAULT_FRACTIONS`) of a user dataset's ``params``; returns the fractions. Raises ``ValueError`` naming
    ``<prefix>.<key>``."""
    seed = params.get("split_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{prefix}.split_seed={seed} is not accepted: expected an integer >= 0")
    return check_fractions(params.get("split_fractions", DEFAULT_FRACTIONS), f"{prefix}.split_fractions")


def assign_splits(n: int, labels: Sequence | None = None, fractions=DEFAULT_FRACTIONS, seed: int = 0,
                  where: str = "the data") -> dict[str, list[int]]:
    """``{"train": [indices], "val": [...], "test": [...]}`` of ``n`` items (module docstring): by ``labels`` (one
    split name per item) when given, else at random with ``fractions`` and ``seed``. Indices within a split are
    increasing for labels and in permutation order otherwise.

    Raises ``ValueError`` naming ``where`` for a label that is not a split name (the first few, with their
    positions), a split left empty, or fewer than 3 items."""
    if labels is not None:
        if len(labels) != n:
            raise ValueError(f"{where}: {len(labels)} split labels for {n} items")
        out: dict[str, list[int]] = {s: [] for s in SPLITS}
        bad = []
        for i, label in enumerate(labels):
            split = SPLIT_NAMES.get(str(label).strip().lower())
            if split is None:
                bad.append((i, label))
            else:
                out[split].append(i)
        if bad:
            shown = ", ".join(f"item {i}: {v!r}" for i, v in bad[:3])
            raise ValueError(f"{where}: {len(bad)} split labels are not train / val / test ({shown}); fix the split "
                             "column or drop it to split at random")
    else:
        f_train, f_val, _ = check_fractions(fractions)
        if n < 3:
            raise ValueError(f"{where}: {n} items cannot fill train, val and test splits; give at least 3")
        perm = np.random.default_rng(int(seed)).permutation(n).tolist()
        a = int(round(f_train * n))
        b = a + int(round(f_val * n))
        out = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
    empty = [s for s in SPLITS if not out[s]]
    if empty:
        raise ValueError(f"{where}: the {', '.join(empty)} split would be empty ({ {s: len(v) for s, v in out.items()} }); "
                         "give more items, other split_fractions, or a split column naming every split")
    return out


def describe_splits(sizes: dict[str, int], by_column: bool, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> str:
    """The summary's sentence: ``split 800 / 100 / 100 (random, fractions 0.8 / 0.1 / 0.1, seed 0)`` or ``(by the
    split column)``."""
    counts = " / ".join(f"{sizes[s]:,}" for s in SPLITS)
    how = "by the split column" if by_column else \
        f"random, fractions {' / '.join(f'{x:g}' for x in fractions)}, seed {seed}"
    return f"split {counts} ({how})"
