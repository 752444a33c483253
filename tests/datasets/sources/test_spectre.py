"""SPECTRE datasets (planar, sbm, comm20) and the graph conversion helpers they use."""
from __future__ import annotations

import os
import os.path as osp
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from support import REPO  # noqa: E402
from sympe.datasets.sources import spectre
from sympe.datasets.graph_utils import (adjacency_to_data, canonical_edges, data_to_networkx, edges_to_data,
                                        networkx_to_data)
from sympe.datasets.sources.spectre import (SpectreDataset, PlanarDataset, digress_split_indices, digress_split_sizes,
                                    generate_graphs, graphs_from_adjacencies)
from sympe.diffusion.graph import DenseGraph

from support import SHARED_DATA, SPECTRE_DIR  # noqa: E402

DATA = SPECTRE_DIR  # the benchmark graphs shipped with the package
NPZ = {"planar": DATA / "planar.npz", "sbm": DATA / "sbm.npz", "comm20": DATA / "community20.npz"}


def all_splits(root, **kw):
    return {s: SpectreDataset(root, split=s, **kw) for s in ("train", "val", "test")}


def signature(g) -> tuple:
    """Hashable description of a graph with its node labels (exact, not up to isomorphism)."""
    return int(g.num_nodes), tuple(map(tuple, g.edge_index.t().tolist()))


def nx_graphs(ds):
    return ds.to_networkx_list()


# ---------------------------------------------------------------------------- helpers
def test_edges_to_data_format():
    g = edges_to_data(4, [[1, 0], [2, 1], [1, 2], [3, 2]])  # duplicates and both orientations
    assert g.num_nodes == 4
    assert g.x.shape == (4, 1) and torch.all(g.x == 1)
    assert g.edge_index.tolist() == [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]
    assert g.edge_attr.shape == (6, 2)
    assert torch.all(g.edge_attr[:, 0] == 0) and torch.all(g.edge_attr[:, 1] == 1)
    assert g.y.shape == (1, 0)
    empty = edges_to_data(3, np.zeros((0, 2)))
    assert empty.edge_index.shape == (2, 0) and empty.edge_attr.shape == (0, 2) and empty.num_nodes == 3


@pytest.mark.parametrize("edges, msg", [([[0, 0]], "self-loop"), ([[0, 5]], "endpoints"), ([[0, 1, 2]], "shape")])
def test_edges_to_data_rejects_bad_edges(edges, msg):
    with pytest.raises(ValueError, match=msg):
        canonical_edges(3, edges)


def test_networkx_round_trip():
    G = nx.relabel_nodes(nx.petersen_graph(), {i: f"v{i}" for i in range(10)})
    g = networkx_to_data(G)
    H = data_to_networkx(g)
    assert sorted(H.nodes) == list(range(10))
    relabelled = nx.convert_node_labels_to_integers(G)  # same order as G.nodes()
    assert {frozenset(e) for e in H.edges} == {frozenset(e) for e in relabelled.edges}


def test_graphs_from_adjacencies_in_memory():
    gen = torch.Generator().manual_seed(3)
    adjs = []
    for n in (5, 9, 12):
        a = torch.triu((torch.rand(n, n, generator=gen) < 0.4).float(), diagonal=1)
        adjs.append(a + a.t())
    graphs = graphs_from_adjacencies(adjs)
    for a, g in zip(adjs, graphs):
        assert g.num_nodes == a.shape[0]
        dense = torch.zeros_like(a)
        dense[g.edge_index[0], g.edge_index[1]] = 1.0
        assert torch.equal(dense, a)
    stacked = graphs_from_adjacencies(torch.stack([adjs[0], adjs[0]]))
    assert signature(stacked[0]) == signature(stacked[1]) == signature(graphs[0])


@pytest.mark.parametrize("bad, msg", [
    (torch.tensor([[0.0, 1.0], [0.0, 0.0]]), "symmetric"),
    (torch.tensor([[1.0, 0.0], [0.0, 0.0]]), "diagonal"),
    (torch.tensor([[0.0, 0.5], [0.5, 0.0]]), "0 or 1"),
    (torch.zeros(2, 3), "square"),
])
def test_adjacency_validation(bad, msg):
    with pytest.raises(ValueError, match=msg):
        adjacency_to_data(bad)
    with pytest.raises(ValueError, match="adjacency matrix 1"):
        graphs_from_adjacencies([torch.zeros(2, 2), bad])


# ---------------------------------------------------------------------------- split
def test_split_sizes_and_indices():
    assert digress_split_sizes(200) == (128, 32, 40)
    assert digress_split_sizes(100) == (64, 16, 20)
    for G in (5, 37, 100, 200):
        idx = digress_split_indices(G)
        parts = [idx["train"], idx["val"], idx["test"]]
        assert [len(p) for p in parts] == list(digress_split_sizes(G))
        assert sorted(sum(parts, [])) == list(range(G))  # disjoint and covering
        perm = torch.randperm(G, generator=torch.Generator().manual_seed(0)).tolist()
        assert sum(parts, []) == perm
    with pytest.raises(ValueError, match="at least 5"):
        digress_split_sizes(3)


# ---------------------------------------------------------------------------- generate
def test_planar_generated(tmp_path):
    splits = all_splits(tmp_path, name="planar", source="generate")
    assert [len(splits[s]) for s in splits] == [128, 32, 40]
    for ds in splits.values():
        for G in nx_graphs(ds):
            assert G.number_of_nodes() == 64
            assert nx.check_planarity(G)[0]
            assert nx.is_connected(G)
            # Delaunay triangulation of points in general position: 3n - 3 - h edges, 3 <= h <= n
            assert 2 * 64 - 3 <= G.number_of_edges() <= 3 * 64 - 6
    info = splits["train"].info
    assert info.node_classes == ["node"] and info.edge_classes == ["none", "edge"]
    assert info.max_nodes == 64 and info.n_nodes_dist[64] == pytest.approx(1.0)
    assert sum(info.edge_marginals) == pytest.approx(1.0)
    # every graph of the generated set appears once, in exactly one split
    sigs = [signature(g) for ds in splits.values() for g in ds]
    assert len(set(sigs)) == 200
    assert PlanarDataset(tmp_path, split="val", source="generate").processed_dir == splits["val"].processed_dir


def test_sbm_generated_blocks():
    graphs = generate_graphs("sbm", 60, seed=1)
    intra = [0, 0]
    cross = [0, 0]
    for g in graphs:
        block = g.block
        assert block.shape == (g.num_nodes,) and block.dtype == torch.long
        sizes = torch.bincount(block)
        assert 2 <= sizes.numel() <= 5
        assert bool(((sizes >= 20) & (sizes <= 40)).all())
        assert torch.equal(block, torch.sort(block).values)  # numbered block by block
        assert 40 <= g.num_nodes <= 200
        same = block[g.edge_index[0]] == block[g.edge_index[1]]
        intra[0] += int(same.sum()) // 2
        cross[0] += int((~same).sum()) // 2
        intra[1] += int((sizes * (sizes - 1) // 2).sum())
        cross[1] += g.num_nodes * (g.num_nodes - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())
    assert intra[0] / intra[1] == pytest.approx(0.3, abs=0.01)
    assert cross[0] / cross[1] == pytest.approx(0.005, abs=0.002)


def test_comm20_generated(tmp_path):
    splits = all_splits(tmp_path, name="comm20", source="generate")
    assert [len(splits[s]) for s in splits] == [64, 16, 20]
    for ds in splits.values():
        for g, G in zip(ds, nx_graphs(ds)):
            n = g.num_nodes
            assert 12 <= n <= 20 and n % 2 == 0
            assert torch.equal(torch.bincount(g.block), torch.tensor([n // 2, n // 2]))
            assert nx.is_connected(G)
            for c in (0, 1):
                assert nx.is_connected(G.subgraph(torch.nonzero(g.block == c).flatten().tolist()))
            assert int((g.block[g.edge_index[0]] != g.block[g.edge_index[1]]).sum()) >= 2  # >= 1 bridge, both directions


def test_generation_is_seeded():
    a = generate_graphs("comm20", 10, seed=5)
    b = generate_graphs("comm20", 10, seed=5)
    c = generate_graphs("comm20", 10, seed=6)
    assert [signature(g) for g in a] == [signature(g) for g in b]
    assert [signature(g) for g in a] != [signature(g) for g in c]


def test_dense_conversion_is_valid(tmp_path):
    ds = SpectreDataset(tmp_path, split="train", name="sbm", source="generate", num_graphs=20)
    batch = Batch.from_data_list([ds[i] for i in range(4)])
    dense = DenseGraph.from_pyg(batch).validate()
    assert dense.E.shape[-1] == 2 and dense.X.shape[-1] == 1
    for b in range(4):
        n = ds[b].num_nodes
        A = torch.zeros(n, n)
        A[ds[b].edge_index[0], ds[b].edge_index[1]] = 1
        assert torch.equal(dense.E[b, :n, :n, 1], A)


# ---------------------------------------------------------------------------- npz
def test_planar_npz(tmp_path):
    splits = all_splits(tmp_path, name="planar", source="npz", path=str(NPZ["planar"]))
    assert [len(splits[s]) for s in splits] == [128, 32, 40]
    file_graphs = spectre.load_npz_graphs(str(NPZ["planar"]))
    idx = digress_split_indices(200)
    for s, ds in splits.items():
        assert [signature(g) for g in ds] == [signature(file_graphs[i]) for i in idx[s]]
        for G in nx_graphs(ds):
            assert G.number_of_nodes() == 64 and nx.check_planarity(G)[0] and nx.is_connected(G)
    sigs = [{signature(g) for g in ds} for ds in splits.values()]
    assert not (sigs[0] & sigs[1]) and not (sigs[0] & sigs[2]) and not (sigs[1] & sigs[2])
    assert sum(len(s) for s in sigs) == 200
    again = all_splits(tmp_path / "other", name="planar", source="npz", path=str(NPZ["planar"]))
    for s in splits:
        assert [signature(g) for g in again[s]] == [signature(g) for g in splits[s]]


def test_sbm_npz(tmp_path):
    splits = all_splits(tmp_path, name="sbm", source="npz", path=str(NPZ["sbm"]))
    assert [len(splits[s]) for s in splits] == [128, 32, 40]
    sizes = [g.num_nodes for ds in splits.values() for g in ds]
    assert len(sizes) == 200 and min(sizes) == 44 and max(sizes) == 187


def test_comm20_npz(tmp_path):
    splits = all_splits(tmp_path, name="comm20", source="npz", path=str(NPZ["comm20"]))
    assert [len(splits[s]) for s in splits] == [64, 16, 20]
    for ds in splits.values():
        for G in nx_graphs(ds):
            assert 12 <= G.number_of_nodes() <= 20 and nx.is_connected(G)
    with pytest.raises(ValueError, match="num_graphs=50"):
        SpectreDataset(tmp_path / "x", name="comm20", source="npz", path=str(NPZ["comm20"]), num_graphs=50)


def test_npz_written_here_round_trips(tmp_path):
    graphs = generate_graphs("comm20", 7, seed=2)
    num_nodes = np.array([g.num_nodes for g in graphs])
    edges = [g.edge_index[:, g.edge_index[0] < g.edge_index[1]].t().numpy() for g in graphs]
    ptr = np.concatenate([[0], np.cumsum([len(e) for e in edges])])
    f = tmp_path / "tiny.npz"
    np.savez(f, num_nodes=num_nodes, edges=np.concatenate(edges), edge_ptr=ptr)
    loaded = spectre.load_npz_graphs(str(f))
    assert [signature(g) for g in loaded] == [signature(g) for g in graphs]
    np.savez(tmp_path / "broken.npz", num_nodes=num_nodes, edges=np.concatenate(edges))
    with pytest.raises(ValueError, match="edge_ptr"):
        spectre.load_npz_graphs(str(tmp_path / "broken.npz"))


# ---------------------------------------------------------------------------- url (download faked)
def test_url_source_with_faked_download(tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    adjs = []
    for n in torch.randint(12, 21, (10,), generator=gen).tolist():
        a = torch.triu((torch.rand(n, n, generator=gen) < 0.3).float(), diagonal=1)
        adjs.append(a + a.t())
    calls = []

    def fake_download(url, folder, log=True, filename=None):
        calls.append(url)
        os.makedirs(folder, exist_ok=True)
        out = osp.join(folder, url.rsplit("/", 1)[-1])
        torch.save((adjs, None, None, None, None, None, None, 20), out)
        return out

    monkeypatch.setattr(spectre, "download_url", fake_download)
    splits = all_splits(tmp_path, name="comm20", source="url")
    assert calls == [f"{spectre.URL_BASE}/community_12_21_100.pt"]  # downloaded once, then cached
    assert [len(splits[s]) for s in splits] == [6, 2, 2]
    idx = digress_split_indices(10)
    expected = graphs_from_adjacencies(adjs)
    for s, ds in splits.items():
        assert [signature(g) for g in ds] == [signature(expected[i]) for i in idx[s]]


# ---------------------------------------------------------------------------- cache and errors
def test_cache_invalidation(tmp_path):
    base = SpectreDataset(tmp_path, split="train", name="comm20", source="generate", seed=0)
    train_pt = osp.join(base.processed_dir, "train.pt")
    mtime = os.stat(train_pt).st_mtime_ns
    same = SpectreDataset(tmp_path, split="train", name="comm20", source="generate", seed=0)
    assert same.processed_dir == base.processed_dir
    assert os.stat(train_pt).st_mtime_ns == mtime  # reused, not re-processed
    other_seed = SpectreDataset(tmp_path, split="train", name="comm20", source="generate", seed=1)
    assert other_seed.processed_dir != base.processed_dir
    assert [signature(g) for g in other_seed] != [signature(g) for g in base]
    fewer = SpectreDataset(tmp_path, split="train", name="comm20", source="generate", seed=0, num_graphs=50)
    assert fewer.processed_dir != base.processed_dir and len(fewer) == 32
    if NPZ["comm20"].is_file():
        npz = SpectreDataset(tmp_path, split="train", name="comm20", source="npz", path=str(NPZ["comm20"]))
        assert npz.processed_dir not in (base.processed_dir, other_seed.processed_dir)
        assert [signature(g) for g in npz] != [signature(g) for g in base]


@pytest.mark.parametrize("kw, err, msg", [
    ({"name": "grid"}, ValueError, "unknown name"),
    ({"name": "planar", "source": "web"}, ValueError, "unknown source"),
    ({"name": "planar", "source": "npz"}, ValueError, "needs path"),
    ({"name": "planar", "source": "npz", "path": "/nonexistent/x.npz"}, FileNotFoundError, "does not exist"),
    ({"name": "planar", "path": "x.npz"}, ValueError, "only used with source='npz'"),
    ({"name": "planar", "num_graphs": 3}, ValueError, "num_graphs"),
    ({"name": "planar", "split": "dev"}, ValueError, "unknown split"),
])
def test_bad_arguments(tmp_path, kw, err, msg):
    with pytest.raises(err, match=msg):
        SpectreDataset(tmp_path, **kw)
    with pytest.raises(ValueError, match="is the 'planar' dataset"):
        PlanarDataset(tmp_path, name="sbm")


# ---------------------------------------------------------------------------- shipped benchmark graphs
@pytest.mark.parametrize("name, fname, total", [("planar", "planar.npz", 200), ("sbm", "sbm.npz", 200),
                                                ("comm20", "community20.npz", 100)])
def test_benchmark_graphs_are_the_default_source(tmp_path, name, fname, total):
    """With no source=, a SPECTRE dataset is the shipped benchmark graphs in DiGress's split."""
    splits = all_splits(tmp_path, name=name)
    assert all(ds.source == "benchmark" for ds in splits.values())
    shipped = spectre.benchmark_graphs(name)
    assert len(shipped) == total
    idx = digress_split_indices(total)
    bench = spectre.benchmark_splits(name)
    for s, ds in splits.items():
        assert [signature(g) for g in ds] == [signature(shipped[i]) for i in idx[s]]
        assert [signature(g) for g in bench[s]] == [signature(g) for g in ds]
    reference = SHARED_DATA / "spectre" / fname if SHARED_DATA is not None else None
    if reference is not None and reference.is_file():  # the offline reference copy, where it lies beside the repo
        assert [signature(g) for g in spectre.load_npz_graphs(str(reference))] == [signature(g) for g in shipped]
    import yaml

    cfg = yaml.safe_load((REPO / "configs" / "dataset" / f"{name}.yaml").read_text())
    assert cfg["params"]["source"] == "benchmark"
    with pytest.raises(ValueError, match="path= is only used with source='npz'"):
        SpectreDataset(tmp_path, name=name, source="benchmark", path=str(spectre.benchmark_path(name)))


def test_shipped_graphs_carry_licence_provenance_and_package_data():
    """The shipped files match the hashes in PROVENANCE.md, and pyproject's package-data lists all of them."""
    import hashlib
    import glob
    import tomllib

    folder = Path(spectre.BENCHMARK_DIR)
    provenance = (folder / "PROVENANCE.md").read_text()
    licence = (folder / "LICENSE").read_text()
    assert licence.count("MIT License") == 2 and "Copyright (c) 2022 KarolisMart" in licence
    for fname in spectre.BENCHMARK_FILES.values():
        digest = hashlib.sha256((folder / fname).read_bytes()).hexdigest()
        assert f"`{fname}`" in provenance and digest in provenance, fname
    repo = REPO
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["sympe.datasets"]
    package_dir = repo / pyproject["tool"]["setuptools"]["package-dir"]["sympe.datasets"]
    # compared relative to the package folder, so that the check holds for an editable and a regular install
    matched = {Path(f).resolve().relative_to(package_dir.resolve()) for p in patterns for f in glob.glob(str(package_dir / p))}
    package_root = Path(spectre.__file__).resolve().parents[1]  # the sympe.datasets folder (spectre is in sources/)
    for f in [*spectre.BENCHMARK_FILES.values(), "LICENSE", "PROVENANCE.md"]:
        assert (folder / f).resolve().relative_to(package_root) in matched, f
