"""Node partitions: 1-WL colour refinement (wl), exact orbits and group orders
(automorphisms), tie-group sizes and refinement (partitions)."""
import math

import networkx as nx
import pytest
import torch
from networkx.algorithms.isomorphism import GraphMatcher

from sympe.symbreak.orbits.vf2 import automorphism_group_size, automorphism_orbits
from sympe.symbreak.orbits.wl import color_refinement
from sympe.symbreak.orbits.partitions import log_tie_group_size, partition_refines, same_partition, tie_group_size


def edge_index_of(G):
    nodes = list(G.nodes())
    idx = {v: k for k, v in enumerate(nodes)}
    e = [(idx[u], idx[v]) for u, v in G.edges()]
    e = e + [(v, u) for u, v in e]
    return torch.tensor(e, dtype=torch.long).t().reshape(2, -1), len(nodes)


def batch_of(graphs):
    eis, batch, off = [], [], 0
    for g, G in enumerate(graphs):
        ei, n = edge_index_of(G)
        eis.append(ei + off)
        batch += [g] * n
        off += n
    return torch.cat(eis, 1), off, torch.tensor(batch)


def wl(G, **kw):
    ei, n = edge_index_of(G)
    return color_refinement(ei, n, **kw)


def reference_wl(n, edges, node_labels, edge_labels):
    """Plain-Python 1-WL with exact signatures (tuples), for brute-force agreement."""
    col = list(node_labels)
    nbrs = [[] for _ in range(n)]
    for (u, v), lab in zip(edges, edge_labels):
        nbrs[v].append((u, lab))
    num = len(set(col))
    while True:
        sig = [(col[v], tuple(sorted((col[u], lab) for u, lab in nbrs[v]))) for v in range(n)]
        ids = {s: k for k, s in enumerate(sorted(set(sig)))}
        new = [ids[s] for s in sig]
        if len(ids) == num:
            return new
        col, num = new, len(ids)


def random_graphs(count, n_range, p, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        n = int(torch.randint(n_range[0], n_range[1] + 1, (1,), generator=gen))
        a = torch.triu(torch.rand(n, n, generator=gen) < p, 1)
        G = nx.Graph()
        G.add_nodes_from(range(n))
        G.add_edges_from(torch.nonzero(a).tolist())
        out.append(G)
    return out


# ------------------------------------------------------------------------------ 1-WL
@pytest.mark.parametrize("G", [nx.cycle_graph(7), nx.petersen_graph(), nx.hypercube_graph(3),
                               nx.complete_graph(5), nx.empty_graph(4)])
def test_wl_regular_graph_one_colour(G):
    assert set(wl(G).tolist()) == {0}


@pytest.mark.parametrize("n", range(1, 10))
def test_wl_path_has_ceil_half_colours(n):
    c = wl(nx.path_graph(n))
    assert len(set(c.tolist())) == math.ceil(n / 2)
    assert c.tolist() == c.flip(0).tolist()  # mirror-symmetric


def test_wl_is_equivariant_under_relabelling():
    graphs = random_graphs(6, (3, 12), 0.3, seed=0)
    ei, N, batch = batch_of(graphs)
    gen = torch.Generator().manual_seed(1)
    node_labels = torch.randint(0, 2, (N,), generator=gen)
    c = color_refinement(ei, N, batch, node_colors=node_labels)
    # relabel every graph by a random permutation inside it: new node i = old node perm[i]
    perm = torch.cat([torch.randperm(int((batch == g).sum()), generator=gen) + int((batch < g).sum())
                      for g in range(len(graphs))])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(N)
    c2 = color_refinement(inv[ei], N, batch, node_colors=node_labels[perm])
    assert torch.equal(c2, c[perm])  # per-graph colours are canonical: consistent mapping
    # shuffled edge order changes nothing either
    order = torch.randperm(ei.shape[1], generator=gen)
    assert torch.equal(color_refinement(ei[:, order], N, batch, node_colors=node_labels), c)
    # batch mode: a graph and its relabelled copy in one batch have the same colour histogram
    G = graphs[0]
    H = nx.relabel_nodes(G, dict(zip(G.nodes(), torch.randperm(G.number_of_nodes(), generator=gen).tolist())))
    ei2, N2, b2 = batch_of([G, H])
    cb = color_refinement(ei2, N2, b2, per_graph=False)
    assert sorted(cb[b2 == 0].tolist()) == sorted(cb[b2 == 1].tolist())


def test_wl_batch_mode_distinguishes_like_1wl():
    # C6 and two triangles are 1-WL equivalent (both 2-regular); C6 and P6 are not
    two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    ei, N, b = batch_of([nx.cycle_graph(6), two_triangles, nx.path_graph(6)])
    c = color_refinement(ei, N, b, per_graph=False)
    hist = [sorted(c[b == g].tolist()) for g in range(3)]
    assert hist[0] == hist[1] and hist[0] != hist[2]


def test_wl_agrees_with_reference_with_labels():
    gen = torch.Generator().manual_seed(2)
    for G in random_graphs(15, (2, 14), 0.25, seed=3):
        ei, n = edge_index_of(G)
        m = ei.shape[1] // 2
        nl = torch.randint(0, 3, (n,), generator=gen)
        el_half = torch.randint(0, 2, (m,), generator=gen)
        el = torch.cat([el_half, el_half])
        c = color_refinement(ei, n, node_colors=nl, edge_colors=el)
        ref = reference_wl(n, list(zip(ei[0].tolist(), ei[1].tolist())), nl.tolist(), el.tolist())
        assert same_partition(c, torch.tensor(ref))


def test_wl_one_hot_colours_and_max_iter():
    G = nx.star_graph(4)  # centre 0, leaves 1..4
    ei, n = edge_index_of(G)
    x = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 0]), 2).float()  # leaf 4 labelled like the centre
    c = color_refinement(ei, n, node_colors=x)
    assert same_partition(c, torch.tensor([0, 1, 1, 1, 2]))
    # an edge label singles out leaf 1
    el = torch.zeros(ei.shape[1], dtype=torch.long)
    el[(ei[0] == 1) | (ei[1] == 1)] = 1
    assert same_partition(color_refinement(ei, n, edge_colors=el), torch.tensor([0, 1, 2, 2, 2]))
    # max_iter=0: initial labels only; max_iter=1 on a path: degree classes
    P = nx.path_graph(7)
    assert set(wl(P, max_iter=0).tolist()) == {0}
    assert same_partition(wl(P, max_iter=1), torch.tensor([0, 1, 1, 1, 1, 1, 0]))


def test_wl_bad_input():
    ei = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="outside"):
        color_refinement(ei, 1)
    with pytest.raises(ValueError, match="different graphs"):
        color_refinement(ei, 2, batch=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="node_colors"):
        color_refinement(ei, 2, node_colors=torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(2, M\)"):
        color_refinement(ei.t().reshape(1, 4), 2)


# ------------------------------------------------------------------------------ exact orbits
def prism():
    return nx.circular_ladder_graph(3)


@pytest.mark.parametrize("G,orbits", [
    (nx.cycle_graph(6), [0] * 6),
    (nx.path_graph(5), [0, 1, 2, 1, 0]),
    (nx.path_graph(4), [0, 1, 1, 0]),
    (nx.star_graph(5), [0, 1, 1, 1, 1, 1]),
    (prism(), [0] * 6),
    (nx.petersen_graph(), [0] * 10),
])
def test_orbits_known(G, orbits):
    assert automorphism_orbits(G).tolist() == orbits


def test_orbits_finer_than_wl_when_wl_fails():
    # C6 + two triangles as one graph: 2-regular, one 1-WL colour, but two orbits
    G = nx.disjoint_union(nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)))
    orb = automorphism_orbits(G)
    assert orb.tolist() == [0] * 6 + [1] * 6
    assert set(wl(G).tolist()) == {0}
    assert automorphism_group_size(G) == 12 * (6 * 6 * 2)


@pytest.mark.parametrize("G,size", [
    *[(nx.cycle_graph(n), 2 * n) for n in range(3, 8)],
    (nx.complete_bipartite_graph(2, 3), 2 * 6),
    (nx.complete_bipartite_graph(3, 3), 2 * 6 * 6),
    (nx.complete_bipartite_graph(1, 4), 24),
    (nx.hypercube_graph(3), 48),
    (nx.petersen_graph(), 120),
    (nx.path_graph(6), 2),
    (nx.complete_graph(5), 120),
    (nx.empty_graph(5), 120),
    (prism(), 12),
])
def test_group_size_known(G, size):
    assert automorphism_group_size(G) == size


def test_brute_force_agreement_random_graphs():
    for G in random_graphs(12, (1, 8), 0.35, seed=4):
        autos = list(GraphMatcher(G, G).isomorphisms_iter())
        assert automorphism_group_size(G) == len(autos)
        orbit_sets = {v: frozenset(a[v] for a in autos) for v in G.nodes()}
        orb = automorphism_orbits(G).tolist()
        for u in G.nodes():
            for v in G.nodes():
                assert (orb[u] == orb[v]) == (v in orbit_sets[u])
        # 1-WL is coarser-or-equal to the orbit partition
        assert partition_refines(torch.tensor(orb), wl(G))
        # |Aut| divides the order of the group preserving the orbits, and of the 1-WL cells
        assert int(tie_group_size(torch.tensor(orb))) % len(autos) == 0
        assert int(tie_group_size(wl(G))) % len(autos) == 0


def test_wl_coarser_than_orbits_on_larger_random_graphs():
    for G in random_graphs(10, (6, 14), 0.3, seed=5):
        assert partition_refines(automorphism_orbits(G), wl(G))


def test_labelled_orbits_edge_index_input():
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])  # P4
    assert automorphism_group_size(ei, num_nodes=4) == 2
    assert automorphism_orbits(ei, num_nodes=4, node_labels=[1, 0, 0, 0]).tolist() == [0, 1, 2, 3]
    assert automorphism_group_size(ei, num_nodes=4, node_labels=torch.tensor([1, 0, 0, 1])) == 2
    # edge labels: the middle edge differs -> still symmetric; an end edge differs -> asymmetric
    assert automorphism_group_size(ei, 4, edge_labels=[0, 0, 1, 1, 0, 0]) == 2
    assert automorphism_group_size(ei, 4, edge_labels=[1, 1, 0, 0, 0, 0]) == 1
    # one-hot rows as labels
    x = torch.eye(2)[torch.tensor([0, 1, 1, 0])]
    assert automorphism_orbits(ei, 4, node_labels=x).tolist() == [0, 1, 1, 0]
    # networkx attributes
    G = nx.cycle_graph(4)
    nx.set_node_attributes(G, {0: "C", 1: "N", 2: "C", 3: "N"}, "atom")
    assert automorphism_group_size(G, node_labels="atom") == 4
    nx.set_edge_attributes(G, {(0, 1): 2, (1, 2): 1, (2, 3): 1, (0, 3): 1}, "bond")
    assert automorphism_group_size(G, node_labels="atom", edge_labels="bond") == 1


def test_orbit_errors():
    with pytest.raises(ValueError, match="max_nodes"):
        automorphism_orbits(nx.cycle_graph(13), max_nodes=12)
    assert automorphism_group_size(nx.cycle_graph(12), max_nodes=12) == 24
    with pytest.raises(ValueError, match="num_nodes"):
        automorphism_orbits(torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="two different labels"):
        automorphism_orbits(torch.tensor([[0, 1], [1, 0]]), 2, edge_labels=[0, 1])
    with pytest.raises(ValueError, match="node_labels"):
        automorphism_orbits(nx.path_graph(3), node_labels=[0, 1])


# ------------------------------------------------------------------------------ tie groups
def test_tie_group_size_and_log():
    p = torch.tensor([0, 0, 1, 1, 1, 5])
    assert tie_group_size(p).tolist() == [2 * 6]
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    # graph 0 cells {0,0},{1}; graph 1 cells {1,1},{5}
    assert tie_group_size(p, batch).tolist() == [2, 2]
    q = torch.tensor([3] * 7 + [1] * 4)
    b = torch.tensor([0] * 4 + [1] * 7)
    assert tie_group_size(q, b).tolist() == [24, math.factorial(3) * math.factorial(4)]
    torch.testing.assert_close(log_tie_group_size(q, b),
                               torch.tensor([math.log(24), math.log(144)], dtype=torch.float64))
    big = torch.zeros(30, dtype=torch.long)
    torch.testing.assert_close(log_tie_group_size(big), torch.tensor([math.lgamma(31)], dtype=torch.float64))
    with pytest.raises(OverflowError, match="log_tie_group_size"):
        tie_group_size(big)
    assert partition_refines(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]))
    assert not partition_refines(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]))
