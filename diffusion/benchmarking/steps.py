"""The units of work the benchmark times: one training step and one reverse step of a diffusion model.

The model is duck-typed (what :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` provides, used here
without Lightning): ``training_step(batch, batch_idx) -> loss`` (noise, structural features, symmetry breaker,
denoiser, loss), ``process`` (:class:`~sympe.diffusion.process.discrete_process.DiscreteProcess`), ``model_fn``
(the denoiser) and ``T``. Nothing is timed here (see :mod:`~sympe.diffusion.benchmarking.timing`).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

__all__ = ["autocast_bf16", "train_step", "ReverseSteps"]


def autocast_bf16(device, enabled: bool = True):
    """A bfloat16 autocast context on a CUDA ``device`` when ``enabled``; a no-op context elsewhere."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def train_step(model, opt: torch.optim.Optimizer, batch, device=None, clip_norm: float | None = None,
               bf16: bool = False) -> torch.Tensor:
    """One optimizer step: ``model.training_step(batch, 0)`` (under bf16 autocast on CUDA when ``bf16``),
    backward, gradient-norm clipping to ``clip_norm`` (none when ``None``, as in DiGress), ``opt.step()``.

    ``batch`` is moved to ``device`` when one is given. Returns the detached loss."""
    if device is not None:
        batch = batch.to(device)
    opt.zero_grad(set_to_none=True)
    with autocast_bf16(device if device is not None else "cpu", bf16):
        loss = model.training_step(batch, 0)
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    return loss.detach()


class ReverseSteps:
    """The full-T reverse chain of ``model`` for graphs of ``sizes`` (B,) nodes, one step per :meth:`step`.

    Starts from the limit distribution ``z_T ~ p(z_T)`` (``process.sample_prior``); each :meth:`step` draws
    ``z_{t-1} ~ p_θ(z_{t-1} | z_t)`` (``process.step``, no gradients), the step DiGress's sampler takes. After
    T steps it starts again from a fresh ``z_T``.
    """

    def __init__(self, model, sizes: torch.Tensor):
        self.model = model
        self.sizes = sizes
        self._restart()

    def _restart(self) -> None:
        B, n = self.sizes.numel(), int(self.sizes.max())
        node_mask = torch.arange(n, device=self.sizes.device).unsqueeze(0) < self.sizes.unsqueeze(1)
        self.z = self.model.process.sample_prior(node_mask, y=torch.zeros(B, 0, device=self.sizes.device))
        self.t = int(self.model.T)

    @torch.no_grad()
    def step(self, *_) -> None:
        if self.t <= 0:
            self._restart()
        t = torch.full((self.z.batch_size,), self.t, dtype=torch.long, device=self.sizes.device)
        self.z = self.model.process.step(self.model.model_fn, self.z, t, t - 1)
        self.t -= 1
