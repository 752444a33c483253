"""The user's file of ``dataset=smiles``: its options checked, its format recognised, its rows read.

Nothing here imports torch; RDKit only to check ``elements`` (its periodic table). Everything a command can check
before loading anything is checked by :func:`check_params`, which ``scripts/*`` call through
:func:`sympe.datasets.config.check_dataset_params` and :class:`~sympe.datasets.sources.smiles.SmilesDataset` calls
itself; every failure is one :class:`SmilesInputError` line naming the option or the file, what is wrong and the fix.

File formats (``path``; gzip-compressed files, ``.gz`` or not, are recognised by their first bytes)
    * **CSV**: a name ending in ``.csv`` / ``.tsv`` (before ``.gz``), or a first line with a comma. The first row
      is a header; ``column`` names the SMILES column, by default the one named ``smiles`` in any case, else the one
      whose name contains ``smiles`` (several such: an error naming them). A column named ``split`` (any case), when
      present, puts each row in train / val / test (:mod:`sympe.datasets.sources.user_splits`). Tab-separated for
      ``.tsv``.
    * **SMILES file** (anything else, e.g. ``.smi``, ``.txt``): one molecule per line, its first whitespace-separated
      token (a name may follow); a first line whose first token contains ``smiles`` (any case) is a header.
    Blank lines are no rows. Text must be UTF-8 (a byte-order mark is ignored). Each row keeps its 1-based line
    number in the file (the header is line 1), which ``rejected.csv`` reports.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from sympe.datasets.sources.user_splits import SPLIT_NAMES, check_split_options

__all__ = ["SmilesInputError", "SmilesTable", "check_params", "check_labels", "read_table", "file_sha256", "MISSING"]

PREFIX = "dataset.params"
MISSING = (None, "", "???")  # "???": Hydra's mark of a mandatory value left unset (configs/dataset/smiles.yaml)
_GZIP_MAGIC = b"\x1f\x8b"


class SmilesInputError(ValueError):
    """A ``dataset=smiles`` option or file that cannot be used; the message names it, what is wrong and the fix.
    ``user_error``: the commands print it as one line (``sympe.diffusion.runs.options.user_errors``)."""

    user_error = True


@dataclass
class SmilesTable:
    """The rows of a user's file: ``smiles`` and ``lines`` (1-based line number of each row), ``labels`` (the split
    column's value per row, or None), ``described`` (how it was read: ``"CSV, column 'SMILES'"``)."""

    smiles: list[str]
    lines: list[int]
    labels: list[str] | None
    described: str


@dataclass
class _Layout:
    csv: bool
    delimiter: str
    header: list[str] | None  # CSV header, or None
    column: int | None  # SMILES column of a CSV
    split_column: int | None
    skip_first: bool  # a SMILES file whose first line is a header


# ---------------------------------------------------------------------------- options
def check_params(params: dict, prefix: str = PREFIX) -> dict:
    """Check the options of ``dataset=smiles`` (module docstring, :class:`~sympe.datasets.sources.smiles.SmilesDataset`)
    and the head of the file; returns them normalised (``path`` absolute, ``elements`` sorted and unique,
    ``split_fractions`` a tuple). Raises :class:`SmilesInputError` naming ``<prefix>.<option>``: a missing ``path``,
    a path that is no file, an empty file, a ``column`` the CSV does not have (naming those it has), bad
    ``split_fractions``, ``elements`` that is not a list of element symbols, ``max_atoms`` or ``split_seed`` that is
    no integer, ``remove_h`` that is no boolean."""
    p = dict(params)
    path = p.get("path")
    if path in MISSING:
        given = f"{prefix}.path=FILE" if "." in prefix else f"{prefix}={{path: FILE}}"  # evaluate.py: a mapping
        raise SmilesInputError(f"{prefix}.path is missing: dataset=smiles reads your molecules from {given} "
                               "(a CSV with a SMILES column, or one SMILES per line; .gz allowed)")
    path = Path(os.fspath(path)).expanduser().absolute()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise SmilesInputError(f"{prefix}.path={path} {what}: give a CSV with a SMILES column or a file of one SMILES "
                               "per line")
    if not isinstance(p.get("remove_h", True), bool):
        raise SmilesInputError(f"{prefix}.remove_h={p['remove_h']} is not accepted: expected true (implicit "
                               "hydrogens) or false (hydrogens as nodes)")
    value = p.get("max_atoms")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SmilesInputError(f"{prefix}.max_atoms={value} is not accepted: expected an integer >= 1 or null (no "
                               "limit: the data decides)")
    try:
        fractions = check_split_options(p, prefix)
    except ValueError as exc:
        raise SmilesInputError(str(exc)) from None
    column = p.get("column")
    if column is not None and (not isinstance(column, str) or not column.strip()):
        raise SmilesInputError(f"{prefix}.column={column} is not accepted: expected the name of a column of the CSV "
                               "(a header field), or null for the column named like 'smiles'")
    p.update(path=str(path), split_fractions=fractions, elements=_check_elements(p.get("elements"), prefix))
    with _TextFile(path, prefix) as f:
        _layout(path, f, column, prefix)  # the head of the file: format, header, column, not empty
    return p


def _check_elements(elements, prefix: str) -> list[str] | None:
    if elements is None:
        return None
    fix = (f"give a list of element symbols such as [C, N, O, S, Cl] ({prefix}.remove_h decides about H), or null "
           "for every element RDKit reads")
    if isinstance(elements, (str, bytes)) or not isinstance(elements, (list, tuple)) or not elements:
        raise SmilesInputError(f"{prefix}.elements={elements} is not accepted: not a non-empty list; {fix}")
    from sympe.datasets.atom_classes import element_symbols

    known = element_symbols()
    bad = [e for e in elements if not isinstance(e, str) or e not in known]
    if bad:
        raise SmilesInputError(f"{prefix}.elements={list(elements)} is not accepted: {bad} "
                               f"{'is not an element symbol' if len(bad) == 1 else 'are not element symbols'} "
                               f"(symbols are case-sensitive: Cl, Br); {fix}")
    return sorted(set(elements), key=known.get)


# ---------------------------------------------------------------------------- the file
def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of the bytes of ``path`` (hex), computed once per (path, size, modification time) in a process."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


_HASHES: dict[tuple, str] = {}


class _TextFile:
    """Context manager: the file as UTF-8 text (gzip when its first bytes say so; a BOM dropped)."""

    def __init__(self, path: Path, prefix: str):
        self.path, self.prefix = path, prefix

    def __enter__(self):
        with open(self.path, "rb") as f:
            gz = f.read(2) == _GZIP_MAGIC
        raw = gzip.open(self.path, "rb") if gz else open(self.path, "rb")
        self.f = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        return self.f

    def __exit__(self, *exc):
        self.f.close()
        if exc[0] is not None and issubclass(exc[0], csv.Error):  # e.g. a field over 131,072 characters
            raise SmilesInputError(f"{self.prefix}.path={self.path} is not a readable CSV ({exc[1]}); check the file "
                                   "(one molecule per row, a SMILES per field)") from None
        if exc[0] is not None and issubclass(exc[0], (UnicodeDecodeError, gzip.BadGzipFile, EOFError)):
            what = "is not UTF-8 text" if issubclass(exc[0], UnicodeDecodeError) else "is a damaged gzip file"
            raise SmilesInputError(f"{self.prefix}.path={self.path} {what} ({exc[1]}); give a CSV or SMILES file "
                                   "in UTF-8, optionally gzipped") from None
        return False


def _lines(f):
    """(line number, line without its end) of the non-blank lines of ``f``."""
    for number, line in enumerate(f, start=1):
        if line.strip():
            yield number, line.rstrip("\r\n")


def _layout(path: Path, f, column: str | None, prefix: str) -> _Layout:
    """Read the head of ``f`` (positioned at the start) and decide the format; the stream is consumed."""
    head = []
    for item in _lines(f):
        head.append(item)
        if len(head) == 2:
            break
    if not head:
        raise SmilesInputError(f"{prefix}.path={path} is empty: give one molecule per line (SMILES) or a CSV with a "
                               "header and a SMILES column")
    name = path.name.lower().removesuffix(".gz")
    first = head[0][1]
    is_csv = name.endswith((".csv", ".tsv")) or "," in first
    if not is_csv:
        if column is not None:
            raise SmilesInputError(f"{prefix}.column={column} is only for CSV files, but {path} is read as one SMILES "
                                   "per line (its name does not end in .csv and its first line has no comma); "
                                   f"drop {prefix}.column or give a CSV")
        skip = "smiles" in (first.split() or [""])[0].lower()
        if skip and len(head) == 1:
            raise SmilesInputError(f"{prefix}.path={path} holds a header line and no molecules")
        return _Layout(False, "", None, None, None, skip)
    delimiter = "\t" if name.endswith(".tsv") else ","
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    if column is not None:
        if column not in header:
            raise SmilesInputError(f"{prefix}.column={column}: {path} has no such column; its columns are {header}")
        col = header.index(column)
    else:
        exact = [k for k, h in enumerate(header) if h.lower() == "smiles"]
        like = exact or [k for k, h in enumerate(header) if "smiles" in h.lower()]
        if len(like) != 1:
            why = "no column named like 'smiles'" if not like else \
                f"several columns named like 'smiles' {[header[k] for k in like]}"
            raise SmilesInputError(f"{prefix}.path={path} has {why} (its columns are {header}); name the SMILES column "
                                   f"with {prefix}.column=NAME")
        col = like[0]
    splits = [k for k, h in enumerate(header) if h.lower() == "split" and k != col]
    if len(head) == 1:
        raise SmilesInputError(f"{prefix}.path={path} holds a header row and no molecules")
    return _Layout(True, delimiter, header, col, splits[0] if splits else None, True)


def csv_data_rows(f, delimiter: str):
    """``(line, fields)`` of every data row of an open CSV file: its first line number (1-based; a quoted field may
    span lines), blank lines and the header row skipped."""
    reader = csv.reader(f, delimiter=delimiter)
    end, header_seen = 0, False
    for row in reader:
        start, end = end + 1, reader.line_num
        if not any(field.strip() for field in row):
            continue  # a blank line
        if not header_seen:
            header_seen = True
            continue
        yield start, row


def read_table(path: str | os.PathLike, column: str | None = None, prefix: str = PREFIX) -> SmilesTable:
    """Every row of the file (module docstring). A CSV row too short to hold the SMILES column reads as an empty
    SMILES (rejected later, with its line). Raises :class:`SmilesInputError` as :func:`check_params` for the head,
    and for text that is not UTF-8 or a damaged gzip stream further down."""
    path = Path(path)
    with _TextFile(path, prefix) as f:
        layout = _layout(path, f, column, prefix)
    smiles, lines, labels = [], [], [] if layout.split_column is not None else None
    with _TextFile(path, prefix) as f:
        if not layout.csv:
            rows = _lines(f)
            if layout.skip_first:
                next(rows)
            for number, line in rows:
                smiles.append(line.split()[0])
                lines.append(number)
            header = ", a header line" if layout.skip_first else ""
            return SmilesTable(smiles, lines, None, "one SMILES per line" + header)
        for start, row in csv_data_rows(f, layout.delimiter):
            smiles.append(row[layout.column].strip() if layout.column < len(row) else "")
            lines.append(start)
            if labels is not None:
                labels.append(row[layout.split_column].strip() if layout.split_column < len(row) else "")
    described = f"CSV, column {layout.header[layout.column]!r}"
    if labels is not None:
        described += f", split column {layout.header[layout.split_column]!r}"
    return SmilesTable(smiles, lines, labels, described)


def check_labels(table: SmilesTable, path, prefix: str = PREFIX) -> None:
    """Raise :class:`SmilesInputError` naming the file and the first lines when values of the split column are not
    train / val / test (:data:`~sympe.datasets.sources.user_splits.SPLIT_NAMES`)."""
    if table.labels is None:
        return
    bad = [(ln, v) for ln, v in zip(table.lines, table.labels) if v.lower() not in SPLIT_NAMES]
    if bad:
        shown = ", ".join(f"line {ln}: {v!r}" for ln, v in bad[:3])
        raise SmilesInputError(f"{prefix}.path={path}: {len(bad)} values of the split column are not train / val / "
                               f"test ({shown}); fix them, or remove the column to split at random")
