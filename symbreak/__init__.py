"""sympe.symbreak: permutation-equivariant layers, canonicalization and symmetry-breaking encodings.

A general library on raw tensors (X (B, n, dx), E (B, n, n, de), node_mask (B, n) bool); it imports
nothing from ``sympe.diffusion`` or ``sympe.datasets``.

* ``ign``: linear equivariant IGN layers (2→2, 2→1, 1→2, 1→1, 2→0) with node masks.
* ``ranking``: tie-aware ranking (dense and sparse) and Plackett–Luce sampling / log-probabilities.
* ``canonicalize``: ``IGNCanonicalizer``, an IGN score per node and the orders drawn from it.
* ``breakers``: the ``SymmetryBreaker`` interface and its implementations (none, noise, SymPE; the
  non-equivariant index encoding, a leak-test control).
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
    pair_mask,
    pair_standardize,
)
from .ranking import (
    check_ranks,
    plackett_luce_log_prob,
    rank_with_ties,
    ranks_to_order,
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
    # ign
    "IGN2to2", "IGN2to1", "IGN1to2", "IGN1to1", "IGN2to0",
    "basis_2to2", "basis_2to1", "basis_1to2", "basis_1to1", "basis_2to0", "pair_mask", "pair_standardize",
    # ranking
    "tie_groups", "rank_with_ties", "ranks_to_order", "check_ranks",
    "sparse_tie_groups", "sparse_rank_with_ties",
    "sample_plackett_luce", "plackett_luce_log_prob",
    "sparse_sample_plackett_luce", "sparse_plackett_luce_log_prob",
    # canonicalize
    "IGNCanonicalizer", "CanonicalDraw", "TIE_MODES", "neural_sort", "ranks_to_permutation_matrix",
    # sympe
    "SymmetryBreaker", "NoBreaking", "NoiseInjection", "SymPE", "IndexEncoding", "make_symmetry_breaker", "BREAKERS",
    "NON_EQUIVARIANT_BREAKERS",
]

# ---- sparse batches, orbits, symmetrisation wrappers. ``ranks_to_perm`` exists in both ``sparse``
# (sparse batches) and ``symmetrize`` (dense); the top-level name is the dense one, the sparse one stays
# ``sympe.symbreak.sparse.ranks_to_perm``. The canonicalisation wrapper is ``canonicalized`` so that it
# does not shadow the ``canonicalize`` module.
from . import orbits, sparse, symmetrize, testing  # noqa: E402
from .orbits import *  # noqa: E402,F401,F403
from .sparse import *  # noqa: E402,F401,F403  (its ranks_to_perm is shadowed just below)
from .symmetrize import *  # noqa: E402,F401,F403

__all__ += list(orbits.__all__) + [n for n in sparse.__all__ if n != "ranks_to_perm"] + list(symmetrize.__all__)
