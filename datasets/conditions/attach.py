"""Attach graph-level conditions to a dataset's splits: fit the encoding on train, put ``y`` on every graph.

:func:`attach_conditions` computes (or reads) the values of the properties ``model.condition`` names for every graph
of every split (:mod:`~sympe.datasets.conditions.split_values`), fits a
:class:`~sympe.diffusion.conditioning.ConditionSpec` on the train split (standardisation of continuous properties,
categories of categorical ones) and wraps each split in a :class:`ConditionedDataset` whose graphs carry the encoded
condition as ``y`` (1, width). The model reads ``y`` through its graph stream; its validation and test NLL are then
``−log p(x | y)``.
"""
from __future__ import annotations

import sys

import torch
from torch.utils.data import Dataset

from sympe.datasets.conditions.split_values import available_properties, split_values, unavailable_message
from sympe.diffusion.conditioning import ConditionError, ConditionSpec, _as_category, is_missing


class ConditionedDataset(Dataset):
    """A split whose graph i carries ``y = Y[i:i+1]`` (1, width); ``values[name][i]`` the raw property values.

    Indexing with a slice (the data module's ``limit_*_graphs``) gives a ConditionedDataset of that slice; the
    wrapped split's attributes (``info``, ``processed_dir``, ``train_smiles`` ...) are reachable through it."""

    def __init__(self, base, Y: torch.Tensor, values: dict[str, list]):
        if Y.shape[0] != len(base):
            raise ValueError(f"ConditionedDataset: {Y.shape[0]} conditions for {len(base)} graphs")
        self.base, self.Y, self.values = base, Y, values

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ConditionedDataset(self.base[i], self.Y[i], {k: v[i] for k, v in self.values.items()})
        data = self.base[i].clone()
        data.y = self.Y[i:i + 1].clone()
        return data

    def __getattr__(self, name):
        if name in ("base", "Y", "values"):
            raise AttributeError(name)
        return getattr(self.base, name)


#: Datasets (``configs/dataset/*.yaml`` names) whose graphs are molecules: the RDKit properties apply.
MOLECULAR_DATASETS = ("qm9", "moses", "smiles")


def check_condition_option(dataset_name: str, params: dict, names) -> None:
    """Before anything is loaded: raise :class:`ConditionError` with one line when ``model.condition`` names a property
    dataset ``dataset_name`` (with ``params``) cannot provide. Columns of a ``dataset=smiles`` CSV are read from its
    header; QM9's ``mu`` / ``homo`` need ``source=qm9pack`` or ``raw``. The full check runs again on the loaded data."""
    from sympe.datasets.conditions.properties import PROPERTIES
    from sympe.datasets.conditions.qm9_columns import COLUMNS, SOURCES_WITH_COLUMNS

    molecular = dataset_name in MOLECULAR_DATASETS
    offered = {n for n, p in PROPERTIES.items() if p.source == ("molecule" if molecular else "graph")}
    if dataset_name == "qm9" and params.get("source", "qm9pack") in SOURCES_WITH_COLUMNS:
        offered |= set(COLUMNS)
    if dataset_name == "smiles" and params.get("path"):
        import os

        from sympe.datasets.conditions.csv_columns import read_csv_columns

        path = str(params["path"])
        if os.path.isfile(path):
            offered |= set(read_csv_columns(path, params.get("column"), os.stat(path).st_mtime_ns)[0])
    for name in names:
        if name not in offered:
            p = PROPERTIES.get(name)
            why = ("is no known property" + (" and no column of the CSV" if dataset_name == "smiles" else "")
                   if p is None else f"cannot be computed for dataset={dataset_name} ({p.description})")
            raise ConditionError(f"model.condition: {name!r} {why}; this dataset offers {sorted(offered)}")


def check_condition_names(dataset, names) -> None:
    """Raise ``ConditionError`` with one line when a name is not a property this dataset offers, or appears twice."""
    offered = available_properties(dataset)
    if len(set(names)) != len(list(names)):
        raise ConditionError(f"model.condition names a property twice: {list(names)}")
    for name in names:
        if not isinstance(name, str) or name not in offered:
            raise ConditionError(unavailable_message(str(name), dataset))


def attach_conditions(splits: dict, names, dropout: float, spec: ConditionSpec | None = None) -> tuple[dict, ConditionSpec]:
    """``(conditioned splits, spec)``: every split wrapped in a :class:`ConditionedDataset` (module docstring).

    ``spec``: a fitted spec (a checkpoint's) to encode with instead of fitting on ``splits["train"]`` (which may
    then be absent). Raises :class:`~sympe.diffusion.conditioning.ConditionError` for a property the dataset cannot
    provide, one with no value on the train split, or a categorical one with a single category."""
    names = list(names)
    first = next(iter(splits.values()))
    check_condition_names(first, names)
    offered = available_properties(first)
    values = {split: {n: split_values(ds, n) for n in names} for split, ds in splits.items()}
    if spec is None:
        spec = ConditionSpec.fit(values["train"], {n: offered[n].kind for n in names}, dropout,
                                 units={n: offered[n].unit for n in names},
                                 tolerances={n: offered[n].tolerance for n in names})
    out = {}
    for split, ds in splits.items():
        rows = [{n: values[split][n][i] for n in names} for i in range(len(ds))]
        unseen = {p.name: sum(1 for r in rows if p.kind == "categorical" and not is_missing(r[p.name])
                              and _as_category(r[p.name]) not in p.categories) for p in spec.properties}
        for name, count in unseen.items():
            if count:
                print(f"[sympe] {split}: {count} graphs have a {name} category the train split does not have; they "
                      "are scored with that property not given", file=sys.stderr)
        out[split] = ConditionedDataset(ds, spec.encode(rows, strict=False), values[split])
    return out, spec
