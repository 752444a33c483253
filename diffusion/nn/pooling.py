"""Masked pooled statistics (mean, min, max, std over real positions), one autograd node.

The graph stream of the transformer reads ``[mean | min | max | std]`` of the node and edge streams over real
nodes / real off-diagonal pairs (:func:`masked_statistics`). Written as separate PyTorch operations, its
backward keeps three full-size tensors per call (the filled inputs of ``amin`` / ``amax`` and the deviations of
the std); this node keeps only its input ``x`` (already kept by the attention of the same layer) and recomputes
the rest in backward. Gradients are those of the plain formulation (:func:`masked_statistics_reference`,
checked against it in the tests): ties of the min / max share the gradient equally (as ``torch.amin`` /
``torch.amax``), and ``std = sqrt(max(var, 1e-10))`` passes no gradient where ``var < 1e-10``.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["masked_statistics", "masked_statistics_reference"]

_VAR_FLOOR = 1e-10


def masked_statistics_reference(x: Tensor, mask: Tensor) -> Tensor:
    """:func:`masked_statistics` as plain autograd operations (the oracle of the tests, and what
    ``torch.compile`` traces)."""
    m = mask.unsqueeze(-1)
    nonempty = mask.any(dim=1, keepdim=True).to(x.dtype)  # (B, 1)
    cnt = mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)  # (B, 1)
    zero = x.new_zeros(())
    xz = torch.where(m, x, zero)
    mean = xz.sum(dim=1) / cnt
    big = torch.finfo(x.dtype).max  # finite fill: an empty graph gives big * 0 = 0, not inf * 0
    xmin = torch.where(m, x, x.new_full((), big)).amin(dim=1) * nonempty
    xmax = torch.where(m, x, x.new_full((), -big)).amax(dim=1) * nonempty
    dev = torch.where(m, x - mean.unsqueeze(1), zero)
    var = (dev * dev).sum(dim=1) / cnt
    std = var.clamp_min(_VAR_FLOOR).sqrt() * nonempty
    return torch.cat([mean, xmin, xmax, std], dim=-1)


class _MaskedStatistics(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor) -> Tensor:
        out = masked_statistics_reference(x, mask)
        ctx.save_for_backward(x, mask, out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        x, mask, out = ctx.saved_tensors
        d = x.shape[-1]
        m = mask.unsqueeze(-1)
        cnt = mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)  # (B, 1)
        mean, xmin, xmax, std = out.split(d, dim=-1)
        g_mean, g_min, g_max, g_std = g.split(d, dim=-1)
        nonempty = mask.any(dim=1, keepdim=True).to(x.dtype)
        # std = sqrt(var) where var >= floor (else constant): d std / d var = 1 / (2 std)
        dev = torch.where(m, x - mean.unsqueeze(1), 0.0)
        var = (dev * dev).sum(dim=1) / cnt
        g_var = torch.where(var >= _VAR_FLOOR, g_std * nonempty / (2 * std.clamp_min(_VAR_FLOOR ** 0.5)), 0.0)
        # d var / d x_k = (2 / cnt) (dev_k - mean_j dev_j)  (the second term is ~0; kept for fidelity)
        dev_mean = dev.sum(dim=1, keepdim=True) / cnt.unsqueeze(1)
        gx = (dev - dev_mean).mul_((2 * g_var / cnt).unsqueeze(1))
        gx.add_((g_mean / cnt).unsqueeze(1))
        for value, grad in ((xmin, g_min), (xmax, g_max)):
            ties = (x == value.unsqueeze(1)) & m
            share = (grad * nonempty) / ties.sum(dim=1).clamp_min(1).to(x.dtype)
            gx.add_(torch.where(ties, share.unsqueeze(1), 0.0))
        return torch.where(m, gx, 0.0), None


def masked_statistics(x: Tensor, mask: Tensor) -> Tensor:
    """Mean, min, max and (population) std of ``x`` over the positions where ``mask`` is True.

    ``x``: (B, m, d), ``mask``: (B, m) bool. Returns (B, 4d) = ``[mean | min | max | std]`` with
    ``std = sqrt(max(mean((x - mean)²), 1e-10))``. A graph with no masked-in position gets zeros.
    Padded positions never influence the result or receive gradient, whatever they contain (finite or not).
    One autograd node that keeps only ``x`` (see the module docstring); under ``torch.compile`` the plain
    formulation is used.
    """
    if torch.compiler.is_compiling() or not (x.requires_grad and torch.is_grad_enabled()):
        return masked_statistics_reference(x, mask)
    return _MaskedStatistics.apply(x, mask)
