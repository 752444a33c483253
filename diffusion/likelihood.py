"""Test negative log-likelihood (nats per graph) of the discrete diffusion model: the variational bound.

Decomposition (DiGress's), for a graph ``x`` with ``N`` nodes and the chain ``x -> z_0 -> ... -> z_T``:

    -log p_θ(x) <= -log p(N) + KL(q(z_T | x) ‖ p(z_T)) + Σ_{t=1..T} L_t + L_0,

    L_t = E_{z_t ~ q(z_t | x)} KL(q(z_{t-1} | z_t, x) ‖ p_θ(z_{t-1} | z_t)),
    L_0 = -E_{z_0 ~ q(z_0 | x)} log p_θ(x | z_0),        p_θ(x | z_0) = p̂(x0 = x | z_0) (model at t = 0),

with ``p(z_T) = limit`` of the transition (``m_X``, ``m_E`` per variable) and ``p(N)`` the train
distribution of node counts. The bound is the ELBO of the latent chain ``z_{0:T}``; the model is the
one :func:`~sympe.diffusion.sampler.sample_graphs` samples from (``final="sample"``).

Counting convention (stated once, here)
---------------------------------------
Every distribution is a product over the graph's variables: one per *real node* and one per *unordered
real pair* ``{i, j}``, ``i != j`` (the edge variable of the pair, class 0 = no edge). So each KL and
log-likelihood is summed over real nodes and over the strict upper triangle ``i < j`` of real pairs:
each undirected edge (and each non-edge) counts once. The model's edge probabilities are symmetrised
(:func:`~sympe.diffusion.process.predict_x0`), so the upper triangle is the model.

``digress_compat=True`` reproduces DiGress's reported numbers: its edge terms run over *ordered* pairs
``(i, j)`` and ``(j, i)``, i.e. every edge term is counted twice (node terms and ``log p(N)`` unchanged).
Those numbers are not a bound on the likelihood of the graph; use them only to compare with its papers.

Time convention: t = 0 (stated once, here)
-----------------------------------------
The model is trained on ``t ~ U{0..T}`` (:meth:`~sympe.diffusion.process.DiscreteProcess.sample_t`,
DiGress's choice), so every time at which it is queried is one it was trained at: ``t = 1..T`` in the
``L_t`` terms and the reverse steps, and the decoder time ``t_min = 0`` in ``L_0`` (``z_0 ~ q(z_0 | x)``,
``p_θ(x | z_0) = p̂(x0 | z_0)``) and in the sampler's final decode. DiGress trains on the same
``U{0..T}``; its sampler, unlike this one, returns ``z_0`` without a final decode.

Estimators of ``Σ_t L_t``
-------------------------
* ``"mc"`` (DiGress's): one ``t ~ U{1..T}`` per graph and one ``z_t ~ q(z_t|x)``; the term is
  ``T · KL(...)``, an unbiased estimate of ``Σ_t L_t``. One model call per graph (plus one for ``L_0``).
* ``"exact"``: every ``t = 1..T`` with one ``z_t`` each (T model calls per graph); unbiased for the
  same sum, lower variance. ``KL(q(z_T|x) ‖ limit)`` and ``log p(N)`` are exact in both; ``L_0`` uses one ``z_0``.

Stochastic models (SymPE)
-------------------------
With SymPE each call of ``model_fn`` draws a fresh group element ``g̃``; the model actually sampled is the
``g̃``-marginal ``p̄(z_{t-1} | z_t) = E_g p_g(z_{t-1} | z_t)``, ``p̄(x | z_0) = E_g p_g(x | z_0)``. Its
ELBO is bounded above by what one draw per call estimates, by Jensen's inequality:
``KL(q ‖ E_g p_g) <= E_g KL(q ‖ p_g)`` (KL is convex in its second argument) and
``-log E_g p_g(x | z_0) <= -E_g log p_g(x | z_0)`` (log is concave). So averaging the per-step terms over
fresh draws gives an upper bound on the bound of the marginal model, hence still an upper bound on its
NLL. ``num_draws = K`` averages ``p̂(x0 | z_t)`` over K draws per element before forming the posterior
(the "K-draw model", which is also what the sampler with ``num_draws=K`` samples): by the same
convexity, its per-step KL is at most the 1-draw one on average (a tighter number at K× the cost); it
is a valid bound for that K-draw model.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process import DiscreteProcess, ModelFn, uniform_times, predict_x0

ESTIMATORS = ("mc", "exact")


def _kl(q: Tensor, p: Tensor) -> Tensor:
    """``Σ_c q_c (log q_c - log p_c)`` over the last axis; terms with ``q_c = 0`` are 0; logs guarded."""
    tiny = torch.finfo(q.dtype).tiny
    terms = q * (torch.log(q.clamp_min(tiny)) - torch.log(p.clamp_min(tiny)))
    return torch.where(q > 0, terms, torch.zeros_like(terms)).sum(-1)


def _weights(x: DenseGraph, digress_compat: bool) -> tuple[Tensor, Tensor]:
    """Per-variable weights: nodes (B, n) = real; pairs (B, n, n) = real i<j (or every ordered real pair)."""
    wX = x.node_mask.to(x.X.dtype)
    em = x.pair_mask(upper=not digress_compat)
    return wX, em.to(x.E.dtype)


def _graph_kl(qX, qE, pX, pE, wX, wE) -> Tensor:
    """Σ over weighted nodes and pairs of the per-variable KLs -> (B,)."""
    return (_kl(qX, pX) * wX).sum(1) + (_kl(qE, pE) * wE).sum((1, 2))


def _diffusion_term(model_fn, x, t, process, wX, wE, generator, num_draws) -> Tensor:
    """One-sample estimate of ``L_t`` per graph for times ``t`` (B,) >= 1."""
    z_t = process.q_sample(x, t, generator=generator)
    qX, qE = process.posterior(x, z_t, t, t - 1)
    pX, pE = process.model_reverse_probs(model_fn, z_t, t, t - 1, num_draws=num_draws, generator=generator)
    return _graph_kl(qX, qE, pX, pE, wX, wE)


def nll_terms(
    model_fn: ModelFn,
    x: DenseGraph,
    process: DiscreteProcess,
    n_nodes_dist: Tensor,
    estimator: str = "mc",
    digress_compat: bool = False,
    num_draws: int = 1,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Per-graph terms of the NLL bound (module docstring), in nats.

    Args:
        model_fn: ``(z_t DenseGraph, t_int (B,), generator) -> (logits_X, logits_E)`` predicting the clean graph.
        x: the clean one-hot DenseGraph batch (B, n, ·).
        process: the :class:`~sympe.diffusion.process.DiscreteProcess` the model was trained under.
        n_nodes_dist: (max_nodes + 1,) p(N).
        estimator: ``"mc"`` or ``"exact"``. digress_compat: count edge terms twice (DiGress's numbers).
        num_draws: model calls averaged per step. generator: optional ``torch.Generator`` for every draw
            (times, noise, and the denoiser's own draws: it is handed to ``model_fn``).

    Returns:
        dict of (B,) tensors: ``log_pN`` (= log p(N), <= 0), ``kl_prior``, ``diffusion`` (estimate of
        ``Σ_t L_t``), ``reconstruction`` (``L_0``) and ``nll = -log_pN + kl_prior + diffusion + reconstruction``.

    Raises ``ValueError`` for an unknown estimator, ``num_draws < 1``, class counts that differ from the
    process's, or a graph larger than ``n_nodes_dist`` covers.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"nll_terms: estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if int(num_draws) < 1:
        raise ValueError(f"nll_terms: num_draws must be >= 1, got {num_draws}")
    if process.dx != x.X.shape[-1] or process.de != x.E.shape[-1]:
        raise ValueError(f"nll_terms: the graph has dx={x.X.shape[-1]}, de={x.E.shape[-1]} but the process "
                         f"has dx={process.dx}, de={process.de}")
    B, device, dtype = x.batch_size, x.X.device, x.X.dtype
    T = process.T

    # -log p(N)
    dist = torch.as_tensor(n_nodes_dist, device=device, dtype=torch.float64).flatten()
    N = x.num_nodes.long()
    if int(N.max()) >= dist.numel():
        raise ValueError(f"nll_terms: a graph has {int(N.max())} nodes but n_nodes_dist only covers 0..{dist.numel() - 1}")
    log_pN = torch.log(dist[N].clamp_min(torch.finfo(torch.float64).tiny)).to(dtype)

    wX, wE = _weights(x, digress_compat)

    # KL(q(z_T | x) ‖ limit): exact
    qX, qE = process.q_probs(x, torch.full((B,), T, device=device, dtype=torch.long))
    m_X, m_E = (m.to(device=device, dtype=dtype) for m in process.limit())
    kl_prior = _graph_kl(qX, qE, m_X.expand_as(qX), m_E.expand_as(qE), wX, wE)

    # Σ_{t=1..T} L_t
    if estimator == "mc":
        t = uniform_times(1, T + 1, B, device, generator)
        diffusion = T * _diffusion_term(model_fn, x, t, process, wX, wE, generator, num_draws)
    else:
        diffusion = torch.zeros(B, device=device, dtype=dtype)
        for step in range(1, T + 1):
            t = torch.full((B,), step, device=device, dtype=torch.long)
            diffusion = diffusion + _diffusion_term(model_fn, x, t, process, wX, wE, generator, num_draws)

    # L_0 = -log p_θ(x | z_0), z_0 ~ q(z_0 | x), the model at the decoder time t_min = 0
    t0 = torch.full((B,), process.t_min, device=device, dtype=torch.long)
    z_0 = process.q_sample(x, t0, generator=generator)
    pX, pE = predict_x0(model_fn, z_0, t0, num_draws=num_draws, generator=generator)
    tiny = torch.finfo(dtype).tiny
    logpX = (x.X * torch.log(pX.clamp_min(tiny))).sum(-1)
    logpE = (x.E * torch.log(pE.clamp_min(tiny))).sum(-1)
    reconstruction = -((logpX * wX).sum(1) + (logpE * wE).sum((1, 2)))

    nll = -log_pN + kl_prior + diffusion + reconstruction
    return {"log_pN": log_pN, "kl_prior": kl_prior, "diffusion": diffusion,
            "reconstruction": reconstruction, "nll": nll}


def nll_summary(per_graph_nll: Tensor) -> tuple[float, float]:
    """``(mean, standard error of the mean)`` of per-graph NLLs (B,): ``std_{unbiased} / sqrt(B)``.

    The standard error is ``nan`` for a single graph (undefined); an empty input raises ``ValueError``.
    """
    v = torch.as_tensor(per_graph_nll, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise ValueError("nll_summary: no per-graph values given")
    mean = float(v.mean())
    if v.numel() == 1:
        return mean, math.nan
    return mean, float(v.std(unbiased=True) / math.sqrt(v.numel()))


def evaluate_nll(model, loader, estimator: str = "mc", generator: torch.Generator | None = None,
                 progress: bool = False, device=None) -> dict[str, Tensor]:
    """The NLL terms of every graph of ``loader``, in nats per graph, with no gradients.

    Args:
        model: an object with ``nll(x: DenseGraph, estimator=..., generator=...) -> dict of (B,) tensors``
            (a :class:`~sympe.diffusion.model.DiscreteDiffusion`); put it in eval mode first.
        loader: an iterable of PyG batches (e.g. a ``torch_geometric.loader.DataLoader``).
        estimator: ``"mc"`` or ``"exact"`` (module docstring).
        generator: one ``torch.Generator`` for every draw of every batch (reproducible from its seed).
        progress: show a tqdm progress bar over batches.
        device: where batches go (default ``model.device``, else where they are).

    Returns:
        dict of per-graph (num_graphs,) CPU tensors, keys as :func:`nll_terms` (``nll`` and its terms),
        concatenated in loader order. Summarise with :func:`nll_summary`. Raises ``ValueError`` for an
        empty loader.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"evaluate_nll: estimator must be one of {ESTIMATORS}, got {estimator!r}")
    device = device if device is not None else getattr(model, "device", None)
    parts: dict[str, list[Tensor]] = {}
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc=f"NLL ({estimator})", leave=False)
    with torch.no_grad():
        for batch in batches:
            if device is not None:
                batch = batch.to(device)
            terms = model.nll(DenseGraph.from_pyg(batch), estimator=estimator, generator=generator)
            for k, v in terms.items():
                parts.setdefault(k, []).append(v.detach().cpu())
    if not parts:
        raise ValueError("evaluate_nll: the loader yielded no graphs")
    return {k: torch.cat(v) for k, v in parts.items()}
