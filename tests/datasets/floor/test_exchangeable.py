"""Exact |Aut| (BLISS via igraph) and the exchangeable NLL floor, against brute force."""
import itertools
import math
import random

import pytest
import torch
from rdkit import Chem

from sympe.datasets.floor.bliss import automorphism_group_size, pyg_graph_classes
from sympe.datasets.floor.exchangeable import (exchangeable_floor, floor_per_graph, log_aut_of_graphs, split_floor,
                                               summarize)
from sympe.datasets.molecules import QM9_SPEC_WITH_H, mol_to_graph


def brute_force_aut(node_classes, edges):
    N = len(node_classes)
    cls = {}
    for u, v, k in edges:
        cls[(u, v)] = cls[(v, u)] = k
    count = 0
    for p in itertools.permutations(range(N)):
        if any(node_classes[p[v]] != node_classes[v] for v in range(N)):
            continue
        if all(cls.get((p[u], p[v]), 0) == cls.get((u, v), 0) for u in range(N) for v in range(N) if u != v):
            count += 1
    return count


def random_graph(rng, N, n_node_classes, n_edge_classes, p):
    nodes = [rng.randrange(n_node_classes) for _ in range(N)]
    edges = [(u, v, rng.randrange(1, n_edge_classes + 1)) for u in range(N) for v in range(u + 1, N) if rng.random() < p]
    return nodes, edges


@pytest.mark.parametrize("seed", range(40))
def test_aut_matches_brute_force_on_random_coloured_graphs(seed):
    rng = random.Random(seed)
    N = rng.randint(1, 7)
    # few classes and dense/sparse mixes so that many graphs have non-trivial groups
    nodes, edges = random_graph(rng, N, rng.choice([1, 2]), rng.choice([1, 2]), rng.choice([0.2, 0.5, 0.8]))
    assert automorphism_group_size(nodes, edges) == brute_force_aut(nodes, edges)


@pytest.mark.parametrize("N,edges,expected", [
    (5, [(i, (i + 1) % 5, 1) for i in range(5)], 10),            # C5: dihedral group
    (4, [(u, v, 1) for u in range(4) for v in range(u + 1, 4)], 24),  # K4
    (6, [], 720),                                                 # empty graph on 6 nodes
    (4, [(0, 1, 1), (1, 2, 2), (2, 3, 1)], 2),                    # path with a middle edge of another class
    (4, [(0, 1, 1), (1, 2, 1), (2, 3, 2)], 1),                    # edge classes break the reflection
])
def test_aut_known_groups(N, edges, expected):
    assert automorphism_group_size([0] * N, edges) == expected


@pytest.mark.parametrize("smiles,expected", [
    ("C", 24),            # methane with explicit H: S4 on the four H
    ("CC", 72),           # ethane: 3! · 3! · 2
    ("c1ccccc1", 6),      # benzene with H, kekulized: the alternating bonds leave D3 of the hexagon's D6
    ("O", 2),             # water
    ("CC(C)(C)C", 24 * 6 ** 4),  # neopentane: S4 on the methyls, S3 on each methyl's H
])
def test_aut_of_molecules_with_explicit_h(smiles, expected):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    data = mol_to_graph(mol, QM9_SPEC_WITH_H, remove_h=False, name=smiles)
    assert automorphism_group_size(*pyg_graph_classes(data)) == expected


def test_aut_rejects_bad_edges():
    with pytest.raises(ValueError, match="self-loop"):
        automorphism_group_size([0, 0], [(1, 1, 1)])
    with pytest.raises(ValueError, match="outside"):
        automorphism_group_size([0, 0], [(0, 2, 1)])
    with pytest.raises(ValueError, match="two edge classes"):
        automorphism_group_size([0, 0], [(0, 1, 1), (1, 0, 2)])


def test_floor_is_attained_by_the_uniformly_relabelled_distribution():
    """The distribution 'take x, relabel its nodes by a uniform permutation' is exchangeable, and its
    probability of each labelled relabelling is exactly |Aut(x)| / N!: the floor is tight there."""
    nodes, edges = [0, 0, 1, 0], [(0, 1, 1), (1, 2, 1), (1, 3, 1)]
    N = len(nodes)
    seen = {}
    for p in itertools.permutations(range(N)):
        key = (tuple(nodes[p.index(v)] for v in range(N)),
               frozenset((min(p[u], p[v]), max(p[u], p[v]), k) for u, v, k in edges))
        seen[key] = seen.get(key, 0) + 1
    probs = [c / math.factorial(N) for c in seen.values()]
    aut = automorphism_group_size(nodes, edges)
    assert all(abs(pr - aut / math.factorial(N)) < 1e-12 for pr in probs)
    dist = torch.zeros(N + 1, dtype=torch.float64)
    dist[N] = 1.0
    floor = floor_per_graph(torch.tensor([N]), torch.tensor([math.log(aut)]), dist)
    assert floor.item() == pytest.approx(-math.log(probs[0]), abs=1e-8)


def test_floor_summary_and_p_of_n():
    mols = [Chem.AddHs(Chem.MolFromSmiles(s)) for s in ("C", "CC", "O")]
    graphs = [mol_to_graph(m, QM9_SPEC_WITH_H, remove_h=False) for m in mols]
    dist = torch.zeros(9, dtype=torch.float64)
    dist[5], dist[8], dist[3] = 0.5, 0.25, 0.25
    s = exchangeable_floor(graphs, dist, progress=False)
    expected = [-math.log(0.5) + math.lgamma(6) - math.log(24), -math.log(0.25) + math.lgamma(9) - math.log(72),
                -math.log(0.25) + math.lgamma(4) - math.log(2)]
    assert s.mean == pytest.approx(sum(expected) / 3, abs=1e-9)
    sd = torch.tensor(expected, dtype=torch.float64).std(unbiased=True).item()
    assert s.sem == pytest.approx(sd / math.sqrt(3), abs=1e-9)
    assert s.num_graphs == 3
    la = log_aut_of_graphs(graphs)
    assert torch.allclose(la, torch.tensor([math.log(24), math.log(72), math.log(2)], dtype=torch.float64))
    with pytest.raises(ValueError, match="covers only"):
        floor_per_graph(torch.tensor([9]), torch.tensor([0.0]), dist)
    with pytest.raises(ValueError, match="no graphs"):
        summarize(torch.tensor([]), torch.tensor([]))


def test_split_floor_of_a_prefix_and_of_the_whole_split():
    """split_floor: per-graph values of the first graphs (floor_per_graph), summarized; of the whole split it is the
    floor exchangeable_floor reports."""
    mols = [Chem.AddHs(Chem.MolFromSmiles(s)) for s in ("C", "CC", "O", "N")]
    graphs = [mol_to_graph(m, QM9_SPEC_WITH_H, remove_h=False) for m in mols]
    dist = torch.zeros(9, dtype=torch.float64)
    dist[5], dist[8], dist[3], dist[4] = 0.4, 0.2, 0.2, 0.2
    la = log_aut_of_graphs(graphs)
    per, summary = split_floor(graphs, dist, num_graphs=2, progress=False)
    assert torch.equal(per, floor_per_graph(torch.tensor([5, 8]), la[:2], dist))
    assert summary == summarize(per, la[:2]) and summary.num_graphs == 2
    whole, s = split_floor(graphs, dist, progress=False)
    assert whole.shape == (4,) and s == exchangeable_floor(graphs, dist, progress=False)
    assert split_floor(graphs, dist, num_graphs=10, progress=False)[1] == s  # more than the split holds: all of it
