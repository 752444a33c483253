r"""Symmetry breakers: extra node (and edge) channels that let an equivariant network break symmetry.

Interface (``SymmetryBreaker``)::

    node_ch, edge_ch = breaker(X, E, node_mask, t=None, generator=None)
    # X (B, n, dx), E (B, n, n, de), node_mask (B, n) bool, t (B, 1) or (B,) or None
    # node_ch (B, n, node_dim) zero on padding; edge_ch (B, n, n, edge_dim) zero on padding and on the
    # diagonal, symmetric, or None when edge_dim == 0.

Every call makes a FRESH random draw (nothing is cached between calls).

Implementations:

* ``NoBreaking``: ``node_dim = edge_dim = 0``; returns an empty (B, n, 0) tensor and ``None``.
* ``NoiseInjection(k=16, edge_k=0)``: ``node_ch[b,i] ~ N(0, I_k)`` i.i.d.; ``edge_ch[b,i,j] = (Z_ij + Z_ji)/√2``
  with ``Z ~ N(0, I)`` i.i.d. (unit variance, symmetric). The "DiGress + noise" baseline: equivariant
  in distribution, breaks symmetry, but carries no information about the graph.
* ``SymPE`` (Lawrence et al., ICLR 2025): ranks ``r`` from an ``IGNCanonicalizer`` (a sample of the
  inversion kernel: γ(x) composed with a uniformly random stabiliser element), encoded with a learned
  table ``V`` (max_nodes, k): ``node_ch[b, i] = V[r_i]``. With ``edges=True`` (the full "sympe"
  variant) also ``edge_ch[b, i, j] = U[r_i] ⊙ U[r_j]`` for ``i ≠ j`` with a second learned table
  ``U`` (max_nodes, edge_k): a factorised, symmetric stand-in for a full (max_nodes, max_nodes,
  edge_k) table. With the sinusoidal initialisation ``sin(ω a) sin(ω b) = ½[cos ω(a-b) - cos ω(a+b)]``,
  so each pair channel sees both the rank difference and the rank sum. When the canonicalizer is
  straight-through, ``V[r_i]`` is computed as ``(Pᵀ V)_i`` with its permutation matrix ``P``, so the
  gradient reaches the scores.

  Initialisation of the tables (``init``): ``"sinusoidal"`` (default) ``V[r, 2m] = sin(r ω_m)``,
  ``V[r, 2m+1] = cos(r ω_m)``, ``ω_m = 10000^{-2m/k}``: rows are pairwise distinct for every k ≥ 1
  (π is irrational); ``"orthogonal"``: ``nn.init.orthogonal_`` scaled by √max_nodes (distinct rows
  almost surely; orthonormal rows when k ≥ max_nodes).

What learns: ``V`` (and ``U``); the canonicalizer only when built with ``trainable=True``.

* ``IndexEncoding(max_nodes, k=16)`` — **NOT equivariant, a control only**: node ``i`` gets row ``i`` of a
  learned table ``V`` (max_nodes, k), ``node_ch[b, i] = V[i]``: the position of the node in the stored
  order, the same at every call. A network given it can learn the order in which a dataset stores its
  nodes (QM9 files list heavy atoms first, hydrogens last), so its NLL can fall below the exchangeable
  floor. It exists so that the node-order leak test (:mod:`sympe.diffusion.likelihood.leak_test`) has a model
  that must fail it; never report its numbers as results.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sympe.symbreak.canonicalize import TIE_MODES, IGNCanonicalizer
from sympe.symbreak.masks import pair_mask
from sympe.symbreak.ranking import check_ranks, plackett_luce_log_prob, tie_groups

__all__ = ["SymmetryBreaker", "NoBreaking", "NoiseInjection", "SymPE", "IndexEncoding", "make_symmetry_breaker",
           "BREAKERS", "NON_EQUIVARIANT_BREAKERS",
           "RANK_BREAKERS", "tie_log_prob"]

BREAKERS = ("none", "noise", "sympe_nodes", "sympe", "index")
#: Breakers that are not equivariant (in distribution): controls for the leak test, never results.
NON_EQUIVARIANT_BREAKERS = ("index",)
#: Breakers whose draw is a rank vector g̃ (given ranks, tie groups and ``log p(g̃ | z_t)`` are available).
RANK_BREAKERS = ("sympe_nodes", "sympe")


def _check_graph(X: Tensor, E: Tensor, node_mask: Tensor) -> tuple[int, int]:
    if X.dim() != 3 or E.dim() != 4 or node_mask.dim() != 2:
        raise ValueError(
            f"expected X (B, n, dx), E (B, n, n, de), node_mask (B, n); got {tuple(X.shape)}, "
            f"{tuple(E.shape)}, {tuple(node_mask.shape)}"
        )
    B, n = node_mask.shape
    if X.shape[:2] != (B, n) or E.shape[:3] != (B, n, n):
        raise ValueError(
            f"inconsistent shapes: X {tuple(X.shape)}, E {tuple(E.shape)}, node_mask {tuple(node_mask.shape)}"
        )
    if node_mask.dtype != torch.bool:
        raise ValueError(f"node_mask must be bool, got {node_mask.dtype}")
    return B, n


class SymmetryBreaker(nn.Module):
    """Base class: ``forward(X, E, node_mask, t=None, generator=None) -> (node_ch, edge_ch | None)``.

    Attributes ``node_dim`` (k) and ``edge_dim`` (k', 0 when no edge channels).
    """

    node_dim: int = 0
    edge_dim: int = 0

    def reset_parameters(self) -> None:  # pragma: no cover - overridden where there are parameters
        pass

    def forward(self, X: Tensor, E: Tensor, node_mask: Tensor, t: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError


class NoBreaking(SymmetryBreaker):
    """No symmetry breaking: node channels (B, n, 0), edge channels ``None``."""

    def forward(self, X, E, node_mask, t=None, generator=None):
        B, n = _check_graph(X, E, node_mask)
        return X.new_zeros(B, n, 0), None


class NoiseInjection(SymmetryBreaker):
    """i.i.d. standard Gaussian node channels (B, n, k) and symmetric edge channels (B, n, n, edge_k)."""

    def __init__(self, k: int = 16, edge_k: int = 0):
        super().__init__()
        if k < 0 or edge_k < 0 or k + edge_k < 1:
            raise ValueError(f"NoiseInjection needs k >= 0, edge_k >= 0 and k + edge_k >= 1, got {k}, {edge_k}")
        self.node_dim, self.edge_dim = k, edge_k

    def forward(self, X, E, node_mask, t=None, generator=None):
        B, n = _check_graph(X, E, node_mask)
        dtype = X.dtype if X.is_floating_point() else torch.float32
        m1 = node_mask.unsqueeze(-1).to(dtype)
        node = torch.randn(B, n, self.node_dim, generator=generator, device=X.device, dtype=dtype) * m1
        edge = None
        if self.edge_dim > 0:
            Z = torch.randn(B, n, n, self.edge_dim, generator=generator, device=X.device, dtype=dtype)
            edge = (Z + Z.transpose(1, 2)) / math.sqrt(2.0)
            edge = edge * pair_mask(node_mask, diagonal=False).unsqueeze(-1).to(dtype)
        return node, edge

    def extra_repr(self) -> str:
        return f"k={self.node_dim}, edge_k={self.edge_dim}"


def _pad_ranks(ranks: Tensor, node_mask: Tensor) -> Tensor:
    """Given ranks with padding set to ``n_b..n-1`` in node order (the ranking convention), as long."""
    ranks = torch.as_tensor(ranks, device=node_mask.device).long()
    if ranks.shape != node_mask.shape:
        raise ValueError(f"ranks must have the shape of node_mask {tuple(node_mask.shape)}, got {tuple(ranks.shape)}")
    nb = node_mask.sum(1, keepdim=True)
    pad_rank = nb + torch.cumsum((~node_mask).long(), dim=1) - 1
    return torch.where(node_mask, ranks, pad_rank)


def tie_log_prob(groups: Tensor, ranks: Tensor, node_mask: Tensor) -> Tensor:
    """``log p(g̃)`` (B,) float64 under uniform ties: ``-Σ_i log |G_i|!`` when every tie group ``G_i`` (ids in
    score order, -1 on padding) holds its block of consecutive ranks, else ``-inf``."""
    B, n = groups.shape
    G = n + 1
    gid = torch.where(node_mask, groups, torch.full_like(groups, n))
    size = torch.zeros(B, G, dtype=torch.long, device=groups.device).scatter_add_(1, gid, torch.ones_like(gid))
    size[:, n] = 0
    start = torch.cumsum(size, 1) - size
    s = torch.gather(start, 1, gid)
    z = torch.gather(size, 1, gid)
    ok = (((ranks >= s) & (ranks < s + z)) | ~node_mask).all(1)
    logp = -torch.lgamma(size.double() + 1).sum(1)
    return torch.where(ok, logp, torch.full_like(logp, -math.inf))


def _sinusoidal_table(rows: int, k: int) -> Tensor:
    r = torch.arange(rows, dtype=torch.float64).unsqueeze(1)
    m = torch.arange(k)
    omega = torch.pow(10000.0, -2.0 * torch.div(m, 2, rounding_mode="floor").double() / max(k, 1))
    angle = r * omega.unsqueeze(0)
    table = torch.where((m % 2 == 0).unsqueeze(0), torch.sin(angle), torch.cos(angle))
    return table.float()


class SymPE(SymmetryBreaker):
    """Symmetry-breaking positional encodings from an IGN canonicalizer (module docstring).

    Args:
        max_nodes: rows of the encoding tables; graphs with more nodes raise ValueError.
        node_in, edge_in: channels of X and E (given to the canonicalizer).
        k: node encoding channels (``node_dim``).
        edges: also return pair encodings (``edge_dim = edge_k``).
        edge_k: pair encoding channels (default ``k``).
        tie_mode: canonicalizer mode (``"uniform_ties"``, ``"plackett_luce"``, ``"deterministic"``).
        init: ``"sinusoidal"`` or ``"orthogonal"`` table initialisation.
        **canonicalizer_kwargs: forwarded to :class:`IGNCanonicalizer` (hidden, n_layers, time_in,
            tol, temperature, trainable, straight_through, ...).
    """

    def __init__(self, max_nodes: int, node_in: int, edge_in: int, k: int = 16, edges: bool = False,
                 edge_k: int | None = None, tie_mode: str = "uniform_ties", init: str = "sinusoidal",
                 **canonicalizer_kwargs):
        super().__init__()
        if max_nodes < 1 or k < 1:
            raise ValueError(f"SymPE needs max_nodes >= 1 and k >= 1, got {max_nodes}, {k}")
        if init not in ("sinusoidal", "orthogonal"):
            raise ValueError(f"init must be 'sinusoidal' or 'orthogonal', got {init!r}")
        if tie_mode not in TIE_MODES:
            raise ValueError(f"tie_mode must be one of {TIE_MODES}, got {tie_mode!r}")
        edge_k = k if edge_k is None else edge_k
        if edges and edge_k < 1:
            raise ValueError(f"edge_k must be >= 1 when edges=True, got {edge_k}")
        self.max_nodes, self.init, self.edges = max_nodes, init, edges
        self.node_dim, self.edge_dim = k, (edge_k if edges else 0)
        self.canonicalizer = IGNCanonicalizer(node_in, edge_in, tie_mode=tie_mode, **canonicalizer_kwargs)
        self.V = nn.Parameter(torch.empty(max_nodes, k))
        self.U = nn.Parameter(torch.empty(max_nodes, edge_k)) if edges else None
        self.reset_parameters()

    def _init_table(self, table: Tensor) -> None:
        with torch.no_grad():
            if self.init == "sinusoidal":
                table.copy_(_sinusoidal_table(*table.shape).to(table))
            else:
                nn.init.orthogonal_(table)
                table.mul_(math.sqrt(table.shape[0]))

    def reset_parameters(self) -> None:
        self._init_table(self.V)
        if self.U is not None:
            self._init_table(self.U)
        self.canonicalizer.reset_parameters()

    def tie_groups(self, X, E, node_mask, t=None) -> Tensor:
        """(B, n) long: the canonicalizer's tie group of every real node (ids 0.. in increasing score order, -1 on
        padding; :func:`~sympe.symbreak.ranking.tie_groups` with the canonicalizer's ``tol``). Under
        ``uniform_ties`` the ranks are uniform inside each group's block; these are the groups a proposal over the
        ranks (:mod:`sympe.symbreak.proposal`) must respect."""
        _check_graph(X, E, node_mask)
        with torch.no_grad():
            scores = self.canonicalizer.scores(X, E, node_mask, t)
        return tie_groups(scores, node_mask, self.canonicalizer.tol)

    def rank_log_prob(self, X, E, node_mask, t, ranks: Tensor) -> Tensor:
        """``log p(g̃ | z_t)`` (B,) float64 of given ranks under this breaker's draw.

        ``uniform_ties``: ``-Σ_i log |G_i|!`` when every tie group gets its block of ranks, ``-inf`` otherwise.
        ``plackett_luce``: the Plackett–Luce log-probability (:func:`~sympe.symbreak.ranking.plackett_luce_log_prob`).
        ``deterministic``: 0 for the order it would return, ``-inf`` otherwise. Raises ``ValueError`` for ranks that
        are not a permutation of ``0..n_b-1`` per graph."""
        _check_graph(X, E, node_mask)
        check_ranks(ranks, node_mask)
        with torch.no_grad():
            scores = self.canonicalizer.scores(X, E, node_mask, t)
            mode = self.canonicalizer.tie_mode
            if mode == "plackett_luce":
                return plackett_luce_log_prob(scores, ranks, node_mask, self.canonicalizer.temperature).double()
            if mode == "deterministic":
                own = self.canonicalizer.sample(X, E, node_mask, t, mode="deterministic")
                same = ((own == ranks) | ~node_mask).all(1)
                return torch.where(same, 0.0, -math.inf).double()
            groups = tie_groups(scores, node_mask, self.canonicalizer.tol)
            return tie_log_prob(groups, ranks, node_mask)

    def sample_ranks(self, X, E, node_mask, t=None, generator: torch.Generator | None = None) -> Tensor:
        """(B, n) ranks drawn as :meth:`forward` draws them (a fresh draw per call)."""
        _check_graph(X, E, node_mask)
        return self.canonicalizer.sample(X, E, node_mask, t, generator)

    def forward(self, X, E, node_mask, t=None, generator=None, ranks: Tensor | None = None):
        """Node (and pair) encodings of ranks drawn by the canonicalizer, or of the given ``ranks`` (B, n) long.

        Given ranks (a proposal's, or teacher-forced ranks in training: :mod:`sympe.symbreak.proposal`) replace
        the draw; nothing else changes. Raises ``ValueError`` for ranks that are not a permutation of the real
        nodes' ``0..n_b-1`` in every graph (padding may hold anything)."""
        B, n = _check_graph(X, E, node_mask)
        if n > self.max_nodes:
            raise ValueError(
                f"SymPE was built with max_nodes={self.max_nodes} but got graphs padded to n={n} nodes; "
                "build it with a larger max_nodes (the encoding table has one row per rank)"
            )
        if ranks is not None:
            check_ranks(_pad_ranks(ranks, node_mask), node_mask)
            if self.canonicalizer.straight_through:
                raise ValueError("SymPE: given ranks cannot be combined with a straight-through canonicalizer "
                                 "(the relaxation needs the scores' own order)")
            draw = None
            ranks = _pad_ranks(ranks, node_mask)
        else:
            draw = self.canonicalizer.sample_full(X, E, node_mask, t, generator)
            ranks = draw.ranks
        m1 = node_mask.unsqueeze(-1)
        if draw is not None and draw.perm is not None:  # straight-through: (Pᵀ V)_i = Σ_r P[r, i] V[r]
            PT = draw.perm.transpose(1, 2).to(self.V.dtype)
            node = PT @ self.V[:n]
            pair_base = PT @ self.U[:n] if self.U is not None else None
        else:
            node = self.V[ranks]
            pair_base = self.U[ranks] if self.U is not None else None
        node = node * m1.to(node.dtype)
        edge = None
        if pair_base is not None:
            edge = pair_base.unsqueeze(2) * pair_base.unsqueeze(1)
            edge = edge * pair_mask(node_mask, diagonal=False).unsqueeze(-1).to(edge.dtype)
        return node, edge

    def extra_repr(self) -> str:
        return f"max_nodes={self.max_nodes}, k={self.node_dim}, edge_k={self.edge_dim}, init={self.init!r}"


class IndexEncoding(SymmetryBreaker):
    """NOT equivariant (a leak-test control, module docstring): ``node_ch[b, i] = V[i]``, ``V`` (max_nodes, k) learned.

    Initialised like SymPE's table (sinusoidal rows, pairwise distinct). Node channels (B, n, k), zero on
    padding; no edge channels. Raises ``ValueError`` for graphs padded beyond ``max_nodes``.
    """

    equivariant = False

    def __init__(self, max_nodes: int, k: int = 16):
        super().__init__()
        if max_nodes < 1 or k < 1:
            raise ValueError(f"IndexEncoding needs max_nodes >= 1 and k >= 1, got {max_nodes}, {k}")
        self.max_nodes, self.node_dim = max_nodes, k
        self.V = nn.Parameter(torch.empty(max_nodes, k))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.V.copy_(_sinusoidal_table(*self.V.shape).to(self.V))

    def forward(self, X, E, node_mask, t=None, generator=None):
        B, n = _check_graph(X, E, node_mask)
        if n > self.max_nodes:
            raise ValueError(f"IndexEncoding was built with max_nodes={self.max_nodes} but got graphs padded to n={n}")
        node = self.V[:n].unsqueeze(0).expand(B, n, self.node_dim)
        return node * node_mask.unsqueeze(-1).to(node.dtype), None

    def extra_repr(self) -> str:
        return f"max_nodes={self.max_nodes}, k={self.node_dim} (NOT equivariant: a leak-test control)"


def make_symmetry_breaker(name: str, max_nodes: int, node_in: int, edge_in: int, **kw) -> SymmetryBreaker:
    """Build a breaker by name.

    * ``"none"`` -> :class:`NoBreaking` (no kwargs),
    * ``"noise"`` -> :class:`NoiseInjection` (``k`` = 16, ``edge_k`` = 0 by default),
    * ``"sympe_nodes"`` -> :class:`SymPE` with ``edges=False``,
    * ``"sympe"`` -> :class:`SymPE` with ``edges=True``,
    * ``"index"`` -> :class:`IndexEncoding` (``k`` = 16): NOT equivariant, the leak-test control,

    (SymPE defaults: ``k`` = 16, ``edge_k`` = ``k``, ``tie_mode`` = "uniform_ties", canonicalizer
    hidden = 32, n_layers = 3, frozen),

    remaining ``kw`` go to the constructor (for SymPE: ``k``, ``edge_k``, ``tie_mode``, ``init`` and the
    canonicalizer's arguments).
    """
    if name == "none":
        if kw:
            raise ValueError(f"symmetry breaker 'none' takes no options, got {sorted(kw)}")
        return NoBreaking()
    if name == "noise":
        return NoiseInjection(**kw)
    if name in ("sympe_nodes", "sympe"):
        if "edges" in kw:
            raise ValueError(f"'edges' is implied by the name {name!r}; do not pass it")
        return SymPE(max_nodes, node_in, edge_in, edges=(name == "sympe"), **kw)
    if name == "index":
        return IndexEncoding(max_nodes, **kw)
    raise ValueError(f"unknown symmetry breaker {name!r}; choose one of {BREAKERS}")
