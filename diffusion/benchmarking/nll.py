"""Seconds of one NLL evaluation per graph, for each estimator of the bound and for the mixture bound.

Measured: wall-clock seconds of one call of ``model.nll(graph, estimator=...)`` (no gradients, eval mode, the
device synchronised around it) divided by the number of graphs, after one untimed warm-up call. Network calls
per graph: ``mc`` 2, ``stratified`` num_bins + 1 (min(T, 10) + 1 by default), ``exact`` T + 1; the mixture
bound with K draws (``mixture{K}_mc``) multiplies those of ``mc`` by K. See
:mod:`~sympe.diffusion.likelihood.bound` for what the estimators estimate.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch

from sympe.diffusion.benchmarking.timing import sync

__all__ = ["time_nll"]


def time_nll(model, graph, mixture_draws: Sequence[int] = (4, 16),
             estimators: Sequence[str] = ("mc", "stratified", "exact"), seed: int = 0) -> dict[str, float]:
    """``{estimator: s/graph, ..., "mixture{K}_mc": s/graph, ...}`` on ``graph`` (a DenseGraph of B graphs).

    ``model`` provides ``nll(x, estimator, generator)``, ``set_eval_options(mixture_draws=...)`` and
    ``mixture_draws`` (a DiscreteDiffusion); its ``mixture_draws`` option is restored afterwards, also on error.
    """
    device = graph.X.device
    B = graph.batch_size
    saved = model.mixture_draws
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
            model.set_eval_options(mixture_draws=int(K))
            out[f"mixture{int(K)}_mc"] = timed("mc")
    finally:
        model.set_eval_options(mixture_draws=saved)
    return out
