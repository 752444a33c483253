"""Canonical labellings (BLISS) and the canonical proposal over ranks, against brute force on small graphs."""
from __future__ import annotations

import itertools
import math
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch

from breaking_oracles import family_support, orbit_groups
from sympe.symbreak.breakers import tie_log_prob
from sympe.symbreak.orbits.canonical_labelling import (automorphism_count, canonical_form, canonical_labelling,
                                                       random_automorphism, random_labelling)
from sympe.symbreak.proposal import (CanonicalProposal, log_num_tie_consistent, num_tie_consistent, tie_consistent,
                                     tie_consistent_ranks, uniform_tie_ranks)


def _random_graph(rng, n, p=0.4, node_colours=2, edge_colours=2):
    nodes = rng.integers(node_colours, size=n)
    E = np.triu(rng.integers(1, edge_colours + 1, size=(n, n)) * (rng.random((n, n)) < p), 1)
    return nodes, E + E.T


def _brute_aut(nodes, E):
    n = len(nodes)
    return sum(1 for p in itertools.permutations(range(n))
               if all(nodes[p[i]] == nodes[i] for i in range(n)) and np.array_equal(E[np.ix_(p, p)], E))


@pytest.mark.parametrize("seed", range(6))
def test_canonical_form_is_an_isomorphism_invariant_and_counts_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    nodes, E = _random_graph(rng, 6)
    form = canonical_form(nodes, E)
    for _ in range(5):
        p = rng.permutation(6)
        assert canonical_form(nodes[p], E[np.ix_(p, p)]) == form
    assert automorphism_count(nodes, E) == _brute_aut(nodes, E)
    # a graph that is not isomorphic gets another form
    other = E.copy()
    i, j = 0, 1
    other[i, j] = other[j, i] = 0 if E[i, j] else 1
    if _brute_aut(nodes, other) and not nx.is_isomorphic(*[nx.from_numpy_array(M) for M in (E, other)]):
        assert canonical_form(nodes, other) != form


def test_edgeless_and_symmetric_graphs_are_canonical():
    """The case that a heuristic reading of igraph's permutation got wrong: no edges, all nodes alike."""
    n = 6
    A = np.zeros((n, n), dtype=np.int64)
    forms = {canonical_form(np.eye(n, dtype=np.int64)[i], A) for i in range(n)}
    assert len(forms) == 1
    assert automorphism_count(np.zeros(n, dtype=np.int64), A) == math.factorial(n)


def test_random_labelling_and_automorphism_are_uniform():
    rng = np.random.default_rng(0)
    star = family_support("star", 5)[0]  # |Aut| = 4! = 24
    nodes = np.zeros(5, dtype=np.int64)
    lab = canonical_labelling(nodes, star)
    counts = Counter(tuple(random_labelling(nodes, star, rng)) for _ in range(2400))
    assert len(counts) == 24 and min(counts.values()) > 50  # expected 100 each
    for labelling in counts:
        assert canonical_form(nodes, star, np.array(labelling)) == canonical_form(nodes, star, lab)
    taus = Counter(tuple(random_automorphism(nodes, star, rng)) for _ in range(2400))
    assert len(taus) == 24
    for tau in taus:
        tau = np.array(tau)
        assert np.array_equal(star[np.ix_(tau, tau)], star)


def test_tie_consistent_orders_counts_and_refusal():
    groups = np.array([1, 0, 1, 2, 1])
    every = tie_consistent_ranks(groups, 100)
    assert len(every) == num_tie_consistent(groups) == 6 and math.isclose(log_num_tie_consistent(groups), math.log(6))
    assert len({tuple(r) for r in every}) == 6 and all(tie_consistent(groups, r) for r in every)
    assert every[:, 1].tolist() == [0] * 6 and every[:, 3].tolist() == [4] * 6
    rng = np.random.default_rng(0)
    assert tie_consistent(groups, uniform_tie_ranks(groups, rng))
    with pytest.raises(ValueError, match="mixture_exact_max=5"):
        tie_consistent_ranks(groups, 5)
    # the breaker's log p(g): uniform on the tie-consistent orders, -inf elsewhere (padding ignored)
    g = torch.tensor([[1, 0, 1, 2, 1, -1]])
    mask = torch.tensor([[True] * 5 + [False]])
    ok = torch.as_tensor(np.append(every[3], 5)).unsqueeze(0)
    bad = torch.tensor([[0, 1, 2, 3, 4, 5]])
    assert tie_log_prob(g, ok, mask).item() == pytest.approx(-math.log(6))
    assert tie_log_prob(g, bad, mask).item() == -math.inf


def _check_proposal(P: CanonicalProposal, groups, rng, completions_expected=None, draws=600):
    every = tie_consistent_ranks(groups, 10**6)
    logr = np.array([P.log_prob(r) for r in every])
    support = every[logr > -np.inf]
    assert math.isclose(float(np.exp(logr[logr > -np.inf]).sum()), 1.0, rel_tol=1e-9)
    assert len(set(np.round(logr[logr > -np.inf], 9))) == 1  # uniform on its support
    seen = Counter(tuple(P.sample(rng)) for _ in range(draws))
    assert set(seen) <= {tuple(r) for r in support}
    if completions_expected is not None:
        got = {tuple(P.completion(r)[1].ravel()) for r in support}
        assert got == {tuple(A.ravel()) for A in completions_expected}
    return support, seen


@pytest.mark.parametrize("family,size", [("star", 5), ("matching", 3)])
def test_canonical_proposal_names_every_completion_once(family, size):
    """Unanchored (the target is x): r is uniform on |Aut(R, G)| orders, each completion x̂(g) is x. Anchored at z_s:
    the completions reached are exactly the support graphs containing z_s, and r sums to 1."""
    rng = np.random.default_rng(1)
    support = family_support(family, size)
    x = support[0]
    n = len(x)
    zero = np.zeros(n, dtype=np.int64)
    edges = [tuple(e) for e in np.argwhere(np.triu(x, 1))]
    for kt in range(len(edges) + 1):
        for zt_edges in list(itertools.combinations(edges, kt))[:3]:
            Zt = np.zeros_like(x)
            for a, b in zt_edges:
                Zt[a, b] = Zt[b, a] = 1
            groups = orbit_groups(Zt)
            P = CanonicalProposal(zero, x, zero, Zt, groups, 1, 2, 0)
            sup, seen = _check_proposal(P, groups, rng, completions_expected=[x])
            R = np.where(Zt == 0, x, 0)
            assert len(sup) == automorphism_count(groups * 1 + 0, R)
            rest = [e for e in edges if e not in zt_edges]
            for extra in list(itertools.combinations(rest, min(1, len(rest)))):
                Zs = Zt.copy()
                for a, b in extra:
                    Zs[a, b] = Zs[b, a] = 1
                PA = CanonicalProposal(zero, x, zero, Zt, groups, 1, 2, 0, anchor=(zero, Zs))
                want = [A for A in support if np.all(A >= Zs)]
                _check_proposal(PA, groups, rng, completions_expected=want)


def test_canonical_proposal_is_equivariant():
    """Relabelling x, z_t (and the groups) relabels the proposal's ranks: the same distribution up to the relabelling."""
    rng = np.random.default_rng(2)
    x = family_support("matching", 3)[4]
    n = len(x)
    zero = np.zeros(n, dtype=np.int64)
    Zt = np.zeros_like(x)
    groups = orbit_groups(Zt)
    P = CanonicalProposal(zero, x, zero, Zt, groups, 1, 2, 0)
    p = rng.permutation(n)  # new node i is old node p[i]
    Q = CanonicalProposal(zero, x[np.ix_(p, p)], zero, Zt, groups[p], 1, 2, 0)
    every = tie_consistent_ranks(groups, 10**6)
    for r in every[:200]:
        assert P.log_prob(r) == Q.log_prob(r[p])


def test_proposal_refuses_a_target_without_z_t():
    x = family_support("star", 4)[0]
    Zt = np.zeros_like(x)
    Zt[1, 2] = Zt[2, 1] = 1  # not an edge of the star at hub 0
    with pytest.raises(ValueError, match="does not contain the noisy graph"):
        CanonicalProposal(np.zeros(4, np.int64), x, np.zeros(4, np.int64), Zt, orbit_groups(Zt), 1, 2, 0)


@pytest.mark.parametrize("anchored", [False, True])
def test_canonical_draws_follow_the_stated_density(anchored):
    """Frequencies of the sampler against exp(log r) (chi-square, false-alarm rate 1e-4): a biased sampler fails."""
    from scipy.stats import chisquare

    rng = np.random.default_rng(5)
    x = family_support("matching", 3)[2]
    n = len(x)
    zero = np.zeros(n, dtype=np.int64)
    Zt = np.zeros_like(x)
    anchor = None
    if anchored:
        a, b = np.argwhere(np.triu(x, 1))[0]
        Zs = Zt.copy()
        Zs[a, b] = Zs[b, a] = 1
        anchor = (zero, Zs)
    groups = orbit_groups(Zt)
    P = CanonicalProposal(zero, x, zero, Zt, groups, 1, 2, 0, anchor=anchor)
    every = tie_consistent_ranks(groups, 10**6)
    logr = np.array([P.log_prob(r) for r in every])
    support = [tuple(r) for r in every[logr > -np.inf]]
    draws = 30 * len(support)
    seen = Counter(tuple(P.sample(rng)) for _ in range(draws))
    observed = np.array([seen.get(r, 0) for r in support])
    assert observed.sum() == draws  # nothing drawn off the support
    expected = np.exp(logr[logr > -np.inf]) * draws
    assert chisquare(observed, expected).pvalue > 1e-4
