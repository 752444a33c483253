"""sympe.symbreak: permutation-equivariant layers, canonicalization and symmetry-breaking encodings.

A general library on raw tensors (X (B, n, dx), E (B, n, n, de), node_mask (B, n) bool); it imports
nothing from ``sympe.diffusion`` or ``sympe.datasets``.

* ``permutation``: THE permutation convention (an order: new node i is old node ``perm[i]``); apply,
  invert, compose, ranks <-> order, permutation matrices.
* ``masks``: masks of real node pairs (all, off-diagonal, strict upper triangle).
* ``ign``: linear equivariant IGN layers (2→2, 2→1, 1→2, 1→1, 2→0) with node masks.
* ``ranking``: tie-aware ranking (dense and sparse) and Plackett–Luce sampling / log-probabilities.
* ``canonicalize``: ``IGNCanonicalizer``, an IGN score per node and the orders drawn from it.
* ``breakers``: the ``SymmetryBreaker`` interface and its implementations (none, noise, SymPE; the
  non-equivariant index encoding, a leak-test control).
* ``orbits``: ``wl`` (1-WL colour refinement), ``vf2`` (exact automorphism orbits and |Aut| by VF2 matching),
  ``partitions`` (tie-group orders, refinement): the node partitions that symmetry breaking must break.
* ``sparse``: per-graph operations on PyG-style sparse batches; ``symmetrize``: canonicalization,
  frame / Reynolds averaging.
* ``testing``: equivariance assertions (exact and in distribution) for tests.
"""
from sympe.symbreak.canonicalize import TIE_MODES, CanonicalDraw, IGNCanonicalizer, neural_sort, ranks_to_permutation_matrix
from sympe.symbreak.ign import (
    IGN1to1,
    IGN1to2,
    IGN2to0,
    IGN2to1,
    IGN2to2,
    basis_1to1,
    basis_1to2,
    basis_2to0,
    basis_2to1,
    basis_2to2,
    pair_standardize,
)
from sympe.symbreak.masks import pair_mask
from sympe.symbreak.permutation import (
    all_permutations,
    check_permutation,
    compose_permutations,
    invert_permutation,
    order_to_ranks,
    permutation_matrix,
    permute_graph,
    permute_nodes,
    random_permutation,
    ranks_to_order,
    unpermute_nodes,
)
from sympe.symbreak.ranking import (
    check_ranks,
    plackett_luce_log_prob,
    rank_with_ties,
    sample_plackett_luce,
    sparse_plackett_luce_log_prob,
    sparse_rank_with_ties,
    sparse_sample_plackett_luce,
    sparse_tie_groups,
    tie_groups,
)
from sympe.symbreak.breakers import (BREAKERS, NON_EQUIVARIANT_BREAKERS, IndexEncoding, NoBreaking, NoiseInjection, SymmetryBreaker,
                       SymPE, make_symmetry_breaker)

__all__ = [
    # permutation, masks
    "check_permutation", "invert_permutation", "ranks_to_order", "order_to_ranks", "compose_permutations",
    "permute_nodes", "permute_graph", "unpermute_nodes", "permutation_matrix", "random_permutation",
    "all_permutations", "pair_mask",
    # ign
    "IGN2to2", "IGN2to1", "IGN1to2", "IGN1to1", "IGN2to0",
    "basis_2to2", "basis_2to1", "basis_1to2", "basis_1to1", "basis_2to0", "pair_standardize",
    # ranking
    "tie_groups", "rank_with_ties", "check_ranks",
    "sparse_tie_groups", "sparse_rank_with_ties",
    "sample_plackett_luce", "plackett_luce_log_prob",
    "sparse_sample_plackett_luce", "sparse_plackett_luce_log_prob",
    # canonicalize
    "IGNCanonicalizer", "CanonicalDraw", "TIE_MODES", "neural_sort", "ranks_to_permutation_matrix",
    # breakers
    "SymmetryBreaker", "NoBreaking", "NoiseInjection", "SymPE", "IndexEncoding", "make_symmetry_breaker", "BREAKERS",
    "NON_EQUIVARIANT_BREAKERS",
]

# ---- node partitions (1-WL, automorphisms, tie groups), sparse batches, symmetrisation wrappers. The sparse-batch
# ``ranks_to_perm`` (local ranks with graph offsets) stays ``sympe.symbreak.sparse.ranks_to_perm``; dense ranks ->
# order is ``ranks_to_order``. The canonicalisation wrapper is ``canonicalized`` so that it does not shadow the
# ``canonicalize`` module.
from sympe.symbreak.orbits import (automorphism_group_size, automorphism_orbits, color_refinement,  # noqa: E402
                                   log_tie_group_size, partition_refines, same_partition, tie_group_size)
from sympe.symbreak.sparse import (check_batch_vector, graph_argsort, graph_softmax, local_index,  # noqa: E402
                                   perm_to_ranks, permute_batch, ptr_from_batch, random_perm_of_batch_vector,
                                   random_permutation_of_batch, to_dense_with_order, to_sparse)
from sympe.symbreak.symmetrize import (canonicalized, frame_average, random_node_permutations,  # noqa: E402
                                       randomized_canonicalization, reynolds_average, unpermute_outputs)

__all__ += [
    # orbits
    "color_refinement", "automorphism_orbits", "automorphism_group_size", "tie_group_size", "log_tie_group_size",
    "partition_refines", "same_partition",
    # sparse
    "ptr_from_batch", "check_batch_vector", "local_index", "graph_softmax", "graph_argsort", "perm_to_ranks",
    "random_perm_of_batch_vector", "permute_batch", "random_permutation_of_batch", "to_dense_with_order", "to_sparse",
    # symmetrize
    "unpermute_outputs", "random_node_permutations", "canonicalized", "frame_average", "reynolds_average",
    "randomized_canonicalization",
]
