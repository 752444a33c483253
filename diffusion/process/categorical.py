"""Per-variable categorical math of the discrete diffusion: draws and exact Bayes posteriors.

Pure tensor functions, generic over categorical variables and over the transition matrices (they are
given, not built here: :class:`~sympe.diffusion.process.discrete_process.DiscreteProcess` builds them). Shapes: ``B``
graphs; the per-variable functions take ``(B, M, d)`` tensors where ``M`` indexes the variables of one
graph (``M = n`` for nodes, ``M = n·n`` for the flattened edge matrix). Matrices ``Q`` are
row-stochastic, ``(B, d_from, d_to)``.

Math
----
* Forward: ``q(z_t | x) = x Q̄_t`` (row one-hot ``x``), and ``q(z_t | z_s) = z_s Q_{t|s}``.
* Exact posterior (Bayes), for ``s < t``:

      q(z_s | z_t, x0) = q(z_t | z_s) q(z_s | x0) / q(z_t | x0)
                       = (z_t Q_{t|s}ᵀ) ⊙ (x0 Q̄_s) / (x0 Q̄_t z_tᵀ),

  where ``(z_t Q_{t|s}ᵀ)[a] = Q_{t|s}[a, z_t]`` and ``x0 Q̄_t z_tᵀ = Σ_a (x0 Q̄_s)[a] Q_{t|s}[a, z_t]``
  (Chapman–Kolmogorov); the normaliser is computed as that sum, which is exact even under rounding.
* The plain x0-parameterised reverse kernel (:func:`model_posterior`): with the denoiser's prediction
  ``p̂(x0 | z_t)`` (per variable),

      p_θ(z_s | z_t) = Σ_k p̂(x0 = k | z_t) q(z_s | z_t, x0 = k)
                     = (z_t Q_{t|s}ᵀ) ⊙ (w Q̄_s),     w_k = p̂_k / (Q̄_t[k, z_t]).

  Classes ``k`` with ``Q̄_t[k, z_t] = 0`` cannot have produced ``z_t``; they get weight 0 and the result is
  renormalised, i.e. ``p̂`` is conditioned on the classes consistent with ``z_t``.
* The *reweighted* kernel (:func:`reweighted_posterior`), what DiGress's ``compute_posterior_distribution``
  computes when it is handed ``p̂`` in place of the one-hot ``x0`` (its NLL, DiGress's ``compute_Lt``):

      p_θ^rw(z_s | z_t) = (z_t Q_{t|s}ᵀ) ⊙ (p̂ Q̄_s) / (p̂ Q̄_t z_tᵀ)
                        = Σ_k w_k q(z_s | z_t, x0 = k),     w_k = p̂_k Q̄_t[k, z_t] / Σ_k' p̂_k' Q̄_t[k', z_t].

  It is the plain kernel with ``p̂`` replaced by the posterior of ``x0`` given ``z_t`` under the prior
  ``p̂`` (``p̂`` is updated once more by the likelihood of ``z_t``). A different model from the plain one;
  DiGress samples with the plain kernel but scores with this one.

Guards (no NaN or inf can leave): every division is by a denominator clamped to the dtype's smallest
normal number and masked with ``where`` where it is 0. A real row whose posterior mass is 0 (inputs
that are impossible under the process, e.g. ``x0`` inconsistent with ``z_t``) falls back to
``normalise(z_t Q_{t|s}ᵀ)`` (the posterior under a flat prior on ``z_s``), then to uniform. Rows of
padding (all-zero ``z_t``) stay all-zero.

Edges
-----
``E`` is symmetric; one edge variable per *unordered* pair. :func:`sample_categorical` draws the strict
upper triangle ``i < j`` and mirrors it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sympe.diffusion.graph import DenseGraph

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


def reweighted_posterior(p_x0: Tensor, z_t: Tensor, Q_ts: Tensor, Qbar_s: Tensor) -> Tensor:
    """The reweighted kernel ``Σ_k w_k q(z_s | z_t, x0 = k)``, ``w_k ∝ p̂_k Q̄_t[k, z_t]`` (module docstring).

    Args: ``p_x0`` (B, M, d0) predicted clean-class probabilities, ``z_t`` (B, M, d), ``Q_ts`` (B, d, d),
    ``Qbar_s`` (B, d0, d). Returns (B, M, d): ``normalise((z_t Q_{t|s}ᵀ) ⊙ (p̂ Q̄_s))``, the posterior formula
    of :func:`posterior` with ``p̂`` in place of the one-hot ``x0`` (DiGress's L_t; Vignac et al. 2023,
    ``compute_posterior_distribution``). Zero-mass rows fall back as in the module docstring; padding
    rows stay zero.
    """
    _check_bmd("reweighted_posterior p_x0", p_x0)
    _check_bmd("reweighted_posterior z_t", z_t)
    left = _left(z_t, Q_ts)
    mix = left * (p_x0.to(z_t.dtype) @ Qbar_s.to(z_t.dtype))
    post, s = _normalise(mix)
    return _with_fallback(post, s, z_t, left)
