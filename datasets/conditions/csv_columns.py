"""The extra columns of a ``dataset=smiles`` CSV as conditions: every column but the SMILES and the split column.

A column whose non-empty cells all read as numbers is continuous; any other is categorical (its distinct texts are
the categories). Rows are matched to molecules by their 1-based line number, the one
:func:`~sympe.datasets.sources.smiles_input.read_table` records on each graph (``data.line``).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sympe.datasets.sources.smiles_input import PREFIX, _layout, _TextFile, csv_data_rows


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None


@lru_cache(maxsize=4)
def read_csv_columns(path: str, column: str | None, mtime_ns: int) -> tuple[dict[str, str], dict[int, dict]]:
    """``(kinds, rows)``: column name -> ``"continuous"`` / ``"categorical"``, and line number -> {column: value}
    (numbers as floats for continuous columns, texts otherwise, None for an empty cell). A SMILES file that is not a
    CSV has no columns. ``mtime_ns`` keys the cache."""
    p = Path(path)
    with _TextFile(p, PREFIX) as f:
        layout = _layout(p, f, column, PREFIX)
    if not layout.csv:
        return {}, {}
    names = [h for k, h in enumerate(layout.header) if k not in (layout.column, layout.split_column) and h]
    index = {h: layout.header.index(h) for h in names}
    texts: dict[int, dict] = {}
    with _TextFile(p, PREFIX) as f:
        for start, row in csv_data_rows(f, layout.delimiter):
            texts[start] = {h: (row[k].strip() if k < len(row) else "") for h, k in index.items()}
    kinds = {}
    for h in names:
        cells = [r[h] for r in texts.values() if r[h] != ""]
        kinds[h] = "continuous" if cells and all(_number(c) is not None for c in cells) else "categorical"
    rows = {line: {h: (None if r[h] == "" else (_number(r[h]) if kinds[h] == "continuous" else r[h])) for h in names}
            for line, r in texts.items()}
    return kinds, rows


def smiles_column_values(dataset, name: str) -> list:
    """Column ``name`` of every graph of a ``dataset=smiles`` split, in order."""
    import os

    kinds, rows = read_csv_columns(dataset.path, dataset.column, os.stat(dataset.path).st_mtime_ns)
    if name not in kinds:
        raise ValueError(f"{dataset.path} has no column {name!r} besides the SMILES; its columns are {sorted(kinds)}")
    return [rows.get(int(dataset[i].line), {}).get(name) for i in range(len(dataset))]
