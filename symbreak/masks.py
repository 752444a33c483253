"""Masks of real node pairs in a padded batch (the one place that builds them).

``node_mask`` (B, n) bool marks the real nodes of each graph. A pair (i, j) of graph ``b`` is *real*
when both nodes are; :func:`pair_mask` selects real pairs, optionally without the diagonal
(``diagonal=False``: the pairs that can carry an edge) and optionally only the strict upper triangle
(``upper=True``: ``i < j``, each unordered pair once, as in the loss, the likelihood and the
symmetric draws of edges). :meth:`sympe.diffusion.graph.DenseGraph.pair_mask` calls it.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["pair_mask"]


def pair_mask(node_mask: Tensor, diagonal: bool = True, upper: bool = False) -> Tensor:
    """(B, n, n) bool: ``node_mask[b, i] & node_mask[b, j]``, restricted as asked.

    Args:
        node_mask: (B, n) bool.
        diagonal: keep the pairs (i, i) (default). Ignored when ``upper`` (always strict).
        upper: keep only ``i < j`` (the strict upper triangle).
    """
    m = node_mask.unsqueeze(2) & node_mask.unsqueeze(1)
    if upper:
        n = node_mask.shape[1]
        return m & torch.ones(n, n, dtype=torch.bool, device=m.device).triu(diagonal=1)
    if not diagonal:
        n = node_mask.shape[1]
        return m & ~torch.eye(n, dtype=torch.bool, device=m.device)
    return m
