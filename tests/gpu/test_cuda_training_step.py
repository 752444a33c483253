"""One training step of a small DiscreteDiffusion on the device under bf16 autocast: the matrix products run in
bf16, the loss and every gradient are finite and not all zero, and the optimizer step keeps the weights finite."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from sympe.diffusion.benchmarking import train_step
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.runs.model import DiscreteDiffusion

pytestmark = pytest.mark.cuda


def model(symbreak: str) -> DiscreteDiffusion:
    torch.manual_seed(0)
    info = DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "single", "double"],
                       node_marginals=[0.6, 0.4], edge_marginals=[0.7, 0.2, 0.1],
                       n_nodes_dist=[0, 0, 0, 0, 0, 0, 0.5, 0.5], max_nodes=7, num_train_graphs=8)
    network = {"n_layers": 2, "hidden_mlp_dims": {"X": 32, "E": 16, "y": 16},
               "hidden_dims": {"dx": 32, "de": 16, "dy": 16, "n_head": 4, "dim_ffX": 32, "dim_ffE": 16, "dim_ffy": 16},
               "features": "cycles", "symbreak": symbreak}
    return DiscreteDiffusion(info.to_dict(), network=network, diffusion={"T": 50})


def batch(B=8) -> Batch:
    gen = torch.Generator().manual_seed(0)
    graphs = []
    for b in range(B):
        n = 6 + b % 2
        src = torch.arange(n - 1)
        ei = torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])
        bond = torch.randint(1, 3, (n - 1,), generator=gen).repeat(2)
        graphs.append(Data(x=torch.eye(2)[torch.randint(0, 2, (n,), generator=gen)], edge_index=ei,
                           edge_attr=torch.eye(3)[bond], num_nodes=n))
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("symbreak", ["none", "sympe"])
def test_bf16_autocast_training_step_is_finite(device, symbreak):
    m = model(symbreak).to(device).train()
    opt = m.configure_optimizers()
    dtypes = set()
    hooks = [mod.register_forward_hook(lambda mod, i, o: dtypes.add(o.dtype))
             for mod in m.network.modules() if isinstance(mod, torch.nn.Linear)]
    loss = train_step(m, opt, batch(), device=device, clip_norm=1.0, bf16=True)
    for h in hooks:
        h.remove()
    if device.type == "cuda":
        assert torch.bfloat16 in dtypes, dtypes  # autocast was on: the linear layers ran in bf16
    assert torch.isfinite(loss), loss
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(torch.isfinite(p).all() for p in m.parameters())
