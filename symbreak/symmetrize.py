r"""Wrappers that turn any function of a dense graph batch into a permutation-equivariant one.

The wrapped function is ``f(X, E, node_mask, *args, **kwargs)`` with

* ``X``: (B, n, d) node features, ``E``: (B, n, n, d') edge features (or None), ``node_mask``: (B, n) bool;
* extra ``args``/``kwargs`` passed through unchanged (they must be invariant, e.g. a timestep);
* output: a tensor or a tuple/list of tensors. ``output_orders`` states, per output, how many node
  axes follow the batch axis: 0 = graph-level (B, ...), 1 = node-level (B, n, ...), 2 = pair-level
  (B, n, n, ...). A single int applies to every output.

Permutations follow :mod:`sympe.symbreak.permutation` (an order ``perm``: new node i is old node
``perm[b, i]``; ``g·X = X[b, perm]``, ``g⁻¹·Y = Y[b, perm⁻¹]``; ranks are ``perm⁻¹``), which also
provides ``permute_graph``, ``invert_permutation`` and ``all_permutations`` used here.

The wrappers (each returns a new callable with the signature of ``f``):

* :func:`canonicalized`: ``F(x) = γ(x)⁻¹ · f(γ(x) · x)`` where ``γ(x)`` is read off ranks
  ``canon_fn(x)``. Exactly equivariant when ``canon_fn`` is equivariant and has no ties.
* :func:`frame_average`: ``F(x) = (1/|𝓕(x)|) Σ_{g ∈ 𝓕(x)} g⁻¹ · f(g · x)``; exactly equivariant when
  the frame is (``𝓕(h·x) = h 𝓕(x)``), e.g. the full symmetric group.
* :func:`reynolds_average`: the Monte-Carlo version with ``S`` uniformly random permutations;
  equivariant in distribution, and its expectation is the full group average.
* :func:`randomized_canonicalization`: ``F(x) = g̃⁻¹ · f(g̃ · x)`` with ``g̃ = γ(x)`` composed with a
  uniform element of the tie group of the scores ``score_fn(x)`` (an inversion-kernel sample, drawn
  by :func:`sympe.symbreak.ranking.rank_with_ties`). Equivariant in distribution: ``F(h·x)`` has the
  law of ``h·F(x)``.

Padding. Random permutations and canonical orders put the real nodes of every graph first (in
the drawn order) and padded nodes after them in increasing index order, which is the ranking
convention of :mod:`sympe.symbreak.ranking`. ``f`` always sees the permuted ``node_mask``.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
from torch import Tensor

from sympe.symbreak.permutation import all_permutations, check_permutation, invert_permutation, permute_graph, permute_nodes
from sympe.symbreak.ranking import rank_with_ties

__all__ = [
    "unpermute_outputs",
    "random_node_permutations",
    "canonicalized",
    "frame_average",
    "reynolds_average",
    "randomized_canonicalization",
]


# ---------------------------------------------------------------------------------------- permutations
def _check_perm(perm: Tensor, B: int, n: int, name: str = "perm") -> None:
    if perm.dim() != 2 or perm.shape != (B, n):
        raise ValueError(f"{name} must be (B, n) = ({B}, {n}), got shape {tuple(perm.shape)}")
    if perm.dtype != torch.long:
        raise ValueError(f"{name} must be a long tensor, got {perm.dtype}")


def _as_orders(output_orders, k: int) -> list[int]:
    if isinstance(output_orders, int):
        orders = [output_orders] * k
    else:
        orders = list(output_orders)
    if len(orders) != k:
        raise ValueError(f"output_orders has {len(orders)} entries but f returned {k} outputs")
    for o in orders:
        if o not in (0, 1, 2):
            raise ValueError(f"output_orders entries must be 0 (graph), 1 (node) or 2 (pair), got {o}")
    return orders


def _unpermute_one(y: Tensor, inv: Tensor, order: int) -> Tensor:
    """``g⁻¹·y`` for one output of declared ``order``; a shape mismatch names ``output_orders``."""
    try:
        return permute_nodes(y, inv, order)
    except ValueError as err:
        raise ValueError(f"output of declared order {order}: {err}. Fix output_orders") from None


def unpermute_outputs(out, perm: Tensor, output_orders=1):
    """``g⁻¹·y`` for every output: ``y[b, inv[b, j]]`` (order 1), ``y[b, inv[b, j], inv[b, k]]`` (order 2).

    ``out`` is a tensor or tuple/list of tensors computed on ``g·x`` with ``g = perm``.
    """
    inv = invert_permutation(perm)
    if torch.is_tensor(out):
        (order,) = _as_orders(output_orders, 1)
        return _unpermute_one(out, inv, order)
    if isinstance(out, (tuple, list)):
        orders = _as_orders(output_orders, len(out))
        return type(out)(_unpermute_one(y, inv, o) for y, o in zip(out, orders))
    raise ValueError(f"f must return a tensor or a tuple/list of tensors, got {type(out).__name__}")


def random_node_permutations(node_mask: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
    """(B, S, n) long: S independent permutations per graph, uniform over the orders of its real nodes.

    Real nodes go to positions 0..n_b-1 in uniformly random order; padded nodes follow in increasing
    index order. ``generator`` must live on ``node_mask.device``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    B, n = node_mask.shape
    mask = node_mask.unsqueeze(1).expand(B, num_samples, n).reshape(B * num_samples, n)
    zeros = torch.zeros(mask.shape, device=node_mask.device)
    ranks = rank_with_ties(zeros, mask, tol=0.0, generator=generator)
    return invert_permutation(ranks).reshape(B, num_samples, n)


# ---------------------------------------------------------------------------------------- averaging
def _add(acc, out):
    if acc is None:
        return out
    if torch.is_tensor(out):
        return acc + out
    return type(out)(a + o for a, o in zip(acc, out))


def _scale(acc, c: float):
    if torch.is_tensor(acc):
        return acc * c
    return type(acc)(a * c for a in acc)


def _frame_tensor(frame, B: int, n: int, device) -> Tensor:
    """Normalise a frame to (B, K, n) long."""
    if isinstance(frame, (list, tuple)):
        if len(frame) == 0:
            raise ValueError("frame is empty; give at least one permutation")
        frame = torch.stack([torch.as_tensor(g) for g in frame], dim=-2 if torch.as_tensor(frame[0]).dim() == 2 else 0)
    if not torch.is_tensor(frame):
        raise ValueError(f"frame must be a tensor, a list of permutations or a callable, got {type(frame).__name__}")
    frame = frame.to(device)
    if frame.dim() == 2:
        frame = frame.unsqueeze(0).expand(B, -1, -1)
    if frame.dim() != 3 or frame.shape[0] != B or frame.shape[2] != n:
        raise ValueError(f"frame must be (K, n) or (B, K, n) = ({B}, K, {n}) permutations, got shape {tuple(frame.shape)}")
    if frame.shape[1] == 0:
        raise ValueError("frame is empty; give at least one permutation")
    if frame.dtype != torch.long:
        raise ValueError(f"frame must hold long permutations, got {frame.dtype}")
    return frame


def _average_over(f, X, E, node_mask, frame: Tensor, output_orders, args, kwargs, validate: bool,
                  frames_per_call: int = 1):
    """(1/K) Σ_k g_k⁻¹ · f(g_k · x) with frame (B, K, n).

    ``frames_per_call = c`` evaluates c frame elements per call of ``f`` by stacking the c permuted
    copies along the batch axis (a batch of B·c graphs, copy-major within each graph).
    """
    B, K, n = frame.shape
    if frames_per_call < 1:
        raise ValueError(f"frames_per_call must be >= 1, got {frames_per_call}")
    if validate:
        check_permutation(frame.reshape(B * K, n), name="frame")
    acc = None
    for start in range(0, K, frames_per_call):
        g = frame[:, start : start + frames_per_call]  # (B, c, n)
        c = g.shape[1]
        if c == 1:
            g1 = g[:, 0]
            Xp, Ep, mp = permute_graph(X, E, node_mask, g1)
            acc = _add(acc, unpermute_outputs(f(Xp, Ep, mp, *args, **kwargs), g1, output_orders))
            continue
        rep = lambda t: t.unsqueeze(1).expand((B, c) + tuple(t.shape[1:])).reshape((B * c,) + tuple(t.shape[1:]))  # noqa: E731
        gc = g.reshape(B * c, n)
        Xp, Ep, mp = permute_graph(rep(X), None if E is None else rep(E), rep(node_mask), gc)
        out = unpermute_outputs(f(Xp, Ep, mp, *args, **kwargs), gc, output_orders)
        fold = lambda y: y.reshape((B, c) + tuple(y.shape[1:])).sum(1)  # noqa: E731
        out = fold(out) if torch.is_tensor(out) else type(out)(fold(y) for y in out)
        acc = _add(acc, out)
    return _scale(acc, 1.0 / K)


def frame_average(
    f: Callable,
    frame_fn: "Callable | Tensor | Sequence[Tensor]",
    output_orders: "int | Sequence[int]" = 1,
    validate: bool = True,
    frames_per_call: int = 1,
) -> Callable:
    """Frame averaging: ``F(x) = (1/K) Σ_{k} g_k⁻¹ · f(g_k · x)``.

    Args:
        f: the function to symmetrise (module docstring).
        frame_fn: the frame: a callable ``(X, E, node_mask) -> (B, K, n)`` long permutations, or a fixed
            tensor (K, n) / (B, K, n), or a list of (n,) / (B, n) permutations. With the full
            symmetric group (:func:`all_permutations`) ``F`` is exactly equivariant; with an input-
            dependent frame it is equivariant iff ``frame_fn(h·x) = h·frame_fn(x)`` as sets.
        output_orders: node axes of each output (module docstring).
        validate: check that the frame holds permutations (one device sync per call).
        frames_per_call: evaluate this many frame elements per call of ``f``, stacked along the batch
            axis (B·c graphs per call; faster, more memory). Extra ``args``/``kwargs`` are passed
            unchanged, so with ``frames_per_call > 1`` they must not have a batch axis.

    Cost: ceil(K / frames_per_call) calls of ``f``.
    """

    @functools.wraps(f)
    def averaged(X: Tensor, E: Tensor | None, node_mask: Tensor, *args, **kwargs):
        B, n = node_mask.shape
        frame = frame_fn(X, E, node_mask) if callable(frame_fn) else frame_fn
        frame = _frame_tensor(frame, B, n, node_mask.device)
        return _average_over(f, X, E, node_mask, frame, output_orders, args, kwargs, validate, frames_per_call)

    return averaged


def reynolds_average(
    f: Callable,
    num_samples: int,
    generator: torch.Generator | None = None,
    output_orders: "int | Sequence[int]" = 1,
    frames_per_call: int = 1,
) -> Callable:
    """Monte-Carlo Reynolds operator: ``F(x) = (1/S) Σ_{s=1}^{S} g_s⁻¹ · f(g_s · x)``, ``g_s`` uniform.

    ``g_s`` are i.i.d. uniform orders of the real nodes (:func:`random_node_permutations`), drawn anew
    at every call with ``generator``. ``E[F(x)]`` is the exact group average and ``F`` is equivariant
    in distribution; the Monte-Carlo error decays as ``1/sqrt(S)``. ``frames_per_call`` as in
    :func:`frame_average`.
    """
    if num_samples < 1:
        raise ValueError(f"reynolds_average: num_samples must be >= 1, got {num_samples}")

    @functools.wraps(f)
    def averaged(X: Tensor, E: Tensor | None, node_mask: Tensor, *args, **kwargs):
        frame = random_node_permutations(node_mask, num_samples, generator)
        return _average_over(f, X, E, node_mask, frame, output_orders, args, kwargs, False, frames_per_call)

    return averaged


# ---------------------------------------------------------------------------------------- canonicalization
def _apply_in_order(f, X, E, node_mask, ranks: Tensor, output_orders, args, kwargs):
    perm = invert_permutation(ranks)
    Xp, Ep, mp = permute_graph(X, E, node_mask, perm)
    return unpermute_outputs(f(Xp, Ep, mp, *args, **kwargs), perm, output_orders)


def canonicalized(
    f: Callable,
    canon_fn: Callable,
    output_orders: "int | Sequence[int]" = 1,
    validate: bool = True,
) -> Callable:
    """Canonicalization: ``F(x) = γ(x)⁻¹ · f(γ(x) · x)``.

    ``canon_fn(X, E, node_mask) -> ranks`` (B, n) long: node ``j`` goes to position ``ranks[b, j]``
    (a full permutation of 0..n-1 per graph; e.g. :func:`sympe.symbreak.ranking.rank_with_ties` of
    an equivariant score). ``f`` runs on the canonically ordered graph and its outputs are mapped
    back. If ``canon_fn`` is equivariant (``ranks(h·x) = h·ranks(x)``, true for sorting an
    equivariant score without ties) then ``F`` is exactly equivariant; if ties are broken uniformly at
    random it is equivariant in distribution (see :func:`randomized_canonicalization`).

    ``validate`` checks that the ranks are permutations (one device sync per call).
    """

    @functools.wraps(f)
    def canonical(X: Tensor, E: Tensor | None, node_mask: Tensor, *args, **kwargs):
        B, n = node_mask.shape
        ranks = canon_fn(X, E, node_mask)
        _check_perm(ranks, B, n, "canon_fn output (ranks)")
        if validate:
            check_permutation(ranks, name="canon_fn output (ranks)")
        return _apply_in_order(f, X, E, node_mask, ranks, output_orders, args, kwargs)

    return canonical


def randomized_canonicalization(
    f: Callable,
    score_fn: Callable,
    tol: float = 1e-5,
    generator: torch.Generator | None = None,
    output_orders: "int | Sequence[int]" = 1,
    return_ranks: bool = False,
) -> Callable:
    """Inversion-kernel sampling then ``f``: ``F(x) = g̃⁻¹ · f(g̃ · x)``.

    ``score_fn(X, E, node_mask) -> scores`` (B, n) float should be permutation-equivariant (e.g. an
    IGN score). ``g̃`` sorts the real nodes by increasing score and orders every tie group (scores
    within ``tol``, chained; :func:`sympe.symbreak.ranking.tie_groups`) uniformly at random, i.e.
    ``g̃ = γ(x) ∘ u`` with ``u`` uniform on the permutations preserving the scores' tie groups, which
    contains ``Stab(x)``. Then ``F(h·x) =^d h·F(x)`` for every permutation ``h``.

    With ``return_ranks=True`` the callable returns ``(outputs, ranks)`` with ``ranks`` (B, n) the
    drawn positions of the nodes. A new ``g̃`` is drawn at every call with ``generator``.
    """

    @functools.wraps(f)
    def randomized(X: Tensor, E: Tensor | None, node_mask: Tensor, *args, **kwargs):
        scores = score_fn(X, E, node_mask)
        if scores.shape != node_mask.shape:
            raise ValueError(f"score_fn must return (B, n) = {tuple(node_mask.shape)} scores, got {tuple(scores.shape)}")
        ranks = rank_with_ties(scores, node_mask, tol=tol, generator=generator)
        out = _apply_in_order(f, X, E, node_mask, ranks, output_orders, args, kwargs)
        return (out, ranks) if return_ranks else out

    return randomized
