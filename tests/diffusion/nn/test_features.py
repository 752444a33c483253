"""Structural (sympe.diffusion.nn.features) and molecular (sympe.diffusion.nn.molecular_features) features."""
import networkx as nx
import numpy as np
import pytest
import torch

from sympe.diffusion.nn.features import (
    ExtraFeatures,
    cycle_counts,
    laplacian_features,
    noisy_adjacency,
    normalize_cycle_counts,
    rrwp_features,
)
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.nn.molecular_features import MolecularFeatures

N_PAD = 11


def random_padded_batch(seed: int, B: int = 6, de: int = 3, dx: int = 4, n_max: int = 9, p_range=(0.15, 0.8)):
    """Padded batch whose real nodes sit at random positions among N_PAD slots.

    Returns (graph, list of (positions, networkx graph on 0..k-1)).
    """
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = torch.zeros(B, N_PAD, dtype=torch.long)
    E = torch.zeros(B, N_PAD, N_PAD, dtype=torch.long)
    mask = torch.zeros(B, N_PAD, dtype=torch.bool)
    graphs = []
    for b in range(B):
        k = int(rng.integers(1, n_max + 1)) if b else n_max  # first graph is the largest
        pos = torch.randperm(N_PAD, generator=g)[:k]
        p = rng.uniform(*p_range)
        G = nx.gnp_random_graph(k, p, seed=int(rng.integers(1 << 30)))
        mask[b, pos] = True
        X[b, pos] = torch.randint(0, dx, (k,), generator=g)
        for u, v in G.edges():
            c = int(rng.integers(1, de))
            E[b, pos[u], pos[v]] = c
            E[b, pos[v], pos[u]] = c
        graphs.append((pos, G))
    return DenseGraph.from_indices(X, E, mask, dx, de).validate(), graphs


def with_padding_garbage(graph: DenseGraph, seed: int) -> DenseGraph:
    """Random values (not one-hot) on every padded node and on every pair touching a padded node."""
    g = torch.Generator().manual_seed(seed)
    pad = ~graph.node_mask
    pair_pad = pad.unsqueeze(2) | pad.unsqueeze(1)
    X = torch.where(pad.unsqueeze(-1), torch.randn(graph.X.shape, generator=g), graph.X)
    E = torch.where(pair_pad.unsqueeze(-1), torch.randn(graph.E.shape, generator=g), graph.E)
    return DenseGraph(X, E, graph.y, graph.node_mask)


def random_perm(B: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=g) for _ in range(B)])


def gather_nodes(t: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    b = torch.arange(t.shape[0]).unsqueeze(1)
    return t[b, perm]


def gather_pairs(t: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    b = torch.arange(t.shape[0]).view(-1, 1, 1)
    return t[b, perm.unsqueeze(2), perm.unsqueeze(1)]


def brute_cycles(G: nx.Graph, k: int):
    node = np.zeros(G.number_of_nodes())
    total = 0
    for c in nx.simple_cycles(G, length_bound=k):
        if len(c) == k:
            total += 1
            node[list(c)] += 1
    return node, total


# ---------------------------------------------------------------------------------------- cycles
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cycle_counts_match_brute_force(seed):
    graph, graphs = random_padded_batch(seed, B=8)
    node, total = cycle_counts(noisy_adjacency(graph).double(), graph.node_mask)
    assert node.shape == (8, N_PAD, 3) and total.shape == (8, 4)
    assert torch.all(node[~graph.node_mask] == 0)
    for b, (pos, G) in enumerate(graphs):
        for col, k in enumerate([3, 4, 5]):
            bn, _ = brute_cycles(G, k)
            np.testing.assert_allclose(node[b, pos, col].numpy(), bn, atol=1e-9, err_msg=f"node c{k}, graph {b}")
        for col, k in enumerate([3, 4, 5, 6]):
            _, bt = brute_cycles(G, k)
            assert abs(float(total[b, col]) - bt) < 1e-9, f"graph c{k}, graph {b}: {float(total[b, col])} vs {bt}"


def test_cycle_counts_known_graphs():
    # K5: C(5,3)=10 triangles, 15 4-cycles, 12 5-cycles; 6-cycles 0. Each node: 6, 12, 12.
    # C6: a single 6-cycle. Petersen would be too big for N_PAD; K_{3,3}: 9 4-cycles, 6 6-cycles.
    cases = [(nx.complete_graph(5), [6, 12, 12], [10, 15, 12, 0]),
             (nx.cycle_graph(6), [0, 0, 0], [0, 0, 0, 1]),
             (nx.complete_bipartite_graph(3, 3), [0, 6, 0], [0, 9, 0, 6])]
    for G, node_expected, graph_expected in cases:
        A = torch.tensor(nx.to_numpy_array(G), dtype=torch.float64).unsqueeze(0)
        mask = torch.ones(1, A.shape[1], dtype=torch.bool)
        node, total = cycle_counts(A, mask)
        assert torch.allclose(node[0], torch.tensor(node_expected, dtype=torch.float64).expand_as(node[0]))
        assert total[0].tolist() == graph_expected


def test_normalize_cycle_counts():
    c = torch.tensor([0.0, 5.0, 10.0, 37.0])
    assert normalize_cycle_counts(c).tolist() == [0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError):
        normalize_cycle_counts(c, scale=0.0)


# ---------------------------------------------------------------------------------------- spectral
@pytest.mark.parametrize("seed", [0, 1])
def test_spectral_features_match_networkx_and_numpy(seed):
    graph, graphs = random_padded_batch(seed, B=8, p_range=(0.05, 0.5))
    k_eig, k_vec = 4, 3
    spec = laplacian_features(noisy_adjacency(graph).double(), graph.node_mask, k_eig=k_eig, k_eigvec=k_vec)
    assert spec["n_components"].shape == (8, 1) and spec["eigenvalues"].shape == (8, k_eig)
    assert spec["eigenvectors"].shape == (8, N_PAD, k_vec) and spec["lcc"].shape == (8, N_PAD, 1)
    for b, (pos, G) in enumerate(graphs):
        ncc = nx.number_connected_components(G)
        assert int(spec["n_components"][b]) == ncc
        L = nx.laplacian_matrix(G, nodelist=range(G.number_of_nodes())).toarray().astype(float)
        ev = np.linalg.eigvalsh(L)
        nonzero = ev[ncc:]
        expected = np.zeros(k_eig)
        expected[: min(k_eig, len(nonzero))] = nonzero[:k_eig]
        np.testing.assert_allclose(spec["eigenvalues"][b].numpy(), expected, atol=1e-8)
        # eigenvectors: unit, L v = λ v on the real nodes, zero on padding (0 columns where absent)
        V = spec["eigenvectors"][b]
        assert torch.all(V[~graph.node_mask[b]] == 0)
        for j in range(k_vec):
            v = V[pos, j].numpy()
            if j < len(nonzero):
                assert abs(np.linalg.norm(v) - 1) < 1e-8
                np.testing.assert_allclose(L @ v, nonzero[j] * v, atol=1e-8)
            else:
                assert np.all(v == 0)
        # largest connected component(s)
        comps = list(nx.connected_components(G))
        big = max(len(c) for c in comps)
        expected_lcc = np.zeros(G.number_of_nodes())
        for c in comps:
            if len(c) == big:
                expected_lcc[list(c)] = 1
        np.testing.assert_array_equal(spec["lcc"][b, pos, 0].numpy(), expected_lcc)
        assert torch.all(spec["lcc"][b][~graph.node_mask[b]] == 0)


def test_spectral_isolated_nodes_and_ties():
    # two disjoint triangles and an isolated node: 3 components, both triangles are "largest"
    G = nx.disjoint_union(nx.complete_graph(3), nx.complete_graph(3))
    G.add_node(6)
    A = torch.zeros(1, 9, 9, dtype=torch.float64)
    A[0, :7, :7] = torch.tensor(nx.to_numpy_array(G))
    mask = torch.arange(9).unsqueeze(0) < 7
    spec = laplacian_features(A, mask, k_eig=6, k_eigvec=1)
    assert int(spec["n_components"]) == 3
    assert spec["lcc"][0, :, 0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 0]
    # non-zero eigenvalues of two triangles: 3, 3, 3, 3; then "absent"
    np.testing.assert_allclose(spec["eigenvalues"][0].numpy(), [3, 3, 3, 3, 0, 0], atol=1e-9)


# ---------------------------------------------------------------------------------------- RRWP
def test_rrwp_matches_numpy():
    graph, graphs = random_padded_batch(5, B=6)
    steps = 5
    node, edge = rrwp_features(noisy_adjacency(graph).double(), graph.node_mask, steps, edges=True)
    assert node.shape == (6, N_PAD, steps) and edge.shape == (6, N_PAD, N_PAD, steps)
    assert torch.allclose(edge, edge.transpose(1, 2))
    assert torch.all(torch.diagonal(edge, dim1=1, dim2=2) == 0)
    for b, (pos, G) in enumerate(graphs):
        A = nx.to_numpy_array(G, nodelist=range(G.number_of_nodes()))
        d = A.sum(1)
        P = np.divide(A, d[:, None], out=np.zeros_like(A), where=d[:, None] > 0)  # D^-1 A
        Pk = np.eye(len(d))
        for k in range(steps):
            Pk = Pk @ P
            np.testing.assert_allclose(node[b, pos, k].numpy(), np.diag(Pk), atol=1e-10)
            # symmetric edge channel: sqrt(d_i / d_j) (P^k)_ij off the diagonal
            with np.errstate(divide="ignore", invalid="ignore"):
                Sk = np.sqrt(np.outer(d, 1 / d)) * Pk
            Sk[~np.isfinite(Sk)] = 0
            np.fill_diagonal(Sk, 0)
            got = edge[b][pos][:, pos][..., k].numpy()
            np.testing.assert_allclose(got, Sk, atol=1e-10)
        assert torch.all(node[b][~graph.node_mask[b]] == 0)


# ---------------------------------------------------------------------------------------- ExtraFeatures
ALL_CONFIGS = [
    dict(kind="all", max_nodes=N_PAD),
    dict(kind="all", k_eig=3, k_eigvec=4, normalize_cycles=False),
    dict(kind="cycles", max_nodes=20),
    dict(kind="eigenvalues", max_nodes=N_PAD, k_eig=2),
    dict(kind="rrwp", rrwp_steps=4, rrwp_edges=True, max_nodes=N_PAD),
    dict(kind="rrwp", rrwp_steps=3),
    dict(kind="none"),
]


@pytest.mark.parametrize("cfg", ALL_CONFIGS, ids=lambda c: str(c))
def test_extra_features_dims_and_padding(cfg):
    graph, _ = random_padded_batch(11, B=5)
    f = ExtraFeatures(**cfg)
    x, e, y = f(graph)
    kx, ke, ky = f.dims()
    assert x.shape == (5, N_PAD, kx) and e.shape == (5, N_PAD, N_PAD, ke) and y.shape == (5, ky)
    assert torch.all(x[~graph.node_mask] == 0)
    assert torch.all(e[~graph.edge_mask] == 0)
    # garbage in the padding changes nothing at all (padding outputs stay zero too)
    x2, e2, y2 = f(with_padding_garbage(graph, 3))
    assert torch.allclose(x, x2, atol=1e-6) and torch.allclose(e, e2, atol=1e-6) and torch.allclose(y, y2, atol=1e-6)


def test_extra_features_dims_digress_widths():
    assert ExtraFeatures("all", max_nodes=9).dims() == (6, 0, 11)
    assert ExtraFeatures("eigenvalues", max_nodes=9).dims() == (3, 0, 11)
    assert ExtraFeatures("cycles", max_nodes=9).dims() == (3, 0, 5)
    assert ExtraFeatures("none", max_nodes=9).dims() == (0, 0, 0)


@pytest.mark.parametrize("cfg", ALL_CONFIGS, ids=lambda c: str(c))
def test_extra_features_permutation_equivariance(cfg):
    graph, _ = random_padded_batch(21, B=6)
    graph = DenseGraph(graph.X.double(), graph.E.double(), graph.y.double(), graph.node_mask)
    f = ExtraFeatures(**cfg)
    x, e, y = f(graph)
    perm = random_perm(graph.batch_size, N_PAD, 4)  # mixes real and padded slots
    xp, ep, yp = f(graph.permute(perm))
    assert torch.allclose(yp, y, atol=1e-8)
    assert torch.allclose(ep, gather_pairs(e, perm), atol=1e-8)
    if cfg["kind"] != "all":
        assert torch.allclose(xp, gather_nodes(x, perm), atol=1e-8)
        return
    # "all": everything but the eigenvectors is exactly equivariant; eigenvectors of simple
    # eigenvalues are equivariant up to sign.
    n_vec = cfg.get("k_eigvec", 2)
    fixed = x.shape[-1] - n_vec
    assert torch.allclose(xp[..., :fixed], gather_nodes(x[..., :fixed], perm), atol=1e-8)
    spec = laplacian_features(noisy_adjacency(graph), graph.node_mask, k_eig=N_PAD, k_eigvec=0)
    ev = spec["eigenvalues"]  # all non-zero eigenvalues, 0 = absent
    vec, vec_p = gather_nodes(x[..., fixed:], perm), xp[..., fixed:]
    checked = 0
    for b in range(graph.batch_size):
        vals = ev[b][ev[b] > 0]
        for j in range(min(n_vec, len(vals))):
            gaps = (vals - vals[j]).abs()
            gaps[j] = float("inf")
            if gaps.min() > 1e-6:  # simple eigenvalue: unique up to sign
                s = torch.sign((vec[b, :, j] * vec_p[b, :, j]).sum())
                assert torch.allclose(vec_p[b, :, j], s * vec[b, :, j], atol=1e-8)
                checked += 1
    assert checked > 0


def test_extra_features_channel_layout():
    graph, _ = random_padded_batch(13, B=5)
    A = noisy_adjacency(graph).double()
    cx, cy = cycle_counts(A, graph.node_mask)
    spec = laplacian_features(A, graph.node_mask, k_eig=3, k_eigvec=2)
    x, e, y = ExtraFeatures("all", k_eig=3, k_eigvec=2, max_nodes=N_PAD)(graph)
    expected_x = torch.cat([normalize_cycle_counts(cx), spec["lcc"], spec["eigenvectors"]], -1).float()
    n_real = graph.node_mask.sum(-1, keepdim=True).double() / N_PAD
    expected_y = torch.cat([n_real, normalize_cycle_counts(cy), spec["n_components"], spec["eigenvalues"]], -1).float()
    assert torch.allclose(y, expected_y, atol=1e-6)
    assert torch.allclose(x[..., :4], expected_x[..., :4], atol=1e-6)
    assert torch.allclose(x[..., 4:].abs(), expected_x[..., 4:].abs(), atol=1e-5)  # eigenvector signs
    x_raw, _, y_raw = ExtraFeatures("cycles", normalize_cycles=False)(graph)
    assert torch.allclose(x_raw, cx.float()) and torch.allclose(y_raw, cy.float())
    xr, er, yr = ExtraFeatures("rrwp", rrwp_steps=3, rrwp_edges=True)(graph)
    node, edge = rrwp_features(A, graph.node_mask, 3, edges=True)
    assert torch.allclose(xr, node.float(), atol=1e-6) and torch.allclose(er, edge.float(), atol=1e-6)
    assert yr.shape == (5, 0)


def test_extra_features_bad_input():
    with pytest.raises(ValueError, match="kind"):
        ExtraFeatures("spectral")
    with pytest.raises(ValueError, match="rrwp_steps"):
        ExtraFeatures("rrwp", rrwp_steps=0)
    with pytest.raises(ValueError, match="max_nodes"):
        ExtraFeatures("all", max_nodes=0)
    with pytest.raises(ValueError, match="node_mask"):
        cycle_counts(torch.zeros(2, 4, 4), torch.ones(2, 4))


def test_extra_features_node_count_channel():
    graph, graphs = random_padded_batch(8, B=4)
    _, _, y = ExtraFeatures("cycles", max_nodes=20)(graph)
    expected = torch.tensor([G.number_of_nodes() / 20 for _, G in graphs])
    assert torch.allclose(y[:, 0], expected)


# ---------------------------------------------------------------------------------------- molecular
def test_molecular_valency_uses_real_bond_orders():
    # classes: 0 none, 1 single, 2 double, 3 triple, 4 aromatic
    orders = [0.0, 1.0, 2.0, 3.0, 1.5]
    weights = [12.011, 14.007, 15.999]  # C, N, O
    n = 6
    X = torch.tensor([[0, 0, 2, 1, 0, 0]])
    E = torch.zeros(1, n, n, dtype=torch.long)
    for i, j, c in [(0, 1, 4), (1, 2, 2), (0, 3, 1), (3, 4, 3)]:
        E[0, i, j] = E[0, j, i] = c
    mask = torch.tensor([[True, True, True, True, True, False]])
    E[0, 4, 5] = E[0, 5, 4] = 3  # touches padding: must not count (from_indices masks it anyway)
    graph = DenseGraph.from_indices(X, E, mask, dx=3, de=5)
    feats = MolecularFeatures(orders, weights, 150.0)
    val, w = feats(graph)
    assert val.shape == (1, n, 1) and w.shape == (1, 1)
    assert val[0, :, 0].tolist() == [2.5, 3.5, 2.0, 4.0, 3.0, 0.0]
    expected_w = (3 * 12.011 + 14.007 + 15.999) / 150  # real nodes C, C, O, N, C
    assert abs(float(w) - expected_w) < 1e-5
    # padding garbage and permutations
    val2, w2 = feats(with_padding_garbage(graph, 1))
    assert torch.allclose(val2, val) and torch.allclose(w2, w)
    perm = torch.tensor([[3, 5, 0, 2, 4, 1]])
    valp, wp = feats(graph.permute(perm))
    assert torch.allclose(valp, gather_nodes(val, perm)) and torch.allclose(wp, w)


def test_molecular_features_bad_input():
    with pytest.raises(ValueError, match="bond_orders\\[0\\]"):
        MolecularFeatures([1.0, 2.0], [12.0], 150.0)
    with pytest.raises(ValueError, match="DatasetInfo.max_weight"):
        MolecularFeatures([0.0, 1.0], [12.0], None)
    graph, _ = random_padded_batch(0, B=2, de=3, dx=4)
    with pytest.raises(ValueError, match="edge classes"):
        MolecularFeatures([0.0, 1.0], [1.0] * 4, 150.0)(graph)
    with pytest.raises(ValueError, match="node classes"):
        MolecularFeatures([0.0, 1.0, 2.0], [1.0] * 3, 150.0)(graph)


def test_molecular_weight_scale_comes_from_dataset_info():
    """The network divides the molecular weight by the dataset's ``DatasetInfo.max_weight``, not a constant."""
    from sympe.diffusion.info import DatasetInfo
    from sympe.diffusion.nn.denoiser import DenoisingNetwork

    def info(max_weight):
        return DatasetInfo(name="mol", node_classes=["C", "O"], edge_classes=["none", "single"],
                           node_marginals=[0.5, 0.5], edge_marginals=[0.8, 0.2], n_nodes_dist=[0, 0, 0.5, 0.5],
                           max_nodes=3, is_molecular=True, atom_valencies=[4, 2], atom_weights=[12.0, 16.0],
                           bond_orders=[0.0, 1.0], max_weight=max_weight)

    dims = {"dx": 8, "de": 4, "dy": 4, "n_head": 2, "dim_ffX": 8, "dim_ffE": 4, "dim_ffy": 4}
    graph = DenseGraph.from_indices(torch.tensor([[0, 1, 0]]), torch.zeros(1, 3, 3, dtype=torch.long),
                                    torch.ones(1, 3, dtype=torch.bool), dx=2, de=2)
    weights = []
    for scale in (150.0, 390.0):
        net = DenoisingNetwork(info(scale), T=10, n_layers=1, hidden_mlp_dims={"X": 8, "E": 4, "y": 4},
                               hidden_dims=dims, features="none", dropout=0.0,
                               molecular_features=True, symbreak="none", recompute_attention=True)
        weights.append(float(net.molecular(graph)[1]))
    assert weights == pytest.approx([40.0 / 150.0, 40.0 / 390.0])
    assert info(150.0).fingerprint() != info(390.0).fingerprint()
    with pytest.raises(ValueError, match="max_weight"):
        DenoisingNetwork(info(None), T=10, n_layers=1, hidden_mlp_dims={"X": 8, "E": 4, "y": 4}, hidden_dims=dims,
                         features="none", dropout=0.0, molecular_features=True, symbreak="none",
                         recompute_attention=True)
