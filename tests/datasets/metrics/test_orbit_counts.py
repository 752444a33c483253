"""Graphlet orbit counts (ORCA's 15 orbits) against brute-force enumeration and known graphs."""
from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np
import pytest

from sympe.datasets.metrics.orbit_counts import (INDUCED_TO_NONINDUCED, NUM_ORBITS, ORBIT_NAMES, orbit_counts,
                                         orbit_counts_bruteforce)


def random_graphs(num: int, max_n: int, seed: int) -> list[nx.Graph]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        n = int(rng.integers(1, max_n + 1))
        p = float(rng.uniform(0.1, 0.95))
        out.append(nx.gnp_random_graph(n, p, seed=int(rng.integers(2**31))))
    return out


def test_matches_bruteforce_on_random_small_graphs_every_orbit():
    graphs = random_graphs(60, 10, seed=0) + random_graphs(10, 13, seed=1)
    seen = np.zeros(NUM_ORBITS, dtype=bool)
    for g in graphs:
        fast, slow = orbit_counts(g), orbit_counts_bruteforce(g)
        assert fast.shape == (g.number_of_nodes(), NUM_ORBITS) and fast.dtype == np.int64
        np.testing.assert_array_equal(fast, slow)
        seen |= (slow > 0).any(0)
    assert seen.all(), f"orbits never exercised: {np.nonzero(~seen)[0]}"


def test_bruteforce_itself_agrees_with_networkx_counts():
    """Independent checks of the reference: degrees, triangles, K4 and induced-P3 counts from networkx."""
    for g in random_graphs(15, 9, seed=2):
        c = orbit_counts_bruteforce(g)
        n = g.number_of_nodes()
        np.testing.assert_array_equal(c[:, 0], [g.degree(v) for v in range(n)])
        np.testing.assert_array_equal(c[:, 3], [nx.triangles(g)[v] for v in range(n)])
        k4 = np.zeros(n, dtype=np.int64)
        for q in nx.enumerate_all_cliques(g):
            if len(q) == 4:
                k4[q] += 1
        np.testing.assert_array_equal(c[:, 14], k4)
        middles = [sum(1 for a, b in combinations(g[v], 2) if not g.has_edge(a, b)) for v in range(n)]
        np.testing.assert_array_equal(c[:, 2], middles)


def _row(**orbits) -> np.ndarray:
    r = np.zeros(NUM_ORBITS, dtype=np.int64)
    for k, v in orbits.items():
        r[int(k[1:])] = v
    return r


@pytest.mark.parametrize("graph, expected", [
    # K4: 3 edges, 3 triangles, 1 clique per node; no induced paths.
    (nx.complete_graph(4), {v: _row(o0=3, o3=3, o14=1) for v in range(4)}),
    # star K_{1,3}: centre 0 is orbit 7 once and the middle of 3 induced P3; leaves orbit 6 and P3 ends.
    (nx.star_graph(3), {0: _row(o0=3, o2=3, o7=1), 1: _row(o0=1, o1=2, o6=1)}),
    # P4 0-1-2-3: ends orbit 4, inner nodes orbit 5.
    (nx.path_graph(4), {0: _row(o0=1, o1=1, o4=1), 1: _row(o0=2, o1=1, o2=1, o5=1)}),
    # C4: orbit 8 once per node, each node the middle of 1 and the end of 2 induced P3.
    (nx.cycle_graph(4), {v: _row(o0=2, o1=2, o2=1, o8=1) for v in range(4)}),
    # paw: triangle 0-1-2 and tail 2-3.
    (nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)]),
     {3: _row(o0=1, o1=2, o9=1), 0: _row(o0=2, o1=1, o3=1, o10=1), 2: _row(o0=3, o2=2, o3=1, o11=1)}),
    # diamond: C4 0-1-2-3 with chord 0-2.
    (nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]),
     {1: _row(o0=2, o1=2, o3=1, o12=1), 0: _row(o0=3, o2=1, o3=2, o13=1)}),
    # K2 plus an isolated node: only orbit 0.
    (nx.Graph([(0, 1)]), {0: _row(o0=1)}),
])
def test_known_graphlets(graph, expected):
    counts = orbit_counts(graph)
    for v, row in expected.items():
        np.testing.assert_array_equal(counts[v], row, err_msg=f"node {v}")


def test_isolated_nodes_and_empty_graph():
    g = nx.Graph()
    g.add_nodes_from(range(5))
    g.add_edges_from([(0, 1), (1, 2)])
    c = orbit_counts(g)
    assert (c[3:] == 0).all()
    assert orbit_counts(np.zeros((0, 0))).shape == (0, NUM_ORBITS)


def test_permutation_equivariance():
    rng = np.random.default_rng(3)
    a = np.triu(rng.random((40, 40)) < 0.25, k=1)
    a = (a | a.T).astype(np.int64)
    perm = rng.permutation(40)
    pa = a[np.ix_(perm, perm)]
    np.testing.assert_array_equal(orbit_counts(pa), orbit_counts(a)[perm])


def test_orbit_totals_match_graphlet_counts():
    """Σ_v k_o(v) = (#graphlets) × (#nodes at orbit o): e.g. Σ o14 = 4 #K4, Σ o8 = 4 #C4 (induced)."""
    g = nx.gnp_random_graph(25, 0.35, seed=4)
    c = orbit_counts(g)
    k4 = sum(1 for q in nx.enumerate_all_cliques(g) if len(q) == 4)
    assert c[:, 14].sum() == 4 * k4
    assert c[:, 3].sum() == sum(nx.triangles(g).values())
    assert c[:, 7].sum() * 3 == c[:, 6].sum()    # a claw has 1 centre and 3 leaves
    assert c[:, 4].sum() == c[:, 5].sum()        # a P4 has 2 ends and 2 inner nodes
    assert c[:, 9].sum() * 2 == c[:, 10].sum() and c[:, 11].sum() == c[:, 9].sum()
    assert c[:, 12].sum() == c[:, 13].sum()


def test_constants():
    assert len(ORBIT_NAMES) == NUM_ORBITS == 15
    m = INDUCED_TO_NONINDUCED
    assert m.shape == (11, 11) and np.allclose(np.diag(m), 1) and np.allclose(np.tril(m, -1), 0)


@pytest.mark.parametrize("bad, msg", [
    (np.array([[0, 1], [0, 0]]), "symmetric"),
    (np.array([[1, 0], [0, 0]]), "diagonal"),
    (np.array([[0, 2], [2, 0]]), "0/1"),
    (np.zeros((2, 3)), "square"),
    (nx.DiGraph([(0, 1)]), "undirected"),
    (nx.Graph([(0, 0)]), "self-loops"),
])
def test_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        orbit_counts(bad)
