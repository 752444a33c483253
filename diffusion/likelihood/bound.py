"""Test negative log-likelihood (nats per graph) of the discrete diffusion model: the variational bound.

Decomposition (DiGress's), for a graph ``x`` with ``N`` nodes and the chain ``x -> z_0 -> ... -> z_T``:

    -log p_θ(x) <= -log p(N) + KL(q(z_T | x) ‖ p(z_T)) + Σ_{t=1..T} L_t + L_0,

    L_t = E_{z_t ~ q(z_t | x)} KL(q(z_{t-1} | z_t, x) ‖ p_θ(z_{t-1} | z_t)),
    L_0 = -E_{z_0 ~ q(z_0 | x)} log p_θ(x | z_0),        p_θ(x | z_0) = p̂(x0 = x | z_0) (model at t = 0),

with ``p(z_T) = limit`` of the transition (``m_X``, ``m_E`` per variable) and ``p(N)`` the train
distribution of node counts. The bound is the ELBO of the latent chain ``z_{0:T}``; the model is the
one :func:`~sympe.diffusion.process.sampling.sample_graphs` samples from (``final="sample"``).

Counting convention (stated once, here)
---------------------------------------
Every distribution is a product over the graph's variables: one per *real node* and one per *unordered
real pair* ``{i, j}``, ``i != j`` (the edge variable of the pair, class 0 = no edge). So each KL and
log-likelihood is summed over real nodes and over the strict upper triangle ``i < j`` of real pairs:
each undirected edge (and each non-edge) counts once. The model's edge probabilities are symmetrised
(:func:`~sympe.diffusion.process.discrete_process.predict_x0`), so the upper triangle is the model.

Conventions (which model the number bounds)
-------------------------------------------
* **ours, per-draw** (default): the bound above for the reverse kernel of the process
  (``model.x0_kernel``: ``plain`` = ``Σ_k p̂_k q(z_s | z_t, k)``, the default, or ``reweighted``, see
  :data:`~sympe.diffusion.process.discrete_process.REVERSE_KERNELS`), one network call per term. It bounds the NLL of the
  model the sampler draws from with the same kernel.
* **digress** (``digress_compat=True``): DiGress's formula term by term (:mod:`~sympe.diffusion.likelihood.digress_compat`:
  edges in both directions, the reweighted kernel in ``L_t`` whatever ``x0_kernel`` is, ``KL(limit ‖ q)``
  as prior term, its masking and 1e-7 smoothing). It bounds (up to the doubled edge terms, which make it
  no bound of any normalised model) the NLL of the *reweighted* model, not of DiGress's sampler. Use it
  only to compare with published numbers.
* **mixture** (``mixture_draws = K >= 1``): the importance-weighted estimate of the bound of the g̃-mixture
  model (:mod:`~sympe.diffusion.likelihood.mixture_bound`); an upper bound for every K, tighter as K grows.
* ``num_draws = K > 1`` (per-draw convention only) evaluates yet another model: the one whose prediction at
  every step is the *average* of K calls' softmax outputs, ``p̂_K = (1/K) Σ_k p̂(x0 | z_t, g̃_k)``, pushed
  through the kernel; the sampler with the same ``num_draws`` samples exactly that model. It is neither the
  sampler's default (``num_draws = 1``) model nor the g̃-mixture (which draws all variables from one g̃).

Time convention: t = 0 (stated once, here)
-----------------------------------------
The model is trained on ``t ~ U{0..T}`` (:meth:`~sympe.diffusion.process.discrete_process.DiscreteProcess.sample_t`,
DiGress's choice), so every time at which it is queried is one it was trained at: ``t = 1..T`` in the
``L_t`` terms and the reverse steps, and the decoder time ``t_min = 0`` in ``L_0`` (``z_0 ~ q(z_0 | x)``,
``p_θ(x | z_0) = p̂(x0 | z_0)``) and in the sampler's final decode. DiGress trains on the same
``U{0..T}``; its sampler, unlike this one, returns ``z_0`` without a final decode.

Estimators of ``Σ_t L_t``
-------------------------
* ``"mc"`` (DiGress's): one ``t ~ U{1..T}`` per graph and one ``z_t ~ q(z_t|x)``; the term is
  ``T · L̂_t``, an unbiased estimate of ``Σ_t L_t``. One model call per graph (plus one for ``L_0``).
* ``"stratified"``: ``1..T`` split into ``num_bins`` contiguous bins (:func:`time_bins`, default
  ``min(T, 10)``); every graph draws one ``t`` uniformly in *each* bin and the term is
  ``Σ_b |b| · L̂_{t_b}``: unbiased, lower variance than ``mc``, ``num_bins`` calls per graph, and a
  per-bin breakdown (``diffusion_bins``) showing where in ``t`` the NLL arises.
* ``"exact"``: every ``t = 1..T`` with one ``z_t`` each (T model calls per graph); unbiased for the same
  sum, lowest variance; also returns the per-bin sums. ``KL(q(z_T|x) ‖ limit)`` and ``log p(N)`` are exact
  in all three; ``L_0`` uses one ``z_0``.
(The mixture convention multiplies each call count by K.)

Stochastic models (SymPE)
-------------------------
With SymPE each call of ``model_fn`` draws a fresh group element ``g̃``; the model actually sampled is the
``g̃``-mixture ``p̄(z_{t-1} | z_t) = E_g p_g(z_{t-1} | z_t)``, ``p̄(x | z_0) = E_g p_g(x | z_0)``. Its
ELBO is bounded above by what one draw per call estimates, by Jensen's inequality:
``KL(q ‖ E_g p_g) <= E_g KL(q ‖ p_g)`` (KL is convex in its second argument) and
``-log E_g p_g(x | z_0) <= -E_g log p_g(x | z_0)`` (log is concave). So the per-draw convention is an
upper bound on the bound of the mixture model, hence still an upper bound on its NLL, and the mixture
convention is a tighter one.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from sympe.diffusion.likelihood import digress_compat as dg
from sympe.diffusion.bars import progress_bar
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.kl import graph_kl as _graph_kl, variable_weights as _weights
from sympe.diffusion.likelihood.mixture_bound import (DEFAULT_EXACT_MAX, mixture_diffusion_term,
                                                     mixture_reconstruction_term)
from sympe.diffusion.process.discrete_process import DiscreteProcess, ModelFn, predict_x0, uniform_times

ESTIMATORS = ("mc", "stratified", "exact")
#: Default number of time bins of the stratified estimator (capped at T).
DEFAULT_NUM_BINS = 10


def time_bins(T: int, num_bins: int | None = None) -> list[tuple[int, int]]:
    """Contiguous bins ``[lo, hi]`` (inclusive) covering ``1..T``: bin b starts at ``1 + floor(T b / B)``.

    ``num_bins`` (B) defaults to ``min(T, 10)``; every bin holds ``floor(T/B)`` or ``ceil(T/B)`` times.
    Raises ``ValueError`` unless ``1 <= num_bins <= T``.
    """
    T = int(T)
    B = min(T, DEFAULT_NUM_BINS) if num_bins is None else int(num_bins)
    if not 1 <= B <= T:
        raise ValueError(f"num_bins (time bins of the stratified estimator) must be in 1..T={T}, got {num_bins}")
    edges = [1 + (T * b) // B for b in range(B + 1)]
    return [(edges[b], edges[b + 1] - 1) for b in range(B)]


def convention_name(digress_compat: bool = False, x0_kernel: str = "plain", mixture_draws: int = 0,
                    num_draws: int = 1, mixture_proposal: str = "prior") -> str:
    """The label of an NLL convention used in result keys (e.g. ``nll_<label>_<estimator>``).

    ``"digress"`` (DiGress's formula), else ``"ours_<kernel>"`` plus ``"_mix<K>_<proposal>"`` for the mixture
    bound with K draws from a proposal (``"_mix_exact"`` for the exact sum over the breaker's orders) or
    ``"_avg<K>"`` for ``num_draws = K > 1`` (module docstring, "Conventions").
    """
    if digress_compat:
        return "digress"
    name = f"ours_{x0_kernel}"
    if mixture_draws:
        name += "_mix_exact" if mixture_proposal == "exact" else f"_mix{int(mixture_draws)}_{mixture_proposal}"
    elif int(num_draws) > 1:
        name += f"_avg{int(num_draws)}"
    return name


def describe_convention(name: str) -> str:
    """One sentence saying which model a convention label of :func:`convention_name` bounds."""
    if name == "digress":
        return ("DiGress's formula (edges in both directions, reweighted kernel in L_t, KL(limit||q) prior, "
                "its masking): bounds the reweighted-kernel model with edge terms doubled; for comparison only")
    parts = name.split("_")
    kernel = parts[1]
    text = f"variational bound, each undirected edge once, {kernel} reverse kernel"
    if len(parts) > 3 and parts[2] == "mix" and parts[3] == "exact":
        return text + ", mixture bound summed exactly over every tie-consistent order of the symmetry breaker"
    if len(parts) > 3 and parts[2].startswith("mix"):
        how = {"prior": "the breaker's own draws", "canonical": "the canonical proposal of the target",
               "defensive": "half the breaker's draws, half the canonical proposal"}.get(parts[3], parts[3])
        return (text + f", importance-weighted mixture bound with K={parts[2][3:]} draws of the symmetry breaker "
                f"from {how}")
    if len(parts) > 2 and parts[2].startswith("avg"):
        return text + f", prediction averaged over {parts[2][3:]} breaker draws per step (the num_draws model)"
    return text + ", one breaker draw per term (per-draw bound; the model sampled with num_draws=1)"


def check_prior_support(qX: Tensor, qE: Tensor, m_X: Tensor, m_E: Tensor, wX: Tensor, wE: Tensor, process) -> None:
    """Raise ``ValueError`` when ``q(z_T | x)`` puts mass where the prior ``m`` has none on a real variable.

    Then ``KL(q(z_T | x) ‖ p(z_T)) = +∞`` and the ELBO bounds nothing. It happens with a one-hot limit (the
    absorbing transition) and a schedule whose ``ᾱ_T > 0`` (:mod:`~sympe.diffusion.process.schedule`: the
    model builds the absorbing chain with ``β_T = 1``; a checkpoint written before that carries the capped
    schedule in its state). The term is never clamped to a finite number.
    """
    bad_X = ((qX > 0) & (m_X == 0)).any(-1) & (wX > 0)
    bad_E = ((qE > 0) & (m_E == 0)).any(-1) & (wE > 0)
    if bool(bad_X.any()) or bool(bad_E.any()):
        alpha_T = float(process.schedule.alpha_bars[-1])
        raise ValueError(
            f"nll: the prior term KL(q(z_T | x) || p(z_T)) is infinite: the limit of the transition is one-hot "
            f"(absorbing) but the schedule ends at alpha_bar_T = {alpha_T:.3g} > 0, so q(z_T | x) keeps mass off the "
            "absorbing state. Build the schedule with exact_limit=True (beta_T = 1; what DiscreteDiffusion does "
            "for model.diffusion.transition=absorbing). A checkpoint trained before that has the capped schedule "
            "in its state: retrain it, or score it with model.eval.digress_compat=true (DiGress's smoothed formula)")


def _per_draw_term(model_fn, x, t, process, generator, num_draws) -> Tensor:
    """One-sample estimate of ``L_t`` per graph for times ``t`` (B,) >= 1 (ours, per-draw)."""
    wX, wE = _weights(x)
    z_t = process.q_sample(x, t, generator=generator)
    qX, qE = process.posterior(x, z_t, t, t - 1)
    pX, pE = process.model_reverse_probs(model_fn, z_t, t, t - 1, num_draws=num_draws, generator=generator)
    return _graph_kl(qX, qE, pX, pE, wX, wE)


def _digress_term(model_fn, x, t, process, generator, num_draws) -> Tensor:
    """One-sample estimate of DiGress's ``KL(q ‖ p^rw)`` at times ``t`` (B,) >= 1 (both directions)."""
    z_t = process.q_sample(x, t, generator=generator)
    pX, pE = predict_x0(model_fn, z_t, t, num_draws=num_draws, generator=generator)
    return dg.diffusion_kl(x, z_t, pX, pE, process, t)


def sum_over_time(term: Callable[[Tensor], Tensor], T: int, B: int, device, estimator: str = "mc",
                  num_bins: int | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
    """An estimate of ``Σ_{t=1..T} L_t`` per graph from a one-time estimator ``term(t (B,)) -> (B,)``.

    Returns ``(total (B,), bins (B, num_bins) or None)``: ``mc`` -> ``T · term(t)``, ``t ~ U{1..T}``, no bins;
    ``stratified`` -> bin b contributes ``|b| · term(t_b)`` with ``t_b`` uniform in the bin; ``exact`` -> bin b
    contributes ``Σ_{t in b} term(t)`` (module docstring). ``total`` is the sum of the bins.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if estimator == "mc":
        t = uniform_times(1, T + 1, B, device, generator)
        return T * term(t), None
    cols = []
    for lo, hi in time_bins(T, num_bins):
        if estimator == "stratified":
            cols.append((hi - lo + 1) * term(uniform_times(lo, hi + 1, B, device, generator)))
        else:
            acc = 0
            for step in range(lo, hi + 1):
                acc = acc + term(torch.full((B,), step, device=device, dtype=torch.long))
            cols.append(acc)
    bins = torch.stack(cols, dim=1)
    return bins.sum(1), bins


def nll_terms(
    model_fn: ModelFn,
    x: DenseGraph,
    process: DiscreteProcess,
    n_nodes_dist: Tensor,
    estimator: str = "mc",
    digress_compat: bool = False,
    num_draws: int = 1,
    generator: torch.Generator | None = None,
    mixture_draws: int = 0,
    num_bins: int | None = None,
    mixture_proposal: str = "prior",
    mixture_exact_max: int = DEFAULT_EXACT_MAX,
    denoiser=None,
) -> dict[str, Tensor]:
    """Per-graph terms of the NLL bound (module docstring), in nats.

    Args:
        model_fn: ``(z_t DenseGraph, t_int (B,), generator) -> (logits_X, logits_E)`` predicting the clean graph.
        x: the clean one-hot DenseGraph batch (B, n, ·).
        process: the :class:`~sympe.diffusion.process.discrete_process.DiscreteProcess` the model was trained under; its
            reverse kernel (``process.kernel_name``) is the model scored (except by ``digress_compat``).
        n_nodes_dist: (max_nodes + 1,) p(N).
        estimator: ``"mc"``, ``"stratified"`` or ``"exact"`` (module docstring).
        digress_compat: DiGress's formula (module docstring, "Conventions").
        num_draws: model calls averaged into one prediction per step (the ``num_draws`` model).
        generator: optional ``torch.Generator`` for every draw (times, noise, and the denoiser's own draws:
            it is handed to ``model_fn``).
        mixture_draws: 0 (per-draw bound) or K >= 1: the mixture bound with K draws per term.
        num_bins: time bins of the stratified / exact breakdown (default ``min(T, 10)``).
        mixture_proposal: ``prior``, ``canonical``, ``defensive`` or ``exact``: where the mixture bound draws g̃
            (:mod:`~sympe.diffusion.likelihood.mixture_bound`); ``mixture_exact_max``: the most orders ``exact``
            enumerates per graph.
        denoiser: the network the mixture bound calls with given ranks (``breaker_draw``, ``tie_groups``, ...;
            :class:`~sympe.diffusion.nn.denoiser.DenoisingNetwork`); default ``model_fn`` (then only ``prior``).

    Returns:
        dict of (B,) tensors: ``log_pN`` (= log p(N), <= 0), ``kl_prior``, ``diffusion`` (estimate of
        ``Σ_t L_t``), ``reconstruction`` (``L_0``) and ``nll = -log_pN + kl_prior + diffusion + reconstruction``;
        for ``stratified`` and ``exact`` also ``diffusion_bins`` (B, num_bins), bins of :func:`time_bins`.

    Raises ``ValueError`` for an unknown estimator, ``num_draws < 1``, ``mixture_draws`` with
    ``digress_compat`` or with ``num_draws > 1``, class counts that differ from the process's, or a graph
    larger than ``n_nodes_dist`` covers.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"nll_terms: estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if int(num_draws) < 1:
        raise ValueError(f"nll_terms: num_draws must be >= 1, got {num_draws}")
    if int(mixture_draws) < 0:
        raise ValueError(f"nll_terms: mixture_draws must be 0 (per-draw bound) or K >= 1, got {mixture_draws}")
    if mixture_draws and (digress_compat or int(num_draws) > 1):
        raise ValueError("nll_terms: mixture_draws (the mixture bound) evaluates the num_draws=1 model in this "
                         "project's convention; it cannot be combined with digress_compat or num_draws > 1")
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

    # prior term: exact
    if digress_compat:
        kl_prior = dg.prior_term(x, process)
    else:
        wX, wE = _weights(x)
        qX, qE = process.q_probs(x, torch.full((B,), T, device=device, dtype=torch.long))
        m_X, m_E = (m.to(device=device, dtype=dtype) for m in process.limit())
        check_prior_support(qX, qE, m_X, m_E, wX, wE, process)
        kl_prior = _graph_kl(qX, qE, m_X.expand_as(qX), m_E.expand_as(qE), wX, wE)

    # Σ_{t=1..T} L_t
    mix = dict(K=int(mixture_draws), generator=generator, proposal=mixture_proposal, exact_max=int(mixture_exact_max))
    net = denoiser if denoiser is not None else model_fn
    if mixture_draws:
        def term(t):
            return mixture_diffusion_term(net, x, t, process, **mix).to(dtype)
    else:
        one = _digress_term if digress_compat else _per_draw_term

        def term(t):
            return one(model_fn, x, t, process, generator, num_draws)
    diffusion, bins = sum_over_time(term, T, B, device, estimator, num_bins, generator)

    # L_0 = -log p_θ(x | z_0), z_0 ~ q(z_0 | x), the model at the decoder time t_min = 0
    if mixture_draws:
        reconstruction = mixture_reconstruction_term(net, x, process, **mix).to(dtype)
    else:
        t0 = torch.full((B,), process.t_min, device=device, dtype=torch.long)
        z_0 = process.q_sample(x, t0, generator=generator)
        pX, pE = predict_x0(model_fn, z_0, t0, num_draws=num_draws, generator=generator)
        if digress_compat:
            reconstruction = dg.reconstruction_term(x, pX, pE)
        else:
            wX, wE = _weights(x)
            tiny = torch.finfo(dtype).tiny
            logpX = (x.X * torch.log(pX.clamp_min(tiny))).sum(-1)
            logpE = (x.E * torch.log(pE.clamp_min(tiny))).sum(-1)
            reconstruction = -((logpX * wX).sum(1) + (logpE * wE).sum((1, 2)))

    nll = -log_pN + kl_prior + diffusion + reconstruction
    out = {"log_pN": log_pN, "kl_prior": kl_prior, "diffusion": diffusion,
           "reconstruction": reconstruction, "nll": nll}
    if bins is not None:
        out["diffusion_bins"] = bins
    return out


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
            (a :class:`~sympe.diffusion.runs.model.DiscreteDiffusion`); put it in eval mode first.
        loader: an iterable of PyG batches (e.g. a ``torch_geometric.loader.DataLoader``).
        estimator: ``"mc"``, ``"stratified"`` or ``"exact"`` (module docstring).
        generator: one ``torch.Generator`` for every draw of every batch (reproducible from its seed).
        progress: a progress bar over batches (``True``, or a string used as its label), drawn on a terminal only
            (:func:`sympe.diffusion.bars.bars_enabled`).
        device: where batches go (default ``model.device``, else where they are).

    Returns:
        dict of per-graph (num_graphs,) CPU tensors (``diffusion_bins``: (num_graphs, num_bins)), keys as
        :func:`nll_terms` (``nll`` and its terms), concatenated in loader order. Summarise with :func:`nll_summary`. Raises ``ValueError`` for an
        empty loader.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"evaluate_nll: estimator must be one of {ESTIMATORS}, got {estimator!r}")
    device = device if device is not None else getattr(model, "device", None)
    parts: dict[str, list[Tensor]] = {}
    batches = loader
    if progress:

        desc = progress if isinstance(progress, str) else f"NLL ({estimator})"
        batches = progress_bar(loader, desc=desc, unit="batch")  # drawn on a terminal only
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


def summarize_terms(terms: dict[str, Tensor], T: int | None = None, num_bins: int | None = None) -> dict:
    """Mean ± standard error (:func:`nll_summary`) of every per-graph term of :func:`evaluate_nll`.

    Returns ``{"mean", "sem", "num_graphs", "terms": {name: {"mean", "sem"}}}`` for ``terms["nll"]`` and its
    parts, plus ``"bins": [{"t_min", "t_max", "mean", "sem"}, ...]`` (nats per graph contributed by each
    time bin) when ``terms`` holds ``diffusion_bins`` (``T`` and ``num_bins`` then give the bins' times).
    """
    mean, sem = nll_summary(terms["nll"])
    out = {"mean": mean, "sem": sem, "num_graphs": int(terms["nll"].numel()), "terms": {}}
    for k, v in terms.items():
        if k in ("nll", "diffusion_bins"):
            continue
        m, e = nll_summary(v)
        out["terms"][k] = {"mean": m, "sem": e}
    if "diffusion_bins" in terms:
        bins_v = terms["diffusion_bins"]
        ranges = time_bins(T, bins_v.shape[1]) if T is not None else [(None, None)] * bins_v.shape[1]
        out["bins"] = []
        for b, (lo, hi) in enumerate(ranges):
            m, e = nll_summary(bins_v[:, b])
            out["bins"].append({"t_min": lo, "t_max": hi, "mean": m, "sem": e})
    return out
