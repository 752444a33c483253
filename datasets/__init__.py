"""sympe.datasets: where graphs come from and what a good sample is.

Subpackages: ``sources`` (the datasets), ``metrics`` (sample quality), ``samples`` (files of samples in and out),
``floor`` (the exchangeable NLL floor). Shared modules: ``molecules`` (molecules <-> graphs, the chemistry every
molecular dataset and metric shares; ``atom_classes``: element-and-charge class names and their valences), ``graph_utils`` (plain graphs <-> PyG / networkx / adjacency), ``registry``
(config name -> dataset class), ``config`` (data objects from a run config), ``datamodule`` and ``train_sampler``
(Lightning data module, resumable sampling), ``evaluation`` (the one place joining a metric with a dataset).

Datasets see models only through ``DenseGraph`` and ``DatasetInfo`` (``sympe.diffusion``). Each name below is
imported with its module on first use, so ``import sympe.datasets`` loads neither torch nor RDKit.
"""
from __future__ import annotations

import sys

from sympe.datasets.lazy_exports import lazy_exports

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # registry
    "DATASETS": "registry", "build_splits": "registry", "dataset_class": "registry",
    "dataset_parameters": "registry",
    # config
    "DatasetConfigError": "config", "build_datamodule": "config", "build_splits_from_cfg": "config",
    "check_dataset_config": "config", "dataset_config": "config", "resolve_path": "config", "summary_text": "config",
    # datamodule
    "GraphDataModule": "datamodule",
    # train_sampler
    "ResumableDataLoader": "train_sampler", "ResumableRandomSampler": "train_sampler",
    # evaluation
    "breaking_bounds": "evaluation", "checkpoint_splits": "evaluation", "evaluate_moses_samples": "evaluation", "floor_of_test_split": "evaluation",
    "read_dataset_samples": "evaluation", "sample_metrics": "evaluation", "score_sample_file": "evaluation",
    # molecules
    "BOND_CLASSES": "molecules", "BOND_ORDERS": "molecules", "MOSES_SPEC": "molecules", "QM9_SPEC": "molecules",
    "QM9_SPEC_WITH_H": "molecules", "MoleculeSpec": "molecules", "build_molecule": "molecules",
    "canonical_smiles": "molecules", "graph_to_mol": "molecules", "graph_to_smiles": "molecules",
    "mol_to_graph": "molecules", "mol_to_smiles": "molecules",
    # graph_utils
    "EDGE_CLASSES": "graph_utils", "NODE_CLASSES": "graph_utils", "adjacency_to_data": "graph_utils",
    "edges_to_data": "graph_utils", "networkx_to_data": "graph_utils", "to_adjacency": "graph_utils",
    "to_networkx": "graph_utils",
}
#: Modules reachable as attributes under a short name (``from sympe.datasets import breaking``).
_MODULES: dict[str, str] = {"breaking": "sympe.datasets.sources.breaking"}
__all__ = [*_EXPORTS, *_MODULES]
_names, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


def __getattr__(name: str):
    if name in _MODULES:
        from importlib import import_module

        module = import_module(_MODULES[name])
        globals()[name] = module
        return module
    return _names(name)


class _AliasFinder:
    """Lets ``import sympe.datasets.breaking`` (and ``from sympe.datasets.breaking import ...``) load the module it
    names in :data:`_MODULES`, on first use; the alias is the same module object."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        prefix = __name__ + "."
        if not fullname.startswith(prefix) or fullname[len(prefix):] not in _MODULES:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, _AliasFinder, origin=_MODULES[fullname[len(prefix):]])

    @staticmethod
    def create_module(spec):
        from importlib import import_module

        module = import_module(spec.origin)
        spec.loader_state = module.__spec__  # the import system sets __spec__ to the alias's; put it back
        return module

    @staticmethod
    def exec_module(module):
        state = getattr(module.__spec__, "loader_state", None)
        if state is not None:
            module.__spec__ = state


if not any(isinstance(f, type) and f.__name__ == "_AliasFinder" and f.__module__ == __name__ for f in sys.meta_path):
    sys.meta_path.append(_AliasFinder)
