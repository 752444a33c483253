"""Node orbit counts of the graphlets on 2, 3 and 4 nodes (ORCA's 15 orbits), in numpy.

A *graphlet* is a connected graph on k nodes; a node's *orbit count* k_o(v) is the number of
**induced** connected k-node subgraphs of G isomorphic to a graphlet in which v sits at orbit o
(an automorphism class of the graphlet's nodes). Numbering (Pržulj 2007; ORCA, Hočevar & Demšar
2014), with deg = the node's degree inside the graphlet:

====  ===================  ==============================
orbit graphlet             position of v
====  ===================  ==============================
0     edge K2              either end (k_0(v) = degree)
1     path P3              end (deg 1)
2     path P3              middle (deg 2)
3     triangle K3          any
4     path P4              end (deg 1)
5     path P4              inner (deg 2)
6     star K1,3 (claw)     leaf (deg 1)
7     star K1,3 (claw)     centre (deg 3)
8     cycle C4             any
9     paw (tailed tri.)    tail end (deg 1)
10    paw                  triangle node of deg 2
11    paw                  triangle node of deg 3
12    diamond (C4+chord)   deg 2
13    diamond              deg 3
14    clique K4            any
====  ===================  ==============================

Method (no enumeration of 4-node subsets)
-----------------------------------------
With A the (n, n) adjacency, d = A 1, C = A² (C_uw = common neighbours of u, w),
t = diag(A C) / 2 (triangles at v) and binom(x, k) elementwise:

* 3-node orbits (induced directly): o1 = A(d − 1) − 2t, o2 = binom(d, 2) − t, o3 = t.
* 4-node orbits: first the **non-induced** counts N_o(v) = the number of subgraphs (edge sets,
  not necessarily induced) isomorphic to the graphlet of o with v at orbit o:

  - N4 = A·A(d − 1) − d(d − 1) − 2t        (paths v-u-w-x)
  - N5 = (d − 1)·A(d − 1) − 2t              (paths u-v-w-x)
  - N6 = A·binom(d − 1, 2),  N7 = binom(d, 3)
  - N8 = Σ_{w≠v} binom(C_vw, 2)             (4-cycles through v, w opposite v)
  - N9 = A t − 2t,  N10 = (A∘C)(d − 2),  N11 = t(d − 2)
  - N12 = ½ rowsum(A ∘ (A B)) with B = A ∘ (C − 1)   (Σ over triangles {v,a,c} of (C_ac − 1))
  - N13 = rowsum(A ∘ binom(C, 2))
  - N14 = the K4s through v = ⅓ Σ_{u~v} e(N(u) ∩ N(v)), e(S) = edges inside S.

  Then N = M·O, where M[o, j] is the number of copies of graphlet(o), with v at orbit o, inside
  graphlet(j) with v at orbit j (``INDUCED_TO_NONINDUCED`` below; M is unit upper-triangular in
  the order 4..14 of increasing edge count), so O = M⁻¹ N exactly (integer arithmetic in float64,
  exact below 2⁵³).

Cost: O(n³) dense matrix products plus O(|E| n²) for the K4 term (chunked over edges), memory
O(n²). ``orbit_counts_bruteforce`` enumerates all 3- and 4-subsets instead (O(n⁴), for tests).
"""
from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np

NUM_ORBITS = 15
ORBIT_NAMES: tuple[str, ...] = (
    "edge", "path3_end", "path3_middle", "triangle",
    "path4_end", "path4_inner", "star_leaf", "star_centre", "cycle4",
    "paw_tail", "paw_triangle_deg2", "paw_triangle_deg3",
    "diamond_deg2", "diamond_deg3", "clique4",
)

# M[o - 4, j - 4]: copies of graphlet(o) (as a subgraph, v at orbit o) inside graphlet(j) with v at orbit j.
INDUCED_TO_NONINDUCED = np.array([
    #  4  5  6  7  8  9 10 11 12 13 14   <- induced orbit j
    [1, 0, 0, 0, 2, 2, 1, 0, 4, 2, 6],  # 4  path4 end
    [0, 1, 0, 0, 2, 0, 1, 2, 2, 4, 6],  # 5  path4 inner
    [0, 0, 1, 0, 0, 1, 1, 0, 2, 1, 3],  # 6  star leaf
    [0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1],  # 7  star centre
    [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 3],  # 8  cycle4
    [0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 3],  # 9  paw tail
    [0, 0, 0, 0, 0, 0, 1, 0, 2, 2, 6],  # 10 paw triangle deg 2
    [0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 3],  # 11 paw triangle deg 3
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3],  # 12 diamond deg 2
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3],  # 13 diamond deg 3
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  # 14 clique4
], dtype=np.float64)


def adjacency_from_input(graph) -> np.ndarray:
    """(n, n) float64 0/1 adjacency of an ``nx.Graph`` (node order of ``G.nodes()``) or of a square array.

    Raises ``ValueError`` for directed graphs, self-loops, non-0/1, non-square or asymmetric input.
    """
    if isinstance(graph, nx.Graph):
        if graph.is_directed() or graph.is_multigraph():
            raise ValueError("orbit counts need a simple undirected nx.Graph (not directed, not multigraph)")
        if nx.number_of_selfloops(graph):
            raise ValueError("graph has self-loops; remove them with G.remove_edges_from(nx.selfloop_edges(G))")
        a = nx.to_numpy_array(graph, nodelist=list(graph.nodes()), weight=None, dtype=np.float64)
    else:
        a = np.asarray(graph)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"adjacency must be a square (n, n) array, got shape {a.shape}")
        if a.size and not np.isin(a, (0, 1)).all():
            raise ValueError("adjacency entries must be 0/1 (or bool): an unweighted simple graph")
        a = a.astype(np.float64)
        if not (a == a.T).all():
            raise ValueError("adjacency must be symmetric (undirected graph)")
        if np.diagonal(a).any():
            raise ValueError("adjacency must have a zero diagonal (no self-loops)")
    return a


def _binom2(x: np.ndarray) -> np.ndarray:
    return x * (x - 1) / 2


def _k4_per_node(a: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(n,) number of K4 containing each node: ⅓ Σ_{u~v} e(N(u) ∩ N(v)), chunked over the edges."""
    n = a.shape[0]
    out = np.zeros(n)
    u, w = np.nonzero(np.triu(a, k=1))
    for s in range(0, u.size, chunk):
        uu, ww = u[s:s + chunk], w[s:s + chunk]
        common = a[uu] * a[ww]                                 # (k, n) indicator of N(u) ∩ N(w)
        inside = 0.5 * np.einsum("kn,kn->k", common @ a, common)  # edges inside the common neighbourhood
        np.add.at(out, uu, inside)
        np.add.at(out, ww, inside)
    return out / 3.0


def orbit_counts(graph) -> np.ndarray:
    """(n, 15) int64 orbit counts (see the module docstring) of an ``nx.Graph`` or (n, n) 0/1 adjacency."""
    a = adjacency_from_input(graph)
    n = a.shape[0]
    if n == 0:
        return np.zeros((0, NUM_ORBITS), dtype=np.int64)
    d = a.sum(1)
    c = a @ a
    t = 0.5 * np.einsum("ij,ij->i", a, c)                      # triangles at v
    ad1 = a @ (d - 1)                                           # Σ_{u~v} (d_u − 1)

    out = np.zeros((n, NUM_ORBITS))
    out[:, 0] = d
    out[:, 1] = ad1 - 2 * t
    out[:, 2] = _binom2(d) - t
    out[:, 3] = t

    ac = a * c                                                  # A ∘ C: triangles through each edge
    b = a * (c - 1)
    nonind = np.empty((n, 11))
    nonind[:, 0] = a @ ad1 - d * (d - 1) - 2 * t                # N4
    nonind[:, 1] = (d - 1) * ad1 - 2 * t                        # N5
    nonind[:, 2] = a @ _binom2(d - 1)                           # N6
    nonind[:, 3] = d * (d - 1) * (d - 2) / 6                    # N7
    nonind[:, 4] = _binom2(c).sum(1) - _binom2(d)               # N8 (drop w = v, where C_vv = d_v)
    nonind[:, 5] = a @ t - 2 * t                                # N9
    nonind[:, 6] = ac @ (d - 2)                                 # N10
    nonind[:, 7] = t * (d - 2)                                  # N11
    nonind[:, 8] = 0.5 * np.einsum("ij,ij->i", a, a @ b)        # N12
    nonind[:, 9] = (a * _binom2(c)).sum(1)                      # N13
    nonind[:, 10] = _k4_per_node(a)                             # N14
    out[:, 4:] = np.linalg.solve(INDUCED_TO_NONINDUCED, nonind.T).T
    counts = np.rint(out)
    if np.abs(out - counts).max() > 1e-6 or (counts < 0).any():  # would mean a wrong identity: never silent
        raise RuntimeError("orbit count identities gave a non-integer or negative count; please report")
    return counts.astype(np.int64)


# --------------------------------------------------------------------------- reference
_ORBIT_OF = {  # sorted degree sequence of the induced graphlet -> {degree inside graphlet: orbit}
    (1, 1, 2): {1: 1, 2: 2},
    (2, 2, 2): {2: 3},
    (1, 1, 2, 2): {1: 4, 2: 5},
    (1, 1, 1, 3): {1: 6, 3: 7},
    (2, 2, 2, 2): {2: 8},
    (1, 2, 2, 3): {1: 9, 2: 10, 3: 11},
    (2, 2, 3, 3): {2: 12, 3: 13},
    (3, 3, 3, 3): {3: 14},
}


def orbit_counts_bruteforce(graph) -> np.ndarray:
    """(n, 15) orbit counts by enumerating every 3- and 4-node subset (O(n⁴); a reference for tests).

    A subset counts when its induced subgraph is connected; its graphlet is identified by its
    sorted degree sequence, which is unique among the connected graphs on <= 4 nodes (the
    disconnected ones either have fewer than k - 1 edges or a degree-0 node, so their sequences
    are not in the table), and each node's orbit by its degree inside the subset.
    """
    a = adjacency_from_input(graph).astype(bool)
    n = a.shape[0]
    out = np.zeros((n, NUM_ORBITS), dtype=np.int64)
    out[:, 0] = a.sum(1)
    for k in (3, 4):
        for nodes in combinations(range(n), k):
            sub = a[np.ix_(nodes, nodes)]
            deg = sub.sum(1)
            m = int(deg.sum()) // 2
            key = tuple(sorted(int(x) for x in deg))
            if m < k - 1 or key not in _ORBIT_OF:  # disconnected (e.g. two edges, or triangle + isolated node)
                continue
            for v, dv in zip(nodes, deg):
                out[v, _ORBIT_OF[key][int(dv)]] += 1
    return out

