"""Classifier-free guidance of a conditional denoiser (Ho & Salimans 2022), in log-probability space.

A conditional network predicts ``p̂(x0 | z_t, y)``; given the null condition ``∅`` (every property dropped, see
:mod:`~sympe.diffusion.conditioning`) the same network predicts ``p̂(x0 | z_t)``. With guidance weight ``w`` the
guided prediction is, for every node and every node pair i separately,

    p̂_w(x0^i = k | z_t, y)  ∝  p̂(x0^i = k | z_t, y)^(1 + w) · p̂(x0^i = k | z_t, ∅)^(−w),

i.e. logits ``(1 + w) log p̂(· | z_t, y) − w log p̂(· | z_t, ∅)``, renormalised over the classes k by the softmax of
:func:`~sympe.diffusion.process.discrete_process.predict_x0`. This is the log-space form of Ho & Salimans'
``(1 + w) ε(z, c) − w ε(z)``. ``w = 0`` is the conditional model itself (one network call per step), ``w = −1`` the
unconditional one; ``w > 0`` sharpens towards graphs the condition makes more likely than the data does.

Guidance acts on the prediction of ``x0``, before the reverse kernel, so it applies unchanged to both kernels
(``plain`` and ``reweighted``) and to every time grid (all T steps, strided, DeFoG's distortions). The guided
prediction defines a sampler, not a likelihood: the NLL of a conditional model is that of ``p(x | y)`` (w = 0).

A stochastic denoiser (a symmetry breaker drawing g̃ or noise at every call) gets the *same* draws in the
conditional and the unconditional call (the generator's state is replayed for the second call), so that both
predictions are made at the same g̃ and their ratio is that of the condition alone.
"""
from __future__ import annotations

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import ModelFn


def _with_y(z: DenseGraph, y: Tensor) -> DenseGraph:
    return DenseGraph(z.X, z.E, y.to(device=z.X.device, dtype=z.X.dtype), z.node_mask)


def _replay(generator: torch.Generator | None, device) -> tuple[torch.Generator, torch.Generator]:
    """Two generators that make the same draws: the caller's (advanced by the first call) and a copy of its state."""
    if generator is None:  # the global state: seed a private pair from it
        seed = int(torch.randint(0, 2**62, (1,)))
        generator = torch.Generator(device=device).manual_seed(seed)
    twin = torch.Generator(device=generator.device)
    twin.set_state(generator.get_state())
    return generator, twin


def guided_model_fn(model_fn: ModelFn, y: Tensor, null: Tensor, guidance: float) -> ModelFn:
    """The :data:`~sympe.diffusion.process.discrete_process.ModelFn` of the guided prediction (module docstring).

    Args:
        model_fn: the conditional network, reading the condition from ``z_t.y``.
        y: (B, width) the encoded condition of each graph of the batch (:meth:`ConditionSpec.encode`).
        null: (B, width) the null condition (:meth:`ConditionSpec.null`).
        guidance: ``w`` (any real; 0 = the conditional model, one network call).

    The returned function replaces ``z_t.y`` by ``y`` (and by ``null`` for the second call) and returns guided
    log-probabilities as logits, (B, n, dx) and (B, n, n, de). Raises ``ValueError`` when ``y`` and ``null``
    differ in shape or ``w`` is not finite.
    """
    w = float(guidance)
    if not torch.isfinite(torch.tensor(w)):
        raise ValueError(f"guidance weight must be a finite number, got {guidance}")
    if y.shape != null.shape:
        raise ValueError(f"guidance: condition {tuple(y.shape)} and null condition {tuple(null.shape)} differ in shape")

    def guided(z_t: DenseGraph, t_int: Tensor, generator: torch.Generator | None = None):
        if y.shape[0] != z_t.batch_size:
            raise ValueError(f"guidance: {y.shape[0]} conditions for a batch of {z_t.batch_size} graphs")
        if w == 0.0:
            return model_fn(_with_y(z_t, y), t_int, generator=generator)
        g_cond, g_null = _replay(generator, z_t.X.device)
        lXc, lEc = model_fn(_with_y(z_t, y), t_int, generator=g_cond)
        lXu, lEu = model_fn(_with_y(z_t, null), t_int, generator=g_null)
        lX = (1.0 + w) * torch.log_softmax(lXc, -1) - w * torch.log_softmax(lXu, -1)
        lE = (1.0 + w) * torch.log_softmax(lEc, -1) - w * torch.log_softmax(lEu, -1)
        return lX, lE

    return guided
