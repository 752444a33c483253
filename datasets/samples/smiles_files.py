"""SMILES files, the one reader of them: files of generated molecules and the data sets' CSV files.

* Sample files (the ``smiles`` and ``csv`` formats of :mod:`sympe.datasets.samples.readers`, whose docstring states
  them): :func:`read_smiles_lines` (one SMILES per line, an optional header) and :func:`read_csv_smiles` (the SMILES
  column of a CSV), read whole (strict UTF-8, trailing blank lines dropped), one sample per line or row.
* Data-set CSV files (MOSES's ``train.csv``, QM9's ``gdb_index,smiles``, each optionally gzipped), streamed row by
  row: :func:`open_csv_table` checks the header and hands out the rows, :func:`read_csv_column` yields one column
  (MOSES's ``SMILES``).
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from sympe.datasets.samples.errors import fail

__all__ = ["open_csv_table", "read_csv_column", "read_csv_smiles", "read_smiles_lines"]


# ---------------------------------------------------------------------------- SMILES formats
def _text_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(path, f"is not UTF-8 text ({e})", "one SMILES per line or a CSV")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        fail(path, "is empty (only blank lines)", "one SMILES per line or a CSV with a SMILES column")
    return lines


def _looks_like_header(field_text: str) -> bool:
    return "smiles" in field_text.strip().lower()


def read_smiles_lines(path: str | os.PathLike, header: bool | str = "auto") -> tuple[list[str], list[str]]:
    """(SMILES per sample, notes) of a one-SMILES-per-line file: the first token of each line."""
    path = Path(path)
    lines = _text_lines(path)
    notes = []
    first = lines[0].split()
    if header is True or (header == "auto" and first and _looks_like_header(first[0])):
        notes.append(f"header line {lines[0].strip()[:60]!r} skipped")
        lines = lines[1:]
        if not lines:
            fail(path, "holds a header line and no samples", "one SMILES per line after the header")
    out = []
    for line in lines:
        tokens = line.split()
        out.append(tokens[0] if tokens else "")
    return out, notes


def read_csv_smiles(path: str | os.PathLike, column: str | int | None = None,
                    header: bool | str = "auto") -> tuple[list[str], list[str]]:
    """(SMILES per row, notes) of the SMILES column of a CSV (see the module docstring)."""
    path = Path(path)
    rows = list(csv.reader(io.StringIO("\n".join(_text_lines(path)))))
    first = [f.strip() for f in rows[0]]
    has_header = header is True or (header == "auto" and (any(_looks_like_header(f) for f in first)
                                                          or (isinstance(column, str) and column in first)))
    if isinstance(column, str) and not column.isdigit():
        if not has_header or column not in first:
            fail(path, f"has no column named {column!r} in its first row {first}", "a header row naming it")
        col = first.index(column)
    elif column is not None:
        col = int(column)
    else:
        named = [k for k, f in enumerate(first) if _looks_like_header(f)] if has_header else []
        if not named:
            fail(path, f"is a CSV whose first row {first[:8]} names no SMILES column",
                  "a header with a column named like 'smiles', or column=NAME / column=INDEX")
        exact = [k for k in named if first[k].lower() == "smiles"]
        if len(named) > 1 and len(exact) != 1:
            fail(path, f"has several SMILES-like columns {[first[k] for k in named]}", "column=NAME to pick one")
        col = exact[0] if exact else named[0]
    body = rows[1:] if has_header else rows
    if not body:
        fail(path, "holds a header row and no samples", "one row per sample")
    out = []
    for r, row in enumerate(body):
        if col >= len(row):
            if not any(f.strip() for f in row):
                out.append("")  # a blank row is one (invalid) sample
                continue
            fail(path, f"row {r + 1 + has_header} has {len(row)} fields, no column {col}", f"column {col} in every row")
        out.append(row[col].strip())
    notes = [f"column {first[col]!r} of a CSV" if has_header else f"column {col} of a CSV without header"]
    return out, notes


# ---------------------------------------------------------------------------- data-set CSV files (streamed)
@contextmanager
def open_csv_table(path: str | os.PathLike, columns: Sequence[str], what: str = "CSV", large_fields: bool = False):
    """Open a CSV file with a header row (``.gz``: gzip) that must name every one of ``columns``; yields
    ``(indices, rows)``: the positions of ``columns`` in the header and a ``csv.reader`` over the data rows.

    Raises ``ValueError`` ``"<what> <path>: needs a 'SMILES' column, found <header>"`` (``"needs columns 'a' and
    'b'"`` for several) when the header lacks one. ``large_fields`` lifts the ``csv`` module's field-size limit
    while the file is open (rows with long fields, such as qm9pack's coordinates).
    """
    old = csv.field_size_limit()
    if large_fields:
        csv.field_size_limit(sys.maxsize)
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or any(c not in header for c in columns):
                need = f"a {columns[0]!r} column" if len(columns) == 1 else "columns " + " and ".join(map(repr, columns))
                raise ValueError(f"{what} {path}: needs {need}, found {header}")
            yield [header.index(c) for c in columns], reader
    finally:
        if large_fields:
            csv.field_size_limit(old)


def read_csv_column(path: str | os.PathLike, column: str = "SMILES", limit: int | None = None,
                    what: str = "MOSES CSV") -> Iterator[str]:
    """The field ``column`` of every data row of a CSV with a header row (``.gz`` allowed; MOSES's files), streamed;
    only the first ``limit`` rows when given. ``ValueError`` as :func:`open_csv_table` (named ``what``)."""
    with open_csv_table(path, (column,), what) as ((col,), rows):
        for i, row in enumerate(rows):
            if limit is not None and i >= limit:
                return
            yield row[col]
