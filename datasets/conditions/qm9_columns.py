"""QM9's per-molecule DFT properties that conditions can name: ``mu`` (dipole moment, Debye) and ``homo`` (HOMO
energy, converted from the files' Hartree to eV with 1 Ha = 27.211386246 eV, CODATA 2018; DiGress's guidance
experiments and PyG's QM9 use eV too).

Read from the same source as the graphs: the qm9pack package's CSV files (columns ``Index``, ``Dipole_debye``,
``HOMO_au``) or, for ``source=raw``, the ``gdb9.sdf.csv`` of DiGress's archive (columns ``mol_id`` = ``gdb_<i>``,
``mu``, ``homo``). ``source=csv`` (gdb_index, smiles only) carries neither.
"""
from __future__ import annotations

import os.path as osp
from functools import lru_cache

HARTREE_TO_EV = 27.211386246
#: The QM9 sources that carry the property columns.
SOURCES_WITH_COLUMNS = ("qm9pack", "raw")
COLUMNS = {"mu": "continuous", "homo": "continuous"}


@lru_cache(maxsize=2)
def qm9_property_table(source: str, raw_dir: str | None = None) -> dict[int, tuple[float, float]]:
    """gdb_index -> (mu in Debye, homo in eV) for every molecule of the source (module docstring)."""
    from sympe.datasets.samples.smiles_files import open_csv_table

    table = {}
    if source == "qm9pack":
        from sympe.datasets.sources.qm9 import qm9pack_paths

        for path in qm9pack_paths():
            with open_csv_table(path, ("Index", "Dipole_debye", "HOMO_au"), "QM9 CSV", large_fields=True) as (cols, rows):
                a, b, c = cols
                for row in rows:
                    if len(row) > c and row[a].strip():
                        table[int(row[a])] = (float(row[b]), float(row[c]) * HARTREE_TO_EV)
    elif source == "raw":
        path = osp.join(raw_dir or "", "gdb9.sdf.csv")
        if not osp.isfile(path):
            raise FileNotFoundError(f"QM9 property columns: {path} is missing (it comes with DiGress's QM9 archive)")
        with open_csv_table(path, ("mol_id", "mu", "homo"), "QM9 CSV") as ((a, b, c), rows):
            for row in rows:
                table[int(row[a].split("_")[-1])] = (float(row[b]), float(row[c]) * HARTREE_TO_EV)
    else:
        raise ValueError(f"QM9 source {source!r} carries no property columns; use source=qm9pack or source=raw")
    return table


def qm9_column_values(dataset, name: str) -> list:
    """Column ``name`` (``mu`` / ``homo``) of every graph of a QM9 split, in order (None where the source lacks it)."""
    if name not in COLUMNS:
        raise ValueError(f"QM9 has no property column {name!r}; it has {sorted(COLUMNS)}")
    table = qm9_property_table(dataset.source, dataset.raw_dir if dataset.source == "raw" else None)
    k = list(COLUMNS).index(name)
    out = []
    for i in range(len(dataset)):
        row = table.get(int(dataset[i].gdb_index))
        out.append(None if row is None else row[k])
    return out
