r"""The mixture bound: the NLL bound of the g̃-mixture reverse model, with a proposal over g̃.

A denoiser with a symmetry breaker draws g̃ (SymPE's ranks, or noise) at every call, and the sampler draws every
variable of ``z_s`` from that call's factorised kernel. The model it samples is, per step, the *mixture*

    p̄(z_s | z_t) = Σ_g p(g | z_t) Π_v p(z_s^v | z_t, g),        p̄(x | z_0) = Σ_g p(g | z_0) Π_v p̂(x^v | z_0, g),

(``v`` over real nodes and unordered real pairs ``i < j``; ``p(· | z_t, g)`` the process's reverse kernel applied
to the prediction made with g). Its ELBO has ``L_t = E KL(q(z_s | z_t, x) ‖ p̄(z_s | z_t))`` and
``L_0 = -E log p̄(x | z_0)``. The per-draw bound (:mod:`~sympe.diffusion.likelihood.bound`) computes
``E_g KL(q ‖ p(· | g))`` instead: >= ``L_t`` by convexity, and minimised by the posterior marginals whatever g is,
so it never credits a breaker. This module estimates the mixture's terms.

Importance-weighted estimate (any proposal)
-------------------------------------------
With ``z_s ~ q(z_s | z_t, x)`` and K draws ``g_k ~ r(g | x, z_t, z_s)`` (a *proposal*), weights
``w_k = p(g_k | z_t) p(z_s | z_t, g_k) / r(g_k)``:

    L̂_t = log q(z_s | z_t, x) - log (1/K) Σ_k w_k,          L̂_0 = -log (1/K) Σ_k p(g_k | z_0) p̂(x | z_0, g_k) / r(g_k).

**Upper bound for every K >= 1 and every proposal** (proof): ``E_r[(1/K) Σ_k w_k] = Σ_{g: r(g)>0} p(g) p(z_s|g)
<= p̄(z_s | z_t)``; ``log`` is concave, so ``E[log (1/K) Σ_k w_k] <= log E[...] <= log p̄(z_s | z_t)`` (Burda,
Grosse & Salakhutdinov 2016, whose argument does not need ``r = p``). Hence ``E[L̂_t] >= E[log q - log p̄] = L_t``
and ``E[L̂_0] >= L_0``; with the exact prior term and ``-log p(N)`` the total bounds the mixture model's NLL.
Equality needs ``r(g) ∝ p(g) p(z_s | g)`` (the posterior over g).

Control variate (what is computed). ``z_s`` is sampled, and ``log q(z_s | z_t, x) - log (1/K) Σ_k w_k`` alone
is heavy-tailed (on a deterministic model it is ``log q - log p`` of one sampled ``z_s``, whose mean is the KL
but whose draws reach 100+ nats). With a factorised reference kernel ``p_ref`` that does not depend on ``z_s``,

    L̂_t = KL(q(· | z_t, x) ‖ p_ref) + log p_ref(z_s) - log (1/K) Σ_k w_k,

the KL summed exactly over ``z_s`` per variable, has the same expectation (``E_{z_s}[log q - log p_ref]`` is the
KL). ``p_ref`` is the draws' kernels averaged with weights ``∝ p(g_k)/r(g_k)`` (``prior``: the plain average;
``exact``: ``p(g)``) when the draws do not depend on ``z_s``, and one more draw of the canonical proposal of
``x`` without the ``z_s`` anchor otherwise (``canonical``, ``defensive``). When every draw gives the same kernel
and the weights are constant (a deterministic network; the prior) ``p_ref`` is that kernel and ``L̂_t`` is exactly
the per-draw bound, whatever ``z_s``; for a sharp breaker the bracket is the log-ratio of two reasonable models
of ``z_s``, not of ``q`` and a wrong one.

Proposals (``model.eval.mixture_proposal``; :mod:`sympe.symbreak.proposal` for ``canonical``)
---------------------------------------------------------------------------------------------
* ``prior``: ``r = p(g | z_t)``, the breaker's own draw (``w_k = p(z_s | g_k)``); the only choice for noise breakers.
  Needs about ``Π|G_i|! / |Aut|`` draws before one explains a sharp prediction.
* ``canonical`` (rank breakers, SymPE): ranks from a canonical labelling of the target within ``z_t``'s tie groups,
  composed with a uniform automorphism (the probabilistic inverse): the clean graph ``x`` in ``L_0``, every
  completion of ``z_s`` reachable by an automorphism of ``(G, z_t, z_s)`` in ``L_t``. Its density is exact.
* ``defensive``: ``r = ½ p(g | z_t) + ½ r_canonical`` (bounded weights ``w_k <= 2 p(z_s | g_k)``).
* ``exact``: every tie-consistent rank vector ``g`` (``p(g | z_t) = 1/Π|G_i|!`` under uniform ties; refused for a
  Plackett–Luce breaker, which gives every order mass) when there are at most ``exact_max``
  (``model.eval.mixture_exact_max``, default 5,040) of them per graph, else ``ValueError``: ``p̄`` itself, no
  Jensen gap in g (``z_s`` is still sampled, with the control variate above).

Deterministic networks (no breaker, the index control, deterministic tie-breaking) have one g: every proposal gives
the per-draw bound exactly. A rank network that *ignores* its ranks gets its per-draw bound in expectation under
``prior``, ``defensive`` and ``exact`` (their supports cover every order), but not under ``canonical``: that
proposal covers only the orders that name the target, so it adds ``log(Π|G_i|! / |supp r|)`` per term for such a
network. Compare variants with ``defensive`` (or ``exact``); ``canonical`` suits networks trained on its ranks.

Cost per term: K network calls (``exact``: Π|G_i|! calls per graph), plus one for the reference of
``canonical``/``defensive`` in ``L_t``, plus BLISS canonical labellings on the CPU (a few per graph and draw).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.kl import graph_kl, variable_weights
from sympe.diffusion.process.categorical import sample_categorical
from sympe.diffusion.likelihood.rank_draws import CHUNK, draw_kind, exact_draws, index_graph, proposal_draws
from sympe.diffusion.process.discrete_process import DiscreteProcess, predict_x0
from sympe.symbreak.proposal import PROPOSALS

__all__ = ["PROPOSALS", "DEFAULT_EXACT_MAX", "joint_log_prob", "log_mean_exp", "mixture_diffusion_term",
           "mixture_reconstruction_term"]

#: Default ``model.eval.mixture_exact_max``: the most tie-consistent orders per graph the exact bound enumerates (7!).
DEFAULT_EXACT_MAX = 5040


def joint_log_prob(pX: Tensor, pE: Tensor, z: DenseGraph) -> Tensor:
    """``Σ_v log p(z^v)`` over real nodes and real pairs ``i < j`` of a one-hot graph ``z``; (B,) float64.

    ``pX`` (B, n, dx) and ``pE`` (B, n, n, de) hold per-variable probabilities (only ``i < j`` is read).
    A probability below the dtype's ``tiny`` (zero included) is read as ``tiny``, as
    :func:`~sympe.diffusion.likelihood.kl.kl_categorical` reads it.
    """
    pairs = z.pair_mask(upper=True)
    # clamped at the dtype's tiny as kl_categorical clamps p: KL + log p_ref(z_s) stays an identity, never NaN
    lX = torch.log((z.X * pX).sum(-1).clamp_min(torch.finfo(pX.dtype).tiny).double())
    lE = torch.log((z.E * pE).sum(-1).clamp_min(torch.finfo(pE.dtype).tiny).double())
    zero = torch.zeros((), dtype=torch.float64, device=z.X.device)
    return torch.where(z.node_mask, lX, zero).sum(1) + torch.where(pairs, lE, zero).sum((1, 2))


def log_mean_exp(values: Tensor, dim: int = 0) -> Tensor:
    """``log (1/K) Σ_k exp(values_k)`` along ``dim`` (K = its size), computed as ``logsumexp - log K``."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


def _check(K: int, proposal: str) -> int:
    if int(K) != K or int(K) < 1:
        raise ValueError(f"mixture bound: the number of g̃ draws K (mixture_draws) must be an integer >= 1, got {K}")
    if proposal not in PROPOSALS:
        raise ValueError(f"mixture bound: mixture_proposal={proposal!r}; choose one of {list(PROPOSALS)}")
    return int(K)


class _Rows:
    """Evaluates draws ("rows": a graph index, optional ranks) of one term in chunks of network calls."""

    def __init__(self, denoiser, z_t: DenseGraph, t: Tensor, process: DiscreteProcess, target: DenseGraph,
                 reverse: bool, generator):
        self.denoiser, self.z_t, self.t, self.process = denoiser, z_t, t, process
        self.target, self.reverse, self.generator = target, reverse, generator

    def __call__(self, graph: Tensor, ranks: Tensor | None, weights: Tensor | None = None):
        """``log p_k(target)`` (R,) for rows ``graph`` (R,) with ``ranks`` (R, n) or None; with ``weights`` (R,)
        also the per-graph weighted average of the rows' per-variable probabilities ((B, n, dx), (B, n, n, de))."""
        B = self.z_t.batch_size
        lps, avg = [], None
        for lo in range(0, graph.numel(), CHUNK):
            idx = graph[lo: lo + CHUNK]
            z, t = index_graph(self.z_t, idx), self.t[idx]
            r = None if ranks is None else ranks[lo: lo + CHUNK]

            def fn(zz, tt, generator=None):
                return self.denoiser(zz, tt, generator, ranks=r) if r is not None else self.denoiser(zz, tt, generator)

            pX, pE = predict_x0(fn, z, t, generator=self.generator)
            if self.reverse:  # L_t: the reverse kernel's probabilities of z_s; L_0: the decoder's of x
                pX, pE = self.process.reverse_probs(pX, pE, z, t, t - 1)
            lps.append(joint_log_prob(pX, pE, index_graph(self.target, idx)))
            if weights is not None:
                w = weights[lo: lo + CHUNK].to(pX.dtype)
                if avg is None:
                    avg = [pX.new_zeros((B, *pX.shape[1:])), pE.new_zeros((B, *pE.shape[1:]))]
                avg[0].index_add_(0, idx, pX * w.view(-1, 1, 1))
                avg[1].index_add_(0, idx, pE * w.view(-1, 1, 1, 1))
        return torch.cat(lps), avg


def _group_max(values: Tensor, graph: Tensor, B: int) -> Tensor:
    out = torch.full((B,), -math.inf, dtype=values.dtype, device=values.device)
    out = out.scatter_reduce(0, graph, values, reduce="amax", include_self=True)
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out))


def _group_softmax(a: Tensor, graph: Tensor, B: int) -> Tensor:
    """``exp(a_k) / Σ_{rows of the same graph} exp(a)`` per row (no host synchronisation)."""
    e = torch.exp(a - _group_max(a, graph, B)[graph])
    total = torch.zeros(B, dtype=a.dtype, device=a.device).index_add_(0, graph, e)
    return e / total[graph]


def _per_graph_log_mean_exp(values: Tensor, graph: Tensor, B: int) -> Tensor:
    """``log mean exp`` of the rows of each graph (B,) (no host synchronisation)."""
    m = _group_max(values, graph, B)
    total = torch.zeros(B, dtype=values.dtype, device=values.device).index_add_(0, graph, torch.exp(values - m[graph]))
    counts = torch.bincount(graph, minlength=B).to(values.dtype)
    return torch.log(total) + m - torch.log(counts)


def _per_graph_mean(values: Tensor, graph: Tensor, B: int) -> Tensor:
    counts = torch.bincount(graph, minlength=B).double()
    return torch.zeros(B, dtype=torch.float64, device=values.device).index_add_(0, graph, values.double()) / counts


def _draws(denoiser, x, z_t, t, process, K, proposal, generator, exact_max, anchor):
    """Rows of the K draws (graph index, ranks or None) and their ``log p(g)/r(g)`` (``prior``: 0)."""
    B = z_t.batch_size
    device = z_t.X.device
    kind = draw_kind(denoiser)
    if kind == "none":  # one g: every proposal is the per-draw bound
        return torch.arange(B, device=device), None, torch.zeros(B, dtype=torch.float64, device=device)
    if proposal != "prior" and kind != "ranks":
        raise ValueError(f"mixture bound: mixture_proposal={proposal!r} needs a rank-based symmetry breaker "
                         "(model.symbreak=sympe or sympe_nodes); use mixture_proposal=prior")
    if proposal == "prior":
        graph = torch.arange(B, device=device).repeat(K)
        return graph, None, torch.zeros(B * K, dtype=torch.float64, device=device)
    if proposal == "exact":
        if getattr(denoiser, "rank_distribution", "uniform_ties") != "uniform_ties":
            raise ValueError("mixture bound: mixture_proposal=exact sums over the tie-consistent orders, the support of "
                             "uniform tie-breaking; a plackett_luce breaker gives every order mass: use canonical or "
                             "defensive")
        return exact_draws(denoiser, z_t, t, exact_max)
    return proposal_draws(denoiser, x, z_t, t, process, K, proposal, generator, anchor)


def mixture_diffusion_term(denoiser: Callable, x: DenseGraph, t: Tensor, process: DiscreteProcess, K: int,
                           generator: torch.Generator | None = None, proposal: str = "prior",
                           exact_max: int = DEFAULT_EXACT_MAX) -> Tensor:
    """One draw of the estimate of ``L_t`` (module docstring) per graph at times ``t`` (B,) >= 1; (B,) float64 nats.

    ``denoiser(z_t, t, generator, ranks=None)``: a network (:class:`~sympe.diffusion.nn.denoiser.DenoisingNetwork`)
    whose attribute ``breaker_draw`` (``"ranks"``, ``"noise"``, ``"none"``) says what it draws, with ``tie_groups``,
    ``rank_log_prob`` and ``sample_ranks`` for rank breakers; a plain function is treated as a noise breaker.
    Raises ``ValueError`` for K < 1, an unknown proposal, a proposal a noise breaker cannot use, or more than
    ``exact_max`` orders of a graph under ``exact``.
    """
    K = _check(K, proposal)
    B = x.batch_size
    s = t - 1
    z_t = process.q_sample(x, t, generator=generator)
    qX, qE = process.posterior(x, z_t, t, s)
    z_s = sample_categorical(qX, qE, x.node_mask, generator=generator, y=x.y)
    rows = _Rows(denoiser, z_t, t, process, z_s, True, generator)
    anchored = proposal in ("canonical", "defensive") and draw_kind(denoiser) == "ranks"
    graph, ranks, a = _draws(denoiser, x, z_t, t, process, K, proposal, generator, exact_max,
                             anchor=z_s if anchored else None)
    wX, wE = variable_weights(x)
    if not anchored:
        # reference: the draws' kernels averaged with weights ∝ exp(a_k) (prior: uniform; exact: p(g)); it does not
        # depend on z_s, so KL(q ‖ p_ref) + log p_ref(z_s) - log mean w has the expectation of log q - log mean w
        lp, avg = rows(graph, ranks, _group_softmax(a, graph, B))
        ref_kl = graph_kl(qX, qE, avg[0], avg[1], wX, wE).double()
        ref_lp = joint_log_prob(avg[0], avg[1], z_s)
    else:
        # the draws follow z_s: the reference is one draw of the canonical proposal of x without the anchor
        lp, _ = rows(graph, ranks)
        g0, r0, _ = proposal_draws(denoiser, x, z_t, t, process, 1, "canonical", generator, anchor=None)
        _, avg = rows(g0, r0, torch.ones(B, dtype=torch.float64, device=x.X.device))
        ref_kl = graph_kl(qX, qE, avg[0], avg[1], wX, wE).double()
        ref_lp = joint_log_prob(avg[0], avg[1], z_s)
    return ref_kl + ref_lp - _per_graph_log_mean_exp(a + lp, graph, B)


def mixture_reconstruction_term(denoiser: Callable, x: DenseGraph, process: DiscreteProcess, K: int,
                                generator: torch.Generator | None = None, proposal: str = "prior",
                                exact_max: int = DEFAULT_EXACT_MAX) -> Tensor:
    """One draw of ``L̂_0`` (module docstring) per graph: ``z_0 ~ q(z_0 | x)``, the draws at ``t = 0``; (B,) float64."""
    K = _check(K, proposal)
    B = x.batch_size
    t0 = torch.full((B,), process.t_min, device=x.X.device, dtype=torch.long)
    z_0 = process.q_sample(x, t0, generator=generator)
    graph, ranks, a = _draws(denoiser, x, z_0, t0, process, K, proposal, generator, exact_max, anchor=None)
    lp, _ = _Rows(denoiser, z_0, t0, process, x, False, generator)(graph, ranks)
    return -_per_graph_log_mean_exp(a + lp, graph, B)
