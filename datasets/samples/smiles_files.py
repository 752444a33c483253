"""SMILES files, the one reader of them: files of generated molecules and the data sets' CSV files.

* Sample files (the ``smiles`` and ``csv`` formats of :mod:`sympe.datasets.samples.readers`, whose docstring states
  them): :func:`read_smiles_samples` (one SMILES per line, an optional header) and :func:`read_csv_samples` (the
  SMILES column of a CSV), read whole (strict UTF-8, trailing blank lines dropped), one sample per line or row, each
  with its line number (:class:`SmilesSamples`; :func:`read_smiles_lines` and :func:`read_csv_smiles` return the
  strings and the notes). Every sample is checked with RDKit's parser (syntax only, :func:`parse_flags`): those that
  do not parse stay samples (invalid molecules) and are counted in a warning naming the first
  :data:`NAMED_LINES` with their line numbers; a file where none parses (``None`` and blank lines aside) is refused,
  since it is not a file of SMILES (or the wrong column was read). With ``header="auto"`` a first line that is no
  SMILES and looks like a column name (``molecule``, ``smi``, ``SMILES_string``) is read as a header, and a warning
  says so and how to score it instead (``header=false``).
* Data-set CSV files (MOSES's ``train.csv``, QM9's ``gdb_index,smiles``, each optionally gzipped), streamed row by
  row: :func:`open_csv_table` checks the header and hands out the rows, :func:`read_csv_column` yields one column
  (MOSES's ``SMILES``).
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from sympe.datasets.samples.errors import fail

__all__ = ["SmilesSamples", "open_csv_table", "parse_flags", "read_csv_column", "read_csv_samples", "read_csv_smiles",
           "read_smiles_lines", "read_smiles_samples"]


# ---------------------------------------------------------------------------- SMILES formats
#: a first line read as a header under header="auto" when it is not a SMILES: letters, '_', '-', spaces, then digits
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z_ \-]*[0-9]*")
#: unparsable samples named (with their line numbers) in the warning that counts them
NAMED_LINES = 5


@dataclass
class SmilesSamples:
    """The samples of a SMILES file: ``smiles`` (one string per sample), ``lines`` (the 1-based line of the file each
    comes from), ``notes`` (how the file was read) and ``warnings`` (what the reader guessed, what does not parse)."""

    smiles: list[str]
    lines: list[int]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


def parse_flags(texts: Sequence[str]) -> list[bool]:
    """Whether RDKit reads each text as a SMILES of at least one atom: syntax only (``sanitize=False``), so a
    molecule with a wrong valence parses; ``""`` and ``"None"`` do not. Imports RDKit."""
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    _quiet = BlockLogs()  # noqa: F841 - a line that does not parse is counted, not logged
    out = []
    for text in texts:
        mol = Chem.MolFromSmiles(text, sanitize=False) if text.strip() else None
        out.append(mol is not None and mol.GetNumAtoms() > 0)
    return out


def _column_name_like(text: str) -> bool:
    """A header that does not say 'smiles': a name such as ``molecule``, ``smi``, ``SMILES_string`` that is no SMILES
    (``None``, the mark of an invalid sample, is a sample)."""
    text = text.strip()
    return (len(text) >= 2 and text != "None" and _COLUMN_NAME.fullmatch(text) is not None
            and not parse_flags([text])[0])


def _guessed_header(text: str) -> str:
    return (f"line 1 {text.strip()[:60]!r} was read as a header (it is not a SMILES and looks like a column name); "
            "pass header=false to score it as a sample")


def _check_parsable(path: Path, samples: SmilesSamples, where: str, expected: str) -> None:
    """Count the samples that do not parse (``None`` excepted) in a warning; refuse a file where none parses."""
    flags = parse_flags(samples.smiles)
    bad = [(ln, s) for s, ln, ok in zip(samples.smiles, samples.lines, flags) if not ok and s.strip() != "None"]
    if not bad:
        return
    if not any(flags) and any(s.strip() for _, s in bad):
        ln, text = next((ln, s) for ln, s in bad if s.strip())
        fail(path, f"has no sample that parses as SMILES{where} (the first of {len(bad)}, line {ln}, is "
                   f"{text[:60]!r})", expected)
    named = ", ".join(f"line {ln} " + (repr(s[:40]) if s.strip() else "(blank)") for ln, s in bad[:NAMED_LINES])
    more = f" and {len(bad) - NAMED_LINES} more" if len(bad) > NAMED_LINES else ""
    samples.warnings.append(f"{len(bad)} of {len(samples.smiles)} samples do not parse as SMILES{where} and are scored "
                            f"as invalid molecules: {named}{more}")


def read_smiles_samples(path: str | os.PathLike, header: bool | str = "auto") -> SmilesSamples:
    """The samples of a one-SMILES-per-line file: the first token of each line (see the module docstring).

    ``header="auto"`` skips a first line naming ``smiles`` (a note), or one that is no SMILES and looks like a column
    name (a warning saying so). Samples that do not parse are counted in a warning naming their lines. Raises
    :class:`~sympe.datasets.samples.errors.SampleFileError` naming the file when it is not UTF-8, holds no samples, or
    none of its samples parses as SMILES (the literal ``None`` and blank lines aside).
    """
    path = Path(path)
    lines = _text_lines(path)
    numbers = list(range(1, len(lines) + 1))
    notes, warnings = [], []
    first = lines[0].split()
    named = header == "auto" and bool(first) and _looks_like_header(first[0])
    guessed = header == "auto" and bool(first) and not named and _column_name_like(first[0])
    if guessed:
        warnings.append(_guessed_header(first[0]))
    elif header is True or named:
        notes.append(f"header line {lines[0].strip()[:60]!r} skipped")
    if header is True or named or guessed:
        lines, numbers = lines[1:], numbers[1:]
        if not lines:
            fail(path, "holds a header line and no samples", "one SMILES per line after the header")
    out = []
    for line in lines:
        tokens = line.split()
        out.append(tokens[0] if tokens else "")
    samples = SmilesSamples(out, numbers, notes, warnings)
    _check_parsable(path, samples, "", "one SMILES per line (the first whitespace-separated token of each line)")
    return samples


def read_smiles_lines(path: str | os.PathLike, header: bool | str = "auto") -> tuple[list[str], list[str]]:
    """(SMILES per sample, notes and warnings) of a one-SMILES-per-line file (:func:`read_smiles_samples`)."""
    samples = read_smiles_samples(path, header)
    return samples.smiles, samples.notes + samples.warnings


def read_csv_samples(path: str | os.PathLike, column: str | int | None = None,
                     header: bool | str = "auto") -> SmilesSamples:
    """The samples of the SMILES column of a CSV (see the module docstring): ``column`` by name or 0-based index,
    else the header's column named like ``smiles``.

    ``header="auto"`` reads the first row as a header when a field names ``smiles`` or ``column``, or when the field
    in column ``column`` (an index) is no SMILES and looks like a column name (a warning says so). Samples that do
    not parse are counted in a warning naming their lines. Raises
    :class:`~sympe.datasets.samples.errors.SampleFileError` naming the file for a missing or ambiguous column, a row
    too short, no samples, or no sample of the column parsing as SMILES.
    """
    path = Path(path)
    reader = csv.reader(io.StringIO("\n".join(_text_lines(path))))
    rows, numbers, ends = [], [], 0
    for row in reader:  # a row's line is the first of its lines (a quoted field may span several)
        numbers.append(ends + 1)
        ends = reader.line_num
        rows.append(row)
    first = [f.strip() for f in rows[0]]
    named_column = isinstance(column, str) and not column.isdigit()
    index = int(column) if column is not None and not named_column else None
    guessed = (header == "auto" and index is not None and index < len(first) and not any(map(_looks_like_header, first))
               and _column_name_like(first[index]))
    has_header = header is True or guessed or (header == "auto" and (any(_looks_like_header(f) for f in first)
                                                                     or (named_column and column in first)))
    if named_column:
        if not has_header or column not in first:
            fail(path, f"has no column named {column!r} in its first row {first}", "a header row naming it")
        col = first.index(column)
    elif index is not None:
        col = index
    else:
        named = [k for k, f in enumerate(first) if _looks_like_header(f)] if has_header else []
        if not named:
            fail(path, f"is a CSV whose first row {first[:8]} names no SMILES column",
                  "a header with a column named like 'smiles', or column=NAME / column=INDEX")
        exact = [k for k in named if first[k].lower() == "smiles"]
        if len(named) > 1 and len(exact) != 1:
            fail(path, f"has several SMILES-like columns {[first[k] for k in named]}", "column=NAME to pick one")
        col = exact[0] if exact else named[0]
    body, body_lines = (rows[1:], numbers[1:]) if has_header else (rows, numbers)
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
    where = f"column {first[col]!r}" if has_header else f"column {col}"
    notes = [f"{where} of a CSV" if has_header else f"{where} of a CSV without header"]
    samples = SmilesSamples(out, body_lines, notes, [_guessed_header(",".join(rows[0]))] if guessed else [])
    _check_parsable(path, samples, f" in {where}", "a SMILES column: choose it with column=NAME or column=INDEX")
    return samples


def read_csv_smiles(path: str | os.PathLike, column: str | int | None = None,
                    header: bool | str = "auto") -> tuple[list[str], list[str]]:
    """(SMILES per row, notes and warnings) of the SMILES column of a CSV (:func:`read_csv_samples`)."""
    samples = read_csv_samples(path, column, header)
    return samples.smiles, samples.notes + samples.warnings


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
