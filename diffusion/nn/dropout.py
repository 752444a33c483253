"""Dropout for the graph transformer: ``nn.Dropout`` semantics, cheaper mask draws on CPU.

``Dropout(p)`` multiplies each element by ``keep / (1 - p)`` with ``keep ~ Bernoulli(1 - p)`` in training and is
the identity in evaluation. On CPU the keep mask is drawn from 15 random bits per element (one integer draw
compared with a threshold), so the rate is p rounded to a multiple of 2⁻¹⁵ (0.100006 for p = 0.1); only the bool
mask (1 byte per element) is kept for backward. On CUDA (and under ``torch.compile``) it is PyTorch's own dropout.
:func:`dropout_or_identity` gives ``nn.Identity`` for p = 0 (no kernel at all).

``ReluDropout(p)`` is ``Dropout(p)(relu(x))`` (the hidden layer of a feed-forward block) as one autograd node
that keeps only its output ``y`` for backward: ``∂x = ∂y ⊙ [y > 0] / (1 - p)``, since ``y > 0`` exactly where
``x > 0`` and the element is kept. The next linear layer keeps the same ``y`` as its input, so the block stores one
hidden-width tensor instead of three (ReLU output, mask, dropout output).
"""
from __future__ import annotations


import torch
from torch import Tensor, nn

__all__ = ["Dropout", "ReluDropout", "dropout_or_identity"]


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


def _keep_mask(x: Tensor, threshold: int) -> Tensor:
    """Bool keep mask of ``x``'s shape from 15 random bits per element (``P(keep) = 1 - threshold / 2^15``)."""
    N = x.numel()
    words = torch.empty((N + 3) // 4, dtype=torch.int64, device=x.device).random_()  # 63 random bits each
    bits = words.view(torch.int16)[:N].view(x.shape)  # 4 lanes per word; the top lane's sign bit is 0
    return bits.bitwise_and_((1 << _DROP_BITS) - 1) >= threshold  # uniform on 0..2^15-1 per lane


class _ReluMaskedScale(torch.autograd.Function):
    """``relu(x) ⊙ keep · scale`` keeping only the output for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor | None, scale: float) -> Tensor:
        y = torch.relu(x)
        if keep is not None:
            y.mul_(keep).mul_(scale)
        ctx.save_for_backward(y)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, g: Tensor):
        (y,) = ctx.saved_tensors
        gx = torch.ops.aten.threshold_backward(g, y, 0.0)  # g where y > 0, else 0 (one pass)
        if ctx.scale != 1.0:
            gx.mul_(ctx.scale)
        return gx, None, None


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
        if x.device.type != "cpu" or torch.compiler.is_compiling():
            return nn.functional.dropout(x, self.p, training=True)
        return _MaskedScale.apply(x, _keep_mask(x, self._threshold), self._scale)


class ReluDropout(Dropout):
    """``Dropout(p)(relu(x))`` that keeps only its output for backward (see the module docstring); in eval mode
    or with p = 0 it is ``relu`` (which also keeps only its output). Same random draws as :class:`Dropout` on CPU;
    on CUDA and under ``torch.compile`` it is ``nn.functional.dropout(relu(x))``. Shapes: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self._threshold == 0:
            return torch.relu(x)
        if x.device.type != "cpu" or torch.compiler.is_compiling():
            return nn.functional.dropout(torch.relu(x), self.p, training=True)
        return _ReluMaskedScale.apply(x, _keep_mask(x, self._threshold), self._scale)


def dropout_or_identity(p: float) -> nn.Module:
    """:class:`Dropout` (p), or ``nn.Identity`` when p == 0 (no kernel at all)."""
    return Dropout(p) if p > 0 else nn.Identity()
