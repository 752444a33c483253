"""A conditional DiscreteDiffusion: the network reads y and stays equivariant with it, training drops the condition,
the NLL is that of p(x | y) (and says so), sampling carries the targets, and an unconditional model refuses them."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from sympe.diffusion.conditioning import ConditionSpec
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.runs.model import DiscreteDiffusion, upgrade_hparams
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.runs.schema import model_arguments

NETWORK = {"n_layers": 1, "hidden_mlp_dims": {"X": 8, "E": 8, "y": 8},
           "hidden_dims": {"dx": 8, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 8, "dim_ffE": 8, "dim_ffy": 8},
           "features": "cycles"}


def tiny_info(max_nodes=6) -> DatasetInfo:
    dist = [0.0] * (max_nodes - 1) + [0.5, 0.5]
    return DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "edge"], node_marginals=[0.6, 0.4],
                       edge_marginals=[0.7, 0.3], n_nodes_dist=dist, max_nodes=max_nodes, num_train_graphs=2)


def tiny_model() -> DiscreteDiffusion:
    return DiscreteDiffusion(tiny_info().to_dict(), **model_arguments({**NETWORK, "diffusion": {"T": 10}}))


def spec():
    return ConditionSpec.fit({"size": [4.0, 5.0, 6.0, 5.0], "kind": ["x", "y", "x", "y"]},
                             {"size": "continuous", "kind": "categorical"}, 0.1)


def conditional_model(symbreak="none", **eval_opts):
    network = {**NETWORK, "symbreak": symbreak, "condition": ["size", "kind"]}
    args = model_arguments({**network, "diffusion": {"T": 10}, "eval": eval_opts})
    assert args["condition"] == {"names": ["size", "kind"], "dropout": 0.1}
    args["condition"] = spec().to_dict()
    return DiscreteDiffusion(tiny_info().to_dict(), **args)


def batch(y):
    data = []
    for k, n in enumerate((5, 6, 6)):
        X = torch.eye(2)[torch.arange(n) % 2]
        ei = torch.tensor([list(range(n - 1)) + list(range(1, n)), list(range(1, n)) + list(range(n - 1))])
        data.append(Data(x=X, edge_index=ei, edge_attr=torch.tensor([[0.0, 1.0]]).repeat(ei.shape[1], 1),
                         num_nodes=n, y=y[k:k + 1]))
    return Batch.from_data_list(data)


def test_the_network_reads_y_and_is_equivariant_with_it():
    torch.manual_seed(0)
    model = conditional_model()
    s = model.condition
    x = DenseGraph.from_pyg(batch(s.encode([{"size": 4.0, "kind": "x"}, {"size": 6.0}, {}])))
    t = torch.tensor([2, 5, 9])
    lx, le = model.network(x, t)
    other = DenseGraph(x.X, x.E, s.encode([{"size": 6.0, "kind": "y"}, {"size": 4.0}, {"kind": "x"}]), x.node_mask)
    lx2, _ = model.network(other, t)
    assert not torch.allclose(lx, lx2)  # the condition reaches the prediction
    gen = torch.Generator().manual_seed(1)
    perm = torch.stack([torch.randperm(6, generator=gen) for _ in range(3)])
    perm[0] = torch.cat([torch.randperm(5, generator=gen), torch.tensor([5])])
    lx3, le3 = model.network(x.permute(perm), t)
    b = torch.arange(3).unsqueeze(1)
    assert torch.allclose(lx3, lx[b, perm], atol=1e-4)
    assert torch.allclose(le3, le[b.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)], atol=1e-4)
    with pytest.raises(ValueError, match="this network is conditional"):
        model.network(DenseGraph(x.X, x.E, torch.zeros(3, 0), x.node_mask), t)


def test_training_drops_the_condition_and_the_nll_is_conditional():
    torch.manual_seed(0)
    model = conditional_model()
    s = model.condition
    b = batch(s.encode([{"size": 4.0, "kind": "x"}] * 3))
    seen = []
    real = model.network.forward
    model.network.forward = lambda z, t, generator=None, ranks=None: (seen.append(z.y.clone()), real(z, t, generator))[1]
    torch.manual_seed(3)
    for _ in range(40):
        model.training_step(b, 0)
    presence = torch.cat(seen)[:, -2:]
    dropped = (presence.sum(1) < 2).float().mean().item()
    assert 0.05 < dropped < 0.5  # P(some property dropped) = 1 - 0.9^3 = 0.27
    model.network.forward = real
    x = model._dense(b)
    nll_y = model.nll(x, generator=torch.Generator().manual_seed(0))["nll"]
    y2 = s.encode([{"size": 6.0, "kind": "y"}] * 3)
    nll_y2 = model.nll(DenseGraph(x.X, x.E, y2, x.node_mask), generator=torch.Generator().manual_seed(0))["nll"]
    assert torch.isfinite(nll_y).all() and not torch.allclose(nll_y, nll_y2)
    assert model.test_nll_key == "test/nll_given_y" and tiny_model().test_nll_key == "test/nll"
    with pytest.raises(ValueError, match="conditional on size, kind"):
        model._dense(batch(torch.zeros(3, 0)))


@pytest.mark.parametrize("symbreak", ["none", "sympe"])
def test_sampling_carries_the_targets_with_and_without_guidance(symbreak):
    torch.manual_seed(0)
    model = conditional_model(symbreak)
    s = model.condition
    rows = [{"size": 4.0 + (k % 3), "kind": "xy"[k % 2]} for k in range(7)]
    y = s.encode(rows)
    for w in (0.0, 2.0):
        out = model.sample(7, batch_size=3, steps=3, generator=torch.Generator().manual_seed(0), condition=y,
                           guidance=w, time_distortion="polydec")
        got = [r for b in out for r in s.decode(b.y)]
        assert sorted(map(str, got)) == sorted(map(str, rows))  # each target once, in the samples' order
        for b in out:
            b.validate()
    with pytest.raises(ValueError, match=r"condition must be \(7, 5\)"):
        model.sample(7, condition=y[:3])
    with pytest.raises(ValueError, match="this model is unconditional"):
        tiny_model().sample(2, condition=torch.zeros(2, 0))


def test_old_checkpoints_are_unconditional():
    assert upgrade_hparams({"network": {}})["condition"] is None
    with pytest.raises(ValueError, match="fitted ConditionSpec"):
        DiscreteDiffusion(tiny_info().to_dict(), **{**model_arguments({"diffusion": {"T": 5}}),
                                                     "condition": {"names": ["a"], "dropout": 0.1}})


@pytest.mark.parametrize("symbreak", ["noise", "sympe"])
def test_both_nll_conventions_and_the_mixture_bound_are_conditional(symbreak):
    torch.manual_seed(0)
    model = conditional_model(symbreak)
    s = model.condition
    x = model._dense(batch(s.encode([{"size": 4.0, "kind": "x"}, {"size": 6.0}, {}])))
    other = DenseGraph(x.X, x.E, s.encode([{"size": 6.0, "kind": "y"}] * 3), x.node_mask)
    for opts in ({"digress_compat": True}, {"digress_compat": False, "mixture_draws": 2}):
        model.set_eval_options(**opts)
        a = model.nll(x, generator=torch.Generator().manual_seed(0))["nll"]
        b = model.nll(other, generator=torch.Generator().manual_seed(0))["nll"]
        assert torch.isfinite(a).all() and not torch.allclose(a, b)
        model.set_eval_options(mixture_draws=0)
