"""Build the train/val/test splits of a dataset from its config name and parameters.

``build_splits("qm9", root, remove_h=True)`` -> ``{"train": ds, "val": ds, "test": ds}``.
The dataset modules are imported lazily, so using one dataset never imports RDKit for another.
"""
from __future__ import annotations

import importlib

# config name -> (module, class, fixed keyword arguments)
DATASETS: dict[str, tuple[str, str, dict]] = {
    "qm9": ("sympe.datasets.qm9", "QM9Dataset", {}),
    "moses": ("sympe.datasets.moses", "MOSESDataset", {}),
    "planar": ("sympe.datasets.spectre", "SpectreDataset", {"name": "planar"}),
    "sbm": ("sympe.datasets.spectre", "SpectreDataset", {"name": "sbm"}),
    "comm20": ("sympe.datasets.spectre", "SpectreDataset", {"name": "comm20"}),
    "symmetric": ("sympe.datasets.symmetric", "SymmetricFamiliesDataset", {}),
    "matching": ("sympe.datasets.breaking", "SymmetryBreakingDataset", {"family": "matching"}),
    "marked_cycle": ("sympe.datasets.breaking", "SymmetryBreakingDataset", {"family": "marked_cycle"}),
    "star": ("sympe.datasets.breaking", "SymmetryBreakingDataset", {"family": "star"}),
}


def dataset_class(name: str):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    module, cls, fixed = DATASETS[name]
    return getattr(importlib.import_module(module), cls), fixed


def build_splits(name: str, root: str, **params) -> dict:
    """Instantiate every split of dataset ``name`` under ``root`` (processed once, then cached)."""
    cls, fixed = dataset_class(name)
    kwargs = {**fixed, **params}
    return {split: cls(root=root, split=split, **kwargs) for split in cls.splits}
