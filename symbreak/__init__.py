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
* ``wl`` (1-WL colour refinement), ``automorphisms`` (exact orbits, |Aut|), ``partitions`` (tie-group
  orders, refinement): the node partitions that symmetry breaking must break.
* ``sparse``: per-graph operations on PyG-style sparse batches; ``symmetrize``: canonicalization,
  frame / Reynolds averaging.
* ``testing``: equivariance assertions (exact and in distribution) for tests.
"""
from .canonicalize import TIE_MODES, CanonicalDraw, IGNCanonicalizer, neural_sort, ranks_to_permutation_matrix
from .ign import (
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
from .masks import pair_mask
from .permutation import (
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
from .ranking import (
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
from .breakers import (BREAKERS, NON_EQUIVARIANT_BREAKERS, IndexEncoding, NoBreaking, NoiseInjection, SymmetryBreaker,
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

# ---- sparse batches, node partitions (1-WL, automorphisms, tie groups), symmetrisation wrappers. The sparse-batch ``ranks_to_perm`` (local ranks
# with graph offsets) stays ``sympe.symbreak.sparse.ranks_to_perm``; dense ranks -> order is
# ``ranks_to_order``. The canonicalisation wrapper is ``canonicalized`` so that it does not shadow the
# ``canonicalize`` module.
from . import automorphisms, partitions, permutation, sparse, symmetrize, testing, wl  # noqa: E402
from .automorphisms import *  # noqa: E402,F401,F403
from .wl import *  # noqa: E402,F401,F403
from .partitions import *  # noqa: E402,F401,F403
from .sparse import *  # noqa: E402,F401,F403
from .symmetrize import *  # noqa: E402,F401,F403

__all__ += list(wl.__all__) + list(automorphisms.__all__) + list(partitions.__all__) + [n for n in sparse.__all__ if n != "ranks_to_perm"] + list(symmetrize.__all__)
