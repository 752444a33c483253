"""The enumerated support of a symmetry-breaking family at one size, its class marginals, and the process of a model
trained on it: what :mod:`sympe.datasets.floor.factorised` computes F(T) over.

The families (:mod:`sympe.datasets.sources.breaking`, ``permute_nodes=True``) are uniform over their labelled graphs
given the size: every perfect matching of 2m nodes ((2m-1)!! graphs), every star of n nodes (n), every labelled
Hamiltonian cycle of n nodes with k marked nodes ((n-1)!/2 · C(n, k)). The process is built as
:class:`~sympe.diffusion.runs.model.DiscreteDiffusion` builds it (the absorbing chain with ``β_T = 1``), with the
family's exact class marginals, which equal a train split's for a fixed size. Errors: ``ValueError`` naming the
argument (unknown family or transition, bad size, k or T, more than :data:`MAX_SUPPORT` graphs).
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from sympe.datasets.graph_utils import EDGE_CLASSES
from sympe.datasets.sources.breaking import check_family, check_marks, node_classes, num_nodes, size_range
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.schedule import make_schedule, schedule_needs_exact_limit
from sympe.diffusion.process.transition import make_transition

__all__ = ["MAX_SUPPORT", "TRANSITIONS", "check_transition", "check_steps", "family_sizes",
           "support_size", "family_support", "family_marginals", "family_process"]

#: Most labelled graphs :func:`family_support` enumerates (matching m <= 7, marked cycle n <= 9 for k = 1).
MAX_SUPPORT = 200_000
TRANSITIONS: tuple[str, ...] = ("absorbing", "marginal", "uniform")
_F64 = torch.float64


# ---------------------------------------------------------------------------------------------- arguments
def check_transition(transition) -> str:
    """The lower-case name if it is one of :data:`TRANSITIONS`, else ``ValueError``."""
    key = str(transition).lower() if isinstance(transition, str) else transition
    if key not in TRANSITIONS:
        raise ValueError(f"transition must be one of {list(TRANSITIONS)}, got {transition!r}")
    return key


def check_steps(T) -> int:
    """``T`` if it is an int >= 1 (noising steps after step 0), else ``ValueError``."""
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T (number of noising steps after step 0) must be an int >= 1, got {T!r}")
    return T


def family_sizes(family: str, size, k) -> tuple[list[int], int]:
    """``(sizes, k)``: the sizes of an int or an inclusive [min, max] range, and k checked (1 unless marked cycles)."""
    sizes = size_range(family, size)
    k = check_marks(sizes, k) if family == "marked_cycle" else 1
    return sizes, k


# ---------------------------------------------------------------------------------------------- the support
def support_size(family: str, size: int, k: int = 1) -> int:
    """Number of labelled graphs of one size: (2m-1)!! matchings, n stars, (n-1)!/2 · C(n, k) marked cycles."""
    check_family(family)
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"support_size: size must be one int (m for matchings, n otherwise), got {size!r}")
    (size,), k = family_sizes(family, size, k)
    if family == "matching":
        return math.prod(range(1, 2 * size, 2))
    if family == "star":
        return size
    return math.factorial(size - 1) // 2 * math.comb(size, k)


def _matchings(nodes: list[int]):
    if not nodes:
        yield []
        return
    a, rest = nodes[0], nodes[1:]
    for i, b in enumerate(rest):
        for tail in _matchings(rest[:i] + rest[i + 1:]):
            yield [(a, b)] + tail


def _one_hot_edges(edges: Tensor, N: int, dtype) -> Tensor:
    """(S, M, 2) long edge lists -> (S, N, N, 2) one-hot, class 1 on the edges, class 0 on the other pairs."""
    S = edges.shape[0]
    A = torch.zeros(S, N, N, dtype=dtype)
    s = torch.arange(S).unsqueeze(1).expand_as(edges[..., 0])
    A[s, edges[..., 0], edges[..., 1]] = 1
    A[s, edges[..., 1], edges[..., 0]] = 1
    off = 1 - torch.eye(N, dtype=dtype)
    return torch.stack([(1 - A) * off, A], dim=-1)


def family_support(family: str, size: int, k: int = 1, dtype: torch.dtype = _F64) -> tuple[Tensor, Tensor, Tensor]:
    """Every labelled graph of the family's support at one size, with its probability given the size.

    Args:
        family: ``"matching"`` (size = m, N = 2m nodes), ``"star"`` or ``"marked_cycle"`` (size = n nodes).
        size: one size (an int).
        k: marked cycles only, the number of marked nodes.
        dtype: of the one-hot tensors.

    Returns:
        ``(X (S, N, dx), E (S, N, N, de), probs (S,) float64)``: one-hot node classes (:func:`node_classes` of
        :mod:`~sympe.datasets.sources.breaking`) and edge classes (``["none", "edge"]``, zero diagonal), each graph
        once, ``probs = 1/S`` (the families are uniform given the size, ``permute_nodes=True``).

    Raises ``ValueError`` for an unknown family, a bad size or k, or more than :data:`MAX_SUPPORT` graphs.
    """
    check_family(family)
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"family_support: size must be one int (m for matchings, n otherwise), got {size!r}")
    S = support_size(family, size, k)
    if S > MAX_SUPPORT:
        raise ValueError(f"family_support: {family} of size {size} has {S} labelled graphs, more than the "
                         f"enumeration limit MAX_SUPPORT={MAX_SUPPORT}; use a smaller size")
    N = num_nodes(family, size)
    dx = len(node_classes(family))
    if family == "matching":
        edges = torch.tensor(list(_matchings(list(range(N)))), dtype=torch.long).view(S, size, 2)
        E = _one_hot_edges(edges, N, dtype)
        X = torch.ones(S, N, dx, dtype=dtype)
    elif family == "star":
        edges = torch.tensor([[(h, j) for j in range(N) if j != h] for h in range(N)], dtype=torch.long)
        E = _one_hot_edges(edges, N, dtype)
        X = torch.ones(S, N, dx, dtype=dtype)
    else:
        cycles = [(0, *p) for p in itertools.permutations(range(1, N)) if p[0] < p[-1]]
        order = torch.tensor(cycles, dtype=torch.long)  # (C, N): the cycle visits order[0], order[1], ...
        Ec = _one_hot_edges(torch.stack([order, order.roll(-1, dims=1)], dim=-1), N, dtype)  # (C, N, N, 2)
        marks = torch.zeros(math.comb(N, k), N, dtype=torch.long)
        for i, c in enumerate(itertools.combinations(range(N), k)):
            marks[i, list(c)] = 1
        Xm = torch.nn.functional.one_hot(marks, dx).to(dtype)  # (M, N, 2)
        C, M = Ec.shape[0], Xm.shape[0]
        E = Ec.unsqueeze(1).expand(C, M, N, N, 2).reshape(S, N, N, 2)
        X = Xm.unsqueeze(0).expand(C, M, N, dx).reshape(S, N, dx)
    return X, E, torch.full((S,), 1.0 / S, dtype=_F64)


def family_marginals(family: str, size, k: int = 1) -> tuple[Tensor, Tensor]:
    """The class marginals of the data distribution, float64: ``(node (dx,), edge (de,))``.

    Node: expected class counts over nodes; edge: expected class counts over unordered pairs (class 0 = no edge),
    pooled over the sizes of ``size`` (int or inclusive [min, max], uniform), as ``DatasetInfo.from_graphs``
    computes them on a train split (here the population values: exact fractions for a fixed size).
    """
    check_family(family)
    sizes, k = family_sizes(family, size, k)
    node = torch.zeros(len(node_classes(family)), dtype=_F64)
    edge = torch.zeros(len(EDGE_CLASSES), dtype=_F64)
    for s in sizes:
        N = num_nodes(family, s)
        n_edges = {"matching": s, "star": N - 1, "marked_cycle": N}[family]
        if family == "marked_cycle":
            node += torch.tensor([N - k, k], dtype=_F64)
        else:
            node[0] += N
        edge += torch.tensor([N * (N - 1) / 2 - n_edges, n_edges], dtype=_F64)
    return node / node.sum(), edge / edge.sum()


def family_process(family: str, size, T: int, transition: str, *, k: int = 1,
                   schedule: str = "cosine") -> DiscreteProcess:
    """The :class:`DiscreteProcess` the model (``sympe.diffusion.runs.model``) builds for this family.

    ``make_schedule(schedule, T, exact_limit=schedule_needs_exact_limit(transition))`` and
    ``make_transition(transition, dx, de, node_marginals, edge_marginals)`` with :func:`family_marginals`.
    Raises ``ValueError`` naming the argument for an unknown family / transition / schedule, a bad size or k,
    or ``T < 1``.
    """
    check_family(family)
    transition = check_transition(transition)
    T = check_steps(T)
    node_m, edge_m = family_marginals(family, size, k)
    sched = make_schedule(schedule, T, exact_limit=schedule_needs_exact_limit(transition))
    trans = make_transition(transition, node_m.numel(), edge_m.numel(), node_marginals=node_m.float(),
                            edge_marginals=edge_m.float())
    return DiscreteProcess(sched, trans)


# ---------------------------------------------------------------------------------------------- the posterior
