"""The property regressor: invariant to node relabelling, learns a property it can see (the number of edges of
random graphs) far better than the mean does, and its file round-trips into an oracle that scores class lists."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from sympe.diffusion.conditioning import ConditionSpec
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.regressor import PropertyRegressor
from sympe.diffusion.runs.property_regressor import PropertyOracle, fit_regressor, mean_abs_error, save_regressor

SMALL = {"n_layers": 2, "hidden_mlp_dims": {"X": 16, "E": 16, "y": 16},
         "hidden_dims": {"dx": 16, "de": 16, "dy": 16, "n_head": 2, "dim_ffX": 16, "dim_ffE": 16, "dim_ffy": 16},
         "features": "cycles", "dropout": 0.0}


def random_graphs(num, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num):
        n = int(torch.randint(4, 9, (1,), generator=g))
        A = torch.triu((torch.rand(n, n, generator=g) < 0.4).long(), 1)
        ei = torch.nonzero(A + A.T).T
        out.append(Data(x=torch.eye(2)[torch.randint(0, 2, (n,), generator=g)], edge_index=ei,
                        edge_attr=torch.tensor([[0.0, 1.0]]).repeat(ei.shape[1], 1), num_nodes=n))
    return out


def info():
    dist = [0.0] * 4 + [0.2] * 5
    return DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "edge"], node_marginals=[0.5, 0.5],
                       edge_marginals=[0.6, 0.4], n_nodes_dist=dist, max_nodes=8, num_train_graphs=100)


def with_edges(graphs, spec):
    y = spec.encode([{"edges": float(d.edge_index.shape[1] // 2)} for d in graphs])
    return [Data(x=d.x, edge_index=d.edge_index, edge_attr=d.edge_attr, num_nodes=d.num_nodes, y=y[i:i + 1])
            for i, d in enumerate(graphs)]


def test_the_regressor_is_invariant_to_relabelling():
    torch.manual_seed(0)
    model = PropertyRegressor(info(), 3, **SMALL).eval()
    x = DenseGraph.from_pyg(next(iter(DataLoader(random_graphs(4, 1), batch_size=4))))
    perm = torch.stack([torch.cat([torch.randperm(int(k)), torch.arange(int(k), x.max_nodes)]) for k in x.num_nodes])
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.permute(perm)), atol=1e-5)


def test_it_learns_a_visible_property_and_its_file_is_an_oracle(tmp_path):
    train, val = random_graphs(400, 2), random_graphs(100, 3)
    spec = ConditionSpec.fit({"edges": [float(d.edge_index.shape[1] // 2) for d in train]}, {"edges": "continuous"}, 0.0)
    tl = DataLoader(with_edges(train, spec), batch_size=32, shuffle=True)
    vl = DataLoader(with_edges(val, spec), batch_size=100)
    model = fit_regressor(info(), spec, tl, vl, steps=300, lr=3e-3, network=SMALL, val_every=100, log=lambda s: None)
    mae = mean_abs_error(model, vl, spec)[0]
    truth = np.array([d.edge_index.shape[1] // 2 for d in val], dtype=float)
    assert mae < 0.35 * np.abs(truth - spec.property("edges").mean).mean()
    save_regressor(tmp_path / "r.pt", model, info(), spec, SMALL, {"test_mae": {"edges": mae}})
    oracle = PropertyOracle(tmp_path / "r.pt")
    lists = []
    for d in val[:10]:
        A = np.zeros((d.num_nodes, d.num_nodes), dtype=np.int64)
        A[d.edge_index[0], d.edge_index[1]] = 1
        lists.append((d.x.argmax(-1).numpy(), A))
    got = oracle("edges", ["valid"] * 9 + [None], lists)
    assert got[-1] is None and np.abs(np.array(got[:9]) - truth[:9]).mean() < 3 * mae + 0.5
    with pytest.raises(ValueError, match="predicts \\['edges'\\]"):
        oracle("mu", None, lists)
    torch.save({"kind": "other"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a sympe property regressor"):
        PropertyOracle(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="no such file") as err:
        PropertyOracle(tmp_path / "missing.pt")
    assert err.value.user_error
