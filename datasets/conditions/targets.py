"""The targets a user asks a conditional model for: ``condition="{logp: 2.0}"`` or a CSV of rows (one graph per row).

:func:`parse_targets` turns either form into one dict per graph (property name -> value; a property left out or an
empty cell is not given, i.e. dropped as in training) and checks every value against the model's
:class:`~sympe.diffusion.conditioning.ConditionSpec` before anything is sampled: an unknown property, a category the
model never saw, a value outside the train range by more than
:data:`~sympe.diffusion.conditioning.RANGE_MARGIN_STD` standard deviations each end the command with one line.
:func:`draw_split_targets` draws targets from a split's own values (the comparison with the unconditional model).
"""
from __future__ import annotations

import csv
import os
from collections.abc import Mapping

import numpy as np

from sympe.diffusion.conditioning import ConditionError, ConditionSpec, is_missing


def _number_or_text(text: str):
    text = text.strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def read_targets_csv(path: str, option: str = "condition") -> list[dict]:
    """Rows of a CSV whose header names properties; empty cells are not given. ``ConditionError`` for a missing
    file, a file without rows or a row longer than the header."""
    if not os.path.isfile(path):
        raise ConditionError(f"{option}={path}: no such file (give a mapping such as {option}=\"{{logp: 2.0}}\" or a "
                             "CSV whose header names the properties, one graph per row)")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ConditionError(f"{option}={path}: the file is empty; its first line must name the properties")
        header = [h.strip() for h in header]
        rows = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) > len(header):
                raise ConditionError(f"{option}={path}, line {reader.line_num}: {len(row)} fields for a header of "
                                     f"{len(header)}")
            rows.append({h: _number_or_text(c) for h, c in zip(header, row)})
    if not rows:
        raise ConditionError(f"{option}={path}: a header and no rows; give one row per graph to sample")
    return rows


def parse_targets(condition, spec: ConditionSpec, num_samples: int, option: str = "condition") -> list[dict]:
    """One dict per graph to sample (module docstring); ``num_samples`` rows of the same targets for a mapping, the
    file's rows for a CSV (then ``num_samples`` must be the number of rows or is ignored when None)."""
    if isinstance(condition, Mapping):
        row = {str(k): v for k, v in condition.items()}
        if not row:
            raise ConditionError(f"{option}={{}} gives no property; name at least one of {spec.names}")
        rows = [row] * int(num_samples)
    elif isinstance(condition, str):
        rows = read_targets_csv(condition, option)
        if num_samples is not None and int(num_samples) != len(rows):
            raise ConditionError(f"{option}={condition} holds {len(rows)} rows but num_samples={num_samples}; one "
                                 f"graph is sampled per row: set num_samples={len(rows)} or null")
    else:
        raise ConditionError(f"{option}={condition!r}: give a mapping such as {option}=\"{{logp: 2.0}}\" or the path "
                             "of a CSV of targets")
    for i, row in enumerate(rows):
        where = f"{option} (row {i + 1})" if isinstance(condition, str) else option
        for name, value in row.items():
            try:
                spec.property(name)
                if not is_missing(value):
                    spec.check_value(name, value)
            except ConditionError as exc:
                raise ConditionError(f"{where}: {exc}") from None
    return rows


def draw_split_targets(values: dict[str, list], names, num: int, seed: int) -> list[dict]:
    """``num`` target rows for properties ``names``, each the values of one graph of a split drawn uniformly (with
    replacement, ``seed``) among the graphs that have all of them: the targets of the "unconditional model" baseline
    and of a guidance sweep."""
    names = list(names)
    n = len(next(iter(values.values())))
    usable = [i for i in range(n) if all(not is_missing(values[k][i]) for k in names)]
    if not usable:
        raise ConditionError(f"no graph of the split has a value for every one of {names}")
    pick = np.random.default_rng(seed).choice(len(usable), size=int(num), replace=True)
    return [{k: values[k][usable[int(j)]] for k in names} for j in pick]


def sampling_condition(spec: ConditionSpec | None, condition, guidance: float, num_samples: int):
    """``(rows, y)`` for ``sample.py``: the target rows (:func:`parse_targets`) and their encoding (num, width), or
    ``(None, None)`` for unconditional sampling. Raises :class:`ConditionError` (one line) for a condition given to
    an unconditional model, guidance without a condition, or a bad target."""
    if condition is None:
        if float(guidance) != 0.0:
            raise ConditionError(f"guidance={guidance} needs condition=...: classifier-free guidance steers towards "
                                 "targets (e.g. condition=\"{logp: 2.0}\")")
        return None, None
    if spec is None:
        raise ConditionError("condition=... is not accepted: this checkpoint is unconditional (train with "
                             "model.condition=[...] to sample with targets)")
    rows = parse_targets(condition, spec, None if isinstance(condition, str) else num_samples)
    return rows, spec.encode(rows)


def write_targets_csv(path, rows: list[dict], names) -> None:
    """One row per sample (the order of the samples file): the targets asked for; empty = not asked for."""
    import io

    from sympe.diffusion.files import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(names))
    for r in rows:
        w.writerow(["" if is_missing(r.get(n)) else r[n] for n in names])
    atomic_write_text(path, buf.getvalue())
