r"""Proposals over the symmetry breaker's ranks g̃ that follow a target graph (the canonical proposal).

A rank-based breaker (SymPE, ``uniform_ties``) draws its ranks g̃ from ``p(g̃ | z_t)``: the tie groups
``G_1, G_2, ...`` of the canonicalizer's scores on ``z_t`` occupy consecutive blocks of ranks in score order,
and inside each block the order is uniform, so ``p(g̃ | z_t) = 1 / Π_i |G_i|!`` on the *tie-consistent* rank
vectors and 0 elsewhere. A mixture bound or objective that draws g̃ from that prior needs about
``Π |G_i|! / |Aut|`` draws before one explains a sharp prediction. This module draws g̃ from a distribution
``r(g̃ | x, z_t, z_s)`` that knows the target instead, and evaluates its density exactly, so that the
importance weights ``p(g̃ | z_t) p(target | z_t, g̃) / r(g̃)`` of :mod:`sympe.diffusion.likelihood.mixture_bound`
and :mod:`sympe.diffusion.objectives.mixture` stay unbiased for every K.

The canonical proposal (absorbing transition; ``absorbing`` node class ``a``, edge class 0)
---------------------------------------------------------------------------------------
* **Residual.** ``R = x`` minus what ``z_t`` already shows: ``R^v = x^v`` where ``z_t^v`` is the absorbing class,
  the absorbing class where ``z_t`` shows a class (then ``x^v = z_t^v``). For other transitions ``z_t`` is not a
  part of ``x`` and ``R = x``.
* **Canonical ranks.** Colour every node by its tie group and its residual class, every pair by its residual
  class, and take a BLISS canonical labelling ``lab`` (:mod:`~sympe.symbreak.orbits.canonical_labelling`). Inside
  each tie group, ranks follow ``lab``. Drawing ``lab`` uniformly among the ``|Aut(R, G)|`` labellings that give
  the canonical form (the probabilistic inverse of the canonical labelling) makes the draw equivariant, and the
  rank vectors reached are ``|Aut(R, G)|`` distinct ones, each with probability ``1 / |Aut(R, G)|``.
* **What a rank vector means.** The canonical form ``C`` of ``(R, G)`` placed by any tie-consistent ``g̃`` (node
  ``i`` of group ``G`` takes the label of rank ``g̃_i`` among the labels of ``G``) gives a graph
  ``x̂(g̃) = z_t ⊕ C(g̃)``; ``x̂(g̃) = x`` exactly on the rank vectors the canonical draw reaches. A network
  trained on these ranks (``model.train.proposal=canonical``) learns to predict ``x̂(g̃)``; ranks of revealed,
  already-distinguished structure carry no information, so every tie-consistent g̃ names one completion.
* **Anchored at ``z_s`` (the reverse-step terms).** In ``L_t`` the target is ``z_s``, not ``x``: the g̃ worth
  drawing are those of every completion consistent with ``z_s``. With the anchor ``S = (G, z_t, z_s)`` and
  ``A = Aut(S)``, the proposal first draws ``σ`` uniformly from ``A`` and uses the completion ``σ·x`` (it keeps
  ``z_t`` and ``z_s``, so ``q(z_s | z_t, σ·x) = q(z_s | z_t, x)``), then canonical ranks of ``σ·x``. The
  completions reached are the ``|A| / |Aut(S, x)|`` graphs ``σ·x``; their rank sets are disjoint, so

  .. math:: r(g̃) = \frac{|Aut(S, x)|}{|A| \, |Aut(R, G)|}  \text{ if } (S, x̂(g̃)) \cong (S, x), \text{ else } 0,

  decided by comparing canonical forms. Without an anchor (``L_0``, training: the target is ``x``) ``A`` is
  trivial and ``r(g̃) = 1 / |Aut(R, G)|`` iff ``x̂(g̃) = x``.

Any proposal gives an upper bound (Burda et al. 2016: ``E_r[(1/K) Σ_k w_k] <= Σ_g p(g) p(target | g)`` for
every ``r``, then Jensen); this one makes it tight for an ideal breaker on data that is uniform on a single
isomorphism class per size, e.g. stars and perfect matchings (``tests/diffusion/likelihood``).

Shapes: per graph, numpy arrays of the graph's ``n_b`` real nodes: node classes (n_b,), pair classes
(n_b, n_b) symmetric, tie-group ids (n_b,) in ``0..`` (in score order), ranks (n_b,) in ``0..n_b-1``.
"""
from __future__ import annotations

import math
from itertools import permutations, product

import numpy as np

from sympe.symbreak.orbits.canonical_labelling import (automorphism_count, canonical_form, canonical_labelling,
                                                       random_automorphism, random_labelling, stack_colours)

__all__ = ["PROPOSALS", "tie_blocks", "tie_consistent", "tie_consistent_ranks", "num_tie_consistent",
           "log_num_tie_consistent", "uniform_tie_ranks", "residual", "CanonicalProposal"]

#: Proposals over g̃ of the mixture bound (``model.eval.mixture_proposal``); ``exact`` enumerates instead.
PROPOSALS = ("prior", "canonical", "defensive", "exact")


def tie_blocks(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(start (G,), size (G,))``: the first rank and the size of every tie group (ids ``0..G-1`` in score order)."""
    groups = np.asarray(groups, dtype=np.int64)
    if groups.size and (groups.min() < 0 or len(np.unique(groups)) != groups.max() + 1):
        raise ValueError(f"tie groups must be the ids 0..G-1 of the real nodes, got {groups.tolist()}")
    size = np.bincount(groups, minlength=int(groups.max(initial=-1)) + 1)
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    return start, size


def tie_consistent(groups: np.ndarray, ranks: np.ndarray) -> bool:
    """Whether ``ranks`` (a permutation of ``0..n-1``) gives every tie group its block of ranks."""
    start, size = tie_blocks(groups)
    ranks = np.asarray(ranks)
    g = np.asarray(groups)
    return bool(np.all((ranks >= start[g]) & (ranks < start[g] + size[g])))


def log_num_tie_consistent(groups: np.ndarray) -> float:
    """``log Π_i |G_i|!``: minus the log-probability of each tie-consistent rank vector under uniform ties."""
    _, size = tie_blocks(groups)
    return float(sum(math.lgamma(int(s) + 1) for s in size))


def num_tie_consistent(groups: np.ndarray) -> int:
    """``Π_i |G_i|!``, the number of tie-consistent rank vectors (exact int)."""
    _, size = tie_blocks(groups)
    return math.prod(math.factorial(int(s)) for s in size)


def tie_consistent_ranks(groups: np.ndarray, max_count: int) -> np.ndarray:
    """Every tie-consistent rank vector, (Π|G_i|!, n) int64, in a fixed order.

    Raises ``ValueError`` when there are more than ``max_count`` (``model.eval.mixture_exact_max``)."""
    groups = np.asarray(groups, dtype=np.int64)
    count = num_tie_consistent(groups)
    if count > int(max_count):
        raise ValueError(f"exact mixture bound: a graph has {count} tie-consistent orders of its symmetry breaker "
                         f"(tie groups of sizes {sorted(tie_blocks(groups)[1].tolist(), reverse=True)}), more than "
                         f"model.eval.mixture_exact_max={max_count}; raise the limit or use "
                         "model.eval.mixture_proposal=canonical|defensive")
    start, size = tie_blocks(groups)
    members = [np.flatnonzero(groups == g) for g in range(len(size))]
    out = np.zeros((count, len(groups)), dtype=np.int64)
    for row, choice in enumerate(product(*[permutations(range(int(s))) for s in size])):
        for g, perm in enumerate(choice):
            out[row, members[g]] = start[g] + np.asarray(perm, dtype=np.int64)
    return out


def uniform_tie_ranks(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A draw of the uniform-ties prior: a uniform order inside every tie group's block."""
    start, size = tie_blocks(groups)
    groups = np.asarray(groups)
    ranks = np.zeros(len(groups), dtype=np.int64)
    for g in range(len(size)):
        idx = np.flatnonzero(groups == g)
        ranks[idx] = start[g] + rng.permutation(int(size[g]))
    return ranks


def residual(x_nodes: np.ndarray, x_pairs: np.ndarray, zt_nodes: np.ndarray, zt_pairs: np.ndarray,
             absorbing_node_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``R``: ``x`` with the variables ``z_t`` shows set to the absorbing class (module docstring); ``x`` itself when
    ``absorbing_node_class`` is None (a transition whose noisy graph is not a part of the clean one)."""
    if absorbing_node_class is None:
        return np.asarray(x_nodes), np.asarray(x_pairs)
    a = int(absorbing_node_class)
    nodes = np.where(np.asarray(zt_nodes) == a, x_nodes, a)
    pairs = np.where(np.asarray(zt_pairs) == 0, x_pairs, 0)
    return nodes, pairs


class CanonicalProposal:
    """The canonical proposal of one graph (module docstring): draw rank vectors and evaluate ``log r``.

    Args:
        x_nodes, x_pairs: the target clean graph's classes, (n,) and (n, n).
        zt_nodes, zt_pairs: the noisy graph's classes (n,), (n, n).
        groups: (n,) tie groups of the breaker's canonicalizer on ``z_t`` (ids 0.. in score order).
        num_node_classes, num_edge_classes: dx, de (fixed colour codes).
        absorbing_node_class: the transition's absorbing node class, or None for a non-absorbing transition.
        anchor: ``(zs_nodes, zs_pairs)`` for a reverse-step term (completions consistent with ``z_s``), or None
            (the target is ``x``).

    Raises ``ValueError`` when ``x`` is not consistent with ``z_t`` under the absorbing transition.
    """

    def __init__(self, x_nodes, x_pairs, zt_nodes, zt_pairs, groups, num_node_classes: int, num_edge_classes: int,
                 absorbing_node_class: int | None, anchor: tuple[np.ndarray, np.ndarray] | None = None):
        self.x_nodes, self.x_pairs = np.asarray(x_nodes, np.int64), np.asarray(x_pairs, np.int64)
        self.zt_nodes, self.zt_pairs = np.asarray(zt_nodes, np.int64), np.asarray(zt_pairs, np.int64)
        self.groups = np.asarray(groups, np.int64)
        self.dx, self.de, self.absorbing = int(num_node_classes), int(num_edge_classes), absorbing_node_class
        n = len(self.groups)
        self.start, self.size = tie_blocks(self.groups)
        if self.absorbing is not None:
            a = int(self.absorbing)
            shown_n = self.zt_nodes != a
            shown_e = self.zt_pairs != 0
            if (self.x_nodes[shown_n] != self.zt_nodes[shown_n]).any() or (self.x_pairs[shown_e] != self.zt_pairs[shown_e]).any():
                raise ValueError("canonical proposal: the target graph does not contain the noisy graph z_t, which an "
                                 "absorbing transition requires")
        self.R_nodes, self.R_pairs = residual(self.x_nodes, self.x_pairs, self.zt_nodes, self.zt_pairs, self.absorbing)
        self.cn, self.ce = stack_colours([self.groups, self.R_nodes], [n + 1, self.dx], [self.R_pairs], [self.de])
        self.lab = canonical_labelling(self.cn, self.ce)
        self.log_aut_R = math.log(automorphism_count(self.cn, self.ce))
        # the canonical form in label space and the label set of every tie group
        order = np.argsort(self.lab)
        self.C_nodes = self.R_nodes[order]
        self.C_pairs = self.R_pairs[np.ix_(order, order)]
        self.group_labels = [np.sort(self.lab[self.groups == g]) for g in range(len(self.size))]
        self.anchor = anchor
        self.log_completions = 0.0
        if anchor is not None:
            zs_nodes, zs_pairs = (np.asarray(v, np.int64) for v in anchor)
            self.S_nodes, self.S_pairs = stack_colours([self.groups, zs_nodes, self.zt_nodes], [n + 1, self.dx, self.dx],
                                                       [zs_pairs, self.zt_pairs], [self.de, self.de])
            log_A = math.log(automorphism_count(self.S_nodes, self.S_pairs))
            xn, xe = self._with_target(self.x_nodes, self.x_pairs)
            self.log_completions = log_A - math.log(automorphism_count(xn, xe))  # log |A| / |Aut(S, x)|
            self.target_form = canonical_form(xn, xe)

    # ------------------------------------------------------------------ helpers
    def _with_target(self, nodes, pairs):
        """The anchor ``S`` with a graph's classes as one more layer (the coloured graph ``(S, x)``)."""
        return stack_colours([self.S_nodes, nodes], [0, self.dx], [self.S_pairs, pairs], [0, self.de])

    def ranks_of_labelling(self, lab: np.ndarray) -> np.ndarray:
        """Ranks from a labelling: inside each tie group's block, nodes in increasing label order."""
        ranks = np.zeros(len(self.groups), dtype=np.int64)
        for g in range(len(self.size)):
            idx = np.flatnonzero(self.groups == g)
            ranks[idx[np.argsort(lab[idx])]] = self.start[g] + np.arange(len(idx))
        return ranks

    def completion(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x̂(g̃) = z_t ⊕ C(g̃)`` (module docstring) of a tie-consistent rank vector: (node classes, pair classes)."""
        ranks = np.asarray(ranks, np.int64)
        labels = np.array([self.group_labels[g][r - self.start[g]] for g, r in zip(self.groups, ranks)], dtype=np.int64)
        nodes = self.C_nodes[labels]
        pairs = self.C_pairs[np.ix_(labels, labels)]
        if self.absorbing is None:
            return nodes, pairs
        a = int(self.absorbing)
        return np.where(self.zt_nodes == a, nodes, self.zt_nodes), np.where(self.zt_pairs == 0, pairs, self.zt_pairs)

    # ------------------------------------------------------------------ the proposal
    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One rank vector drawn from ``r`` (module docstring), (n,) int64."""
        ranks = self.ranks_of_labelling(random_labelling(self.cn, self.ce, rng))
        if self.anchor is None:
            return ranks
        sigma = random_automorphism(self.S_nodes, self.S_pairs, rng)
        moved = np.zeros_like(ranks)
        moved[sigma] = ranks  # node σ(i) of σ·x plays the part of node i of x
        return moved

    def log_prob(self, ranks: np.ndarray) -> float:
        """``log r(g̃)`` of any rank vector (``-inf`` off the proposal's support)."""
        ranks = np.asarray(ranks, np.int64)
        if not tie_consistent(self.groups, ranks):
            return -math.inf
        nodes, pairs = self.completion(ranks)
        if self.anchor is None:
            hit = np.array_equal(nodes, self.x_nodes) and np.array_equal(pairs, self.x_pairs)
        else:
            hit = canonical_form(*self._with_target(nodes, pairs)) == self.target_form
        return -(self.log_aut_R + self.log_completions) if hit else -math.inf
