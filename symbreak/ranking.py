r"""Ranking nodes by a score, with explicit and uniformly random tie-breaking; Plackett–Luce ranking.

Conventions (dense and sparse alike):

* ``rank 0`` is the SMALLEST score. ``ranks[b, i]`` is the position of node ``i`` when the real nodes
  of graph ``b`` are sorted by increasing score; real ranks are exactly ``0 .. n_b-1``. Ranks are the
  inverse of an order (:mod:`sympe.symbreak.permutation` states the convention and converts).
* Dense padded batches: ``scores`` (B, n), ``node_mask`` (B, n) bool. Padded nodes get ranks
  ``n_b .. n-1``, after all real nodes, in increasing node index (a fixed, documented choice; any
  consumer must ignore them).
* Sparse PyG-style batches: ``scores`` (N,), ``batch`` (N,) long graph index of each node (need not
  be sorted); ranks are local to each graph.
* Scores must be finite (padded entries may hold anything).

Tie groups. Real nodes are sorted by score; walking the sorted list, a node starts a new group when
its score exceeds the previous node's score by MORE than ``tol``. Groups are therefore *chained*:
scores ``0, 0.6·tol, 1.2·tol`` form one group although the first and last differ by more than ``tol``.
Group ids are ``0, 1, ...`` in increasing score order (``-1`` on padding). The grouping depends only on
the multiset of scores, so it is permutation-equivariant: relabelling the nodes relabels the groups.

``rank_with_ties`` gives a uniformly random order inside each tie group: it sorts lexicographically by
(group id, u) with i.i.d. uniform keys ``u`` (float64), which draws a uniform permutation of every
group independently, exactly (no small-noise-on-scores trick, whose result would depend on the scale
of the scores). With this, ``ranks`` is the inversion-kernel sample ``γ(x)`` composed with a uniformly
random element of the stabiliser of the score vector.

Plackett–Luce with temperature ``τ``: utilities ``w_i = -s_i / τ`` (small score = likely to come
first, matching ``rank 0 = smallest``). An order ``o`` (``o_k`` = node with rank ``k``) has probability

.. math::  P(o) = \prod_{k=0}^{n_b-1} \frac{\exp w_{o_k}}{\sum_{m \ge k} \exp w_{o_m}},

and is sampled exactly by sorting ``s_i / τ - G_i`` increasingly, ``G_i`` i.i.d. standard Gumbel
(the Gumbel-max trick applied repeatedly). As ``τ → 0`` it concentrates on the sorted order; equal
scores get exchangeable positions, so the sample is equivariant in distribution.

Random draws use ``generator`` when given (it must live on the scores' device); everything runs on
the scores' device without host synchronisation, except the sparse log-probability when
``num_graphs``/``max_nodes`` are not given (one sync to size the dense buffer).
"""
from __future__ import annotations

import torch
from torch import Tensor

from sympe.symbreak.permutation import order_to_ranks, ranks_to_order

__all__ = [
    "tie_groups",
    "rank_with_ties",
    "check_ranks",
    "sparse_tie_groups",
    "sparse_rank_with_ties",
    "sample_plackett_luce",
    "plackett_luce_log_prob",
    "sparse_sample_plackett_luce",
    "sparse_plackett_luce_log_prob",
]


# ---------------------------------------------------------------------------------- checks
def _check_dense(scores: Tensor, node_mask: Tensor) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be (B, n), got shape {tuple(scores.shape)}")
    if node_mask.shape != scores.shape:
        raise ValueError(
            f"node_mask must have the shape of scores {tuple(scores.shape)}, got {tuple(node_mask.shape)}"
        )
    if node_mask.dtype != torch.bool:
        raise ValueError(f"node_mask must be a bool tensor, got {node_mask.dtype}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be floating point, got {scores.dtype}")


def _check_sparse(scores: Tensor, batch: Tensor) -> None:
    if scores.dim() != 1:
        raise ValueError(f"sparse scores must be (N,), got shape {tuple(scores.shape)}")
    if batch.shape != scores.shape:
        raise ValueError(f"batch must be (N,) = {tuple(scores.shape)}, got {tuple(batch.shape)}")
    if batch.dtype != torch.long:
        raise ValueError(f"batch must be a long tensor of graph indices, got {batch.dtype}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be floating point, got {scores.dtype}")


def _check_tol(tol: float) -> None:
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")


def _check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a positive float, got {temperature!r}")


def check_ranks(ranks: Tensor, node_mask: Tensor) -> None:
    """Raise ValueError unless the real ranks of every graph are a permutation of 0..n_b-1.

    Synchronises with the device (validation only; not for hot paths).
    """
    if ranks.shape != node_mask.shape or ranks.dtype != torch.long:
        raise ValueError(
            f"ranks must be a (B, n) long tensor like node_mask {tuple(node_mask.shape)}, "
            f"got {tuple(ranks.shape)} {ranks.dtype}"
        )
    n = ranks.shape[1]
    nb = node_mask.sum(dim=1, keepdim=True)
    ok_range = ((ranks >= 0) & (ranks < nb)) | ~node_mask
    if not bool(ok_range.all()):
        raise ValueError("ranks of real nodes must lie in 0..n_b-1 (n_b = number of real nodes of the graph)")
    hits = torch.zeros(ranks.shape[0], n + 1, dtype=torch.long, device=ranks.device)
    idx = torch.where(node_mask, ranks, torch.full_like(ranks, n))
    hits.scatter_add_(1, idx, torch.ones_like(ranks))
    if not bool((hits[:, :n] <= 1).all()):
        raise ValueError("ranks of real nodes must be distinct within each graph (a permutation of 0..n_b-1)")


# ---------------------------------------------------------------------------------- dense
def _uniform(shape, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=torch.float64)


def _lexsort_order(primary: Tensor, secondary: Tensor) -> Tensor:
    """Indices sorting each row of ``primary`` ascending, ties broken by ``secondary`` ascending."""
    p1 = torch.argsort(secondary, dim=-1, stable=True)
    p2 = torch.argsort(torch.gather(primary, -1, p1), dim=-1, stable=True)
    return torch.gather(p1, -1, p2)


def tie_groups(scores: Tensor, node_mask: Tensor, tol: float = 1e-5) -> Tensor:
    """(B, n) long tie-group ids of real nodes, 0.. in increasing score order; -1 on padding.

    Consecutive sorted scores differing by at most ``tol`` share a group (chained; module docstring).
    """
    _check_dense(scores, node_mask)
    _check_tol(tol)
    key = scores.masked_fill(~node_mask, float("inf"))
    vals, order = torch.sort(key, dim=1, stable=True)
    real_sorted = torch.gather(node_mask, 1, order)
    new = torch.zeros_like(real_sorted)
    new[:, 1:] = (vals[:, 1:] - vals[:, :-1]) > tol
    gid_sorted = torch.cumsum(new.long(), dim=1)
    gid_sorted = torch.where(real_sorted, gid_sorted, torch.full_like(gid_sorted, -1))
    return torch.empty_like(gid_sorted).scatter_(1, order, gid_sorted)


def rank_with_ties(
    scores: Tensor,
    node_mask: Tensor,
    tol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, n) long ranks by increasing score, uniformly random order inside each tie group.

    Padded nodes get ranks ``n_b..n-1`` in increasing index order.
    """
    gid = tie_groups(scores, node_mask, tol)
    n = scores.shape[1]
    idx = torch.arange(n, device=scores.device).expand_as(gid)
    primary = torch.where(node_mask, gid, n + idx)  # padded after every real group, by index
    u = _uniform(scores.shape, scores, generator)
    return order_to_ranks(_lexsort_order(primary, u))


# ---------------------------------------------------------------------------------- sparse
def _sparse_sort(key: Tensor, batch: Tensor) -> Tensor:
    """Permutation sorting nodes by (batch, key), stable."""
    p1 = torch.argsort(key, stable=True)
    p2 = torch.argsort(batch[p1], stable=True)
    return p1[p2]


def _segment_starts(batch_sorted: Tensor) -> Tensor:
    """(N,) bool: True where a new graph begins in a batch-sorted sequence."""
    start = torch.ones_like(batch_sorted, dtype=torch.bool)
    start[1:] = batch_sorted[1:] != batch_sorted[:-1]
    return start


def _local_positions(batch_sorted: Tensor) -> Tensor:
    """(N,) position of each element within its graph's contiguous segment (no host sync)."""
    pos = torch.arange(batch_sorted.numel(), device=batch_sorted.device)
    start = _segment_starts(batch_sorted)
    first = torch.cummax(torch.where(start, pos, torch.zeros_like(pos)), dim=0).values
    return pos - first


def _sparse_groups(scores: Tensor, batch: Tensor, tol: float) -> tuple[Tensor, Tensor]:
    """Global (unique across the batch, ordered by (graph, score)) and local tie-group ids, (N,) each."""
    order = _sparse_sort(scores, batch)
    s = scores[order]
    b = batch[order]
    start = _segment_starts(b)
    new = start.clone()
    new[1:] |= (s[1:] - s[:-1]) > tol
    g_global = torch.cumsum(new.long(), dim=0) - 1
    first = torch.cummax(torch.where(start, g_global, torch.zeros_like(g_global)), dim=0).values
    g_local = g_global - first
    out_global = torch.empty_like(g_global).scatter_(0, order, g_global)
    out_local = torch.empty_like(g_local).scatter_(0, order, g_local)
    return out_global, out_local


def sparse_tie_groups(scores: Tensor, batch: Tensor, tol: float = 1e-5) -> Tensor:
    """(N,) long tie-group ids local to each graph (0.. in increasing score order); chained like ``tie_groups``."""
    _check_sparse(scores, batch)
    _check_tol(tol)
    if scores.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=scores.device)
    return _sparse_groups(scores, batch, tol)[1]


def sparse_rank_with_ties(
    scores: Tensor,
    batch: Tensor,
    tol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(N,) long ranks local to each graph, uniformly random order inside each tie group."""
    _check_sparse(scores, batch)
    _check_tol(tol)
    if scores.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=scores.device)
    g_global, _ = _sparse_groups(scores, batch, tol)
    u = _uniform(scores.shape, scores, generator)
    order = _lexsort_order(g_global, u)  # contiguous per graph: global ids are ordered by graph first
    local = _local_positions(batch[order])
    return torch.empty_like(local).scatter_(0, order, local)


# ---------------------------------------------------------------------------------- Plackett–Luce
def _gumbel(shape, like: Tensor, generator: torch.Generator | None) -> Tensor:
    u = _uniform(shape, like, generator).clamp_min(torch.finfo(torch.float64).tiny)
    return -torch.log(-torch.log(u))


def sample_plackett_luce(
    scores: Tensor,
    node_mask: Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, n) long ranks drawn from Plackett–Luce with utilities ``-scores/τ`` (module docstring).

    Padded nodes get ranks ``n_b..n-1`` in increasing index order.
    """
    _check_dense(scores, node_mask)
    _check_temperature(temperature)
    key = scores.double() / temperature - _gumbel(scores.shape, scores, generator)
    key = key.masked_fill(~node_mask, float("inf"))
    order = torch.argsort(key, dim=1, stable=True)
    return order_to_ranks(order)


def _very_negative(dtype: torch.dtype) -> float:
    """A finite stand-in for -inf on padding (exp underflows to 0; no NaN in the backward pass)."""
    return torch.finfo(dtype).min / 4


def _reverse_pl_log_prob(w_ord: Tensor, real_pos: Tensor) -> Tensor:
    """Σ_k [w_{o_k} - logsumexp_{m>=k} w_{o_m}] over real positions; w_ord (B, n), very negative on padding."""
    lse = torch.flip(torch.logcumsumexp(torch.flip(w_ord, dims=[1]), dim=1), dims=[1])
    terms = torch.where(real_pos, w_ord - lse, torch.zeros_like(w_ord))
    return terms.sum(dim=1)


def plackett_luce_log_prob(
    scores: Tensor,
    ranks: Tensor,
    node_mask: Tensor,
    temperature: float = 1.0,
    validate: bool = True,
) -> Tensor:
    """(B,) log-probability of ``ranks`` (B, n) under Plackett–Luce with utilities ``-scores/τ``.

    Differentiable in ``scores``. ``validate=True`` checks that ranks are permutations (host sync).
    """
    _check_dense(scores, node_mask)
    _check_temperature(temperature)
    if validate:
        check_ranks(ranks, node_mask)
    n = scores.shape[1]
    nb = node_mask.sum(dim=1, keepdim=True)
    # real nodes at their rank; padded nodes keep their ranks n_b..n-1 only if valid, so rebuild them.
    idx = torch.arange(n, device=scores.device).expand_as(ranks)
    pad_rank = nb + torch.cumsum((~node_mask).long(), dim=1) - 1
    full_ranks = torch.where(node_mask, ranks, pad_rank)
    order = ranks_to_order(full_ranks)
    w = (-scores / temperature).masked_fill(~node_mask, _very_negative(scores.dtype))
    w_ord = torch.gather(w, 1, order)
    return _reverse_pl_log_prob(w_ord, idx < nb)


def sparse_sample_plackett_luce(
    scores: Tensor,
    batch: Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(N,) long ranks local to each graph, drawn from Plackett–Luce with utilities ``-scores/τ``."""
    _check_sparse(scores, batch)
    _check_temperature(temperature)
    if scores.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=scores.device)
    key = scores.double() / temperature - _gumbel(scores.shape, scores, generator)
    order = _sparse_sort(key, batch)
    local = _local_positions(batch[order])
    return torch.empty_like(local).scatter_(0, order, local)


def sparse_plackett_luce_log_prob(
    scores: Tensor,
    ranks: Tensor,
    batch: Tensor,
    temperature: float = 1.0,
    num_graphs: int | None = None,
    max_nodes: int | None = None,
) -> Tensor:
    """(num_graphs,) Plackett–Luce log-probability of local ``ranks`` (N,) for a sparse batch.

    The utilities are scattered to a dense (num_graphs, max_nodes) buffer at (graph, rank), already
    in rank order, and reduced like the dense version. ``ranks`` must be permutations of 0..n_b-1 per
    graph (not checked). Without ``num_graphs``/``max_nodes`` they are read from the data (host sync).
    """
    _check_sparse(scores, batch)
    _check_temperature(temperature)
    if ranks.shape != scores.shape or ranks.dtype != torch.long:
        raise ValueError(f"ranks must be an (N,) long tensor like scores, got {tuple(ranks.shape)} {ranks.dtype}")
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    if max_nodes is None:
        max_nodes = int(ranks.max()) + 1 if ranks.numel() else 1
    w = -scores / temperature
    w_ord = torch.full((num_graphs, max_nodes), _very_negative(w.dtype), dtype=w.dtype, device=w.device)
    w_ord = w_ord.index_put((batch, ranks), w)
    nb = torch.zeros(num_graphs, dtype=torch.long, device=w.device).scatter_add_(0, batch, torch.ones_like(batch))
    idx = torch.arange(max_nodes, device=w.device)
    return _reverse_pl_log_prob(w_ord, idx.unsqueeze(0) < nb.unsqueeze(1))
