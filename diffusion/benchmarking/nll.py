"""Seconds of one NLL evaluation per graph, for each estimator of the bound and for the mixture bound.

Measured: wall-clock seconds of one call of ``model.nll(graph, estimator=...)`` (no gradients, eval mode, the
device synchronised around it) divided by the number of graphs, after one untimed warm-up call. Network calls
per graph: ``mc`` 2, ``stratified`` num_bins + 1 (min(T, 10) + 1 by default), ``exact`` T + 1; the mixture
bound with K draws from the breaker (``mixture{K}_mc``) multiplies those of ``mc`` by K; with a proposal
(``mixture{K}_{proposal}_mc``, rank breakers only) add one reference call in ``L_t`` and, per graph and draw, the
BLISS canonical labellings of the canonical proposal on the CPU. See :mod:`~sympe.diffusion.likelihood.bound` and
:mod:`~sympe.diffusion.likelihood.mixture_bound` for what they estimate.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch

from sympe.diffusion.benchmarking.timing import sync

__all__ = ["time_nll"]


def time_nll(model, graph, mixture_draws: Sequence[int] = (4, 16),
             estimators: Sequence[str] = ("mc", "stratified", "exact"), seed: int = 0,
             proposals: Sequence[str] = ("canonical", "defensive")) -> dict[str, float]:
    """``{estimator: s/graph, ..., "mixture{K}_mc": s/graph, "mixture{K}_{proposal}_mc": s/graph, ...}`` on ``graph``
    (a DenseGraph of B graphs); the proposal timings only for a network with a rank breaker (SymPE).

    ``model`` provides ``nll(x, estimator, generator)``, ``set_eval_options(mixture_draws=..., mixture_proposal=...)``,
    ``mixture_draws``, ``mixture_proposal`` and ``network.breaker_draw`` (a DiscreteDiffusion); its options are restored
    afterwards, also on error.
    """
    device = graph.X.device
    B = graph.batch_size
    saved = model.mixture_draws
    saved_proposal = getattr(model, "mixture_proposal", "prior")
    ranked = getattr(getattr(model, "network", None), "breaker_draw", None) == "ranks"
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)

    def timed(est: str) -> float:
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            model.nll(graph, estimator=est, generator=gen)
        sync(device)
        return (time.perf_counter() - t0) / B

    out = {}
    try:
        model.set_eval_options(mixture_draws=0)
        timed("mc")  # warm-up
        for est in estimators:
            out[est] = timed(est)
        for K in mixture_draws:
            model.set_eval_options(mixture_draws=int(K), mixture_proposal="prior")
            out[f"mixture{int(K)}_mc"] = timed("mc")
            for proposal in (proposals if ranked else ()):
                model.set_eval_options(mixture_proposal=proposal)
                out[f"mixture{int(K)}_{proposal}_mc"] = timed("mc")
    finally:
        model.set_eval_options(mixture_draws=saved, mixture_proposal=saved_proposal)
    return out
