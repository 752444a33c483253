"""Build the train/val/test splits of a dataset from its config name and parameters.

``build_splits("qm9", root, remove_h=True)`` -> ``{"train": ds, "val": ds, "test": ds}``.
The dataset modules are imported lazily, so using one dataset never imports RDKit for another.
"""
from __future__ import annotations

import importlib
import inspect

# config name -> (module, class, fixed keyword arguments)
DATASETS: dict[str, tuple[str, str, dict]] = {
    "qm9": ("sympe.datasets.sources.qm9", "QM9Dataset", {}),
    "moses": ("sympe.datasets.sources.moses", "MOSESDataset", {}),
    "planar": ("sympe.datasets.sources.spectre", "SpectreDataset", {"name": "planar"}),
    "sbm": ("sympe.datasets.sources.spectre", "SpectreDataset", {"name": "sbm"}),
    "comm20": ("sympe.datasets.sources.spectre", "SpectreDataset", {"name": "comm20"}),
    "symmetric": ("sympe.datasets.sources.symmetric", "SymmetricFamiliesDataset", {}),
    "matching": ("sympe.datasets.sources.breaking", "SymmetryBreakingDataset", {"family": "matching"}),
    "marked_cycle": ("sympe.datasets.sources.breaking", "SymmetryBreakingDataset", {"family": "marked_cycle"}),
    "star": ("sympe.datasets.sources.breaking", "SymmetryBreakingDataset", {"family": "star"}),
    "smiles": ("sympe.datasets.sources.smiles", "SmilesDataset", {}),
    "graphs": ("sympe.datasets.sources.graph_files", "GraphFilesDataset", {}),
}
#: config name -> (module, function) checking its parameters before anything loads: ``function(params, prefix)``
#: raises one clear error naming ``<prefix>.<option>`` (the module imports neither torch nor the dataset)
PARAMETER_CHECKS: dict[str, tuple[str, str]] = {
    "smiles": ("sympe.datasets.sources.smiles_input", "check_params"),
    "graphs": ("sympe.datasets.sources.graph_readers", "check_params"),
}
#: datasets whose parameter check names a missing required parameter (``???``) itself
NAMES_REQUIRED = {"smiles"}


def check_parameters(name: str, params: dict, prefix: str) -> None:
    """Run the parameter check of dataset ``name`` (:data:`PARAMETER_CHECKS`) when it has one."""
    if name in PARAMETER_CHECKS:
        module, function = PARAMETER_CHECKS[name]
        getattr(importlib.import_module(module), function)(params, prefix)


def dataset_class(name: str):
    """``(dataset class, fixed keyword arguments)`` of config name ``name``; ``ValueError`` listing the
    known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    module, cls, fixed = DATASETS[name]
    return getattr(importlib.import_module(module), cls), fixed


def dataset_parameters(name: str) -> list[str]:
    """The parameters a config may set for dataset ``name`` (constructor arguments, less the fixed ones)."""
    cls, fixed = dataset_class(name)
    skip = {"self", "root", "split", "transform", "force_reload", *fixed}
    return [p for p in inspect.signature(cls.__init__).parameters if p not in skip]


def build_splits(name: str, root: str, **params) -> dict:
    """Instantiate every split of dataset ``name`` under ``root`` (processed once, then cached).

    Raises ``ValueError`` naming the dataset for an unknown name or an unknown parameter (before any
    loading), with the valid choices.
    """
    cls, fixed = dataset_class(name)
    allowed = dataset_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"dataset {name!r} has no parameter(s) {unknown}; its parameters are {allowed} "
                         f"(set them under dataset.params)")
    kwargs = {**fixed, **params}
    return {split: cls(root=root, split=split, **kwargs) for split in cls.splits}
