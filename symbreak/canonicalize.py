r"""IGN canonicalizer: an invariant-graph-network score per node, and the orderings drawn from it.

Input tensor (B, n, n, c) built from a padded batch, with ``c = node_in + edge_in + time_in + extra_in``:

* ``T[b, i, i, :node_in] = X[b, i]``  (node channels on the diagonal, zero off it),
* ``T[b, i, j, node_in:node_in+edge_in] = E[b, i, j]`` for ``i ≠ j`` (edge channels off the diagonal;
  the diagonal of ``E`` is ignored),
* the last ``time_in + extra_in`` channels hold ``t`` (B, time_in) and ``extra`` (B, extra_in)
  broadcast to every real pair (i, j), diagonal included,
* zero on padded rows and columns.

Score network (``L = n_layers`` ≥ 1):  ``H_0 = T``,
``H_{l} = N(ReLU(IGN2to2_l(H_{l-1})))``, ``s = IGN2to1(H_L)[..., 0]`` → scores (B, n), zero on padding,
where ``N`` is ``ign.pair_standardize`` with ``eps = 1e-4`` (per-graph standardisation on/off the
diagonal; identity when ``normalize=False``). Without it the spread of the scores over the nodes of a
30-node graph shrinks to ~4e-4 (vs ~0.2 with it) under the normalised sums, and distinct classes merge
into ties. ``N`` comes after the ReLU: graph-level channels (``t``, ``extra``) add per-graph constants
to the pre-activations, which standardisation alone would remove; through the ReLU they change the
scores. Every step is permutation-equivariant, so ``s(σ·x) = σ·s(x)``; in particular
automorphic nodes (``σ·x = x``, ``σ(i) = j``) get ``s_i = s_j`` exactly in exact arithmetic. 2-IGNs are
as discriminative as 1-WL at best, so 1-WL-equivalent nodes tie too.

Precision. Nodes of different classes can have scores only ~1e-6 apart, while float32 rounding
moves the scores of automorphic nodes by up to ~1e-5; ties would then be "broken" by rounding noise,
i.e. by the node labels. The canonicalizer therefore computes in ``compute_dtype`` (float64 by default:
rounding ~1e-14) and keeps that dtype whatever ``.float()``/``.half()``/``.to(dtype)`` is applied to an
enclosing model (device moves apply as usual). The default tie tolerance is ``1e-8`` in float64 and
``1e-4`` otherwise (absolute, on scores of order 0.1–1); scores of different classes closer than
``tol`` are merged into one tie group, which costs discrimination but never equivariance.

Canonicalization γ(x) = the permutation sorting nodes by increasing score. ``sample`` returns ranks
(B, n) (``ranks[b, i]`` = position of node ``i``; padded nodes ``n_b..n-1``) in one of three modes:

* ``"uniform_ties"`` (default): explicit tie groups (``ranking.tie_groups`` with ``tol``) and a
  uniformly random order inside each group: a sample of γ(x) composed with a uniformly random
  element of the stabiliser of the scores. Equivariant in distribution.
* ``"plackett_luce"``: Plackett–Luce with utilities ``-s/τ`` (Gumbel-perturbed scores); also returns
  the log-probability of the drawn order. Equivariant in distribution; ``τ → 0`` recovers the
  sorted order with uniform ties.
* ``"deterministic"``: the same tie groups, each ordered by node index. NOT equivariant (the order of
  automorphic nodes depends on their labels); for ablations only.

What is learned. By default (``trainable=False``) the IGN weights stay at their random
initialisation, ``requires_grad`` is off and scores are computed without autograd: the canonicalizer
is a fixed, deterministic invariant graph hash (saved in the state dict so that it is reproducible),
and only the consumer's encoding table learns. With ``trainable=True`` gradients can reach the IGN
only through a relaxation: ``straight_through=True`` returns, next to the hard ranks, a permutation
matrix ``P`` (B, n, n) with ``P[b, r, i] = 1`` iff node ``i`` has rank ``r`` in the forward pass and
the gradient of the NeuralSort relaxation (Grover et al., ICLR 2019) in the backward pass:

.. math::  \hat P[r, :] = \mathrm{softmax}\big(((n_b - 1 - 2r)\,w - A_w \mathbf{1}) / τ_{st}\big),
           \quad w = -s,\; (A_w)_{ij} = |w_i - w_j|,

restricted to real nodes (rows ``r < n_b``; ``r`` is 0-based, so row ``r`` relaxes "the ``r``-th
smallest score"). ``P = P_hard + \hat P - \mathrm{stopgrad}(\hat P)``. In ``plackett_luce`` mode with
``trainable=True`` the returned log-probability is differentiable in the scores (for score-function
estimators); nothing in this module trains it.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from sympe.symbreak.ign import IGN2to1, IGN2to2, pair_standardize
from sympe.symbreak.masks import pair_mask
from sympe.symbreak.permutation import order_to_ranks
from sympe.symbreak.ranking import (
    plackett_luce_log_prob,
    rank_with_ties,
    sample_plackett_luce,
    tie_groups,
)

__all__ = ["IGNCanonicalizer", "CanonicalDraw", "TIE_MODES", "neural_sort", "ranks_to_permutation_matrix"]

TIE_MODES = ("uniform_ties", "plackett_luce", "deterministic")


class CanonicalDraw(NamedTuple):
    """One draw of the canonicalizer.

    ranks (B, n) long; scores (B, n); log_prob (B,) under Plackett–Luce (``None`` in other modes);
    perm (B, n, n) straight-through permutation matrix ``P[b, r, i]`` (``None`` unless
    ``straight_through``).
    """

    ranks: Tensor
    scores: Tensor
    log_prob: Tensor | None
    perm: Tensor | None


def ranks_to_permutation_matrix(ranks: Tensor, node_mask: Tensor, dtype=torch.float32) -> Tensor:
    """(B, n, n) ``P[b, r, i] = 1`` iff real node ``i`` has rank ``r`` (rows/columns of padding are 0)."""
    n = ranks.shape[1]
    onehot = nn.functional.one_hot(ranks, n).to(dtype) * node_mask.unsqueeze(-1).to(dtype)  # (B, i, r)
    return onehot.transpose(1, 2)


def neural_sort(scores: Tensor, node_mask: Tensor, temperature: float = 1.0) -> Tensor:
    r"""NeuralSort relaxation of the ascending sort, (B, n) -> (B, n, n) row-stochastic on real rows.

    ``P̂[b, r, :]`` = softmax over real nodes of ``((n_b - 1 - 2r) w - A_w 1) / τ``, ``w = -s``; rows
    ``r >= n_b`` and padded columns are zero. Its row-wise argmax is the node of rank ``r``.
    """
    if not temperature > 0:
        raise ValueError(f"straight-through temperature must be > 0, got {temperature}")
    w = -scores
    m = node_mask.to(w.dtype)
    nb = node_mask.sum(dim=1, keepdim=True).to(w.dtype)  # (B, 1)
    absdiff = (w.unsqueeze(2) - w.unsqueeze(1)).abs() * (m.unsqueeze(2) * m.unsqueeze(1))
    row_sum = absdiff.sum(dim=2)  # (B, n): Σ_j |w_i - w_j| over real j
    n = scores.shape[1]
    r = torch.arange(n, device=scores.device, dtype=w.dtype)
    coef = nb - 1 - 2 * r  # (B, n) indexed by rank r
    logits = (coef.unsqueeze(2) * w.unsqueeze(1) - row_sum.unsqueeze(1)) / temperature  # (B, r, i)
    logits = logits.masked_fill(~node_mask.unsqueeze(1), torch.finfo(w.dtype).min / 4)
    P = torch.softmax(logits, dim=2)
    real_rows = r.unsqueeze(0) < nb  # (B, n)
    return P * real_rows.unsqueeze(2).to(w.dtype) * m.unsqueeze(1)


class IGNCanonicalizer(nn.Module):
    """Scores nodes with an IGN and draws a canonical order (module docstring for the math).

    Args:
        node_in, edge_in: channels of X (B, n, node_in) and E (B, n, n, edge_in).
        hidden: channels of the 2→2 layers.
        n_layers: number of 2→2 layers (≥ 1; default 3: on random 30-node trees and sparse graphs,
            3 normalised layers of width 32 separate nearly every pair of 1-WL classes, 2 layers ~85%).
        time_in: channels of ``t`` (0 to ignore time). ``t=None`` is read as zeros.
        extra_in: channels of the optional graph-level ``extra`` (B, extra_in).
        tie_mode: default mode of ``sample``, one of ``TIE_MODES``.
        tol: absolute tie tolerance on scores (``uniform_ties``); None = 1e-8 in float64, 1e-4 otherwise.
        temperature: Plackett–Luce temperature τ.
        trainable: let the IGN weights learn (default False: fixed random hash).
        straight_through: return a straight-through permutation matrix (needs ``trainable``).
        st_temperature: NeuralSort temperature of the straight-through relaxation.
        normalize: standardise the hidden pair features after every 2→2 layer (recommended).
        compute_dtype: dtype of the parameters and of the score computation (kept under ``.float()``).
    """

    def __init__(
        self,
        node_in: int,
        edge_in: int,
        hidden: int = 32,
        n_layers: int = 3,
        time_in: int = 1,
        extra_in: int = 0,
        tie_mode: str = "uniform_ties",
        tol: float | None = None,
        temperature: float = 1.0,
        trainable: bool = False,
        straight_through: bool = False,
        st_temperature: float = 1.0,
        normalize: bool = True,
        compute_dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if min(node_in, edge_in, time_in, extra_in) < 0 or node_in + edge_in + time_in + extra_in < 1:
            raise ValueError(
                "IGNCanonicalizer: node_in, edge_in, time_in, extra_in must be >= 0 and not all zero, got "
                f"{node_in}, {edge_in}, {time_in}, {extra_in}"
            )
        if n_layers < 1 or hidden < 1:
            raise ValueError(f"IGNCanonicalizer: n_layers and hidden must be >= 1, got {n_layers}, {hidden}")
        if tie_mode not in TIE_MODES:
            raise ValueError(f"tie_mode must be one of {TIE_MODES}, got {tie_mode!r}")
        if not compute_dtype.is_floating_point:
            raise ValueError(f"compute_dtype must be a floating dtype, got {compute_dtype}")
        if tol is None:
            tol = 1e-8 if compute_dtype == torch.float64 else 1e-4
        if not tol >= 0:
            raise ValueError(f"tol must be >= 0, got {tol}")
        if not temperature > 0 or not st_temperature > 0:
            raise ValueError(f"temperatures must be > 0, got {temperature}, {st_temperature}")
        if straight_through and not trainable:
            raise ValueError(
                "straight_through=True only makes sense with trainable=True (a frozen canonicalizer "
                "receives no gradient); set trainable=True or straight_through=False"
            )
        self.node_in, self.edge_in, self.time_in, self.extra_in = node_in, edge_in, time_in, extra_in
        self.in_channels = node_in + edge_in + time_in + extra_in
        self.hidden, self.n_layers = hidden, n_layers
        self.tie_mode, self.tol, self.temperature = tie_mode, tol, temperature
        self.trainable, self.straight_through, self.st_temperature = trainable, straight_through, st_temperature
        self.normalize, self.compute_dtype = normalize, compute_dtype
        dims = [self.in_channels] + [hidden] * n_layers
        self.layers = nn.ModuleList(IGN2to2(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.readout = IGN2to1(hidden, 1)
        self.reset_parameters()

    def _apply(self, fn, recurse=True):
        """Apply ``fn`` as usual (device moves), then restore ``compute_dtype`` on the parameters."""
        super()._apply(fn, recurse)
        for p in self.parameters():
            if p.dtype != self.compute_dtype:
                p.data = p.data.to(self.compute_dtype)
                if p.grad is not None:
                    p.grad = p.grad.to(self.compute_dtype)
        return self

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()
        self.readout.reset_parameters()
        for p in self.parameters():
            p.data = p.data.to(self.compute_dtype)
            p.requires_grad_(self.trainable)

    # ------------------------------------------------------------------ input and scores
    def build_input(self, X: Tensor, E: Tensor, node_mask: Tensor, t: Tensor | None = None,
                    extra: Tensor | None = None) -> Tensor:
        """(B, n, n, in_channels) IGN input (module docstring), in the parameters' dtype."""
        if X.dim() != 3 or E.dim() != 4 or node_mask.dim() != 2:
            raise ValueError(
                f"expected X (B, n, dx), E (B, n, n, de), node_mask (B, n); got {tuple(X.shape)}, "
                f"{tuple(E.shape)}, {tuple(node_mask.shape)}"
            )
        B, n, dx = X.shape
        if E.shape[:3] != (B, n, n) or node_mask.shape != (B, n):
            raise ValueError(
                f"inconsistent shapes: X {tuple(X.shape)}, E {tuple(E.shape)}, node_mask {tuple(node_mask.shape)}"
            )
        if dx != self.node_in or E.shape[-1] != self.edge_in:
            raise ValueError(
                f"IGNCanonicalizer built for node_in={self.node_in}, edge_in={self.edge_in}; "
                f"got X with {dx} and E with {E.shape[-1]} channels"
            )
        if node_mask.dtype != torch.bool:
            raise ValueError(f"node_mask must be bool, got {node_mask.dtype}")
        dtype = self.compute_dtype
        eye = torch.eye(n, dtype=torch.bool, device=X.device)
        parts = [
            torch.diag_embed(X.to(dtype).transpose(1, 2), dim1=1, dim2=2),
            E.to(dtype).masked_fill(eye.view(1, n, n, 1), 0.0),
        ]
        graph = []
        if self.time_in > 0:
            if t is None:
                t = torch.zeros(B, self.time_in, dtype=dtype, device=X.device)
            t = t.to(dtype).reshape(B, -1)
            if t.shape[1] != self.time_in:
                raise ValueError(f"t must be (B, {self.time_in}) (or (B,) when time_in=1), got {tuple(t.shape)}")
            graph.append(t)
        if self.extra_in > 0:
            if extra is None or extra.shape != (B, self.extra_in):
                got = None if extra is None else tuple(extra.shape)
                raise ValueError(f"extra must be (B, {self.extra_in}) graph channels, got {got}")
            graph.append(extra.to(dtype))
        elif extra is not None:
            raise ValueError("extra channels given but the canonicalizer was built with extra_in=0")
        if graph:
            g = torch.cat(graph, dim=1)
            parts.append(g.view(B, 1, 1, -1).expand(B, n, n, g.shape[1]))
        T = torch.cat(parts, dim=-1)
        return T * pair_mask(node_mask).unsqueeze(-1).to(dtype)

    def scores(self, X: Tensor, E: Tensor, node_mask: Tensor, t: Tensor | None = None,
               extra: Tensor | None = None) -> Tensor:
        """(B, n) IGN node scores in ``compute_dtype``, equivariant: ``scores(σ·x) = σ·scores(x)``; 0 on padding."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.trainable):
            H = self.build_input(X, E, node_mask, t, extra)
            for layer in self.layers:
                H = torch.relu(layer(H, node_mask))
                if self.normalize:
                    H = pair_standardize(H, node_mask, eps=1e-4)
            return self.readout(H, node_mask)[..., 0]

    # ------------------------------------------------------------------ sampling
    def sample_full(self, X: Tensor, E: Tensor, node_mask: Tensor, t: Tensor | None = None,
                    generator: torch.Generator | None = None, mode: str | None = None,
                    extra: Tensor | None = None) -> CanonicalDraw:
        """One draw: ranks, scores, PL log-prob (``plackett_luce`` only), straight-through matrix."""
        mode = self.tie_mode if mode is None else mode
        if mode not in TIE_MODES:
            raise ValueError(f"mode must be one of {TIE_MODES}, got {mode!r}")
        s = self.scores(X, E, node_mask, t, extra)
        log_prob = None
        if mode == "uniform_ties":
            ranks = rank_with_ties(s.detach(), node_mask, self.tol, generator)
        elif mode == "plackett_luce":
            ranks = sample_plackett_luce(s.detach(), node_mask, self.temperature, generator)
            log_prob = plackett_luce_log_prob(s, ranks, node_mask, self.temperature, validate=False)
        else:  # deterministic: tie groups as in uniform_ties, broken by node index (NOT equivariant)
            gid = tie_groups(s.detach(), node_mask, self.tol)
            idx = torch.arange(gid.shape[1], device=gid.device).expand_as(gid)
            primary = torch.where(node_mask, gid, gid.shape[1] + idx)
            ranks = order_to_ranks(torch.argsort(primary, dim=1, stable=True))
        perm = None
        if self.straight_through:
            hard = ranks_to_permutation_matrix(ranks, node_mask, s.dtype)
            soft = neural_sort(s, node_mask, self.st_temperature)
            perm = hard + soft - soft.detach()
        return CanonicalDraw(ranks, s, log_prob, perm)

    def sample(self, X: Tensor, E: Tensor, node_mask: Tensor, t: Tensor | None = None,
               generator: torch.Generator | None = None, mode: str | None = None,
               extra: Tensor | None = None) -> Tensor:
        """(B, n) long ranks drawn in ``mode`` (default ``self.tie_mode``); a fresh draw per call."""
        return self.sample_full(X, E, node_mask, t, generator, mode, extra).ranks

    def forward(self, X: Tensor, E: Tensor, node_mask: Tensor, t: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Same as :meth:`sample`."""
        return self.sample(X, E, node_mask, t, generator)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, hidden={self.hidden}, n_layers={self.n_layers}, "
                f"tie_mode={self.tie_mode!r}, trainable={self.trainable}, straight_through={self.straight_through}")
