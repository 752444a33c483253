"""The mixture bound: an importance-weighted estimate of the NLL of the g̃-mixture reverse model.

A denoiser with a symmetry breaker draws a group element g̃ (or noise) at every call. The sampler makes
one call per reverse step and draws every variable of ``z_s`` from that call's factorised kernel, so the
model it samples is, per step, the *mixture*

    p̄(z_s | z_t) = E_g̃ Π_v p(z_s^v | z_t, g̃),           p̄(x | z_0) = E_g̃ Π_v p̂(x^v | z_0, g̃),

with ``v`` over the real nodes and the unordered real pairs ``i < j`` and ``p(· | z_t, g̃)`` the process's
reverse kernel applied to the prediction made with g̃. Its ELBO (:mod:`~sympe.diffusion.likelihood.bound`) has
``L_t = E_{z_t} KL(q(z_s | z_t, x) ‖ p̄(z_s | z_t))`` and ``L_0 = -E_{z_0} log p̄(x | z_0)``; neither can be
computed exactly (the sum over g̃ does not factorise). The per-draw bound computes ``E_g̃ Σ_v KL(q_v ‖ p_v(·|g̃))``
instead, which is >= ``L_t`` (KL is convex in its second argument) and is minimised by an equivariant
prediction that ignores g̃: it cannot credit a breaker for correlated choices.

Estimator (Burda, Grosse & Salakhutdinov 2016, with the breaker's own distribution as proposal), per graph
and time ``t``: draw ``z_t ~ q(z_t | x)``, ``z_s ~ q(z_s | z_t, x)`` (``s = t - 1``) and K draws g̃_1..g̃_K, then

    L̂_t^K = log q(z_s | z_t, x) - log (1/K) Σ_k Π_v p(z_s^v | z_t, g̃_k),
    L̂_0^K = -log (1/K) Σ_k Π_v p̂(x^v | z_0, g̃_k),                      z_0 ~ q(z_0 | x),

(log-sum-exp in float64). Properties, for every K >= 1 (tested by exact enumeration in
``tests/diffusion/likelihood/test_mixture_bound.py``):

* **upper bound**: ``E[log (1/K) Σ_k p_k] <= log E_g̃ p`` (Jensen), so ``E[L̂_t^K] >= E_{z_t} E_{z_s} [log q - log p̄]
  = L_t`` and ``E[L̂_0^K] >= L_0``; with the exact prior term and ``-log p(N)`` the total is an upper bound on
  the mixture model's ELBO, hence on its NLL;
* **monotone**: ``E[L̂^K]`` is non-increasing in K and tends to ``L_t`` (resp. ``L_0``) as K -> ∞;
* **K = 1**: ``E[L̂_t^1] = E_g̃ E_{z_s}[log q - Σ_v log p_v(·|g̃)] = E_g̃ Σ_v KL(q_v ‖ p_v(·|g̃))``, the per-draw
  bound's expectation (with more variance: ``z_s`` is sampled instead of summed out).

It evaluates the model the sampler samples with ``num_draws = 1`` and the process's kernel (plain or
reweighted). Cost: K denoiser calls per term (K sequential calls at the same ``z_t``).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from sympe.diffusion.process.categorical import sample_categorical
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import DiscreteProcess, ModelFn, predict_x0


def joint_log_prob(pX: Tensor, pE: Tensor, z: DenseGraph) -> Tensor:
    """``Σ_v log p(z^v)`` over real nodes and real pairs ``i < j`` of a one-hot graph ``z``; (B,) float64.

    ``pX`` (B, n, dx) and ``pE`` (B, n, n, de) hold per-variable probabilities (only ``i < j`` is read).
    A zero probability of an observed class gives ``-inf``.
    """
    pairs = z.pair_mask(upper=True)
    lX = torch.log((z.X.double() * pX.double()).sum(-1))
    lE = torch.log((z.E.double() * pE.double()).sum(-1))
    zero = torch.zeros((), dtype=torch.float64, device=z.X.device)
    return torch.where(z.node_mask, lX, zero).sum(1) + torch.where(pairs, lE, zero).sum((1, 2))


def log_mean_exp(values: Tensor, dim: int = 0) -> Tensor:
    """``log (1/K) Σ_k exp(values_k)`` along ``dim`` (K = its size), computed as ``logsumexp - log K``."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


def _check_K(K: int) -> int:
    if int(K) != K or int(K) < 1:
        raise ValueError(f"mixture bound: the number of g̃ draws K (mixture_draws) must be an integer >= 1, got {K}")
    return int(K)


def mixture_diffusion_term(model_fn: ModelFn, x: DenseGraph, t: Tensor, process: DiscreteProcess, K: int,
                           generator: torch.Generator | None = None) -> Tensor:
    """One draw of ``L̂_t^K`` (module docstring) per graph at times ``t`` (B,) >= 1; (B,) float64 nats."""
    K = _check_K(K)
    s = t - 1
    z_t = process.q_sample(x, t, generator=generator)
    qX, qE = process.posterior(x, z_t, t, s)
    z_s = sample_categorical(qX, qE, x.node_mask, generator=generator, y=x.y)
    log_q = joint_log_prob(qX, qE, z_s)
    log_p = []
    for _ in range(K):
        pX, pE = predict_x0(model_fn, z_t, t, generator=generator)
        rX, rE = process.reverse_probs(pX, pE, z_t, t, s)
        log_p.append(joint_log_prob(rX, rE, z_s))
    return log_q - log_mean_exp(torch.stack(log_p))


def mixture_reconstruction_term(model_fn: ModelFn, x: DenseGraph, process: DiscreteProcess, K: int,
                                generator: torch.Generator | None = None) -> Tensor:
    """One draw of ``L̂_0^K`` (module docstring) per graph: ``z_0 ~ q(z_0 | x)``, K calls at ``t = 0``; (B,) float64."""
    K = _check_K(K)
    t0 = torch.full((x.batch_size,), process.t_min, device=x.X.device, dtype=torch.long)
    z_0 = process.q_sample(x, t0, generator=generator)
    log_p = [joint_log_prob(*predict_x0(model_fn, z_0, t0, generator=generator), x) for _ in range(K)]
    return -log_mean_exp(torch.stack(log_p))
