"""sympe.datasets.sources: where graphs come from, one module per family of datasets.

* ``base``: :class:`GraphDataset`, the PyG ``InMemoryDataset`` with content-keyed caching every dataset derives from;
  ``cache_manifest``: the record (parameters, file hashes) that lets it verify a processed folder;
* ``qm9``, ``moses``: molecules (QM9 with DiGress's split, MOSES); ``spectre``: planar, SBM and community-20 graphs
  (the shipped SPECTRE benchmark, or generated); ``symmetric``: small graph families with many automorphisms;
  ``breaking``: labelled families whose generation needs symmetry breaking, with their exact entropy and floor;
  ``smiles``: the user's own molecules (``smiles_input`` reads and checks the file, ``smiles_molecules`` turns rows
  into graphs); ``graph_files`` (with ``graph_readers``): the user's own graphs (``dataset=graphs``); ``user_splits``:
  splits of a user's data by a column or at random.

Each name is imported with its module on first use: using one dataset never imports RDKit for another.
"""
from __future__ import annotations

from sympe.datasets.lazy_exports import lazy_exports

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # base
    "GraphDataset": "base", "params_key": "base", "split_counts": "base",
    # cache_manifest
    "ProcessedCacheError": "cache_manifest",
    # user_splits
    "assign_splits": "user_splits", "describe_splits": "user_splits", "check_fractions": "user_splits",
    # qm9
    "QM9Dataset": "qm9", "build_qm9_splits": "qm9", "qm9_split_indices": "qm9", "read_qm9pack": "qm9",
    "read_index_smiles_csv": "qm9",
    # moses
    "MOSESDataset": "moses", "csv_paths": "moses", "molsets_paths": "moses",
    # spectre
    "SpectreDataset": "spectre", "PlanarDataset": "spectre", "SBMDataset": "spectre", "Comm20Dataset": "spectre",
    "benchmark_graphs": "spectre", "benchmark_splits": "spectre", "generate_graphs": "spectre",
    "scoring_reference": "spectre",
    # symmetric
    "SymmetricFamiliesDataset": "symmetric", "FamilyMixture": "symmetric", "generate_symmetric_graphs": "symmetric",
    # breaking
    "SymmetryBreakingDataset": "breaking", "data_entropy": "breaking", "data_floor": "breaking",
    "sample_structure": "breaking",
    # smiles
    "SmilesDataset": "smiles", "SmilesInputError": "smiles_input",
    # graph_files, graph_readers
    "GraphFilesDataset": "graph_files", "GraphFilesError": "graph_readers", "read_graphs": "graph_readers",
}
__all__ = [*_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
