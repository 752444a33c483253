"""F(T): the best variational bound any deterministic factorised denoiser can reach on a symmetry-breaking family.

The bound (:mod:`sympe.diffusion.likelihood.bound`, ``nll_terms``) of a graph ``x`` with ``N`` nodes and the chain
``x -> z_0 -> ... -> z_T`` is

    -log p(N) + KL(q(z_T | x) ‖ limit)
              + Σ_{t=1..T} E_{z_t ~ q(z_t | x)} Σ_v KL(q(z_{t-1}^v | z_t, x) ‖ p(z_{t-1}^v | z_t))
              + E_{z_0 ~ q(z_0 | x)} [-Σ_v log p̂(x^v | z_0)],

``v`` over the real nodes and the unordered pairs ``i < j`` (each once), with the plain reverse kernel
``p(z_s^v | z_t) = Σ_k p̂(x0^v = k | z_t) q(z_s^v | z_t^v, x0^v = k)``
(:meth:`~sympe.diffusion.process.discrete_process.DiscreteProcess.reverse_probs`). For every ``z_t`` and every
variable, the per-variable terms are minimised by the exact posterior marginal of the data distribution

    π_v(k | z_t) = Σ_{x'} q(x' | z_t) 1[x'^v = k],      q(x' | z_t) ∝ p(x') Π_v Q̄_t[x'^v, z_t^v]

(the ``L_0`` term is a cross-entropy, minimised by the true conditional; each ``L_t`` term is
``E_{x | z_t} KL(q(z_{t-1} | z_t, x) ‖ Σ_k p̂_k q(z_{t-1} | z_t, k))``, whose minimiser over ``p̂`` is π as well,
since ``q(z_{t-1} | z_t, x)`` depends on ``x`` only through ``x^v`` and the kernel is linear in ``p̂``: the
mixture ``E_{x|z_t} q(z_{t-1}^v | z_t, x^v)`` is the kernel at ``p̂ = π_v`` and the KL splits into that
mixture's cross-entropy plus a term free of ``p̂``). So ``F(T)``, the bound averaged over the data distribution
with ``p̂ = π`` at every step, is the lowest bound of *any* denoiser that predicts the variables independently
given ``z_t`` (equivariant or not, reading noise or node indices); a symmetry breaker is credited only below
it, by a mixture bound. ``F(T) - H`` (``H`` = :func:`~sympe.datasets.sources.breaking.data_entropy`) is the room it
has: it tends to 0 as ``T`` grows (many small steps) and is largest at ``T = 1``.

The families of :mod:`sympe.datasets.sources.breaking` (``permute_nodes=True``) are uniform over their support
given the size, and sizes are uniform over the range, so ``-log p(N) = log(number of sizes)``. The support of one
size is enumerated (:func:`family_support`, at most :data:`MAX_SUPPORT` graphs) and π is exact
(:func:`posterior_marginals`, float64, log-space). The process is built as the model builds it
(:func:`family_process`, after ``sympe.diffusion.runs.model``): ``make_schedule(schedule, T,
exact_limit=schedule_needs_exact_limit(transition))`` (the absorbing chain ends with ``β_T = 1``, so its prior
term is exactly 0) and ``make_transition`` with the family's exact class marginals (:func:`family_marginals`: the
node-class frequencies over nodes and edge-class frequencies over unordered pairs that ``DatasetInfo.from_graphs``
computes, here of the population, not of a finite train split; the absorbing node class is then the most
frequent one). Every number goes through the project's own ``q_probs`` / ``q_sample`` / ``posterior`` /
``reverse_probs`` and the KL of ``bound.py``.

How :func:`factorised_bound` evaluates it
-----------------------------------------
The support is closed under node relabelling and uniform, and the transition treats all nodes alike, so the
per-graph bound is the same for every ``x`` of one size: one ``x`` per size suffices.

* ``exact`` (default for ``absorbing``; ``se = 0``): every ``z_t`` reachable from ``x`` is enumerated (variable
  ``v`` may take class ``c`` iff ``Q̄_t[x^v, c] > 0`` for some ``t``: under the absorbing transition the subsets of
  x's non-absorbing variables that were absorbed, with ``q(z_t | x) = ᾱ_t^{|kept|} (1 - ᾱ_t)^{|dropped|}``; at
  most :data:`MAX_STATES` states), and ``Σ_t E_{z_t}`` is an exact weighted sum over ``t = 1..T`` and those
  states, plus ``L_0`` at ``t = 0`` and the prior term. With a one-hot limit and every support graph of the size
  having the same number of non-absorbing variables (true for all three families), the likelihood of ``z_t`` is
  ``ᾱ_t^{|kept|} (1 - ᾱ_t)^{(#non-absorbing of x') - |kept|}`` on the graphs consistent with the kept variables
  and 0 elsewhere: the posterior over the support does not depend on ``t``, and π is computed once per state
  (at the time whose ``ᾱ_t`` is nearest 1/2). Otherwise π is recomputed at every ``t``.
* ``mc`` (default for ``marginal`` and ``uniform``, whose noisy states are too many to enumerate): ``num_samples``
  graphs ``x`` drawn from the family (size uniform, then a uniform support graph, by ``torch.Generator(seed)``),
  one ``z_t ~ q(z_t | x)`` per ``t = 0..T`` and per graph, exact π, the same per-term formulas; the mean and its
  standard error over the graphs.

Values (nats per graph, cosine schedule, fixed size so ``-log p(N) = 0``, ``H`` the data entropy), exact under the
absorbing chain and checked against closed forms and against ``nll_terms`` with the posterior-marginal oracle
(``tests/datasets/floor/test_factorised.py``):

=====  ======================  ==================
T      matching m = 4          star n = 8
=====  ======================  ==================
1      8.4775                  6.2314
10     5.4011                  2.7122
500    4.6699                  2.0920
H      4.6540                  2.0794
=====  ======================  ==================

Marginal transition, Monte Carlo (mean ± s.e.): T = 10: F - H = 0.875 ± 0.016 (matching m = 4, 20000 graphs) and
1.627 ± 0.031 (marked cycle n = 8, k = 1, 10000 graphs); T = 500: 0.010 ± 0.007 (matching m = 4, 2000 graphs) and
0.04 ± 0.03 (marked cycle, 200 graphs).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from sympe.datasets.floor.family_support import (MAX_SUPPORT, TRANSITIONS, check_family, check_steps, check_transition,
                                                 family_marginals, family_process, family_sizes, family_support,
                                                 support_size)
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.bound import check_prior_support
from sympe.diffusion.likelihood.kl import graph_kl as _graph_kl, variable_weights as _weights
from sympe.diffusion.process.discrete_process import DiscreteProcess

# support_size ... family_process live in family_support and are re-exported here (one import for F(T) users)
__all__ = ["MAX_SUPPORT", "MAX_STATES", "TRANSITIONS", "METHODS", "support_size", "family_support",
           "family_marginals", "family_process", "posterior_marginals", "factorised_terms", "factorised_bound"]

#: Most noisy states ``z_t`` the exact method enumerates per size.
MAX_STATES = 65_536
METHODS: tuple[str, ...] = ("auto", "exact", "mc")
#: Elements of the (states x support graphs) posterior matrix held at once.
_CHUNK = 1 << 22
_F64 = torch.float64


def _flat_upper(E: Tensor) -> Tensor:
    """(B, N, N, de) -> (B, P * de): the strict upper triangle ``i < j``, row-major."""
    N = E.shape[1]
    iu, ju = torch.triu_indices(N, N, 1)
    return E[:, iu, ju].reshape(E.shape[0], -1)


def _log_lik(process: DiscreteProcess, support, z_t: DenseGraph, t: Tensor) -> Tensor:
    """``log Π_v Q̄_t[x'^v, z_t^v]`` for every z_t (B) and support graph x' (S): (B, S) float64, -inf if 0."""
    Xs, Es, _ = support
    B = z_t.batch_size
    QX, QE = process.Q_bar(t, dtype=_F64, B=B)
    # A[b, v, k] = Q̄_t[k, z_t^v]: the likelihood of z_t's class at v if x'^v = k
    AX = z_t.X.to(_F64) @ QX.transpose(1, 2)
    AE = (z_t.E.to(_F64).flatten(1, 2) @ QE.transpose(1, 2)).view(z_t.E.shape)
    AX, AE = AX.reshape(B, -1), _flat_upper(AE)
    sX, sE = Xs.to(_F64).reshape(Xs.shape[0], -1), _flat_upper(Es.to(_F64))
    ll = torch.where(AX > 0, AX.log(), 0.0) @ sX.T + torch.where(AE > 0, AE.log(), 0.0) @ sE.T
    zero = (AX <= 0).to(_F64) @ sX.T + (AE <= 0).to(_F64) @ sE.T  # support variables whose class cannot give z_t
    return torch.where(zero > 0, -math.inf, ll)


def posterior_marginals(process: DiscreteProcess, support, z_t: DenseGraph, t) -> tuple[Tensor, Tensor]:
    """The exact posterior marginals ``π_v(k | z_t)`` of the data distribution restricted to one size.

    ``q(x' | z_t) ∝ p(x') Π_v Q̄_t[x'^v, z_t^v]`` over the support (``Q̄_t`` from ``process.Q_bar``; v over nodes
    and pairs ``i < j``), computed in float64 log-space, then ``π_v(k | z_t) = Σ_{x'} q(x' | z_t) 1[x'^v = k]``.

    Args:
        process: the :class:`DiscreteProcess`.
        support: ``(X (S, N, dx), E (S, N, N, de), probs (S,))`` as from :func:`family_support`.
        z_t: noisy one-hot graphs (B, N, ·), every node real.
        t: int or (B,) integer times in ``0..T``.

    Returns:
        ``(pX (B, N, dx), pE (B, N, N, de))`` float64; ``pE`` symmetric with zero diagonal.

    Raises ``ValueError`` for shapes that differ from the support's, padded nodes, or a ``z_t`` that no support
    graph can produce at its time.
    """
    Xs, Es, probs = support
    S, N, dx = Xs.shape
    de = Es.shape[-1]
    if z_t.X.shape[1:] != (N, dx) or z_t.E.shape[1:] != (N, N, de):
        raise ValueError(f"posterior_marginals: z_t has shapes {tuple(z_t.X.shape)}, {tuple(z_t.E.shape)}; the "
                         f"support has N={N}, dx={dx}, de={de}")
    if not bool(z_t.node_mask.all()):
        raise ValueError("posterior_marginals: z_t must have all its N nodes real (one size at a time, no padding)")
    B = z_t.batch_size
    t = torch.as_tensor(t, device=z_t.X.device).long().reshape(-1)
    t = t.expand(B) if t.numel() == 1 else t
    log_prior = torch.as_tensor(probs, dtype=_F64).log()
    vX, vE = Xs.to(_F64).reshape(S, -1), Es.to(_F64).reshape(S, -1)
    outX, outE = [], []
    step = max(1, _CHUNK // max(S, 1))
    for lo in range(0, B, step):
        sl = slice(lo, lo + step)
        z = DenseGraph(z_t.X[sl], z_t.E[sl], z_t.y[sl], z_t.node_mask[sl])
        logw = _log_lik(process, support, z, t[sl]) + log_prior
        if bool(torch.isinf(logw).all(dim=1).any()):
            raise ValueError("posterior_marginals: a z_t has probability 0 under every support graph at its time "
                             "(not a noisy version of this family at this size)")
        w = torch.softmax(logw, dim=1)
        outX.append((w @ vX).view(-1, N, dx))
        outE.append((w @ vE).view(-1, N, N, de))
    return torch.cat(outX), torch.cat(outE)


# ---------------------------------------------------------------------------------------------- the terms
def _graph(X: Tensor, E: Tensor) -> DenseGraph:
    B, N = X.shape[:2]
    return DenseGraph(X, E, X.new_zeros(B, 0), torch.ones(B, N, dtype=torch.bool, device=X.device))


def _repeat(g: DenseGraph, r: int) -> DenseGraph:
    return _graph(g.X.repeat(r, 1, 1), g.E.repeat(r, 1, 1, 1))


def _prior_term(process: DiscreteProcess, x: DenseGraph) -> Tensor:
    """``KL(q(z_T | x) ‖ limit)`` per graph (B,), the formula of ``bound.nll_terms``; ``ValueError`` if infinite."""
    B = x.batch_size
    wX, wE = _weights(x)
    qX, qE = process.q_probs(x, torch.full((B,), process.T, dtype=torch.long))
    m_X, m_E = (m.to(_F64) for m in process.limit())
    check_prior_support(qX, qE, m_X, m_E, wX, wE, process)
    return _graph_kl(qX, qE, m_X.expand_as(qX), m_E.expand_as(qE), wX, wE)


def _step_kl(process: DiscreteProcess, x: DenseGraph, z: DenseGraph, t: Tensor, piX: Tensor, piE: Tensor) -> Tensor:
    """``Σ_v KL(q(z_{t-1}^v | z_t, x) ‖ p(z_{t-1}^v | z_t))`` with ``p̂ = π``, per graph (B,)."""
    qX, qE = process.posterior(x, z, t, t - 1)
    pX, pE = process.reverse_probs(piX, piE, z, t, t - 1)
    wX, wE = _weights(x)
    return _graph_kl(qX, qE, pX, pE, wX, wE)


def _recon(x: DenseGraph, piX: Tensor, piE: Tensor) -> Tensor:
    """``-Σ_v log π_v(x^v | z_0)`` per graph (B,), the formula of ``bound.nll_terms``."""
    wX, wE = _weights(x)
    tiny = torch.finfo(_F64).tiny
    logpX = (x.X * piX.clamp_min(tiny).log()).sum(-1)
    logpE = (x.E * piE.clamp_min(tiny).log()).sum(-1)
    return -((logpX * wX).sum(1) + (logpE * wE).sum((1, 2)))


def _t_independent(process: DiscreteProcess, support) -> bool:
    """Whether ``q(x' | z_t)`` is the same at every t: a one-hot limit and the same number of non-absorbing
    variables in every support graph (module docstring)."""
    m_X, m_E = process.limit()
    if int((m_X > 0).sum()) != 1 or int((m_E > 0).sum()) != 1:
        return False
    Xs, Es, _ = support
    aX, aE = int(m_X.argmax()), int(m_E.argmax())
    count = (1 - Xs[..., aX]).sum(1) + _flat_upper(1 - Es[..., aE : aE + 1]).sum(1)
    return bool((count == count[0]).all())


def _states(process: DiscreteProcess, x: DenseGraph) -> DenseGraph:
    """Every z reachable from the one graph ``x`` (variable v may take c iff ``Q̄_t[x^v, c] > 0`` for some t)."""
    N, dx, de = x.X.shape[1], x.X.shape[2], x.E.shape[3]
    QX, QE = process.Q_bar(torch.arange(process.T + 1), dtype=_F64)
    RX, RE = (QX > 0).any(0), (QE > 0).any(0)  # (d, d): class k can become c
    iu, ju = torch.triu_indices(N, N, 1)
    options = [RX[int(c)].nonzero().flatten() for c in x.X[0].argmax(-1)]
    options += [RE[int(c)].nonzero().flatten() for c in x.E[0, iu, ju].argmax(-1)]
    count = math.prod(len(o) for o in options)
    if count > MAX_STATES:
        raise ValueError(f"factorised_bound: the exact method would enumerate {count} noisy states per size, more "
                         f"than MAX_STATES={MAX_STATES}; use method='mc' or a smaller size")
    grid = torch.cartesian_prod(*options) if len(options) > 1 else options[0].view(-1, 1)
    grid = grid.view(count, -1)
    X = torch.nn.functional.one_hot(grid[:, :N], dx).to(_F64)
    Eidx = torch.zeros(count, N, N, dtype=torch.long)
    Eidx[:, iu, ju] = grid[:, N:]
    Eidx = Eidx + Eidx.transpose(1, 2)
    E = torch.nn.functional.one_hot(Eidx, de).to(_F64) * (1 - torch.eye(N, dtype=_F64)).view(1, N, N, 1)
    return _graph(X, E)


def _state_probs(process: DiscreteProcess, x: DenseGraph, z: DenseGraph) -> Tensor:
    """``q(z_t | x)`` for every t = 0..T (rows) and state (columns): (T + 1, Z), from ``process.q_probs``."""
    T1 = process.T + 1
    qX, qE = process.q_probs(_repeat(x, T1), torch.arange(T1))
    qX, qE = qX.reshape(T1, -1), _flat_upper(qE)
    zX, zE = z.X.reshape(z.batch_size, -1), _flat_upper(z.E)
    ll = torch.where(qX > 0, qX.log(), 0.0) @ zX.T + torch.where(qE > 0, qE.log(), 0.0) @ zE.T
    zero = (qX <= 0).to(_F64) @ zX.T + (qE <= 0).to(_F64) @ zE.T
    return torch.where(zero > 0, 0.0, ll.exp())


def _exact_size(process: DiscreteProcess, support) -> dict[str, float]:
    """The bound's terms at one size, summed exactly over every reachable z_t (module docstring)."""
    Xs, Es, _ = support
    x = _graph(Xs[:1].to(_F64), Es[:1].to(_F64))
    z = _states(process, x)
    Z, T = z.batch_size, process.T
    W = _state_probs(process, x, z)  # (T + 1, Z)
    fixed = None
    if _t_independent(process, support):
        ab = process.schedule.alpha_bars.double()
        t_ref = int((ab - 0.5).abs().argmin())
        fixed = posterior_marginals(process, support, z, t_ref)
    N = x.X.shape[1]
    step = max(1, _CHUNK // (Z * N * N * x.E.shape[-1]))
    diffusion = 0.0
    for lo in range(1, T + 1, step):
        ts = torch.arange(lo, min(lo + step, T + 1))
        tt = ts.repeat_interleave(Z)
        w = W[ts].flatten()
        on = w > 0  # states x cannot reach at t carry no weight (and may be impossible for every x')
        zz = _repeat(z, len(ts))
        zz, tt = _graph(zz.X[on], zz.E[on]), tt[on]
        if fixed is not None:
            piX, piE = fixed[0].repeat(len(ts), 1, 1)[on], fixed[1].repeat(len(ts), 1, 1, 1)[on]
        else:
            piX, piE = posterior_marginals(process, support, zz, tt)
        kl = _step_kl(process, _repeat(x, int(on.sum())), zz, tt, piX, piE)
        diffusion += float((w[on] * kl).sum())
    on = W[0] > 0
    z0 = _graph(z.X[on], z.E[on])
    piX, piE = (fixed[0][on], fixed[1][on]) if fixed is not None else posterior_marginals(process, support, z0, 0)
    reconstruction = float((W[0][on] * _recon(_repeat(x, int(on.sum())), piX, piE)).sum())
    prior = float(_prior_term(process, x)[0])
    return {"kl_prior": prior, "diffusion": diffusion, "reconstruction": reconstruction,
            "bound": prior + diffusion + reconstruction}


def _mc_size(process: DiscreteProcess, support, n: int, generator: torch.Generator) -> Tensor:
    """Per-graph Monte-Carlo bound (without -log p(N)) of ``n`` graphs drawn uniformly from ``support``: (n,)."""
    Xs, Es, probs = support
    T1 = process.T + 1
    N = Xs.shape[1]
    out = []
    per = max(1, _CHUNK // (T1 * max(Xs.shape[0], N * N * Es.shape[-1])))
    for lo in range(0, n, per):
        b = min(per, n - lo)
        idx = torch.multinomial(probs, b, replacement=True, generator=generator)
        x = _graph(Xs[idx].to(_F64), Es[idx].to(_F64))
        xx = _graph(x.X.repeat_interleave(T1, 0), x.E.repeat_interleave(T1, 0))  # graph-major, time-minor
        tt = torch.arange(T1).repeat(b)
        zz = process.q_sample(xx, tt, generator=generator)
        piX, piE = posterior_marginals(process, support, zz, tt)
        at0 = tt == 0
        rec = _recon(_graph(xx.X[at0], xx.E[at0]), piX[at0], piE[at0])
        sel = ~at0
        kl = _step_kl(process, _graph(xx.X[sel], xx.E[sel]), _graph(zz.X[sel], zz.E[sel]), tt[sel],
                      piX[sel], piE[sel]).view(b, T1 - 1).sum(1)
        out.append(_prior_term(process, x) + kl + rec)
    return torch.cat(out)


def factorised_terms(family: str, size, T: int, transition: str, *, k: int = 1, schedule: str = "cosine",
                     num_samples: int = 2000, seed: int = 0, method: str = "auto") -> dict:
    """:func:`factorised_bound` with its parts: a dict with ``value``, ``se``, ``method``, ``log_num_sizes``
    (``-log p(N)``) and ``per_size`` (size -> the exact terms ``kl_prior``, ``diffusion``, ``reconstruction``,
    ``bound``, or the Monte-Carlo ``mean``, ``se`` and ``num_samples`` of that size), in nats per graph."""
    check_family(family)
    transition = check_transition(transition)
    T = check_steps(T)
    sizes, k = family_sizes(family, size, k)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if method == "auto":
        method = "exact" if transition == "absorbing" else "mc"
    if method == "mc" and (not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1):
        raise ValueError(f"num_samples (graphs of the Monte-Carlo estimate) must be an int >= 1, got {num_samples!r}")
    for s in sizes:  # refuse before any work
        if support_size(family, s, k) > MAX_SUPPORT:
            raise ValueError(f"factorised_bound: {family} of size {s} has {support_size(family, s, k)} labelled "
                             f"graphs, more than the enumeration limit MAX_SUPPORT={MAX_SUPPORT}")
    process = family_process(family, [sizes[0], sizes[-1]], T, transition, k=k, schedule=schedule)
    log_sizes = math.log(len(sizes))
    per_size: dict[int, dict] = {}
    if method == "exact":
        for s in sizes:
            per_size[s] = _exact_size(process, family_support(family, s, k))
        value = log_sizes + sum(v["bound"] for v in per_size.values()) / len(sizes)
        se = 0.0
    else:
        gen = torch.Generator().manual_seed(int(seed))
        which = torch.randint(len(sizes), (num_samples,), generator=gen)
        values = torch.empty(num_samples, dtype=_F64)
        for i, s in enumerate(sizes):
            mask = which == i
            if int(mask.sum()) == 0:
                continue
            v = _mc_size(process, family_support(family, s, k), int(mask.sum()), gen)
            values[mask] = v
            per_size[s] = {"mean": float(v.mean()), "num_samples": v.numel(),
                           "se": float(v.std() / math.sqrt(v.numel())) if v.numel() > 1 else math.nan}
        values = values + log_sizes
        value = float(values.mean())
        se = float(values.std() / math.sqrt(num_samples)) if num_samples > 1 else math.nan
    return {"value": value, "se": se, "method": method, "log_num_sizes": log_sizes, "per_size": per_size}


def factorised_bound(family: str, size, T: int, transition: str, *, k: int = 1, schedule: str = "cosine",
                     num_samples: int = 2000, seed: int = 0, method: str = "auto") -> tuple[float, float]:
    """F(T): the bound of ``nll_terms`` with the exact posterior marginals as denoiser, averaged over the family.

    Args:
        family: ``"matching"``, ``"star"`` or ``"marked_cycle"`` (:mod:`~sympe.datasets.sources.breaking`,
            ``permute_nodes=True``).
        size: m (matchings) or n: an int or an inclusive range [min, max] (sizes uniform).
        T: noising steps after step 0 (the chain ``x -> z_0 -> ... -> z_T``), >= 1.
        transition: ``"absorbing"``, ``"marginal"`` or ``"uniform"`` (built by :func:`family_process`).
        k: marked cycles only, the number of marked nodes.
        schedule: noise schedule name (``make_schedule``).
        num_samples, seed: graphs of the Monte-Carlo estimate and the seed of its ``torch.Generator``.
        method: ``"auto"`` (exact for absorbing, Monte Carlo otherwise), ``"exact"`` (every reachable z_t; at
            most :data:`MAX_STATES` states per size) or ``"mc"`` (module docstring).

    Returns:
        ``(value, se)`` in nats per graph: ``se = 0.0`` for the exact method, the standard error of the mean
        over ``num_samples`` graphs (``nan`` for one) for Monte Carlo. ``value >= H`` (the data entropy).

    Raises ``ValueError`` naming the argument for an unknown family, transition, schedule or method, a bad size,
    k or num_samples, ``T < 1``, or a support or state space above the enumeration limits.
    """
    out = factorised_terms(family, size, T, transition, k=k, schedule=schedule, num_samples=num_samples,
                           seed=seed, method=method)
    return out["value"], out["se"]
