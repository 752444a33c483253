"""Dropout for the graph transformer: ``nn.Dropout`` semantics, cheaper mask draws on CPU.

``Dropout(p)`` multiplies each element by ``keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)`` in training and is
the identity in evaluation. On CPU the keep mask is drawn from 15 random bits per element (one integer draw
compared with a threshold), so the rate is p rounded to a multiple of 2⁻¹⁵ (0.100006 for p = 0.1); only the bool
mask (1 byte per element) is kept for backward. On CUDA it is PyTorch's own dropout.
:func:`dropout_or_identity` gives ``nn.Identity`` for p = 0 (no kernel at all).
"""
from __future__ import annotations


import torch
from torch import Tensor, nn

__all__ = ["Dropout", "dropout_or_identity"]


_DROP_BITS = 15  # random bits per element of a CPU dropout mask


class _MaskedScale(torch.autograd.Function):
    """``x ⊙ keep · scale`` keeping only the bool mask (1 byte per element) for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.mul(x, keep).mul_(scale)

    @staticmethod
    def backward(ctx, g: Tensor):
        (keep,) = ctx.saved_tensors
        return torch.mul(g, keep).mul_(ctx.scale), None, None


class Dropout(nn.Module):
    """Inverted dropout, ``nn.Dropout`` semantics: in training ``x ⊙ keep / (1 − p)``, ``keep ~ Bernoulli(1 − p)``
    per element; identity in eval mode or when ``p == 0``.

    On CPU the mask is drawn from ``_DROP_BITS = 15`` random bits per element, four elements per 64-bit draw
    of the default generator (``torch.Tensor.random_`` on int64), instead of one Bernoulli draw per element
    (``bernoulli_``, a quarter of a training step's CPU time at DiGress's widths); the rate is ``p`` rounded
    to a multiple of 2⁻¹⁵ (|error| ≤ 1.6e-5; for p = 0.1 it is 0.100006), and backward keeps a bool mask
    rather than a float one. Elsewhere (CUDA) it is ``torch.nn.functional.dropout``. Reproducible under
    ``torch.manual_seed``. Shapes: any -> same.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        levels = 1 << _DROP_BITS
        self._threshold = min(round(self.p * levels), levels - 1)
        self._scale = levels / (levels - self._threshold)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self._threshold == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        N = x.numel()
        words = torch.empty((N + 3) // 4, dtype=torch.int64, device=x.device).random_()  # 63 random bits each
        bits = words.view(torch.int16)[:N].view(x.shape)  # 4 lanes per word; the top lane's sign bit is 0
        keep = bits.bitwise_and_((1 << _DROP_BITS) - 1) >= self._threshold  # uniform on 0..2^15-1 per lane
        return _MaskedScale.apply(x, keep, self._scale)


def dropout_or_identity(p: float) -> nn.Module:
    """:class:`Dropout` (p), or ``nn.Identity`` when p == 0 (no kernel at all)."""
    return Dropout(p) if p > 0 else nn.Identity()
