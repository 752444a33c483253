"""sympe.diffusion.benchmarking.steps and .sampling on a tiny DiscreteDiffusion (CPU)."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from sympe.diffusion.benchmarking import ReverseSteps, autocast_bf16, time_sampling, train_step
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.runs.model import DiscreteDiffusion
from sympe.diffusion.runs.schema import model_arguments

T = 6


def tiny_model() -> DiscreteDiffusion:
    torch.manual_seed(0)
    info = DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "edge"], node_marginals=[0.6, 0.4],
                       edge_marginals=[0.7, 0.3], n_nodes_dist=[0, 0, 0, 0, 0.5, 0.5], max_nodes=5, num_train_graphs=2)
    network = {"n_layers": 1, "hidden_mlp_dims": {"X": 8, "E": 8, "y": 8},
               "hidden_dims": {"dx": 8, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 8, "dim_ffE": 8, "dim_ffy": 8},
               "features": "cycles"}
    return DiscreteDiffusion(info.to_dict(), **model_arguments({**network, "diffusion": {"T": T}}))


def batch() -> Batch:
    g = Data(x=torch.eye(2)[[0, 1, 0, 1, 0]], edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
             edge_attr=torch.eye(2)[[1, 1, 1, 1]], num_nodes=5)
    return Batch.from_data_list([g, g])


def grad_norm(model) -> float:
    return float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])))


def test_train_step_updates_the_parameters_and_clips_the_gradient():
    model = tiny_model().train()
    opt = model.configure_optimizers()
    before = [p.detach().clone() for p in model.parameters()]
    loss = train_step(model, opt, batch(), clip_norm=None)
    assert loss.dim() == 0 and torch.isfinite(loss) and not loss.requires_grad
    assert grad_norm(model) > 1e-3
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    train_step(model, opt, batch(), clip_norm=1e-4)
    assert grad_norm(model) <= 1e-4 * (1 + 1e-4)


def test_reverse_steps_walk_the_full_chain_and_restart():
    model = tiny_model().eval()
    sizes = torch.tensor([4, 5, 5])
    chain = ReverseSteps(model, sizes)
    assert chain.t == T and chain.z.node_mask.sum(1).tolist() == [4, 5, 5]
    for k in range(T):
        chain.step(k)
        chain.z.validate()
    assert chain.t == 0
    chain.step()
    assert chain.t == T - 1


def counting(model):
    calls = {"n": 0}
    real = model.model_fn

    def fn(*a, **kw):
        calls["n"] += 1
        return real(*a, **kw)

    model.model_fn = fn
    return calls


@pytest.mark.parametrize("timed,expected_calls", [(None, T + 1), (2, 2 + 2)])
def test_sampling_time_runs_only_the_steps_it_times(timed, expected_calls):
    """All T steps + the decode; or a 1-step warm-up run (2 network calls) and ``timed`` steps, extrapolated."""
    model = tiny_model()
    calls = counting(model)
    seconds = time_sampling(model, 3, "cpu", T, timed)
    assert seconds > 0 and not model.training
    assert calls["n"] == expected_calls


def test_bf16_autocast_only_on_cuda():
    with autocast_bf16("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast_bf16("cuda", enabled=False):
        assert not torch.is_autocast_enabled("cuda")
