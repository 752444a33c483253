"""DiGress's published NLL formula, term by term (the ``digress_compat`` convention).

Use it only to place a model against numbers published with DiGress (Vignac et al., ICLR 2023) and the
SymPE paper (Lawrence et al., ICLR 2025), which report this quantity. It differs from this project's
bound (:mod:`~sympe.diffusion.likelihood.bound`) in four ways, each reproduced here:

1. **Edges in both directions.** Every sum over edge variables runs over the *ordered* pairs
   ``(i, j)`` and ``(j, i)``, i ≠ j: each undirected edge (and non-edge) is counted twice.
2. **L_t with the reweighted kernel.** DiGress forms its model distribution by putting the softmax
   prediction ``p̂`` into the one-hot posterior formula,

       p^rw(z_s | z_t) = (z_t Q_{t|s}ᵀ) ⊙ (p̂ Q̄_s) / (p̂ Q̄_t z_tᵀ) = Σ_k w_k q(z_s | z_t, x0 = k),
       w_k ∝ p̂_k Q̄_t[k, z_t],

   (:func:`~sympe.diffusion.process.categorical.reweighted_posterior`), whereas it samples from the plain kernel
   ``Σ_k p̂_k q(z_s | z_t, x0 = k)``. Its ``L_t = T · KL(q(z_s | z_t, x) ‖ p^rw(z_s | z_t))`` (one ``t``
   per graph) therefore bounds the NLL of the *reweighted* model, not of the model it samples. Set
   ``model.x0_kernel=reweighted`` to sample that model (:data:`~sympe.diffusion.process.discrete_process.REVERSE_KERNELS`).
3. **Prior term direction.** ``KL(p(z_T) ‖ q(z_T | x))`` (limit first) instead of ``KL(q ‖ limit)``.
4. **Masking.** Before a KL, every row that is not a real variable (padding nodes; pairs with a padding
   end; the diagonal ``(i, i)``) is replaced by the one-hot row of class 0 in *both* distributions; then
   ``1e-7`` is added to every entry of a smoothed distribution and it is renormalised. In the prior term
   both distributions are smoothed (so masked rows contribute exactly 0). In ``L_t`` only the model's
   distribution is smoothed: the exact posterior enters masked but unsmoothed (DiGress's ``compute_Lt``
   scores ``prob_true`` after the in-place masking, not the smoothed copy), so each masked row adds
   ``-log((1 + 1e-7) / (1 + d·1e-7)) ≈ (d - 1)·1e-7`` nats, and ``T`` times that per graph: the number
   depends on how far the batch is padded (about 0.1 nats per graph for QM9 with explicit H at T = 500),
   as it does in DiGress. Real rows of the posterior are used as they are (exact zeros contribute 0).

The reconstruction term is ``-Σ_i x_i · log p̂(x_i | z_0) - Σ_{i ≠ j} e_ij · log p̂(e_ij | z_0)`` (masked
rows of ``p̂`` set to ones, so they contribute ``log 1 = 0``), with ``z_0 ~ q(z_0 | x)`` and the model at
``t = 0``. ``log p(N)`` is the same as in this project.

The prediction ``p̂`` is this project's (:func:`~sympe.diffusion.process.discrete_process.predict_x0`: softmax, edge
probabilities symmetrised). DiGress symmetrises the edge *logits* instead; for a network whose edge
logits are symmetric (this project's transformer, DiGress's) the two are the same. Shapes: ``x`` / ``z_t``
DenseGraphs with B graphs padded to n nodes; every function returns (B,) nats per graph.
"""
from __future__ import annotations

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph
from sympe.symbreak.masks import pair_mask

#: The constant DiGress adds to every entry of a distribution before renormalising it.
DIGRESS_EPS = 1e-7


def _ordered_pair_mask(node_mask: Tensor) -> Tensor:
    """(B, n, n) bool: ordered pairs (i, j), i ≠ j, of real nodes."""
    return pair_mask(node_mask, diagonal=False, upper=False)


def _mask_rows(p: Tensor, real: Tensor) -> Tensor:
    """Rows of ``p`` (..., d) where ``real`` (...) is False replaced by the one-hot row of class 0."""
    row = torch.zeros(p.shape[-1], dtype=p.dtype, device=p.device)
    row[0] = 1.0
    return torch.where(real.unsqueeze(-1), p, row)


def _smooth(p: Tensor) -> Tensor:
    """``(p + 1e-7) / Σ (p + 1e-7)`` over the last axis."""
    p = p + DIGRESS_EPS
    return p / p.sum(-1, keepdim=True)


def _kl_sum(target: Tensor, pred: Tensor) -> Tensor:
    """``Σ target · (log target - log pred)`` over every axis but the first; ``0 · log 0 = 0``."""
    tiny = torch.finfo(target.dtype).tiny
    terms = target * (torch.log(target.clamp_min(tiny)) - torch.log(pred.clamp_min(tiny)))
    terms = torch.where(target > 0, terms, torch.zeros_like(terms))
    return terms.flatten(1).sum(1)


def masked_distributions(true_X: Tensor, true_E: Tensor, pred_X: Tensor, pred_E: Tensor, node_mask: Tensor,
                         smooth_true: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """DiGress's masking (module docstring, item 4) of a pair of node (B, n, d) and edge (B, n, n, d') distributions.

    Masked rows of all four tensors become the one-hot row of class 0; ``pred`` is smoothed (``+1e-7``,
    renormalised), and ``true`` too when ``smooth_true``. Returns new tensors ``(true_X, true_E, pred_X, pred_E)``.
    """
    pairs = _ordered_pair_mask(node_mask)
    true_X, pred_X = _mask_rows(true_X, node_mask), _mask_rows(pred_X, node_mask)
    true_E, pred_E = _mask_rows(true_E, pairs), _mask_rows(pred_E, pairs)
    if smooth_true:
        true_X, true_E = _smooth(true_X), _smooth(true_E)
    return true_X, true_E, _smooth(pred_X), _smooth(pred_E)


def prior_term(x: DenseGraph, process) -> Tensor:
    """DiGress's prior term ``KL(p(z_T) ‖ q(z_T | x))`` over nodes and ordered pairs, masked and smoothed. (B,)."""
    B = x.batch_size
    qX, qE = process.q_probs(x, torch.full((B,), process.T, device=x.X.device, dtype=torch.long))
    m_X, m_E = (m.to(device=x.X.device, dtype=x.X.dtype) for m in process.limit())
    lim_X, lim_E, qX, qE = masked_distributions(m_X.expand_as(qX), m_E.expand_as(qE), qX, qE, x.node_mask)
    return _kl_sum(lim_X, qX) + _kl_sum(lim_E, qE)


def diffusion_kl(x: DenseGraph, z_t: DenseGraph, pX: Tensor, pE: Tensor, process, t: Tensor) -> Tensor:
    """DiGress's ``KL(q(z_{t-1} | z_t, x) ‖ p^rw(z_{t-1} | z_t))`` at one time per graph (without the factor T). (B,).

    Args:
        x: the clean graph; z_t: its noisy version at times ``t`` (B,) >= 1.
        pX (B, n, dx), pE (B, n, n, de): the prediction ``p̂(x0 | z_t)``.
        process: the :class:`~sympe.diffusion.process.discrete_process.DiscreteProcess`.
    """
    s = t - 1
    qX, qE = process.posterior(x, z_t, t, s)
    rX, rE = process.reverse_probs(pX, pE, z_t, t, s, kernel="reweighted")
    qX, qE, rX, rE = masked_distributions(qX, qE, rX, rE, x.node_mask, smooth_true=False)
    return _kl_sum(qX, rX) + _kl_sum(qE, rE)


def reconstruction_term(x: DenseGraph, pX: Tensor, pE: Tensor) -> Tensor:
    """DiGress's ``-log p(x | z_0)``: ``-Σ_i x_i log p̂_i - Σ_{i ≠ j} e_ij log p̂_ij`` (real nodes, ordered pairs). (B,)."""
    tiny = torch.finfo(pX.dtype).tiny
    pX = torch.where(x.node_mask.unsqueeze(-1), pX, torch.ones_like(pX))
    pE = torch.where(_ordered_pair_mask(x.node_mask).unsqueeze(-1), pE, torch.ones_like(pE))
    logX = (x.X * torch.log(pX.clamp_min(tiny))).flatten(1).sum(1)
    logE = (x.E * torch.log(pE.clamp_min(tiny))).flatten(1).sum(1)
    return -(logX + logE)
