"""Symmetry-breaking families: entropy and floor against brute-force enumeration of every labelled graph,
empirical uniformity of the samples, degree/mark properties, splits, seeds, registry and configs."""
from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from networkx.algorithms.isomorphism import GraphMatcher
from omegaconf import OmegaConf
from scipy.stats import chisquare
from torch_geometric.data import Batch

from sympe.datasets.sources.breaking import (SymmetryBreakingDataset, aut_size_of, conditional_entropy, data_entropy,
                                     data_floor, ring_mark_stabilizers, sample_structure)
from sympe.datasets.graph_utils import data_to_networkx
from sympe.datasets.registry import DATASETS, build_splits
from sympe.diffusion.graph import DenseGraph

from support import REPO  # noqa: E402


# ---------------------------------------------------------------------------- brute force
def all_labelled_graphs(N: int):
    """Every simple graph on nodes 0..N-1, as (edge set (frozenset of pairs), degree tuple)."""
    pairs = list(itertools.combinations(range(N), 2))
    for bits in range(1 << len(pairs)):
        edges = frozenset(p for i, p in enumerate(pairs) if bits >> i & 1)
        deg = [0] * N
        for u, v in edges:
            deg[u] += 1
            deg[v] += 1
        yield edges, tuple(deg)


def support(family: str, size: int, k: int = 1, fixed_ring: bool = False) -> set:
    """The labelled graphs of the family of that size, found by testing the defining property of every
    labelled graph (and every mark set): (edges, marks) with marks a frozenset (empty for unmarked)."""
    N = 2 * size if family == "matching" else size
    out = set()
    ring = frozenset(tuple(sorted((i, (i + 1) % N))) for i in range(N))
    for edges, deg in all_labelled_graphs(N):
        if family == "matching" and all(d == 1 for d in deg):
            out.add((edges, frozenset()))
        elif family == "star" and sorted(deg) == [1] * (N - 1) + [N - 1]:
            out.add((edges, frozenset()))
        elif family == "marked_cycle" and all(d == 2 for d in deg):
            G = nx.Graph(list(edges))
            if G.number_of_nodes() == N and nx.is_connected(G) and (not fixed_ring or edges == ring):
                for S in itertools.combinations(range(N), k):
                    out.add((edges, frozenset(S)))
    return out


def brute_aut(edges, marks, N) -> int:
    G = nx.Graph()
    G.add_nodes_from((v, {"mark": v in marks}) for v in range(N))
    G.add_edges_from(edges)
    return sum(1 for _ in GraphMatcher(G, G, node_match=lambda a, b: a["mark"] == b["mark"]).isomorphisms_iter())


def key_of(edges: np.ndarray, marks) -> tuple:
    e = frozenset(tuple(sorted(map(int, p))) for p in edges)
    return e, frozenset() if marks is None else frozenset(np.flatnonzero(marks).tolist())


CASES = [("matching", 2, 1), ("matching", 3, 1), ("star", 3, 1), ("star", 5, 1),
         ("marked_cycle", 4, 1), ("marked_cycle", 5, 1), ("marked_cycle", 5, 2), ("marked_cycle", 6, 3)]


@pytest.mark.parametrize("family, size, k", CASES, ids=[f"{f}-{s}-{k}" for f, s, k in CASES])
def test_entropy_and_floor_against_enumeration(family, size, k):
    supp = support(family, size, k)
    N = 2 * size if family == "matching" else size
    # uniform over the support: the entropy is the log of its size
    assert conditional_entropy(family, size, k) == pytest.approx(math.log(len(supp)), abs=1e-12)
    assert data_entropy(family, size, k) == pytest.approx(math.log(len(supp)), abs=1e-12)
    # floor: E over the (uniform) support of log N! - log |Aut|, with |Aut| by brute force
    auts = {key: brute_aut(*key, N) for key in supp}
    floor = float(np.mean([math.lgamma(N + 1) - math.log(a) for a in auts.values()]))
    assert data_floor(family, size, k) == pytest.approx(floor, abs=1e-12)
    assert data_floor(family, size, k) <= data_entropy(family, size, k) + 1e-12
    # samples: every one in the support, every support element hit, uniform (chi-square), stated |Aut|
    rng = np.random.default_rng(size * 10 + k)
    counts = Counter()
    for _ in range((30 if len(supp) < 400 else 10) * len(supp)):  # >= 10 expected per cell for chi-square
        edges, marks, aut = sample_structure(family, size, rng, k)
        key = key_of(edges, marks)
        assert key in supp
        assert aut == auts[key]
        counts[key] += 1
    assert set(counts) == supp
    assert chisquare([counts[s] for s in supp]).pvalue > 1e-3


def test_marked_cycle_with_several_marks_has_entropy_above_floor():
    # n = 6, k = 3: mark sets {0,1,2} (6 rotations; |Stab| = 2, one reflection), {0,1,3} and its mirror image
    # {0,2,3} (12; chiral, |Stab| = 1), {0,2,4} (2; |Stab| = 6, D_3)
    assert data_entropy("marked_cycle", 6, 3) > data_floor("marked_cycle", 6, 3) + 0.05
    stab = ring_mark_stabilizers(6, 3)
    assert len(stab) == 20 and Counter(stab.tolist()) == {2: 6, 1: 12, 6: 2}
    for n, k in [(7, 2), (8, 4), (9, 3)]:  # the vectorised bit-mask stabilizers against set arithmetic
        masks = list(itertools.combinations(range(n), k))
        want = [aut_size_of("marked_cycle", n, np.isin(np.arange(n), S)) for S in masks]
        assert ring_mark_stabilizers(n, k).tolist() == want


def test_fixed_ring_is_a_node_order_leak():
    """Without permute_nodes the ring is fixed: entropy log C(n, k) (enumerated), below the floor."""
    for n, k in [(5, 1), (5, 2)]:
        supp = support("marked_cycle", n, k, fixed_ring=True)
        assert len(supp) == math.comb(n, k)
        assert data_entropy("marked_cycle", n, k, permute_nodes=False) == pytest.approx(math.log(len(supp)))
        assert data_entropy("marked_cycle", n, k, permute_nodes=False) < data_floor("marked_cycle", n, k) - 1
        rng = np.random.default_rng(0)
        seen = {key_of(*sample_structure("marked_cycle", n, rng, k, permute_nodes=False)[:2]) for _ in range(300)}
        assert seen == supp
    assert data_entropy("matching", 3, permute_nodes=False) == 0.0 == data_entropy("star", 6, permute_nodes=False)


def test_size_ranges_add_the_entropy_of_the_size():
    assert data_entropy("star", [4, 7]) == pytest.approx(math.log(4) + np.mean(np.log([4, 5, 6, 7])))
    assert data_entropy("matching", [1, 3]) == pytest.approx(math.log(3) + np.mean(np.log([1, 3, 15])))
    assert data_floor("marked_cycle", [4, 5]) == pytest.approx(math.log(2) + np.mean(np.log([12, 60])))
    assert data_entropy("matching", 4) == pytest.approx(math.log(105))
    assert data_entropy("marked_cycle", 8) == pytest.approx(math.log(math.factorial(8) / 2))


# ---------------------------------------------------------------------------- the dataset
SMALL = {"train": 60, "val": 7, "test": 9}


def load(root, family, **kw):
    kw.setdefault("num_graphs", SMALL)
    return {s: SymmetryBreakingDataset(root, split=s, family=family, **kw) for s in ("train", "val", "test")}


def sig(g):
    return int(g.num_nodes), tuple(map(tuple, g.edge_index.t().tolist())), tuple(g.x.argmax(-1).tolist())


def test_matching_dataset_properties(tmp_path):
    splits = load(tmp_path, "matching", m=[2, 4])
    assert [len(splits[s]) for s in ("train", "val", "test")] == [60, 7, 9]
    sizes = set()
    for g in splits["train"]:
        G = data_to_networkx(g)
        assert g.num_nodes % 2 == 0 and all(d == 1 for _, d in G.degree)
        m = g.num_nodes // 2
        sizes.add(m)
        assert float(g.aut_size) == 2**m * math.factorial(m)
        assert float(g.data_nll) == pytest.approx(math.log(3) + conditional_entropy("matching", m))
    assert sizes == {2, 3, 4}
    info = splits["train"].info
    assert info.node_classes == ["node"] and info.edge_classes == ["none", "edge"] and info.max_nodes == 8
    assert info.extra["data_entropy"] == pytest.approx(data_entropy("matching", [2, 4]))
    assert info.extra["exchangeable_floor"] == pytest.approx(info.extra["data_entropy"])
    dense = DenseGraph.from_pyg(Batch.from_data_list(list(splits["train"][:8]))).validate()
    assert dense.X.shape[-1] == 1 and dense.E.shape[-1] == 2


def test_marked_cycle_dataset_properties(tmp_path):
    splits = load(tmp_path, "marked_cycle", n=7, k=2)
    mean_nll = []
    for g in splits["train"]:
        G = data_to_networkx(g)
        assert nx.is_connected(G) and all(d == 2 for _, d in G.degree) and G.number_of_nodes() == 7
        assert g.x.shape == (7, 2) and int(g.x[:, 1].sum()) == 2 and torch.all(g.x.sum(-1) == 1)
        marks = set(torch.nonzero(g.x[:, 1]).flatten().tolist())
        assert float(g.aut_size) == brute_aut(G.edges, marks, 7)
        mean_nll.append(float(g.data_nll))
    assert np.allclose(mean_nll, math.log(math.factorial(6) / 2 * math.comb(7, 2)))
    info = splits["train"].info
    assert info.node_classes == ["unmarked", "marked"]
    assert info.node_marginals == pytest.approx([5 / 7, 2 / 7])
    assert info.extra["data_entropy"] > info.extra["exchangeable_floor"]
    # the fixed ring: node i is joined to i + 1
    fixed = load(tmp_path, "marked_cycle", n=6, permute_nodes=False)["train"]
    ring = {(i, (i + 1) % 6) for i in range(6)}
    for g in fixed:
        assert {tuple(sorted(e)) for e in data_to_networkx(g).edges} == {tuple(sorted(e)) for e in ring}
    assert fixed.info.extra["data_entropy"] == pytest.approx(math.log(6))


def test_star_dataset_properties(tmp_path):
    splits = load(tmp_path, "star", n=6)
    hubs = Counter()
    for g in splits["train"]:
        deg = sorted(d for _, d in data_to_networkx(g).degree)
        assert deg == [1] * 5 + [5] and float(g.aut_size) == 120.0
        hubs[int(np.argmax([d for _, d in sorted(data_to_networkx(g).degree)]))] += 1
    assert len(hubs) == 6  # the hub is not always the same node
    assert splits["test"].info.extra["data_entropy"] == pytest.approx(math.log(6))


def test_seeds_reproducible_and_splits_independent(tmp_path):
    a = load(tmp_path / "a", "marked_cycle", n=8, seed=3)
    b = load(tmp_path / "b", "marked_cycle", n=8, seed=3)
    c = load(tmp_path / "a", "marked_cycle", n=8, seed=4)
    for s in a:
        assert [sig(g) for g in a[s]] == [sig(g) for g in b[s]]
        assert c[s].processed_dir != a[s].processed_dir
    assert [sig(g) for g in a["train"]] != [sig(g) for g in c["train"]]
    assert [sig(g) for g in a["val"]] != [sig(g) for g in a["test"][:7]]
    d = load(tmp_path / "a", "marked_cycle", n=8, k=2, seed=3)
    assert d["train"].processed_dir != a["train"].processed_dir


@pytest.mark.parametrize("kw, msg", [
    ({"family": "wheel"}, "unknown symmetry-breaking family"),
    ({"family": "matching", "n": 4}, r"parameters \['n'\] do not apply"),
    ({"family": "star", "k": 2}, r"parameters \['k'\] do not apply"),
    ({"family": "star", "n": 2}, "n must be >= 3"),
    ({"family": "matching", "m": [3, 2]}, "min > max"),
    ({"family": "matching", "m": "four"}, "inclusive range"),
    ({"family": "marked_cycle", "n": [4, 8], "k": 4}, "1 <= k <= n-1"),
    ({"family": "marked_cycle", "k": 0}, "1 <= k <= n-1"),
    ({"family": "star", "num_graphs": {"train": 5}}, "num_graphs"),
])
def test_bad_arguments(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg):
        SymmetryBreakingDataset(tmp_path, **kw)
    assert not (tmp_path / "processed").exists()  # refused before any generation


def test_registry_and_configs(tmp_path):
    for name in ("matching", "marked_cycle", "star"):
        assert name in DATASETS
        cfg = OmegaConf.load(REPO / "configs" / "dataset" / f"{name}.yaml")
        assert cfg.name == name
        params = OmegaConf.to_container(cfg.params)
        splits = build_splits(name, str(tmp_path), **params, num_graphs=5)
        assert [len(splits[s]) for s in ("train", "val", "test")] == [5, 5, 5]
        assert splits["train"].info.name == name
        assert splits["train"].data_entropy() == pytest.approx(splits["train"].info.extra["data_entropy"])
    # a config's ListConfig range is accepted
    cfg = OmegaConf.create({"n": [4, 6]})
    assert build_splits("star", str(tmp_path), n=cfg.n, num_graphs=3)["train"].sizes == [4, 5, 6]
