"""The forward and reverse categorical processes: sampling, noising and the exact posteriors.

Pure tensor functions, generic over categorical variables. Shapes: ``B`` graphs, ``n`` nodes; the
per-variable functions take ``(B, M, d)`` tensors where ``M`` indexes the variables of one graph
(``M = n`` for nodes, ``M = n·n`` for the flattened edge matrix). Matrices ``Q`` are row-stochastic,
``(B, d_from, d_to)``, as built by :mod:`~sympe.diffusion.transition`.

Math
----
* Forward: ``q(z_t | x) = x Q̄_t`` (row one-hot ``x``), and ``q(z_t | z_s) = z_s Q_{t|s}``.
* Exact posterior (Bayes), for ``s < t``:

      q(z_s | z_t, x0) = q(z_t | z_s) q(z_s | x0) / q(z_t | x0)
                       = (z_t Q_{t|s}ᵀ) ⊙ (x0 Q̄_s) / (x0 Q̄_t z_tᵀ),

  where ``(z_t Q_{t|s}ᵀ)[a] = Q_{t|s}[a, z_t]`` and ``x0 Q̄_t z_tᵀ = Σ_a (x0 Q̄_s)[a] Q_{t|s}[a, z_t]``
  (Chapman–Kolmogorov) — the normaliser is computed as that sum, which is exact even under rounding.
* Model posterior: with the denoiser's prediction ``p̂(x0 | z_t)`` (per variable),

      p_θ(z_s | z_t) = Σ_k p̂(x0 = k | z_t) q(z_s | z_t, x0 = k)
                     = (z_t Q_{t|s}ᵀ) ⊙ (w Q̄_s),     w_k = p̂_k / (Q̄_t[k, z_t]).

  Classes ``k`` with ``Q̄_t[k, z_t] = 0`` cannot have produced ``z_t``; they get weight 0 and the result is
  renormalised, i.e. ``p̂`` is conditioned on the classes consistent with ``z_t``.

Guards (no NaN or inf can leave): every division is by a denominator clamped to the dtype's smallest
normal number and masked with ``where`` where it is 0. A real row whose posterior mass is 0 (inputs
that are impossible under the process, e.g. ``x0`` inconsistent with ``z_t``) falls back to
``normalise(z_t Q_{t|s}ᵀ)`` (the posterior under a flat prior on ``z_s``), then to uniform. Rows of
padding (all-zero ``z_t``) stay all-zero.

Edges
-----
``E`` is symmetric; one edge variable per *unordered* pair. Samplers draw the strict upper triangle
``i < j`` and mirror it. The model's predicted edge probabilities are symmetrised,
``p̂_E <- (p̂_E + p̂_Eᵀ)/2``, so that the reverse process does not depend on which triangle is read.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from sympe.diffusion.graph import DenseGraph

ModelFn = Callable[[DenseGraph, Tensor], "tuple[Tensor, Tensor]"]


# ---------------------------------------------------------------------------------------------- helpers
def _tiny(t: Tensor) -> float:
    return torch.finfo(t.dtype).tiny


def _normalise(v: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of ``v`` (..., d) divided by their sums; rows summing to 0 become 0. Returns (rows, sums)."""
    s = v.sum(-1, keepdim=True)
    out = torch.where(s > 0, v / s.clamp_min(_tiny(v)), torch.zeros_like(v))
    return out, s


def _with_fallback(post: Tensor, post_sum: Tensor, z_t: Tensor, left: Tensor) -> Tensor:
    """Replace the zero-mass rows of ``post`` where ``z_t`` is real (see module docstring)."""
    fb1, fb1_sum = _normalise(left)
    real = z_t.sum(-1, keepdim=True) > 0
    uniform = torch.full_like(post, 1.0 / post.shape[-1])
    fb = torch.where(fb1_sum > 0, fb1, uniform)
    return torch.where(post_sum > 0, post, torch.where(real, fb, torch.zeros_like(post)))


def _check_bmd(name: str, v: Tensor, dims: int = 3) -> None:
    if v.dim() != dims:
        raise ValueError(f"{name}: expected a {dims}-d tensor, got shape {tuple(v.shape)}")


def _left(z_t: Tensor, Q_ts: Tensor) -> Tensor:
    """``z_t Q_{t|s}ᵀ``: (B, M, d) with entry a = Q_{t|s}[a, z_t] = q(z_t | z_s = a)."""
    return z_t @ Q_ts.to(z_t.dtype).transpose(-1, -2)


def flatten_edges(E: Tensor) -> Tensor:
    """(B, n, n, d) -> (B, n·n, d)."""
    B, n, _, d = E.shape
    return E.reshape(B, n * n, d)


# ---------------------------------------------------------------------------------------------- sampling
def _draw(p: Tensor, generator: torch.Generator | None) -> Tensor:
    """One categorical draw per row of ``p`` (R, d) (non-negative rows with positive sums) -> (R,) long.

    Inverse CDF: with ``u ~ U[0, 1)·Σ_c p_c``, the class is the number of cumulative sums ``<= u``, i.e.
    class c with probability ``p_c / Σ p``; capped at the last class of positive mass (rounding guard),
    so a zero-probability class is never drawn.
    """
    R, d = p.shape
    if R == 0:
        return torch.zeros(0, dtype=torch.long, device=p.device)
    dev = p.device
    if generator is not None and generator.device != dev:
        p = p.to(generator.device)
    cum = p.cumsum(-1)
    u = torch.rand(R, 1, generator=generator, device=p.device, dtype=p.dtype) * cum[:, -1:]
    idx = (cum <= u).sum(-1)
    last_pos = (d - 1) - torch.argmax((p > 0).flip(-1).to(torch.uint8), dim=-1)
    return torch.minimum(idx, last_pos).to(dev)


def _prepare_rows(p: Tensor, real: Tensor, what: str) -> Tensor:
    """Check the real rows of p (R, d); replace the others (padding) by uniform rows."""
    bad = (~torch.isfinite(p)).any(-1) | (p < 0).any(-1) | ~(p.sum(-1) > 0)
    bad = bad & real
    if bool(bad.any()):
        r = int(torch.nonzero(bad).flatten()[0])
        raise ValueError(
            f"sample_categorical: {what} row {r} (flattened) of a real variable is not a valid distribution "
            f"(negative, non-finite or all zero): {p[r].tolist()}"
        )
    return torch.where(real.unsqueeze(-1), p, torch.ones_like(p))


def sample_categorical(
    probX: Tensor,
    probE: Tensor,
    node_mask: Tensor,
    generator: torch.Generator | None = None,
    y: Tensor | None = None,
) -> DenseGraph:
    """Draw one graph per batch element from independent categoricals.

    Args:
        probX: (B, n, dx) node-class probabilities (rows need not be normalised).
        probE: (B, n, n, de) edge-class probabilities; only the strict upper triangle ``i < j`` is read.
        node_mask: (B, n) bool.
        generator: optional ``torch.Generator`` (if on another device, the draw happens there).
        y: (B, dy) graph features copied into the result (default (B, 0)).

    Returns:
        DenseGraph with one-hot ``X`` (B, n, dx), symmetric one-hot ``E`` (B, n, n, de) (upper triangle
        drawn, mirrored), zero diagonal and zero padding. Padding rows of the inputs may be anything
        (e.g. all zero); real rows must be non-negative, finite and not all zero (else ``ValueError``).
    """
    _check_bmd("probX", probX)
    _check_bmd("probE", probE, 4)
    B, n, dx = probX.shape
    if probE.shape[:3] != (B, n, n):
        raise ValueError(f"sample_categorical: probE has shape {tuple(probE.shape)}, expected ({B}, {n}, {n}, de)")
    if node_mask.shape != (B, n):
        raise ValueError(f"sample_categorical: node_mask has shape {tuple(node_mask.shape)}, expected ({B}, {n})")
    node_mask = node_mask.bool()
    de = probE.shape[-1]
    dtype = probX.dtype if probX.is_floating_point() else torch.float

    # nodes
    pX = _prepare_rows(probX.reshape(B * n, dx), node_mask.reshape(-1), "probX")
    xi = _draw(pX, generator).view(B, n)
    X = F.one_hot(xi, dx).to(dtype) * node_mask.unsqueeze(-1).to(dtype)

    # edges: the strict upper triangle, mirrored
    iu, ju = torch.triu_indices(n, n, offset=1, device=probE.device)
    P = iu.numel()
    pair_real = (node_mask[:, iu] & node_mask[:, ju]).reshape(-1)
    pE = _prepare_rows(probE[:, iu, ju].reshape(B * P, de), pair_real, "probE (upper triangle)")
    ei = _draw(pE, generator).view(B, P)
    Eu = torch.zeros(B, n, n, de, dtype=dtype, device=probE.device)
    pair_m = pair_real.view(B, P, 1).to(dtype)
    Eu[:, iu, ju] = F.one_hot(ei, de).to(dtype) * pair_m
    E = Eu + Eu.transpose(1, 2)
    if y is None:
        y = torch.zeros(B, 0, dtype=dtype, device=probX.device)
    return DenseGraph(X, E, y, node_mask)


def apply_noise(
    x: DenseGraph, Qbar_x: Tensor, Qbar_e: Tensor, generator: torch.Generator | None = None
) -> DenseGraph:
    """``z_t ~ q(z_t | x) = x Q̄_t`` per node and per unordered pair.

    Args: ``x`` a one-hot DenseGraph (B, n, ·); ``Qbar_x`` (B, dx, dx); ``Qbar_e`` (B, de, de).
    Returns a DenseGraph of the same shapes (``y`` and ``node_mask`` carried over).
    """
    B, n, dx = x.X.shape
    de = x.E.shape[-1]
    if Qbar_x.shape != (B, dx, dx) or Qbar_e.shape != (B, de, de):
        raise ValueError(
            f"apply_noise: expected Qbar_x ({B}, {dx}, {dx}) and Qbar_e ({B}, {de}, {de}), "
            f"got {tuple(Qbar_x.shape)} and {tuple(Qbar_e.shape)}"
        )
    probX = x.X @ Qbar_x.to(x.X.dtype)
    probE = (flatten_edges(x.E) @ Qbar_e.to(x.E.dtype)).view(B, n, n, de)
    return sample_categorical(probX, probE, x.node_mask, generator=generator, y=x.y)


# ---------------------------------------------------------------------------------------------- posteriors
def posterior(z_t: Tensor, x0: Tensor, Q_ts: Tensor, Qbar_s: Tensor, Qbar_t: Tensor | None = None) -> Tensor:
    """Exact ``q(z_s | z_t, x0) ∝ (z_t Q_{t|s}ᵀ) ⊙ (x0 Q̄_s)``, normalised over ``z_s``.

    Args:
        z_t: (B, M, d) one-hot noisy states (all-zero rows = padding).
        x0: (B, M, d0) one-hot clean states, or probabilities (then ``x0 Q̄_s`` is the prior on ``z_s``).
        Q_ts: (B, d, d) ``Q_{t|s}``; Qbar_s: (B, d0, d) ``Q̄_s``.
        Qbar_t: (B, d0, d) optional. Not needed: the normaliser ``x0 Q̄_t z_tᵀ`` is computed as the row sum
            of the numerator (equal to it because ``Q̄_t = Q̄_s Q_{t|s}``); if given its shape is checked.

    Returns:
        (B, M, d) probabilities; padding rows 0; impossible rows fall back as in the module docstring.
    """
    _check_bmd("posterior z_t", z_t)
    _check_bmd("posterior x0", x0)
    if Qbar_t is not None and Qbar_t.shape != Qbar_s.shape:
        raise ValueError(f"posterior: Qbar_t {tuple(Qbar_t.shape)} and Qbar_s {tuple(Qbar_s.shape)} differ in shape")
    left = _left(z_t, Q_ts)
    num = left * (x0.to(z_t.dtype) @ Qbar_s.to(z_t.dtype))
    post, s = _normalise(num)
    return _with_fallback(post, s, z_t, left)


def posterior_all_x0(z_t: Tensor, Q_ts: Tensor, Qbar_s: Tensor) -> Tensor:
    """``q(z_s | z_t, x0 = k)`` for every clean class k.

    Args: ``z_t`` (B, M, d), ``Q_ts`` (B, d, d), ``Qbar_s`` (B, d0, d).
    Returns: (B, M, d0, d): row ``[b, m, k]`` is ``Q_{t|s}[·, z_t] ⊙ Q̄_s[k, ·] / Q̄_t[k, z_t]``, a
    distribution over ``z_s``; it is all-zero where ``Q̄_t[k, z_t] = 0`` (class k cannot produce ``z_t``).
    """
    _check_bmd("posterior_all_x0 z_t", z_t)
    left = _left(z_t, Q_ts)  # (B, M, d)
    num = left.unsqueeze(2) * Qbar_s.to(z_t.dtype).unsqueeze(1)  # (B, M, d0, d)
    post, _ = _normalise(num)
    return post


def model_posterior(p_x0: Tensor, z_t: Tensor, Q_ts: Tensor, Qbar_s: Tensor) -> Tensor:
    """``p_θ(z_s | z_t) = Σ_k p̂(x0 = k | z_t) q(z_s | z_t, x0 = k)``, normalised.

    Args: ``p_x0`` (B, M, d0) predicted clean-class probabilities, ``z_t`` (B, M, d), ``Q_ts`` (B, d, d),
    ``Qbar_s`` (B, d0, d). Returns (B, M, d). Computed in O(M d²) as ``(z_t Q_{t|s}ᵀ) ⊙ (w Q̄_s)`` with
    ``w_k = p̂_k / Q̄_t[k, z_t]``, ``Q̄_t[k, z_t] = ((z_t Q_{t|s}ᵀ) Q̄_sᵀ)_k``; equal to the explicit sum
    over :func:`posterior_all_x0` wherever ``p̂`` puts no mass on classes inconsistent with ``z_t``.
    """
    _check_bmd("model_posterior p_x0", p_x0)
    _check_bmd("model_posterior z_t", z_t)
    Qbar_s = Qbar_s.to(z_t.dtype)
    left = _left(z_t, Q_ts)  # (B, M, d)
    norm = left @ Qbar_s.transpose(-1, -2)  # (B, M, d0): Q̄_t[k, z_t]
    p_x0 = p_x0.to(z_t.dtype)
    w = torch.where(norm > 0, p_x0 / norm.clamp_min(_tiny(norm)), torch.zeros_like(p_x0))
    mix = left * (w @ Qbar_s)
    post, s = _normalise(mix)
    return _with_fallback(post, s, z_t, left)


# ---------------------------------------------------------------------------------------------- the model
def _check_times(t_int: Tensor, s_int: Tensor, B: int) -> tuple[Tensor, Tensor]:
    t_int = torch.as_tensor(t_int).long().reshape(-1)
    s_int = torch.as_tensor(s_int, device=t_int.device).long().reshape(-1)
    if t_int.numel() == 1:
        t_int = t_int.expand(B)
    if s_int.numel() == 1:
        s_int = s_int.expand(B)
    if t_int.numel() != B or s_int.numel() != B:
        raise ValueError(f"t_int and s_int must have B={B} entries (or 1), got {t_int.numel()} and {s_int.numel()}")
    if bool((s_int < 0).any()) or bool((s_int >= t_int).any()):
        raise ValueError("reverse step: need 0 <= s < t for every graph; "
                         f"got t={t_int.tolist()[:8]}..., s={s_int.tolist()[:8]}...")
    return t_int, s_int


def predict_x0(model_fn: ModelFn, z_t: DenseGraph, t_int: Tensor, num_draws: int = 1) -> tuple[Tensor, Tensor]:
    """``p̂(x0 | z_t)``: softmax of the model's logits, averaged over ``num_draws`` calls.

    Returns ``(pX (B, n, dx), pE (B, n, n, de))`` in ``z_t``'s dtype, with ``pE`` symmetrised
    (``(pE + pEᵀ)/2``) and padding (and the diagonal of ``pE``) zeroed. With a stochastic ``model_fn``
    (SymPE draws a fresh group element per call) the average is over independent draws.
    """
    if int(num_draws) < 1:
        raise ValueError(f"num_draws must be >= 1, got {num_draws}")
    B, n, dx = z_t.X.shape
    de = z_t.E.shape[-1]
    pX = pE = None
    for _ in range(int(num_draws)):
        out = model_fn(z_t, t_int)
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


def _step_matrices(z_t: DenseGraph, t_int: Tensor, s_int: Tensor, schedule, transition):
    """(Q_{t|s} nodes, Q_{t|s} edges, Q̄_s nodes, Q̄_s edges), each (B, d, d), for the step t -> s."""
    t_int, s_int = _check_times(t_int, s_int, z_t.X.shape[0])
    a_t = schedule.alpha_bar(t_int).to(z_t.X.dtype)
    a_s = schedule.alpha_bar(s_int).to(z_t.X.dtype)
    Qts_x, Qts_e = transition.Q_ts(a_t, a_s)
    Qs_x, Qs_e = transition.Q_bar(a_s)
    return Qts_x, Qts_e, Qs_x, Qs_e


def posterior_probs(
    pX: Tensor, pE: Tensor, z_t: DenseGraph, t_int: Tensor, s_int: Tensor, schedule, transition
) -> tuple[Tensor, Tensor]:
    """Model posterior ``p_θ(z_s | z_t)`` per node (B, n, dx) and per pair (B, n, n, de) from ``p̂(x0|z_t)``."""
    B, n, _, de = z_t.E.shape
    Qts_x, Qts_e, Qs_x, Qs_e = _step_matrices(z_t, t_int, s_int, schedule, transition)
    probX = model_posterior(pX, z_t.X, Qts_x, Qs_x)
    probE = model_posterior(flatten_edges(pE), flatten_edges(z_t.E), Qts_e, Qs_e).view(B, n, n, de)
    return probX, probE


def true_posterior_probs(
    x: DenseGraph, z_t: DenseGraph, t_int: Tensor, s_int: Tensor, schedule, transition
) -> tuple[Tensor, Tensor]:
    """Exact ``q(z_s | z_t, x)`` per node (B, n, dx) and per pair (B, n, n, de)."""
    B, n, _, de = z_t.E.shape
    Qts_x, Qts_e, Qs_x, Qs_e = _step_matrices(z_t, t_int, s_int, schedule, transition)
    qX = posterior(z_t.X, x.X, Qts_x, Qs_x)
    qE = posterior(flatten_edges(z_t.E), flatten_edges(x.E), Qts_e, Qs_e).view(B, n, n, de)
    return qX, qE


def reverse_probs(
    model_fn: ModelFn, z_t: DenseGraph, t_int: Tensor, s_int: Tensor, schedule, transition, num_draws: int = 1
) -> tuple[Tensor, Tensor]:
    """``p_θ(z_s | z_t)`` per node and pair: :func:`predict_x0` at time t, then :func:`posterior_probs`."""
    B = z_t.batch_size
    t_int, s_int = _check_times(t_int, s_int, B)
    pX, pE = predict_x0(model_fn, z_t, t_int, num_draws=num_draws)
    return posterior_probs(pX, pE, z_t, t_int, s_int, schedule, transition)


def reverse_step(
    model_fn: ModelFn,
    z_t: DenseGraph,
    t_int: Tensor,
    s_int: Tensor,
    schedule,
    transition,
    generator: torch.Generator | None = None,
    num_draws: int = 1,
) -> DenseGraph:
    """One reverse step ``z_s ~ p_θ(z_s | z_t)`` for ``0 <= s < t`` (per graph; strided steps are exact).

    ``num_draws = K`` averages ``p̂(x0 | z_t)`` over K calls of a stochastic ``model_fn`` before forming the
    posterior (the K-draw model; see :mod:`~sympe.diffusion.likelihood`).
    """
    probX, probE = reverse_probs(model_fn, z_t, t_int, s_int, schedule, transition, num_draws=num_draws)
    return sample_categorical(probX, probE, z_t.node_mask, generator=generator, y=z_t.y)
