"""Per-variable KL divergences of categorical distributions, summed over a graph's variables.

The counting convention of :mod:`~sympe.diffusion.likelihood.bound`: one variable per real node and one per
unordered real pair ``i < j``. Units: nats.
"""
from __future__ import annotations

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph

__all__ = ["kl_categorical", "variable_weights", "graph_kl"]


def kl_categorical(q: Tensor, p: Tensor) -> Tensor:
    """``Σ_c q_c (log q_c - log p_c)`` over the last axis; terms with ``q_c = 0`` are 0; logs guarded.

    A KL is >= 0 (Gibbs); the sum is clamped at 0 so that float rounding between nearly equal q and p (e.g. the
    prior term, where q(z_T | x) ≈ limit) cannot print a negative nat count such as -9e-7.
    """
    tiny = torch.finfo(q.dtype).tiny
    terms = q * (torch.log(q.clamp_min(tiny)) - torch.log(p.clamp_min(tiny)))
    return torch.where(q > 0, terms, torch.zeros_like(terms)).sum(-1).clamp_min(0.0)


def variable_weights(x: DenseGraph) -> tuple[Tensor, Tensor]:
    """Per-variable weights: nodes (B, n) = real; pairs (B, n, n) = real ``i < j``."""
    return x.node_mask.to(x.X.dtype), x.pair_mask(upper=True).to(x.E.dtype)


def graph_kl(qX: Tensor, qE: Tensor, pX: Tensor, pE: Tensor, wX: Tensor, wE: Tensor) -> Tensor:
    """Σ over weighted nodes (B, n, dx) and pairs (B, n, n, de) of the per-variable KLs -> (B,)."""
    return (kl_categorical(qX, pX) * wX).sum(1) + (kl_categorical(qE, pE) * wE).sum((1, 2))
