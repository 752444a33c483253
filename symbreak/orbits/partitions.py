"""Partitions of the nodes of graphs, and the order of the group that preserves a partition.

Three partitions of the nodes of a graph ``G`` (optionally with node and edge labels) appear when
symmetry is broken by sorting node scores:

* the **orbit partition** of ``Aut(G)``: ``u ~ v`` iff some automorphism maps ``u`` to ``v``;
* the **1-WL (colour refinement) partition**, the coarsest *equitable* partition refining the node
  labels. Every automorphism preserves it, so every orbit lies inside one 1-WL cell (1-WL is
  coarser-or-equal to the orbits); on many graphs (trees, most random graphs) the two coincide;
* any **tie partition** of a ranking (nodes whose scores are equal up to a tolerance).

For a partition ``P`` of the ``n`` nodes, the group of permutations preserving every cell is the
product of the symmetric groups of the cells, of order ``prod_{C in P} |C|!``
(:func:`tie_group_size`). If ``P`` is the orbit partition or a coarsening of it (1-WL, ties of an
invariant score), this group contains the stabilizer ``Stab(G) = Aut(G)``.

Partitions are (N,) cell ids, batched PyG-style with a (N,) ``batch`` vector of graph ids. The
partitions themselves come from :mod:`sympe.symbreak.orbits.wl` (1-WL),
:mod:`sympe.symbreak.orbits.vf2` (exact orbits) and :mod:`sympe.symbreak.ranking` (tie groups).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["tie_group_size", "log_tie_group_size", "partition_refines", "same_partition"]


def _cells(partition: Tensor, batch: Tensor | None) -> tuple[Tensor, Tensor, int]:
    """Unique (graph, cell) pairs: returns (graph of each cell, size of each cell, number of graphs)."""
    if partition.dim() != 1:
        raise ValueError(f"partition must be (N,) cell ids, got shape {tuple(partition.shape)}")
    if batch is None:
        batch = torch.zeros_like(partition, dtype=torch.long)
    if batch.shape != partition.shape:
        raise ValueError(f"batch must have the shape of partition {tuple(partition.shape)}, got {tuple(batch.shape)}")
    num_graphs = int(batch.max()) + 1 if batch.numel() else 1
    key = torch.stack([batch.long(), partition.long()], dim=1)
    cells, counts = torch.unique(key, dim=0, return_counts=True)
    return cells[:, 0], counts, num_graphs


def log_tie_group_size(partition: Tensor, batch: Tensor | None = None) -> Tensor:
    """``log prod_{C} |C|! = sum_C lgamma(|C| + 1)`` per graph: (B,) float64 (B = 1 without ``batch``).

    Args:
        partition: (N,) cell id of every node (e.g. 1-WL colours, orbit ids, tie groups).
        batch: (N,) long graph ids (cells are taken within each graph).
    """
    graph, counts, B = _cells(partition, batch)
    logs = torch.lgamma(counts.double() + 1)
    out = torch.zeros(B, dtype=torch.float64, device=partition.device)
    return out.index_add_(0, graph, logs)


def tie_group_size(partition: Tensor, batch: Tensor | None = None) -> Tensor:
    """Exact ``prod_{C} |C|!`` per graph: (B,) long (B = 1 without ``batch``).

    This is the order of the group of permutations mapping every cell onto itself. Raises
    ``OverflowError`` when a value does not fit in int64 (use :func:`log_tie_group_size`).
    """
    graph, counts, B = _cells(partition, batch)
    logs = log_tie_group_size(partition, batch)
    if bool((logs > 63 * math.log(2) - 1e-6).any()):
        raise OverflowError("tie_group_size: the group order exceeds int64; use log_tie_group_size")
    sizes = [1] * B
    for g, c in zip(graph.tolist(), counts.tolist()):
        sizes[g] *= math.factorial(c)
    return torch.tensor(sizes, dtype=torch.long, device=partition.device)


def partition_refines(fine: Tensor, coarse: Tensor, batch: Tensor | None = None) -> bool:
    """True iff every cell of ``fine`` lies inside one cell of ``coarse`` (within each graph).

    Both are (N,) cell ids; ``batch`` (N,) long graph ids (default one graph).
    """
    if fine.shape != coarse.shape or fine.dim() != 1:
        raise ValueError(f"partition_refines: fine and coarse must both be (N,), got {tuple(fine.shape)} "
                         f"and {tuple(coarse.shape)}")
    if batch is None:
        batch = torch.zeros_like(fine, dtype=torch.long)
    fine_cells = torch.unique(torch.stack([batch.long(), fine.long()], 1), dim=0).shape[0]
    joint = torch.unique(torch.stack([batch.long(), fine.long(), coarse.long()], 1), dim=0).shape[0]
    return fine_cells == joint


def same_partition(a: Tensor, b: Tensor, batch: Tensor | None = None) -> bool:
    """True iff ``a`` and ``b`` group the nodes into the same cells (ids may differ)."""
    return partition_refines(a, b, batch) and partition_refines(b, a, batch)
