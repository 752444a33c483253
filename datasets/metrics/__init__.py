"""sympe.datasets.metrics: what a good sample is, one module per concept.

Molecules: ``mol_metrics`` (validity, uniqueness, novelty, V.U.N.), ``mol_stability`` (atom / molecule stability),
``fcd`` (the Fréchet ChemNet Distance and the one ChemNet of sympe); MOSES's suite: ``moses_metrics`` with
``moses_descriptors``, ``moses_filters`` and ``moses_reference``. Graphs: ``graph_metrics`` (the scorer), ``graph_mmd``
(MMD² of degree / clustering / orbit / spectrum), ``orbit_counts``, ``graph_validity`` (planar / SBM),
``graph_isomorphism`` (uniqueness, novelty), ``user_graph_metrics`` (a user's own graphs: the scorer of
``dataset=graphs``, with connectivity and class-preserving uniqueness / novelty). Each name is imported with its module on first use.
"""
from __future__ import annotations

from sympe.datasets.lazy_exports import lazy_exports

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # mol_metrics
    "MoleculeMetrics": "mol_metrics", "SampleRecord": "mol_metrics", "evaluate_smiles_file": "mol_metrics",
    "read_smiles_file": "mol_metrics",
    # mol_stability
    "stable_atoms": "mol_stability",
    # fcd
    "ChemNetStats": "fcd", "GaussianAccumulator": "fcd", "chemnet_activations": "fcd", "chemnet_stats": "fcd",
    "fcd_from_stats": "fcd", "fcd_section": "fcd", "frechet_distance": "fcd",
    "split_chemnet_stats": "fcd",
    # moses_metrics
    "moses_suite": "moses_metrics",
    # moses_reference
    "MosesReference": "moses_reference", "reference_statistics": "moses_reference", "train_set": "moses_reference",
    # moses_filters
    "passes_filters": "moses_filters",
    # graph_metrics
    "GraphMetrics": "graph_metrics",
    # graph_mmd
    "mmd_metrics": "graph_mmd", "mmd_squared": "graph_mmd", "ratio_metrics": "graph_mmd",
    # graph_validity
    "SBMTest": "graph_validity", "is_planar_valid": "graph_validity", "is_sbm_valid": "graph_validity",
    "validity_fn": "graph_validity",
    # graph_isomorphism
    "IsomorphismIndex": "graph_isomorphism", "uniqueness_novelty": "graph_isomorphism",
    # orbit_counts
    "orbit_counts": "orbit_counts",
    # user_graph_metrics
    "UserGraphMetrics": "user_graph_metrics", "connected_fraction": "user_graph_metrics",
    "total_variation": "user_graph_metrics", "class_frequencies": "user_graph_metrics",
}
__all__ = [*_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
