r"""Node permutations: the one convention of the project, and the helpers that apply it.

Convention (stated here once; every module of ``sympe`` follows it)
------------------------------------------------------------------
A permutation of ``n`` nodes is a long tensor ``perm`` of shape (n,), or (..., n) for one permutation
per graph of a batch (leading axes are batch axes). It is an **order**: after relabelling, *new node
i is old node* ``perm[i]``. Applied to node and pair tensors of a padded batch (``b`` the batch index):

.. math::  (g·X)[b, i] = X[b, perm[b, i]], \qquad (g·E)[b, i, j] = E[b, perm[b, i], perm[b, j]],

and ``node_mask`` moves like ``X``. In matrix form ``g·X = P X`` and ``g·E = P E Pᵀ`` with the
permutation matrix ``P[i, perm[i]] = 1`` (:func:`permutation_matrix`).

Its inverse ``inv[perm[i]] = i`` maps results back: old node ``j`` sits at position ``inv[j]``. The
inverse of an order is its **ranks**: ``ranks[j]`` is the position of node ``j`` once sorted (rank 0
first), so ``order = ranks⁻¹`` and ``ranks = order⁻¹`` (:func:`ranks_to_order`,
:func:`order_to_ranks`; both are :func:`invert_permutation`). Sorting by a score gives an order
(``argsort``); :mod:`sympe.symbreak.ranking` returns ranks.

Composition: relabelling by ``p`` and then by ``q`` is relabelling by ``compose_permutations(p, q)``
``= p[q]`` (new node ``i`` is old node ``p[q[i]]``).

Sparse (PyG) batches use the same convention with **global** indices: a (N,) ``perm`` never moving
a node to another graph (see :mod:`sympe.symbreak.sparse`, whose rank helpers add the graph offsets).

Every function works on the device of its inputs, without host synchronisation, except the
validation in :func:`check_permutation`.
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

__all__ = [
    "check_permutation",
    "invert_permutation",
    "ranks_to_order",
    "order_to_ranks",
    "compose_permutations",
    "permute_nodes",
    "permute_graph",
    "unpermute_nodes",
    "permutation_matrix",
    "random_permutation",
    "all_permutations",
]


def check_permutation(perm: Tensor, n: int | None = None, name: str = "perm") -> Tensor:
    """Raise ``ValueError`` unless every row (last axis) of ``perm`` is a permutation of ``0 .. n-1``.

    ``n`` defaults to ``perm.shape[-1]``; ``name`` is used in the message. Returns ``perm``.
    Synchronises with the device (validation only; not for hot paths).
    """
    if not torch.is_tensor(perm) or perm.dim() < 1:
        raise ValueError(f"{name} must be a tensor of shape (n,) or (..., n), got {type(perm).__name__} "
                         f"{tuple(perm.shape) if torch.is_tensor(perm) else ''}")
    if perm.dtype != torch.long:
        raise ValueError(f"{name} must be a long tensor, got {perm.dtype}; use .long()")
    m = perm.shape[-1]
    if n is not None and m != n:
        raise ValueError(f"{name} must have n = {n} entries per row, got shape {tuple(perm.shape)}")
    if perm.numel() == 0:
        return perm
    if bool(((perm < 0) | (perm >= m)).any()):
        raise ValueError(f"{name}: entries must lie in 0 .. {m - 1}")
    if not torch.equal(torch.sort(perm, dim=-1).values, torch.arange(m, device=perm.device).expand_as(perm)):
        raise ValueError(f"{name}: every row must be a permutation of 0 .. {m - 1} (no repeated entries)")
    return perm


def invert_permutation(perm: Tensor) -> Tensor:
    """Inverse along the last axis: ``inv[..., perm[..., i]] = i``. Shape and dtype of ``perm``."""
    pos = torch.arange(perm.shape[-1], device=perm.device).expand_as(perm)
    return torch.empty_like(perm).scatter_(-1, perm, pos)


def ranks_to_order(ranks: Tensor) -> Tensor:
    """Ranks (node ``j`` at position ``ranks[j]``) -> order (``order[k]`` = node at position ``k``)."""
    return invert_permutation(ranks)


def order_to_ranks(order: Tensor) -> Tensor:
    """Order (``order[k]`` = node at position ``k``) -> ranks (``ranks[order[k]] = k``)."""
    return invert_permutation(order)


def compose_permutations(p: Tensor, q: Tensor) -> Tensor:
    """``p[q]`` along the last axis: relabelling by ``p`` and then by ``q`` equals relabelling by it.

    Shapes broadcast over leading axes, e.g. (n,) with (B, n).
    """
    p, q = torch.broadcast_tensors(p, q)
    return torch.gather(p, -1, q)


def _batch_perm(perm: Tensor, B: int, n: int) -> Tensor:
    if perm.dim() == 1:
        perm = perm.unsqueeze(0).expand(B, -1)
    if perm.shape != (B, n):
        raise ValueError(f"perm must be (n,) = ({n},) or (B, n) = ({B}, {n}), got shape {tuple(perm.shape)}")
    return perm


def permute_nodes(T: Tensor, perm: Tensor, order: int = 1) -> Tensor:
    """Relabel the node axes of a batched tensor: ``g·T``.

    Args:
        T: (B, n, ...) for ``order = 1`` (node tensors), (B, n, n, ...) for ``order = 2`` (pair
            tensors); ``order = 0`` (graph-level) returns ``T`` unchanged.
        perm: (n,) (the same for every graph) or (B, n) long, module convention.

    Returns ``T[b, perm[b, i]]`` (order 1) or ``T[b, perm[b, i], perm[b, j]]`` (order 2).
    Raises ``ValueError`` if ``T`` does not have ``order`` node axes of size ``n`` after the batch axis.
    """
    if order == 0:
        return T
    if order not in (1, 2):
        raise ValueError(f"order must be 0 (graph), 1 (node) or 2 (pair), got {order}")
    n = perm.shape[-1]
    if T.dim() < 1 + order or any(s != n for s in T.shape[1 : 1 + order]):
        raise ValueError(f"a tensor of order {order} must have shape (B{', n' * order}, ...) with n={n}; "
                         f"got {tuple(T.shape)}")
    B = T.shape[0]
    perm = _batch_perm(perm, B, n)
    b = torch.arange(B, device=perm.device).unsqueeze(1)
    if order == 1:
        return T[b, perm]
    return T[b.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)]


def unpermute_nodes(T: Tensor, perm: Tensor, order: int = 1) -> Tensor:
    """``g⁻¹·T``: map a tensor computed on ``g·x`` back to the labels of ``x`` (``perm`` as above)."""
    return permute_nodes(T, invert_permutation(perm), order)


def permute_graph(X: Tensor, E: Tensor | None, node_mask: Tensor, perm: Tensor):
    """``g·x`` for a padded batch: ``(X[b, perm[b, i]], E[b, perm[b, i], perm[b, j]], node_mask[b, perm[b, i]])``.

    ``X`` (B, n, ...), ``E`` (B, n, n, ...) or None, ``node_mask`` (B, n), ``perm`` (n,) or (B, n) long.
    Padded nodes move like real ones. Not validated (see :func:`check_permutation`).
    """
    Ep = None if E is None else permute_nodes(E, perm, 2)
    return permute_nodes(X, perm, 1), Ep, permute_nodes(node_mask, perm, 1)


def permutation_matrix(perm: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(..., n, n) matrix ``P`` with ``P[..., i, perm[..., i]] = 1``, so ``P @ X = g·X`` and ``P E Pᵀ = g·E``."""
    return torch.nn.functional.one_hot(perm, perm.shape[-1]).to(dtype)


def random_permutation(B: int, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
    """(B, n) long: an independent uniformly random permutation of ``0 .. n-1`` per graph (padding included).

    ``generator`` must live on ``device`` (default: the CPU).
    """
    u = torch.rand(B, n, generator=generator, device=device)
    return torch.argsort(u, dim=1)


def all_permutations(n: int, device=None) -> Tensor:
    """(n!, n) long: every permutation of 0..n-1 in lexicographic order. Refuses n > 8 (40320 rows)."""
    if n < 0 or n > 8:
        raise ValueError(f"all_permutations: n must be in 0 .. 8 (n! rows), got {n}")
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long, device=device).reshape(
        math.factorial(n), n
    )
