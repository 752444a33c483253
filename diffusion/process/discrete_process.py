"""`DiscreteProcess`: the forward noising process and the reverse kernel of the discrete diffusion.

One object owns the noise schedule (:mod:`~sympe.diffusion.process.schedule`, ``β_t`` and ``ᾱ_t`` for
``t = 0..T``) and the node / edge transitions (:mod:`~sympe.diffusion.process.transition`), and is the only place
that turns them into matrices. Everything that noises, denoises, samples or scores a graph (the
LightningModule, :mod:`~sympe.diffusion.likelihood.bound`, :mod:`~sympe.diffusion.process.sampling`, the benchmark)
goes through its small interface, in the spirit of a diffusers scheduler:

* time: ``T``, the decoder time ``t_min = 0``, the training-time draw :meth:`~DiscreteProcess.sample_t`
  (``t ~ U{0..T}``, see :mod:`~sympe.diffusion.likelihood.bound` for why 0 is included), and the reverse grid
  :meth:`~DiscreteProcess.timesteps` (all ``T`` steps or ``K`` strided steps, :func:`timestep_schedule`);
* matrices: ``Q̄_t`` (:meth:`~DiscreteProcess.Q_bar`) and ``Q_{t|s}`` (:meth:`~DiscreteProcess.Q_ts`),
  ``(B, d, d)`` per variable type;
* forward: ``q(z_t | x0) = x0 Q̄_t`` (:meth:`~DiscreteProcess.q_probs`) and a draw from it
  (:meth:`~DiscreteProcess.q_sample`);
* the prior / limit ``p(z_T)`` (:meth:`~DiscreteProcess.limit`, :meth:`~DiscreteProcess.sample_prior`);
* the exact posterior ``q(z_s | z_t, x0)`` (:meth:`~DiscreteProcess.posterior`);
* the model's reverse kernel ``p_θ(z_s | z_t)`` from a prediction ``p̂(x0 | z_t)``
  (:meth:`~DiscreteProcess.reverse_probs`), and one ancestral step (:meth:`~DiscreteProcess.step`).

Every draw takes a ``torch.Generator``; the process never touches the global random state when one is
given. A denoiser is a :data:`ModelFn`, ``model_fn(z_t, t_int, generator) -> (logits_X, logits_E)``: the
generator is passed on so that a stochastic denoiser (a symmetry breaker drawing g̃ or noise) draws
from the same stream as the process.

The reverse kernel (the seam for other parameterisations)
---------------------------------------------------------
The map from ``p̂(x0 | z_t)`` to ``p_θ(z_s | z_t)`` is a *kernel*: a function
``kernel(p_x0 (B, M, d0), z_t (B, M, d), Q_{t|s} (B, d, d), Q̄_s (B, d0, d)) -> (B, M, d)`` applied to nodes
and to flattened edges alike, listed by name in :data:`REVERSE_KERNELS` and chosen with
``DiscreteProcess(..., kernel=name)``. ``"plain"`` (the default) is the mixture of exact posteriors
``Σ_k p̂_k q(z_s | z_t, x0 = k)`` (:func:`~sympe.diffusion.process.categorical.model_posterior`), i.e. the kernel
the sampler draws from and the likelihood scores. ``"reweighted"`` is ``Σ_k w_k q(z_s | z_t, x0 = k)`` with
``w_k ∝ p̂_k Q̄_t[k, z_t]``: the model whose L_t DiGress's published NLL computes (DiGress itself samples
with the plain kernel); choosing it here makes the sampler and the likelihood use it alike. A further
parameterisation is one function of that signature and one entry in :data:`REVERSE_KERNELS`.

What a new process must provide
-------------------------------
A new transition *of the existing family* ``Q(a) = a I + (1 - a) 1 mᵀ`` is one subclass of
:class:`~sympe.diffusion.process.transition.Transition` that sets its limit vectors ``m_X`` and ``m_E``; the
schedule, the matrices, the posteriors, the sampler and the likelihood follow from it unchanged. A
process outside that family subclasses :class:`DiscreteProcess` and overrides :meth:`~DiscreteProcess.Q_bar`,
:meth:`~DiscreteProcess.Q_ts` and :meth:`~DiscreteProcess.limit`. It must guarantee, for every
``0 <= s < t <= T``: row-stochastic matrices; Chapman–Kolmogorov ``Q̄_s Q_{t|s} = Q̄_t`` (the posterior
normaliser is computed from it, and strided sampling is exact only under it); and a limit ``m`` with
``x Q̄_T ≈ m`` for every class ``x`` (the prior the sampler starts from and the likelihood's
``KL(q(z_T | x) ‖ p(z_T))`` compares against). Everything else (noising, posteriors, kernels, steps, the
time grid) is written once here in terms of those three methods.

Edges are one variable per unordered pair: the model's edge probabilities are symmetrised in
:func:`predict_x0`, ``p̂_E <- (p̂_E + p̂_Eᵀ)/2``, and draws take the strict upper triangle and mirror it.
"""
from __future__ import annotations

import math

from typing import Callable, Protocol

import torch
from torch import Tensor

from sympe.diffusion.process.categorical import (flatten_edges, model_posterior, posterior, reweighted_posterior,
                                         sample_categorical)
from sympe.diffusion.graph import DenseGraph


class ModelFn(Protocol):
    """``model_fn(z_t, t_int, generator=None) -> (logits_X (B, n, dx), logits_E (B, n, n, de))``."""

    def __call__(self, z_t: DenseGraph, t_int: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]: ...


#: A reverse kernel: ``(p_x0 (B, M, d0), z_t (B, M, d), Q_ts (B, d, d), Qbar_s (B, d0, d)) -> (B, M, d)``.
ReverseKernel = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]

#: The reverse kernels by name (module docstring). ``"plain"``: ``Σ_k p̂_k q(z_s | z_t, x0 = k)``;
#: ``"reweighted"``: ``Σ_k w_k q(z_s | z_t, x0 = k)`` with ``w_k ∝ p̂_k Q̄_t[k, z_t]`` (the kernel whose
#: likelihood DiGress's ``compute_Lt`` evaluates; :func:`~sympe.diffusion.process.categorical.reweighted_posterior`).
REVERSE_KERNELS: dict[str, ReverseKernel] = {"plain": model_posterior, "reweighted": reweighted_posterior}


# ---------------------------------------------------------------------------------------------- time grid
def _polydec(u: float) -> float:
    return 2.0 * u - u * u


def _cos(u: float) -> float:
    return (1.0 - math.cos(math.pi * u)) / 2.0


#: DeFoG's time distortions (Qin et al., ICML 2025, "DeFoG: Discrete Flow Matching for Graph Generation", sampling
#: section): increasing maps f of [0, 1] onto itself with f(0) = 0, f(1) = 1, in DeFoG's time u (0 = noise,
#: 1 = data). A strided grid takes the K + 1 evenly spaced u_k = k / K through f, so the steps are short where f
#: is flat: ``polydec`` near the data, ``polyinc`` near the noise, ``cos`` at both ends, ``revcos`` in the middle.
TIME_DISTORTIONS = {
    "identity": lambda u: u,
    "polyinc": lambda u: u * u,
    "polydec": _polydec,
    "cos": _cos,
    "revcos": lambda u: 2.0 * u - _cos(u),
}


def timestep_schedule(T: int, steps: int | None = None, distortion: str = "identity") -> list[int]:
    """The strictly decreasing times visited by the sampler, from ``T`` to ``0`` inclusive.

    ``steps=None``: all of ``T, T-1, ..., 0`` (T reverse steps). ``steps = K`` (1 <= K <= T): K + 1 times,
    ``t_0 = T``, ``t_K = 0``, strictly decreasing:

    * ``distortion="identity"``: ``t_k = floor(T (K - k) / K)`` — evenly spaced (the spacing ``T/K >= 1``);
    * another name of :data:`TIME_DISTORTIONS` (DeFoG's time distortions): ``t_k = round(T (1 - f(k / K)))``
      with DeFoG's time ``u = 1 - t / T``; where two rounded times would coincide (steps shorter than one unit
      of T), each is pushed up to one more than the next, from ``t_K = 0`` upwards, and capped at ``T - k``,
      so there are always exactly K steps.

    Raises ``ValueError`` for ``T < 1``, ``K`` outside ``1..T``, an unknown distortion, or a distortion other than
    ``identity`` with ``steps=None`` (all T steps leave nothing to distort).
    """
    T = int(T)
    if T < 1:
        raise ValueError(f"timestep_schedule: T must be >= 1, got {T}")
    if distortion not in TIME_DISTORTIONS:
        raise ValueError(f"time_distortion must be one of {sorted(TIME_DISTORTIONS)}, got {distortion!r}")
    if steps is None:
        if distortion != "identity":
            raise ValueError(f"time_distortion={distortion} needs strided sampling (steps = K < T); with all T steps "
                             "every time is visited")
        steps = T
    steps = int(steps)
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..T={T} (number of reverse steps), got {steps}")
    if distortion == "identity":
        return [(T * (steps - k)) // steps for k in range(steps + 1)]
    f = TIME_DISTORTIONS[distortion]
    times = [0] * (steps + 1)
    times[0] = T
    for k in range(steps - 1, 0, -1):
        t = round(T * (1.0 - f(k / steps)))
        times[k] = min(max(t, times[k + 1] + 1), T - k)
    return times


def uniform_times(low: int, high: int, B: int, device, generator: torch.Generator | None) -> Tensor:
    """(B,) long uniform on ``low..high-1``, drawn on the generator's device, returned on ``device``."""
    gdev = generator.device if generator is not None else device
    return torch.randint(low, high, (B,), generator=generator, device=gdev).to(device)


# ---------------------------------------------------------------------------------------------- the denoiser
def predict_x0(model_fn: ModelFn, z_t: DenseGraph, t_int: Tensor, num_draws: int = 1,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``p̂(x0 | z_t)``: softmax of the model's logits, averaged over ``num_draws`` calls.

    ``model_fn`` is called as ``model_fn(z_t, t_int, generator=generator)``. Returns
    ``(pX (B, n, dx), pE (B, n, n, de))`` in ``z_t``'s dtype, with ``pE`` symmetrised (``(pE + pEᵀ)/2``) and
    padding (and the diagonal of ``pE``) zeroed. With a stochastic ``model_fn`` (SymPE draws a fresh group
    element per call) the average is over independent draws. Raises ``ValueError`` on wrong logit shapes
    or non-finite probabilities of real variables.
    """
    if int(num_draws) < 1:
        raise ValueError(f"num_draws must be >= 1, got {num_draws}")
    B, n, dx = z_t.X.shape
    de = z_t.E.shape[-1]
    pX = pE = None
    for _ in range(int(num_draws)):
        out = model_fn(z_t, t_int, generator=generator)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError("model_fn must return (logits_X (B, n, dx), logits_E (B, n, n, de))")
        lX, lE = out
        if lX.shape != (B, n, dx) or lE.shape != (B, n, n, de):
            raise ValueError(
                f"model_fn returned logits of shapes {tuple(lX.shape)} and {tuple(lE.shape)}; "
                f"expected ({B}, {n}, {dx}) and ({B}, {n}, {n}, {de})"
            )
        qX = torch.softmax(lX.to(z_t.X.dtype), dim=-1)
        qE = torch.softmax(lE.to(z_t.E.dtype), dim=-1)
        qE = 0.5 * (qE + qE.transpose(1, 2))
        pX = qX if pX is None else pX + qX
        pE = qE if pE is None else pE + qE
    pX = pX / num_draws
    pE = pE / num_draws
    # where, not a product: the model may emit NaN/-inf logits on padding, which must not leak
    pX = torch.where(z_t.node_mask.unsqueeze(-1), pX, torch.zeros_like(pX))
    pE = torch.where(z_t.edge_mask.unsqueeze(-1), pE, torch.zeros_like(pE))
    # a non-finite prediction (e.g. all -inf logits) on a real variable is a model bug: say so
    if not (torch.isfinite(pX).all() and torch.isfinite(pE).all()):
        raise ValueError("model_fn produced non-finite probabilities (NaN logits, or all logits -inf on a variable)")
    return pX, pE


# ---------------------------------------------------------------------------------------------- the process
class DiscreteProcess:
    """Schedule + node/edge transitions of a discrete diffusion, behind one interface (module docstring).

    Args:
        schedule: a :class:`~sympe.diffusion.process.schedule.NoiseSchedule` (``T``, ``alpha_bar(t)``).
        transition: a :class:`~sympe.diffusion.process.transition.Transition` (``dx``, ``de``, the family matrices,
            ``limit()``).
        kernel: name of the reverse kernel in :data:`REVERSE_KERNELS` (default ``"plain"``).

    Not an ``nn.Module``: it holds references to the two modules, which the owner (the LightningModule)
    registers, so checkpoints and ``.to(device)`` of the owner carry them. Standalone, :meth:`to` moves them.
    Times are integer tensors ``(B,)`` (or Python ints, broadcast to the batch) in ``0..T``.
    """

    #: The time of the decoder ``p_θ(x | z_0) = p̂(x0 | z_0)`` (reconstruction term and final decode).
    t_min: int = 0

    def __init__(self, schedule, transition, kernel: str = "plain"):
        self.schedule = schedule
        self.transition = transition
        self.set_kernel(kernel)

    def set_kernel(self, kernel: str) -> "DiscreteProcess":
        """Use the reverse kernel named ``kernel`` (a key of :data:`REVERSE_KERNELS`) from now on; returns ``self``.

        The kernel is a choice of the reverse model, not of training (the denoiser's loss does not depend on
        it), so it may be switched for a trained model; sampling and the NLL then both use the new one.
        Raises ``ValueError`` for an unknown name.
        """
        if kernel not in REVERSE_KERNELS:
            raise ValueError(f"unknown reverse kernel x0_kernel={kernel!r}; choose one of {sorted(REVERSE_KERNELS)}")
        self.kernel_name = kernel
        self.kernel: ReverseKernel = REVERSE_KERNELS[kernel]
        return self

    def __repr__(self) -> str:
        return f"DiscreteProcess(T={self.T}, dx={self.dx}, de={self.de}, kernel={self.kernel_name!r})"

    def to(self, *args, **kwargs) -> "DiscreteProcess":
        """Move (or cast) the schedule's and transition's buffers like ``nn.Module.to``; returns ``self``."""
        self.schedule.to(*args, **kwargs)
        self.transition.to(*args, **kwargs)
        return self

    @property
    def T(self) -> int:
        return int(self.schedule.T)

    @property
    def dx(self) -> int:
        return int(self.transition.dx)

    @property
    def de(self) -> int:
        return int(self.transition.de)

    # ------------------------------------------------------------------ time
    def timesteps(self, steps: int | None = None, distortion: str = "identity") -> list[int]:
        """The reverse grid ``[T, ..., 0]``: all T steps (``steps=None``) or K strided ones, evenly spaced or
        through one of DeFoG's time distortions (:func:`timestep_schedule`)."""
        return timestep_schedule(self.T, steps, distortion)

    def sample_t(self, B: int, device=None, generator: torch.Generator | None = None) -> Tensor:
        """Training times ``t ~ U{t_min..T}`` = ``U{0..T}``, (B,) long on ``device``.

        ``0`` is included so that the decoder time used by the reconstruction term and the final decode is
        one the model is trained at (DiGress's choice; convention stated in :mod:`~sympe.diffusion.likelihood.bound`).
        """
        return uniform_times(self.t_min, self.T + 1, int(B), device, generator)

    def _times(self, t, B: int, device) -> Tensor:
        t = torch.as_tensor(t, device=device)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(f"DiscreteProcess: times must be integers, got dtype {t.dtype}")
        t = t.long().reshape(-1)
        if t.numel() == 1:
            t = t.expand(B)
        if t.numel() != B:
            raise ValueError(f"DiscreteProcess: expected {B} times (one per graph) or 1, got {t.numel()}")
        return t

    def _check_step(self, t, s, B: int, device) -> tuple[Tensor, Tensor]:
        t, s = self._times(t, B, device), self._times(s, B, device)
        if bool((s < 0).any()) or bool((s >= t).any()):
            raise ValueError("reverse step: need 0 <= s < t for every graph; "
                             f"got t={t.tolist()[:8]}..., s={s.tolist()[:8]}...")
        return t, s

    # ------------------------------------------------------------------ matrices
    def Q_bar(self, t, dtype: torch.dtype = torch.float32, B: int | None = None) -> tuple[Tensor, Tensor]:
        """``Q̄_t`` (``q(z_t | x0) = x0 Q̄_t``) for nodes (B, dx, dx) and edges (B, de, de), in ``dtype``.

        ``t``: (B,) integer times (or an int with ``B`` given). Built as ``Q(ᾱ_t)`` of the transition family.
        """
        t = self._times(t, B if B is not None else torch.as_tensor(t).numel(), self.schedule.alpha_bars.device)
        return self.transition.cumulative(self.schedule.alpha_bar(t).to(dtype))

    def Q_ts(self, t, s, dtype: torch.dtype = torch.float32, B: int | None = None) -> tuple[Tensor, Tensor]:
        """``Q_{t|s}`` (``q(z_t | z_s) = z_s Q_{t|s}``), ``0 <= s < t``, nodes (B, dx, dx) and edges (B, de, de).

        Built as ``Q(ᾱ_t / ᾱ_s)``; Chapman–Kolmogorov ``Q̄_s Q_{t|s} = Q̄_t`` holds (family closed under products).
        """
        B = B if B is not None else max(torch.as_tensor(t).numel(), torch.as_tensor(s).numel())
        t, s = self._check_step(t, s, B, self.schedule.alpha_bars.device)
        return self.transition.Q_ts(self.schedule.alpha_bar(t).to(dtype), self.schedule.alpha_bar(s).to(dtype))

    def limit(self) -> tuple[Tensor, Tensor]:
        """The limit / prior ``p(z_T)`` per variable: ``(m_X (dx,), m_E (de,))``."""
        return self.transition.limit()

    # ------------------------------------------------------------------ forward
    def q_probs(self, x0: DenseGraph, t) -> tuple[Tensor, Tensor]:
        """``q(z_t | x0) = x0 Q̄_t``: node probabilities (B, n, dx) and pair probabilities (B, n, n, de).

        ``x0`` may hold one-hot classes or probabilities; padding rows stay zero.
        """
        B, n, dx = x0.X.shape
        de = x0.E.shape[-1]
        self._check_classes(dx, de, "q_probs")
        Qx, Qe = self.Q_bar(self._times(t, B, x0.X.device), dtype=x0.X.dtype)
        probX = x0.X @ Qx.to(device=x0.X.device, dtype=x0.X.dtype)
        probE = (flatten_edges(x0.E) @ Qe.to(device=x0.E.device, dtype=x0.E.dtype)).view(B, n, n, de)
        return probX, probE

    def q_sample(self, x0: DenseGraph, t, generator: torch.Generator | None = None) -> DenseGraph:
        """``z_t ~ q(z_t | x0)`` per real node and per real unordered pair (upper triangle drawn, mirrored).

        Returns a one-hot DenseGraph of ``x0``'s shapes (``y`` and ``node_mask`` carried over).
        """
        probX, probE = self.q_probs(x0, t)
        return sample_categorical(probX, probE, x0.node_mask, generator=generator, y=x0.y)

    # ------------------------------------------------------------------ prior
    def prior_probs(self, node_mask: Tensor, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """``p(z_T)`` broadcast to a batch: (B, n, dx) and (B, n, n, de) (padding rows are read as padding).

        ``dtype``: default the transition's buffer dtype.
        """
        B, n = node_mask.shape
        m_X, m_E = self.limit()
        dtype = dtype or m_X.dtype
        probX = m_X.to(device=node_mask.device, dtype=dtype).view(1, 1, self.dx).expand(B, n, self.dx)
        probE = m_E.to(device=node_mask.device, dtype=dtype).view(1, 1, 1, self.de).expand(B, n, n, self.de)
        return probX, probE

    def sample_prior(self, node_mask: Tensor, generator: torch.Generator | None = None,
                     y: Tensor | None = None) -> DenseGraph:
        """``z_T ~ p(z_T)``: every real node class from ``m_X``, every real unordered pair from ``m_E``."""
        probX, probE = self.prior_probs(node_mask)
        return sample_categorical(probX, probE, node_mask, generator=generator, y=y)

    # ------------------------------------------------------------------ posteriors and the reverse kernel
    def _step_matrices(self, z_t: DenseGraph, t, s):
        t, s = self._check_step(t, s, z_t.batch_size, z_t.X.device)
        Qts_x, Qts_e = self.Q_ts(t, s, dtype=z_t.X.dtype)
        Qs_x, Qs_e = self.Q_bar(s, dtype=z_t.X.dtype)
        return Qts_x, Qts_e, Qs_x, Qs_e

    def _check_classes(self, dx: int, de: int, what: str) -> None:
        if dx != self.dx or de != self.de:
            raise ValueError(f"{what}: the graph has dx={dx}, de={de} but the process has dx={self.dx}, de={self.de}")

    def posterior(self, x0: DenseGraph, z_t: DenseGraph, t, s) -> tuple[Tensor, Tensor]:
        """Exact ``q(z_s | z_t, x0)`` per node (B, n, dx) and per pair (B, n, n, de), for ``0 <= s < t``.

        ``x0`` may hold probabilities (then ``x0 Q̄_s`` is the prior on ``z_s``); see
        :func:`~sympe.diffusion.process.categorical.posterior` for the formula and its guards.
        """
        B, n, _, de = z_t.E.shape
        self._check_classes(z_t.X.shape[-1], de, "posterior")
        Qts_x, Qts_e, Qs_x, Qs_e = self._step_matrices(z_t, t, s)
        qX = posterior(z_t.X, x0.X, Qts_x, Qs_x)
        qE = posterior(flatten_edges(z_t.E), flatten_edges(x0.E), Qts_e, Qs_e).view(B, n, n, de)
        return qX, qE

    def reverse_probs(self, pX: Tensor, pE: Tensor, z_t: DenseGraph, t, s,
                      kernel: str | None = None) -> tuple[Tensor, Tensor]:
        """The model's ``p_θ(z_s | z_t)`` from ``p̂(x0 | z_t)`` (``pX`` (B, n, dx), ``pE`` (B, n, n, de)).

        Applies the process's reverse kernel (module docstring), or the one named ``kernel``, to nodes and to
        pairs; returns (B, n, dx) and (B, n, n, de). Raises ``ValueError`` unless ``0 <= s < t``.
        """
        B, n, _, de = z_t.E.shape
        self._check_classes(z_t.X.shape[-1], de, "reverse_probs")
        if kernel is not None and kernel not in REVERSE_KERNELS:
            raise ValueError(f"reverse_probs: unknown kernel {kernel!r}; choose one of {sorted(REVERSE_KERNELS)}")
        fn = self.kernel if kernel is None else REVERSE_KERNELS[kernel]
        Qts_x, Qts_e, Qs_x, Qs_e = self._step_matrices(z_t, t, s)
        probX = fn(pX, z_t.X, Qts_x, Qs_x)
        probE = fn(flatten_edges(pE), flatten_edges(z_t.E), Qts_e, Qs_e).view(B, n, n, de)
        return probX, probE

    def model_reverse_probs(self, model_fn: ModelFn, z_t: DenseGraph, t, s, num_draws: int = 1,
                            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """:func:`predict_x0` at time ``t`` (``num_draws`` calls averaged), then :meth:`reverse_probs`."""
        t, s = self._check_step(t, s, z_t.batch_size, z_t.X.device)
        pX, pE = predict_x0(model_fn, z_t, t, num_draws=num_draws, generator=generator)
        return self.reverse_probs(pX, pE, z_t, t, s)

    def step(self, model_fn: ModelFn, z_t: DenseGraph, t, s, generator: torch.Generator | None = None,
             num_draws: int = 1) -> DenseGraph:
        """One ancestral step ``z_s ~ p_θ(z_s | z_t)``, ``0 <= s < t`` per graph (strided steps are exact).

        The model call(s) and the draw use ``generator``. ``num_draws = K`` averages ``p̂(x0 | z_t)`` over K
        calls of a stochastic ``model_fn`` before applying the kernel (the K-draw model).
        """
        probX, probE = self.model_reverse_probs(model_fn, z_t, t, s, num_draws=num_draws, generator=generator)
        return sample_categorical(probX, probE, z_t.node_mask, generator=generator, y=z_t.y)
