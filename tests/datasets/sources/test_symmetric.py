"""Symmetric graph families: closed-form |Aut| against brute force, mixture sampling, the dataset."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch
from networkx.algorithms.isomorphism import GraphMatcher
from torch_geometric.data import Batch

from sympe.datasets.graph_utils import data_to_networkx
from sympe.datasets.sources.symmetric import (FAMILY_IDS, FAMILY_NAMES, FamilyMixture, SymmetricFamiliesDataset,
                                      build_family_graph, cartesian_aut_size, random_labelled_tree,
                                      replicated_tree, rooted_tree_aut, tree_aut_size)
from sympe.diffusion.graph import DenseGraph


def brute_force_aut(G: nx.Graph) -> int:
    return sum(1 for _ in GraphMatcher(G, G).isomorphisms_iter())


CASES = (
    [("cycle", {"n": n}) for n in (3, 4, 5, 7)]
    + [("path", {"n": n}) for n in (2, 3, 6)]
    + [("prism", {"n": n}) for n in (3, 4, 5, 6)]
    + [("grid", {"a": a, "b": b}) for a, b in [(2, 2), (2, 3), (3, 3), (3, 4), (4, 2)]]
    + [("torus", {"a": a, "b": b}) for a, b in [(3, 3), (3, 4), (4, 4), (3, 5), (5, 4), (5, 5)]]
    + [("complete_bipartite", {"a": a, "b": b}) for a, b in [(1, 1), (1, 3), (2, 2), (2, 3), (3, 3), (4, 3)]]
    + [("hypercube", {"d": d}) for d in (1, 2, 3, 4)]
    + [("spider", {"k": k, "l": l}) for k, l in [(1, 2), (2, 3), (3, 1), (3, 2), (4, 2), (5, 1)]]
    + [("balanced_tree", {"r": r, "h": h}) for r, h in [(2, 1), (2, 2), (2, 3), (3, 2)]]
    + [("replicated_tree", {"k": k, "m": m}) for k, m in [(2, 1), (2, 3), (3, 3), (2, 5), (3, 4), (4, 3)]]
)


def test_every_family_is_covered():
    assert {f for f, _ in CASES} | {"regular"} == set(FAMILY_NAMES)


@pytest.mark.parametrize("family, params", CASES, ids=[f"{f}-{'-'.join(map(str, p.values()))}" for f, p in CASES])
def test_closed_form_aut_matches_brute_force(family, params):
    G, aut = build_family_graph(family, params, np.random.default_rng(sum(params.values())))
    assert nx.is_connected(G)
    assert aut == brute_force_aut(G)
    if nx.is_tree(G):
        assert tree_aut_size(G) == aut


@pytest.mark.parametrize("seed", range(12))
def test_tree_aut_on_random_trees(seed):
    rng = np.random.default_rng(seed)
    T = random_labelled_tree(rng, int(rng.integers(2, 11)))
    assert nx.is_tree(T)
    assert tree_aut_size(T) == brute_force_aut(T)


def test_tree_aut_bicentral_and_rooted():
    # two isomorphic halves across the central edge: the swap doubles the count
    T = nx.Graph([(0, 1), (0, 2), (0, 3), (1, 4), (1, 5)])
    assert tree_aut_size(T) == brute_force_aut(T) == 8
    T.add_edge(5, 6)  # halves differ now
    assert tree_aut_size(T) == brute_force_aut(T)
    star = nx.star_graph(4)
    assert rooted_tree_aut(star, 0)[1] == 24 and rooted_tree_aut(star, 1)[1] == 6
    with pytest.raises(ValueError, match="not a tree"):
        tree_aut_size(nx.cycle_graph(4))


def test_replicated_tree_closed_form_with_symmetric_base():
    """|Aut| = k! a^k also when the base tree has automorphisms fixing its root (a > 1)."""
    seen_a = set()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        base = random_labelled_tree(rng, 4)
        _, a = rooted_tree_aut(base, 0)
        seen_a.add(a)
        G = replicated_tree(base, 0, 3)
        assert G.number_of_nodes() == 13
        assert brute_force_aut(G) == math.factorial(3) * a**3
    assert max(seen_a) > 1


def test_cartesian_rule():
    assert cartesian_aut_size([("K2", 2)] * 5) == 2**5 * math.factorial(5)
    assert cartesian_aut_size([(("C", 5), 10), (("C", 5), 10), ("K2", 2)]) == 10**2 * 2 * 2


def test_regular_family_is_connected_regular_and_unknown_aut():
    rng = np.random.default_rng(0)
    for n, d in [(8, 3), (10, 4), (12, 3)]:
        G, aut = build_family_graph("regular", {"n": n, "d": d}, rng)
        assert aut is None and nx.is_connected(G) and G.number_of_nodes() == n
        assert {deg for _, deg in G.degree} == {d}
    with pytest.raises(ValueError, match="invalid parameters"):
        build_family_graph("regular", {"n": 9, "d": 3}, rng)  # n d odd


# ---------------------------------------------------------------------------- mixture
def test_mixture_weights_respected():
    fams = {"cycle": {"weight": 3, "n": [4, 9]}, "path": {"weight": 1}, "torus": {"weight": 2},
            "hypercube": {"weight": 0}}
    mix = FamilyMixture(fams, max_nodes=20)
    assert mix.names == ["cycle", "path", "torus"]
    rng = np.random.default_rng(0)
    draws = [int(mix.sample(rng).family) for _ in range(2000)]
    counts = np.bincount(draws, minlength=len(FAMILY_NAMES)) / len(draws)
    expected = {"cycle": 0.5, "path": 1 / 6, "torus": 1 / 3}
    for name, p in expected.items():
        assert counts[FAMILY_IDS[name]] == pytest.approx(p, abs=0.035)
    assert counts.sum() == pytest.approx(sum(counts[FAMILY_IDS[n]] for n in expected))


def test_mixture_respects_ranges_and_max_nodes():
    mix = FamilyMixture({"hypercube": {"d": [2, 6]}, "balanced_tree": {}}, max_nodes=16)
    assert {p["d"] for p in mix.combos[0]} == {2, 3, 4}
    rng = np.random.default_rng(1)
    for _ in range(200):
        g = mix.sample(rng)
        assert g.num_nodes <= 16


@pytest.mark.parametrize("fams, msg", [
    ({"moebius": {}}, "unknown family"),
    ({"cycle": {"m": 3}}, "unknown parameters"),
    ({"cycle": {"n": [2, 5]}}, "n must be >= 3"),
    ({"cycle": {"n": [6, 5]}}, "min > max"),
    ({"cycle": {"n": "big"}}, "inclusive range"),
    ({"cycle": {"weight": -1}}, "weight"),
    ({"cycle": {"weight": 0}}, "positive weight"),
    ({"hypercube": {"d": [6, 7]}}, "max_nodes"),
    ({}, "non-empty"),
])
def test_bad_family_config(fams, msg):
    with pytest.raises(ValueError, match=msg):
        FamilyMixture(fams, max_nodes=32)


# ---------------------------------------------------------------------------- dataset
SMALL = {"train": 40, "val": 8, "test": 8}


def load(root, **kw):
    kw.setdefault("num_graphs", SMALL)
    return {s: SymmetricFamiliesDataset(root, split=s, **kw) for s in ("train", "val", "test")}


def sig(g):
    return int(g.num_nodes), tuple(map(tuple, g.edge_index.t().tolist()))


def test_dataset_attributes_agree_with_brute_force(tmp_path):
    # ranges kept small so that brute force (which enumerates every automorphism) stays fast
    fams = {name: {} for name in FAMILY_NAMES}
    fams["complete_bipartite"] = {"a": [1, 4], "b": [1, 4]}
    fams["spider"] = {"k": [3, 4], "l": [1, 3]}
    splits = load(tmp_path, families=fams, max_nodes=16, num_graphs={"train": 60, "val": 5, "test": 5})
    assert [len(splits[s]) for s in splits] == [60, 5, 5]
    ds = splits["train"]
    seen = set()
    for g, G in zip(ds, ds.to_networkx_list()):
        fam = FAMILY_NAMES[int(g.family)]
        seen.add(fam)
        assert g.aut_size.dtype == torch.float64 and g.family.dtype == torch.long
        assert g.num_nodes <= 16 and nx.is_connected(G)
        if fam == "regular":
            assert torch.isnan(g.aut_size).all()
        else:
            assert float(g.aut_size) == brute_force_aut(G)
    assert len(seen) >= 8
    info = ds.info
    assert info.node_classes == ["node"] and info.edge_classes == ["none", "edge"] and info.max_nodes <= 16
    dense = DenseGraph.from_pyg(Batch.from_data_list([ds[i] for i in range(8)])).validate()
    assert dense.E.shape[-1] == 2


def test_nodes_are_permuted_but_graph_kept(tmp_path):
    fams = {"cycle": {"n": 12}}
    plain = load(tmp_path, families=fams, permute_nodes=False)["train"]
    shuffled = load(tmp_path, families=fams, permute_nodes=True)["train"]
    ring = [(i, (i + 1) % 12) for i in range(12)]
    assert {tuple(sorted(e)) for e in data_to_networkx(plain[0]).edges} == {tuple(sorted(e)) for e in ring}
    assert any(set(map(tuple, map(sorted, data_to_networkx(g).edges))) != set(map(tuple, map(sorted, ring)))
               for g in shuffled)
    for g in shuffled:
        assert nx.is_isomorphic(data_to_networkx(g), nx.cycle_graph(12))
        assert float(g.aut_size) == 24.0


def test_determinism_and_cache(tmp_path):
    a = load(tmp_path / "a", seed=3)
    b = load(tmp_path / "b", seed=3)
    c = load(tmp_path / "a", seed=4)
    for s in a:
        assert [sig(g) for g in a[s]] == [sig(g) for g in b[s]]
        assert torch.equal(a[s]._data.family, b[s]._data.family)
        assert c[s].processed_dir != a[s].processed_dir
    assert [sig(g) for g in a["train"]] != [sig(g) for g in c["train"]]
    assert [sig(g) for g in a["val"]] != [sig(g) for g in a["test"]]  # independent split streams
    d = load(tmp_path / "a", seed=3, families={"cycle": {}, "path": {}})
    assert d["train"].processed_dir != a["train"].processed_dir
    assert set(d["train"]._data.family.tolist()) <= {FAMILY_IDS["cycle"], FAMILY_IDS["path"]}


def test_dataset_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_graphs"):
        SymmetricFamiliesDataset(tmp_path, num_graphs={"train": 5})
    with pytest.raises(ValueError, match="unknown family"):
        SymmetricFamiliesDataset(tmp_path, families={"wheel": {}})
