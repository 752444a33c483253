"""Training loss: cross-entropy of the predicted clean graph.

    L = CE_X + λ · CE_E,

* CE_X = mean over real nodes i of  -log softmax(logits_X[i])[x_i],
* CE_E = mean over real unordered pairs {i, j}, i < j, of  -log softmax(logits_E[i, j])[e_ij].

Each undirected edge enters once (the logits are symmetric, so averaging over ordered pairs as
DiGress does gives the same value). λ = 5 by default (DiGress's ``lambda_train``). Shapes:
logits_X (B, n, dx), logits_E (B, n, n, de); the target is a :class:`DenseGraph`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sympe.diffusion.graph import DenseGraph


def diffusion_ce_loss(logits_X: Tensor, logits_E: Tensor, target: DenseGraph, lambda_E: float) -> dict[str, Tensor]:
    """Return ``{"loss", "loss_X", "loss_E"}`` (scalars)."""
    Xi, Ei = target.collapse(fill=0)
    nm = target.node_mask
    pm = target.pair_mask(upper=True)
    loss_X = F.cross_entropy(logits_X[nm].float(), Xi[nm]) if nm.any() else logits_X.sum() * 0
    loss_E = F.cross_entropy(logits_E[pm].float(), Ei[pm]) if pm.any() else logits_E.sum() * 0
    return {"loss": loss_X + lambda_E * loss_E, "loss_X": loss_X, "loss_E": loss_E}
