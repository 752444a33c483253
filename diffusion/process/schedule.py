"""Noise schedules of the discrete diffusion: the per-step corruption rates ``β_t`` and ``ᾱ_t``.

Time convention (shared with :mod:`~sympe.diffusion.process.transition`, :mod:`~sympe.diffusion.process.discrete_process`,
:mod:`~sympe.diffusion.process.sampling` and :mod:`~sympe.diffusion.likelihood.bound`): the schedule is indexed by
``t = 0, 1, ..., T``. The clean graph ``x`` is first noised with ``Q_0`` (``β_0`` small but non-zero)
to give ``z_0``, then ``z_t = z_{t-1} Q_t`` for ``t = 1..T``; the chain is ``x -> z_0 -> ... -> z_T``.

A schedule stores two buffers of shape ``(T + 1,)``:

* ``betas[t] = β_t`` in ``[0, 1)``: the probability that step ``t`` resamples a variable from the
  limit distribution (``Q_t = (1 - β_t) I + β_t 1 mᵀ``),
* ``alpha_bars[t] = ᾱ_t = Π_{τ=0..t} (1 - β_τ)``: the probability that ``x`` survived all steps up to
  and including ``t`` (``Q̄_t = ᾱ_t I + (1 - ᾱ_t) 1 mᵀ``). ``ᾱ`` is non-increasing and lies in ``(0, 1]``.

Exact limit (``exact_limit=True``, used for the absorbing transition). By default the last rate is capped,
``β_T <= MAX_BETA = 0.9999``, so ``ᾱ_T > 0`` and ``q(z_T | x)`` only approaches the limit. That is harmless
when the limit has full support (marginal, uniform: the prior term ``KL(q(z_T | x) ‖ m)`` is finite and tiny),
but the absorbing limit is one-hot, so with ``ᾱ_T > 0`` the prior term is ``+∞`` and the ELBO is no bound.
With ``exact_limit`` the schedule keeps every ``β_t``, ``t < T``, and sets ``β_T = 1``, hence ``ᾱ_T = 0``:
``q(z_T | x)`` *is* the limit and the prior term is exactly 0 (the sampler starts from the same limit). Only
the last step may have ``β = 1`` (an earlier one would make ``ᾱ_s = 0`` for some ``s < T``, after which no
reverse step carries information). DiGress caps β at 0.9999 for every transition; this project does too,
except under the absorbing transition (:func:`make_schedule`'s ``exact_limit``, set by the model for it).

Both are computed in float64 and stored as float32 buffers (they move with the module's device).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Largest β allowed; keeps ᾱ_T > 0 so that every Q̄_t has a well-defined ratio ᾱ_t / ᾱ_s.
MAX_BETA = 0.9999


class NoiseSchedule(nn.Module):
    """A discrete noise schedule given by its per-step rates ``β_t``, ``t = 0..T``.

    Args:
        betas: (T + 1,) rates in ``[0, 1)``; the last one may be exactly 1 (``ᾱ_T = 0``, the exact limit:
            module docstring). ``ᾱ_t = Π_{τ<=t} (1 - β_τ)`` is computed from them.

    Buffers: ``betas`` (T + 1,), ``alpha_bars`` (T + 1,). Attributes ``T`` (int), ``exact_limit`` (bool,
    ``β_T = 1``).

    Raises ``ValueError`` for fewer than 2 rates, a rate outside ``[0, 1]`` or non-finite, or ``β_t = 1`` at
    some ``t < T``.
    """

    def __init__(self, betas: Tensor, exact_limit: bool = False):
        super().__init__()
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten().clone()
        if exact_limit and betas.numel() >= 2:
            betas[-1] = 1.0
        if betas.numel() < 2:
            raise ValueError(f"NoiseSchedule: need at least T = 1 (2 betas for t = 0, 1), got {betas.numel()} values")
        if not torch.isfinite(betas).all() or (betas < 0).any() or (betas > 1).any() or (betas[:-1] >= 1).any():
            raise ValueError(
                "NoiseSchedule: every beta must be finite and in [0, 1), except the last (t = T), which may be 1 "
                f"(the exact limit); got min {betas.min().item():.3g}, max {betas.max().item():.3g} "
                f"(clamp to at most {MAX_BETA})"
            )
        alpha_bars = torch.cumprod(1.0 - betas, dim=0)
        self.T = betas.numel() - 1
        self.register_buffer("betas", betas.float())
        self.register_buffer("alpha_bars", alpha_bars.float())

    @property
    def exact_limit(self) -> bool:
        """Whether ``β_T = 1`` (``ᾱ_T = 0``), read from the buffers (a loaded checkpoint's schedule included)."""
        return bool(self.alpha_bars[-1] == 0)

    def reset_parameters(self) -> None:
        """No learnable parameters (the schedule is fixed)."""

    def _check_t(self, t_int: Tensor) -> Tensor:
        t_int = torch.as_tensor(t_int, device=self.betas.device)
        if t_int.is_floating_point() or t_int.dtype == torch.bool:
            raise ValueError(f"NoiseSchedule: time indices must be an integer tensor, got dtype {t_int.dtype}")
        if t_int.numel() and (int(t_int.min()) < 0 or int(t_int.max()) > self.T):
            raise ValueError(
                f"NoiseSchedule: time indices must lie in 0..T={self.T}, got {int(t_int.min())}..{int(t_int.max())}"
            )
        return t_int.long()

    def beta(self, t_int: Tensor) -> Tensor:
        """``β_t`` for integer times of any shape; returns a float tensor of the same shape."""
        return self.betas[self._check_t(t_int)]

    def alpha_bar(self, t_int: Tensor) -> Tensor:
        """``ᾱ_t`` for integer times of any shape; returns a float tensor of the same shape."""
        return self.alpha_bars[self._check_t(t_int)]

    def extra_repr(self) -> str:
        return f"T={self.T}" + (", exact_limit=True" if self.exact_limit else "")


def _betas_from_alpha_bars(alpha_bars: Tensor) -> Tensor:
    """β_t = 1 - ᾱ_t / ᾱ_{t-1} (with ᾱ_{-1} = 1), clamped into [0, MAX_BETA]."""
    prev = torch.cat([alpha_bars.new_ones(1), alpha_bars[:-1]])
    betas = 1.0 - alpha_bars / prev.clamp_min(1e-300)
    return betas.clamp(0.0, MAX_BETA)


class CosineSchedule(NoiseSchedule):
    """DiGress's discrete cosine schedule.

    With ``f(u) = cos²(π/2 · (u + s) / (1 + s))`` evaluated on the grid ``u_k = k / (T + 1)``,
    ``k = 0..T+1``:

    * ``β_t = 1 - f(u_{t+1}) / f(u_t)`` for ``t = 0..T``, clamped into ``[0, 0.9999]``
      (only ``β_T`` is affected: ``f(u_{T+1}) = f(1) = 0`` would give ``β_T = 1``),
    * hence ``ᾱ_t = Π_{τ<=t}(1 - β_τ) = f(u_{t+1}) / f(u_0)`` for every ``t`` whose β was not clamped,
      and ``ᾱ_T = 1e-4 · ᾱ_{T-1}``.

    Args: ``T`` (number of noising steps after step 0), ``s`` (offset, default 0.008), ``exact_limit``
    (``β_T = 1`` instead of the cap: module docstring).
    """

    def __init__(self, T: int, s: float = 0.008, exact_limit: bool = False):
        if int(T) < 1:
            raise ValueError(f"CosineSchedule: T must be >= 1, got {T}")
        T = int(T)
        u = torch.arange(T + 2, dtype=torch.float64) / (T + 1)
        f = torch.cos(0.5 * math.pi * (u + s) / (1 + s)) ** 2
        betas = (1.0 - f[1:] / f[:-1]).clamp(0.0, MAX_BETA)
        super().__init__(betas, exact_limit)
        self.s = s


class LinearAlphaBarSchedule(NoiseSchedule):
    """``ᾱ_t`` linear in ``t``: ``ᾱ_t = 1 - (1 - ᾱ_min) (t + 1) / (T + 1)``, ``t = 0..T``.

    So ``ᾱ_0 = 1 - (1 - ᾱ_min)/(T + 1)`` (close to 1) and ``ᾱ_T = ᾱ_min`` (default 1e-4, close to 0).
    ``β_t = 1 - ᾱ_t / ᾱ_{t-1}`` with ``ᾱ_{-1} = 1``.
    """

    def __init__(self, T: int, alpha_bar_min: float = 1e-4, exact_limit: bool = False):
        if int(T) < 1:
            raise ValueError(f"LinearAlphaBarSchedule: T must be >= 1, got {T}")
        if not 0.0 < alpha_bar_min < 1.0:
            raise ValueError(f"LinearAlphaBarSchedule: alpha_bar_min must be in (0, 1), got {alpha_bar_min}")
        T = int(T)
        t = torch.arange(T + 1, dtype=torch.float64)
        alpha_bars = 1.0 - (1.0 - alpha_bar_min) * (t + 1) / (T + 1)
        super().__init__(_betas_from_alpha_bars(alpha_bars), exact_limit)


class LinearBetaSchedule(NoiseSchedule):
    """``β_t`` linear in ``t`` from ``beta_start`` (t = 0) to ``beta_end`` (t = T).

    Defaults are DDPM's (1e-4, 0.02 for 1000 steps) rescaled to ``T + 1`` steps:
    ``beta_start = 0.1 / (T + 1)``, ``beta_end = min(20 / (T + 1), 0.9999)``, so ``ᾱ_T`` is small for any T.
    """

    def __init__(self, T: int, beta_start: float | None = None, beta_end: float | None = None,
                 exact_limit: bool = False):
        if int(T) < 1:
            raise ValueError(f"LinearBetaSchedule: T must be >= 1, got {T}")
        T = int(T)
        beta_start = 0.1 / (T + 1) if beta_start is None else float(beta_start)
        beta_end = min(20.0 / (T + 1), MAX_BETA) if beta_end is None else float(beta_end)
        betas = torch.linspace(beta_start, beta_end, T + 1, dtype=torch.float64)
        super().__init__(betas, exact_limit)


_SCHEDULES = {
    "cosine": CosineSchedule,
    "linear_alpha_bar": LinearAlphaBarSchedule,
    "linear_beta": LinearBetaSchedule,
}


def make_schedule(name: str, T: int, exact_limit: bool = False, **kwargs) -> NoiseSchedule:
    """Build a schedule by name: ``"cosine"`` (default of the project), ``"linear_alpha_bar"``, ``"linear_beta"``.

    ``exact_limit=True`` keeps ``β_0..β_{T-1}`` of the named schedule and sets ``β_T = 1`` (``ᾱ_T = 0``), so that
    ``q(z_T | x)`` equals the limit exactly (module docstring; the model sets it for the absorbing transition,
    see :func:`schedule_needs_exact_limit`)."""
    key = str(name).lower()
    if key not in _SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; choose one of {sorted(_SCHEDULES)}")
    return _SCHEDULES[key](T, exact_limit=bool(exact_limit), **kwargs)


def schedule_needs_exact_limit(transition: str) -> bool:
    """Whether the chain must end exactly in the limit (``β_T = 1``) for its prior term to be finite: true for
    the absorbing transition (one-hot limit), false for marginal and uniform (full-support limits)."""
    return str(transition).lower() == "absorbing"
