"""The multi-draw (g̃-mixture) training objective for denoisers with a symmetry breaker.

A denoiser that receives a random group element g̃ (SymPE, or i.i.d. noise channels) defines, at a noisy
graph ``z_t``, the *mixture* prediction of the clean graph ``x0``

    p̂_mix(x0 | z_t) = E_g̃ Π_v p̂(x0^v | z_t, g̃),

where ``v`` runs over the graph's variables: its N node classes and its N(N-1)/2 unordered pairs
{i, j}, i < j (each undirected edge once). The product inside the expectation is a factorised
prediction; the mixture over g̃ is not, and can put its mass on *correlated* outcomes among nodes that
``z_t`` makes interchangeable (e.g. "exactly one of these automorphic nodes is marked").

With K i.i.d. draws g̃_1..g̃_K at the same ``z_t`` the objective of this module is, per graph,

    L_K(x0, z_t) = -log (1/K) Σ_k exp(ℓ_k),
    ℓ_k = Σ_i log p̂(x_i | z_t, g̃_k) + w_E Σ_{i<j} log p̂(e_ij | z_t, g̃_k),

computed with log-sum-exp (``log K - logsumexp_k ℓ_k``), in float64, in nats per graph. It is the
importance-weighted bound of Burda, Grosse & Salakhutdinov (2016, "Importance Weighted Autoencoders")
with the breaker's own distribution as proposal: for ``w_E = 1``, ``E[L_K] >= -log p̂_mix(x0 | z_t)``,
``E[L_K]`` is non-increasing in K and tends to ``-log p̂_mix`` as K -> ∞.

Properties (tested in ``tests/diffusion/objectives/test_mixture.py``)
----------------------------------------------------
* **K = 1** is the per-variable cross-entropy, summed over the graph's variables:
  ``L_1 = -ℓ_1``. The project's :func:`~sympe.diffusion.objectives.cross_entropy.diffusion_ce_loss` averages instead
  (``CE_X`` over the batch's real nodes, ``CE_E`` over its real pairs, ``loss = CE_X + λ CE_E``); with
  ``N_X`` real nodes and ``N_E`` real pairs in the batch,

      diffusion_ce_loss(λ) = (1 / N_X) Σ_b L_1[b]   with   w_E = λ N_X / N_E,

  which is what ``weighting="digress"`` computes (so at K = 1 it *equals* the existing loss).
* **Jensen**: ``L_K <= (1/K) Σ_k (-ℓ_k)``, the mean of the K per-draw cross-entropies
  (returned as ``per_draw_nll``), with equality iff all ℓ_k are equal (draws that change nothing).
* The per-variable cross-entropy is minimised by the equivariant posterior marginals whatever g̃ is
  (see DESIGN.md, "What the likelihood can and cannot show"), so it never rewards using g̃; L_K with
  K >= 2 does, by as much as the mixture beats the best factorised prediction.

Edge weighting: ``weighting="likelihood"`` (default) uses ``w_E = 1``; ``exp(-L_K)`` is then a
Monte-Carlo estimate of a normalised probability of the clean graph. ``weighting="digress"`` uses the
batch-dependent ``w_E = λ N_X / N_E`` above, so that K = 1 reproduces ``diffusion_ce_loss``; for K > 1
the mixture weights are then those of a tempered joint (edges counted ``w_E`` times), no longer a
likelihood. This differs from DiGress, which has no multi-draw objective.

Training that reaches the mixture: a proposal over the ranks (``model.train.proposal``)
-------------------------------------------------------------------------------------
With the breaker's own draws, the mixture objective rewards breaking only with many draws: at an empty ``z_t`` of
a perfect matching, K = 4 prior draws leave 0.006 nats of incentive over the factorised optimum. With ranks drawn
from a proposal ``r(g | x0, z_t)`` that knows the target (:mod:`sympe.symbreak.proposal`: a canonical labelling of
``x0``'s residual within ``z_t``'s tie groups, composed with a uniform automorphism), the importance-weighted form

    L_K^r(x0, z_t) = -log (1/K) Σ_k exp(a_k + ℓ_k),      a_k = log p(g_k | z_t) - log r(g_k),   g_k ~ r,

is an upper bound on ``-log p̂_mix(x0 | z_t)`` for every K and every ``r`` (same argument as Burda et al.; the
proof is in :mod:`sympe.diffusion.likelihood.mixture_bound`) with ``w_E = 1`` (``weighting="likelihood"``).
``proposal="canonical"`` with K = 1 is the cross-entropy of the network given teacher-forced canonical ranks (``a``
does not depend on the network, so the gradient is the cross-entropy's); ``"defensive"`` draws each g from
``½ p(g | z_t) + ½ r_canonical`` (bounded weights). ``weighting="digress"`` is accepted only for ``canonical`` with
K = 1, where it is DiGress's per-variable loss with teacher-forced ranks (no likelihood bound); for K >= 2 or
``defensive`` it is refused (a tempered joint is no bound).

Cost: K denoiser evaluations per training step (K sequential calls, or one call on K·B tiled graphs
with ``tile=True``), i.e. about K times the forward and backward time of the per-variable loss.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.rank_draws import proposal_draws
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss
from sympe.symbreak.masks import pair_mask

ModelFn = Callable[..., tuple[Tensor, Tensor]]
WEIGHTINGS = ("likelihood", "digress")
#: ``model.train.proposal``: the breaker's own ranks (``none``), ranks of the canonical proposal of ``x0``
#: (``canonical``, teacher forcing), or half each (``defensive``); :func:`proposal_nll_loss`.
OBJECTIVE_PROPOSALS = ("none", "canonical", "defensive")


def graph_log_likelihood(logits_X: Tensor, logits_E: Tensor, x0: DenseGraph, edge_weight: float | Tensor = 1.0) -> Tensor:
    """ℓ = Σ_i log p̂(x_i) + w_E Σ_{i<j} log p̂(e_ij) of the clean graph, per graph and per draw.

    Args:
        logits_X: (..., B, n, dx) unnormalised log-probabilities of the clean node classes.
        logits_E: (..., B, n, n, de) the same for edge classes (only i < j is read).
        x0: the clean graph (B graphs, n nodes); padding and the diagonal are ignored.
        edge_weight: w_E, a float or a 0-d tensor.

    Returns:
        (..., B) float64, in nats (<= 0 for ``w_E >= 0``).
    """
    B, n = x0.node_mask.shape
    if logits_X.shape[-3:-1] != (B, n) or logits_E.shape[-4:-1] != (B, n, n):
        raise ValueError(f"graph_log_likelihood: logits_X {tuple(logits_X.shape)} / logits_E {tuple(logits_E.shape)} "
                         f"do not end in (B, n, dx) / (B, n, n, de) with B={B}, n={n} of the clean graph")
    if logits_X.shape[-1] != x0.X.shape[-1] or logits_E.shape[-1] != x0.E.shape[-1]:
        raise ValueError(f"graph_log_likelihood: {logits_X.shape[-1]} node / {logits_E.shape[-1]} edge classes in "
                         f"the logits, {x0.X.shape[-1]} / {x0.E.shape[-1]} in the clean graph")
    Xi, Ei = x0.collapse(fill=0)
    lead = logits_X.shape[:-3]
    lpX = torch.log_softmax(logits_X.double(), dim=-1)
    lpE = torch.log_softmax(logits_E.double(), dim=-1)
    lpX = torch.gather(lpX, -1, Xi.expand(*lead, B, n).unsqueeze(-1)).squeeze(-1)  # (..., B, n)
    lpE = torch.gather(lpE, -1, Ei.expand(*lead, B, n, n).unsqueeze(-1)).squeeze(-1)  # (..., B, n, n)
    node = torch.where(x0.node_mask, lpX, torch.zeros((), dtype=lpX.dtype, device=lpX.device)).sum(-1)
    pairs = x0.pair_mask(upper=True)
    edge = torch.where(pairs, lpE, torch.zeros((), dtype=lpE.dtype, device=lpE.device)).sum((-2, -1))
    return node + edge_weight * edge


def digress_edge_weight(node_mask: Tensor, lambda_E: float) -> float:
    """w_E = λ N_X / N_E: the edge weight under which K = 1 equals ``diffusion_ce_loss(λ)`` (N_E >= 1)."""
    n_x = int(node_mask.sum())
    n_e = int(pair_mask(node_mask, diagonal=False, upper=True).sum())
    return lambda_E * n_x / n_e if n_e > 0 else 0.0


def mixture_nll(logits_X: Tensor, logits_E: Tensor, x0: DenseGraph, edge_weight: float | Tensor = 1.0) -> dict[str, Tensor]:
    """The K-draw mixture objective from logits of K calls at the same noisy graph.

    Args:
        logits_X: (K, B, n, dx), logits_E: (K, B, n, n, de): draw k is the prediction with g̃_k.
        x0: the clean graph; edge_weight: w_E (module docstring).

    Returns:
        dict of (B,) float64 tensors, nats per graph:
        ``nll`` = L_K = log K - logsumexp_k ℓ_k;
        ``per_draw_nll`` = -(1/K) Σ_k ℓ_k (the mean per-draw cross-entropy, >= ``nll``);
        ``ess`` = 1 / Σ_k w_k², w = softmax_k(ℓ), the effective number of draws (1..K; K when the draws
        agree, 1 when one draw explains the graph far better than the others).
    """
    if logits_X.dim() != 4 or logits_E.dim() != 5:
        raise ValueError(f"mixture_nll: expected logits_X (K, B, n, dx) and logits_E (K, B, n, n, de), "
                         f"got {tuple(logits_X.shape)} and {tuple(logits_E.shape)}")
    if logits_X.shape[0] != logits_E.shape[0] or logits_X.shape[0] < 1:
        raise ValueError(f"mixture_nll: logits_X has {logits_X.shape[0]} draws, logits_E {logits_E.shape[0]}")
    ll = graph_log_likelihood(logits_X, logits_E, x0, edge_weight)  # (K, B)
    K = ll.shape[0]
    nll = math.log(K) - torch.logsumexp(ll, dim=0)
    w = torch.softmax(ll, dim=0)
    return {"nll": nll, "per_draw_nll": -ll.mean(0), "ess": 1.0 / (w * w).sum(0)}


def tile_graph(z: DenseGraph, K: int) -> DenseGraph:
    """K copies of a batch stacked along the batch axis, copy-major: graph b of copy k is row k·B + b."""
    return DenseGraph(z.X.repeat(K, *[1] * (z.X.dim() - 1)), z.E.repeat(K, *[1] * (z.E.dim() - 1)),
                      z.y.repeat(K, *[1] * (z.y.dim() - 1)), z.node_mask.repeat(K, 1))


def draw_logits(model_fn: ModelFn, z_t: DenseGraph, t: Tensor, K: int, generator: torch.Generator | None = None,
                tile: bool = False) -> tuple[Tensor, Tensor]:
    """Logits of the clean graph from K calls of the denoiser at the same ``z_t``, one g̃ draw each.

    Args:
        model_fn: ``model_fn(z_t, t, generator) -> (logits_X (B, n, dx), logits_E (B, n, n, de))``; it
            must draw its symmetry-breaking channels from ``generator`` (so the K calls, which share one
            generator, get different draws and the whole is reproducible from its seed).
        z_t: the noisy graph (B graphs); t: (B,) its time steps.
        K: number of draws (>= 1).
        tile: False: K sequential calls on B graphs. True: one call on the K·B graphs of
            :func:`tile_graph` (each graph of the tiled batch gets its own draw; same FLOPs, fewer kernel
            launches, K times the activation memory).

    Returns:
        logits_X (K, B, n, dx), logits_E (K, B, n, n, de).
    """
    if int(K) != K or K < 1:
        raise ValueError(f"draw_logits: K (number of g̃ draws) must be an integer >= 1, got {K}")
    K = int(K)
    if tile:
        B = z_t.batch_size
        lx, le = model_fn(tile_graph(z_t, K), t.repeat(K), generator)
        return lx.reshape(K, B, *lx.shape[1:]), le.reshape(K, B, *le.shape[1:])
    outs = [model_fn(z_t, t, generator) for _ in range(K)]
    return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])


def mixture_nll_loss(model_fn: ModelFn, z_t: DenseGraph, t: Tensor, x0: DenseGraph, K: int,
                     generator: torch.Generator | None = None, *, weighting: str, lambda_E: float,
                     tile: bool = False) -> dict[str, Tensor]:
    """Training entry point: the K-draw mixture objective of a batch (module docstring).

    Args:
        model_fn, z_t, t, K, generator, tile: as for :func:`draw_logits`; ``z_t`` is a noisy version
            of ``x0`` drawn by the caller (the same ``z_t`` for all K draws).
        x0: the clean graph, (B graphs).
        weighting: ``"likelihood"``: w_E = 1 and ``loss`` = mean over graphs of L_K (nats per graph).
            ``"digress"``: w_E = λ N_X / N_E and ``loss`` = Σ_b L_K[b] / N_X, which equals
            ``diffusion_ce_loss(..., lambda_E)["loss"]`` at K = 1.
        lambda_E: λ, used by ``weighting="digress"`` only.

    Returns:
        ``{"loss": scalar (differentiable), "nll": (B,), "per_draw_nll": (B,), "ess": (B,)}``;
        the (B,) entries are float64, nats per graph, under the chosen edge weight.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"mixture_nll_loss: weighting={weighting!r}; choose one of {list(WEIGHTINGS)}")
    logits_X, logits_E = draw_logits(model_fn, z_t, t, K, generator, tile=tile)
    if weighting == "likelihood":
        out = mixture_nll(logits_X, logits_E, x0, 1.0)
        loss = out["nll"].mean()
    else:
        out = mixture_nll(logits_X, logits_E, x0, digress_edge_weight(x0.node_mask, lambda_E))
        loss = out["nll"].sum() / x0.node_mask.sum().clamp(min=1)
    return {"loss": loss.to(logits_X.dtype), **out}


def proposal_nll_loss(denoiser, z_t: DenseGraph, t: Tensor, x0: DenseGraph, K: int,
                      generator: torch.Generator | None = None, *, proposal: str, process, weighting: str,
                      lambda_E: float) -> dict[str, Tensor]:
    """Training entry point with ranks from a proposal (module docstring, "Training that reaches the mixture").

    Args:
        denoiser: a network with a rank breaker (:class:`~sympe.diffusion.nn.denoiser.DenoisingNetwork`,
            ``model.symbreak=sympe``): called as ``denoiser(z_t, t, generator, ranks=...)``.
        z_t, t, x0: the noisy batch, its times (B,), the clean batch. K: draws (0 is read as 1).
        proposal: ``"canonical"`` or ``"defensive"``; process: the :class:`DiscreteProcess` (its absorbing class
            defines the residual of the canonical proposal).
        weighting: ``"likelihood"`` (a bound for every K) or ``"digress"`` (K = 1 ``canonical`` only).

    Returns:
        ``{"loss", "nll" (B,), "per_draw_nll" (B,), "ess" (B,)}`` as :func:`mixture_nll_loss`; ``nll`` includes
        the ``a_k`` (nats per graph of the mixture's bound, likelihood weighting).

    Raises ``ValueError`` for an unknown proposal or weighting, ``digress`` weighting where it is no bound, or a
    network without a rank breaker.
    """
    K = max(1, int(K))
    if proposal not in ("canonical", "defensive"):
        raise ValueError(f"proposal_nll_loss: proposal={proposal!r}; choose 'canonical' or 'defensive'")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"proposal_nll_loss: weighting={weighting!r}; choose one of {list(WEIGHTINGS)}")
    if weighting == "digress" and (K > 1 or proposal == "defensive"):
        raise ValueError("model.train.weighting=digress is no likelihood bound with importance weights (K >= 2 or "
                         "proposal=defensive); use model.train.weighting=likelihood")
    if getattr(denoiser, "breaker_draw", None) != "ranks":
        raise ValueError("model.train.proposal needs a rank-based symmetry breaker (model.symbreak=sympe or sympe_nodes)")
    B = z_t.batch_size
    _, ranks, a = proposal_draws(denoiser, x0, z_t, t, process, K, proposal, generator, anchor=None)
    lX, lE = denoiser(tile_graph(z_t, K), t.repeat(K), generator, ranks=ranks)
    lX, lE = lX.reshape(K, B, *lX.shape[1:]), lE.reshape(K, B, *lE.shape[1:])
    if weighting == "digress":
        ce = diffusion_ce_loss(lX[0], lE[0], x0, lambda_E)
        ll = graph_log_likelihood(lX, lE, x0, 1.0)
        nll = -(a.view(K, B)[0] + ll[0])
        return {"loss": ce["loss"], "nll": nll.detach(), "per_draw_nll": -ll[0].detach(),
                "ess": torch.ones(B, dtype=torch.float64, device=nll.device)}
    ll = graph_log_likelihood(lX, lE, x0, 1.0)  # (K, B)
    lw = a.view(K, B) + ll
    nll = math.log(K) - torch.logsumexp(lw, dim=0)
    w = torch.softmax(lw, dim=0)
    return {"loss": nll.mean().to(lX.dtype), "nll": nll, "per_draw_nll": -ll.mean(0), "ess": 1.0 / (w * w).sum(0)}
