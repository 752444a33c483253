"""DenseGraph: PyG round trips, masking, permutation and validation errors; DatasetInfo statistics."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo


def random_pyg_graph(n: int, dx: int, de: int, p: float, gen: torch.Generator) -> Data:
    x = torch.nn.functional.one_hot(torch.randint(0, dx, (n,), generator=gen), dx).float()
    iu = torch.triu_indices(n, n, offset=1)
    keep = torch.rand(iu.shape[1], generator=gen) < p
    iu = iu[:, keep]
    cls = torch.randint(1, de, (iu.shape[1],), generator=gen)
    ei = torch.cat([iu, iu.flip(0)], dim=1)
    ea = torch.nn.functional.one_hot(torch.cat([cls, cls]), de).float()
    return Data(x=x, edge_index=ei, edge_attr=ea, num_nodes=n)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    graphs = [random_pyg_graph(n, 4, 5, 0.4, gen) for n in (5, 1, 9, 3)]
    return Batch.from_data_list(graphs), graphs


def test_from_pyg_is_valid_and_matches_sparse(batch):
    b, graphs = batch
    g = DenseGraph.from_pyg(b).validate()
    assert g.X.shape == (4, 9, 4) and g.E.shape == (4, 9, 9, 5)
    assert g.num_nodes.tolist() == [5, 1, 9, 3]
    Xi, Ei = g.collapse()
    for k, d in enumerate(graphs):
        n = d.num_nodes
        assert torch.equal(Xi[k, :n], d.x.argmax(-1))
        assert (Xi[k, n:] == -1).all()
        dense = torch.zeros(n, n, dtype=torch.long)
        dense[d.edge_index[0], d.edge_index[1]] = d.edge_attr.argmax(-1)
        off = ~torch.eye(n, dtype=torch.bool)
        assert torch.equal(Ei[k, :n, :n][off], dense[off])
        assert (Ei[k].diagonal() == -1).all()


def test_pyg_round_trip(batch):
    b, graphs = batch
    g = DenseGraph.from_pyg(b)
    back = g.to_pyg()
    g2 = DenseGraph.from_pyg(back)
    assert torch.equal(g.X, g2.X) and torch.equal(g.E, g2.E) and torch.equal(g.node_mask, g2.node_mask)
    assert back.edge_index.shape[1] == b.edge_index.shape[1]


def test_from_indices_inverts_collapse(batch):
    b, _ = batch
    g = DenseGraph.from_pyg(b)
    Xi, Ei = g.collapse(fill=0)
    g2 = DenseGraph.from_indices(Xi, Ei, g.node_mask, 4, 5).validate()
    assert torch.equal(g.X, g2.X) and torch.equal(g.E, g2.E)


def test_permute_commutes_with_collapse(batch):
    b, _ = batch
    g = DenseGraph.from_pyg(b)
    perm = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(s)) for s in range(4)])
    gp = g.permute(perm)
    Xi, Ei = g.collapse()
    Xp, Ep = gp.collapse()
    for k in range(4):
        p = perm[k]
        assert torch.equal(Xp[k], Xi[k][p])
        assert torch.equal(Ep[k], Ei[k][p][:, p])


def test_pair_mask_against_brute_force(batch):
    b, graphs = batch
    g = DenseGraph.from_pyg(b)
    upper, both = g.pair_mask(upper=True), g.pair_mask()
    assert torch.equal(both, g.edge_mask)
    for k, d in enumerate(graphs):
        for i in range(g.max_nodes):
            for j in range(g.max_nodes):
                real = i < d.num_nodes and j < d.num_nodes and i != j
                assert bool(both[k, i, j]) == real
                assert bool(upper[k, i, j]) == (real and i < j)
    # every undirected pair exactly once
    assert torch.equal(upper | upper.transpose(1, 2), both) and not bool((upper & upper.transpose(1, 2)).any())
    # from_indices reads only the upper triangle: junk below the diagonal is ignored
    Xi, Ei = g.collapse(fill=0)
    junk = torch.where(upper.transpose(1, 2), torch.full_like(Ei, 3), Ei)
    g2 = DenseGraph.from_indices(Xi, junk, g.node_mask, 4, 5)
    assert torch.equal(g2.E, g.E)


def test_mask_zeroes_padding_and_diagonal(batch):
    b, _ = batch
    g = DenseGraph.from_pyg(b)
    dirty = DenseGraph(g.X + 1.0, g.E + 1.0, g.y, g.node_mask)
    clean = dirty.mask()
    assert (clean.X[~g.node_mask] == 0).all()
    assert (clean.E.diagonal(dim1=1, dim2=2) == 0).all()
    assert (clean.E[~g.edge_mask] == 0).all()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        ("asym", "not symmetric in graph 2"),
        ("diag", "non-zero diagonal in graph 2"),
        ("pad_x", "padded nodes of graph 3"),
        ("pad_e", "padded node pairs of graph 3"),
        ("x_not_onehot", "X row of node 1 in graph 2"),
        ("e_not_onehot", "E[0, 4] in graph 2"),
    ],
)
def test_validate_names_the_failed_invariant_and_graph(batch, corrupt, message):
    b, _ = batch
    g = DenseGraph.from_pyg(b).clone()
    if corrupt == "asym":
        g.E[2, 0, 1] = torch.nn.functional.one_hot(torch.tensor(4), 5).float()
        g.E[2, 1, 0] = torch.nn.functional.one_hot(torch.tensor(3), 5).float()
    elif corrupt == "diag":
        g.E[2, 3, 3, 0] = 1.0
    elif corrupt == "pad_x":
        g.X[3, 5, 0] = 1.0
    elif corrupt == "pad_e":
        g.E[3, 0, 6, 1] = 1.0
        g.E[3, 6, 0, 1] = 1.0
    elif corrupt == "x_not_onehot":
        g.X[2, 1] = 0.0
    elif corrupt == "e_not_onehot":
        g.E[2, 0, 4] = 0.5
        g.E[2, 4, 0] = 0.5
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        g.validate()


def test_from_pyg_requires_edge_attr():
    d = Data(x=torch.eye(2), edge_index=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="edge_attr"):
        DenseGraph.from_pyg(Batch.from_data_list([d]))


def test_dataset_info_marginals_brute_force(batch, tmp_path):
    _, graphs = batch
    info = DatasetInfo.from_graphs(graphs, "toy", list("abcd"), ["none", "s", "d", "t", "ar"])
    assert abs(sum(info.node_marginals) - 1) < 1e-9 and abs(sum(info.edge_marginals) - 1) < 1e-9
    # brute force over unordered pairs of the dense graphs
    g = DenseGraph.from_pyg(Batch.from_data_list(graphs))
    _, Ei = g.collapse()
    iu = torch.triu_indices(9, 9, offset=1)
    pairs = Ei[:, iu[0], iu[1]]
    pairs = pairs[pairs >= 0]
    expected = torch.bincount(pairs, minlength=5).double() / pairs.numel()
    assert torch.allclose(torch.tensor(info.edge_marginals, dtype=torch.float64), expected)
    Xi, _ = g.collapse()
    xs = Xi[Xi >= 0]
    assert torch.allclose(torch.tensor(info.node_marginals, dtype=torch.float64),
                          torch.bincount(xs, minlength=4).double() / xs.numel())
    assert info.max_nodes == 9 and info.n_nodes_dist[1] == 0.25 and info.n_nodes_dist[0] == 0
    info.save(tmp_path / "info.json")
    again = DatasetInfo.load(tmp_path / "info.json")
    assert again == info and again.fingerprint() == info.fingerprint()
