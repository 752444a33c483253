"""Categorical transition matrices of the discrete diffusion (uniform, marginal, absorbing).

Every transition here belongs to one family, parametrised by a probability vector ``m`` (the limit
distribution) per variable type (``m_X`` (dx,) for nodes, ``m_E`` (de,) for edges):

    Q(a) = a I + (1 - a) 1 mᵀ,        a ∈ [0, 1].

Rows index the class *from*, columns the class *to*; each row sums to 1 (``mᵀ 1 = 1``). For a row one-hot
``x`` (1, d), ``x Q(a)`` is the distribution of the next state: keep ``x`` with probability ``a``,
otherwise draw a fresh class from ``m``.

* one step:           ``Q_t = Q(1 - β_t)``,
* from the data:      ``Q̄_t = Q(ᾱ_t)``       (``q(z_t | x) = x Q̄_t``),
* from time s to t:   ``Q_{t|s} = Q(ᾱ_t / ᾱ_s)``, for ``s < t`` (``q(z_t | z_s) = z_s Q_{t|s}``).

**The family is closed under products.** For ``a, b ∈ [0, 1]``, using ``mᵀ 1 = 1``:

    Q(a) Q(b) = ab I + a(1-b) 1mᵀ + (1-a)b 1mᵀ + (1-a)(1-b) 1 (mᵀ1) mᵀ
              = ab I + (a - ab + b - ab + 1 - a - b + ab) 1mᵀ = ab I + (1 - ab) 1mᵀ = Q(ab).

Hence ``Q_0 Q_1 ... Q_t = Q(Π_{τ<=t}(1-β_τ)) = Q(ᾱ_t) = Q̄_t``, and, with ``r = ᾱ_t / ᾱ_s``,
``Q̄_s Q_{t|s} = Q(ᾱ_s · ᾱ_t / ᾱ_s) = Q(ᾱ_t) = Q̄_t`` — so ``Q_{t|s} = Q_{s+1} ... Q_t`` is the exact
multi-step transition, and strided sampling is exact. ``r <= 1`` because ᾱ is non-increasing, so
``Q_{t|s}`` is row-stochastic. (When ``ᾱ_s = 0``, also ``ᾱ_t = 0`` and any ``r`` works; ``r = 0`` is used.)

**The limit is stationary.** ``mᵀ Q(a) = a mᵀ + (1 - a)(mᵀ1) mᵀ = mᵀ``, and ``Q(a) -> 1 mᵀ`` as ``a -> 0``:
every row of ``Q̄_T`` approaches ``m``.

Choices of ``m``:

* :class:`UniformTransition`: ``m = 1/d``.
* :class:`MarginalTransition` (the default of the project): ``m_X`` = node-class marginals of the train
  split, ``m_E`` = edge-class marginals over all unordered node pairs (class 0 = no edge included).
* :class:`AbsorbingTransition`: ``m`` one-hot: edges absorb into class 0 ("no edge"), nodes into a
  configurable class (default: the most frequent node class).

Batched methods take (B,) rates and return ``(Qx (B, dx, dx), Qe (B, de, de))`` in the rates' dtype.
The transition knows no times: :class:`~sympe.diffusion.process.discrete_process.DiscreteProcess` composes it with a
schedule and is the only caller. A new member of the family is one subclass that sets ``m_X`` and ``m_E``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def _as_distribution(v, d: int, what: str) -> Tensor:
    v = torch.as_tensor(v, dtype=torch.float64).flatten()
    if v.numel() != d:
        raise ValueError(f"{what}: expected {d} entries (one per class), got {v.numel()}")
    if not torch.isfinite(v).all() or (v < 0).any():
        raise ValueError(f"{what}: entries must be finite and non-negative, got {v.tolist()}")
    total = float(v.sum())
    if total <= 0:
        raise ValueError(f"{what}: entries sum to 0; give at least one class a positive weight")
    return v / total


def _rates(a: Tensor) -> Tensor:
    a = torch.as_tensor(a)
    if not a.is_floating_point():
        a = a.float()
    return a.reshape(-1)


class Transition(nn.Module):
    """The family ``Q(a) = a I + (1 - a) 1 mᵀ`` for nodes (``m_X`` (dx,)) and edges (``m_E`` (de,)).

    Buffers: ``m_X`` (dx,), ``m_E`` (de,), each a probability vector.
    """

    def __init__(self, m_X: Tensor, m_E: Tensor):
        super().__init__()
        m_X = torch.as_tensor(m_X)
        m_E = torch.as_tensor(m_E)
        self.register_buffer("m_X", _as_distribution(m_X, m_X.numel(), f"{type(self).__name__} m_X").float())
        self.register_buffer("m_E", _as_distribution(m_E, m_E.numel(), f"{type(self).__name__} m_E").float())

    def reset_parameters(self) -> None:
        """No learnable parameters (the transition is fixed)."""

    @property
    def dx(self) -> int:
        return self.m_X.numel()

    @property
    def de(self) -> int:
        return self.m_E.numel()

    @staticmethod
    def _family(a: Tensor, m: Tensor) -> Tensor:
        """``a[b] I + (1 - a[b]) 1 mᵀ`` for every b: (B,) x (d,) -> (B, d, d)."""
        d = m.numel()
        m = m.to(device=a.device, dtype=a.dtype)
        m = m / m.sum()  # exact mᵀ1 = 1 in the compute dtype (the buffer is float32-rounded)
        eye = torch.eye(d, device=a.device, dtype=a.dtype)
        a = a.view(-1, 1, 1)
        return a * eye + (1 - a) * m.view(1, 1, d)

    def _pair(self, a: Tensor) -> tuple[Tensor, Tensor]:
        return self._family(a, self.m_X), self._family(a, self.m_E)

    def Q(self, beta_t: Tensor) -> tuple[Tensor, Tensor]:
        """One step ``Q_t = (1 - β_t) I + β_t 1 mᵀ``. ``beta_t``: (B,) -> ((B, dx, dx), (B, de, de))."""
        beta_t = _rates(beta_t)
        return self._pair(1 - beta_t)

    def cumulative(self, alpha_bar_t: Tensor) -> tuple[Tensor, Tensor]:
        """``Q̄_t = ᾱ_t I + (1 - ᾱ_t) 1 mᵀ``. ``alpha_bar_t``: (B,) -> ((B, dx, dx), (B, de, de)).

        Indexed by the rate ``ᾱ_t``, not by ``t``: callers go through
        :meth:`sympe.diffusion.process.discrete_process.DiscreteProcess.Q_bar`, which owns the schedule.
        """
        return self._pair(_rates(alpha_bar_t))

    def Q_ts(self, alpha_bar_t: Tensor, alpha_bar_s: Tensor) -> tuple[Tensor, Tensor]:
        """``Q_{t|s} = r I + (1 - r) 1 mᵀ`` with ``r = ᾱ_t / ᾱ_s`` (s < t), clamped into [0, 1].

        The ratio is guarded: where ``ᾱ_s = 0`` the ratio is 0 (then ``ᾱ_t = 0`` too).
        """
        a_t, a_s = _rates(alpha_bar_t), _rates(alpha_bar_s)
        if a_t.shape != a_s.shape:
            raise ValueError(f"Q_ts: alpha_bar_t {tuple(a_t.shape)} and alpha_bar_s {tuple(a_s.shape)} differ in shape")
        ratio = torch.where(a_s > 0, a_t / a_s.clamp_min(torch.finfo(a_s.dtype).tiny), torch.zeros_like(a_t))
        return self._pair(ratio.clamp(0.0, 1.0))

    def limit(self) -> tuple[Tensor, Tensor]:
        """The stationary distributions ``(m_X (dx,), m_E (de,))``, renormalised in the buffers' dtype."""
        return self.m_X / self.m_X.sum(), self.m_E / self.m_E.sum()

    def extra_repr(self) -> str:
        return f"dx={self.dx}, de={self.de}"


class UniformTransition(Transition):
    """``m_X = 1/dx``, ``m_E = 1/de``: noise resamples a class uniformly."""

    def __init__(self, dx: int, de: int):
        if dx < 1 or de < 1:
            raise ValueError(f"UniformTransition: need dx >= 1 and de >= 1, got dx={dx}, de={de}")
        super().__init__(torch.full((dx,), 1.0 / dx), torch.full((de,), 1.0 / de))


class MarginalTransition(Transition):
    """``m_X`` = node marginals, ``m_E`` = edge marginals over all unordered pairs (class 0 = no edge)."""

    def __init__(self, node_marginals: Tensor, edge_marginals: Tensor):
        super().__init__(node_marginals, edge_marginals)


class AbsorbingTransition(Transition):
    """``m`` one-hot: edges absorb into class 0 (no edge), nodes into ``absorbing_node_class``.

    Args:
        dx, de: numbers of node / edge classes.
        absorbing_node_class: the node class that absorbs. ``None`` = the most frequent class of
            ``node_marginals`` (which is then required).
        node_marginals: (dx,) used only to pick the default absorbing node class.
    """

    def __init__(self, dx: int, de: int, absorbing_node_class: int | None = None, node_marginals: Tensor | None = None):
        if dx < 1 or de < 1:
            raise ValueError(f"AbsorbingTransition: need dx >= 1 and de >= 1, got dx={dx}, de={de}")
        if absorbing_node_class is None:
            if node_marginals is None:
                raise ValueError(
                    "AbsorbingTransition: give absorbing_node_class, or node_marginals to absorb into the most "
                    "frequent node class"
                )
            absorbing_node_class = int(torch.argmax(_as_distribution(node_marginals, dx, "node_marginals")))
        if not 0 <= int(absorbing_node_class) < dx:
            raise ValueError(f"AbsorbingTransition: absorbing_node_class must be in 0..{dx - 1}, got {absorbing_node_class}")
        m_X = torch.zeros(dx)
        m_X[int(absorbing_node_class)] = 1.0
        m_E = torch.zeros(de)
        m_E[0] = 1.0
        super().__init__(m_X, m_E)
        self.absorbing_node_class = int(absorbing_node_class)


def make_transition(
    name: str,
    dx: int,
    de: int,
    node_marginals: Tensor | None = None,
    edge_marginals: Tensor | None = None,
    absorbing_node_class: int | None = None,
) -> Transition:
    """Build a transition by name: ``"marginal"`` (needs both marginals), ``"uniform"``, ``"absorbing"``."""
    key = str(name).lower()
    if key == "uniform":
        return UniformTransition(dx, de)
    if key == "marginal":
        if node_marginals is None or edge_marginals is None:
            raise ValueError("the marginal transition needs node_marginals (dx,) and edge_marginals (de,) "
                             "(DatasetInfo.node_marginals_tensor() / edge_marginals_tensor())")
        return MarginalTransition(_as_distribution(node_marginals, dx, "node_marginals"),
                                  _as_distribution(edge_marginals, de, "edge_marginals"))
    if key == "absorbing":
        return AbsorbingTransition(dx, de, absorbing_node_class=absorbing_node_class, node_marginals=node_marginals)
    raise ValueError(f"unknown transition {name!r}; choose one of ['absorbing', 'marginal', 'uniform']")
