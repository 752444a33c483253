"""`PropertyRegressor`: graph-level properties predicted from a clean graph, the oracle that scores samples on
properties no exact tool computes (QM9's μ and HOMO).

    (x: DenseGraph, clean one-hot) -> (B, P) standardised property values

The inputs are those of the denoiser at a clean graph (node / edge classes, the structural features of
:mod:`~sympe.diffusion.nn.features`, the molecular features), without time or symmetry breaker; the graph transformer's
graph stream ends in a head of width P. It is permutation invariant: its features and layers are equivariant and the
graph stream pools over nodes.
"""
from __future__ import annotations

import torch
from torch import nn

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.features import ExtraFeatures
from sympe.diffusion.nn.molecular_features import MolecularFeatures
from sympe.diffusion.nn.transformer import GraphTransformer


class PropertyRegressor(nn.Module):
    """Args: ``info`` (the dataset's statistics), ``num_outputs`` (P), ``n_layers``, ``hidden_mlp_dims``,
    ``hidden_dims`` (DiGress's names, as the denoiser), ``features`` (structural feature kind), ``dropout``."""

    def __init__(self, info: DatasetInfo, num_outputs: int, *, n_layers: int, hidden_mlp_dims: dict, hidden_dims: dict,
                 features: str, dropout: float):
        super().__init__()
        if int(num_outputs) < 1:
            raise ValueError(f"PropertyRegressor: num_outputs must be >= 1, got {num_outputs}")
        self.num_outputs = int(num_outputs)
        self.max_nodes = info.max_nodes
        self.features = ExtraFeatures(features, max_nodes=info.max_nodes)
        fx, fe, fy = self.features.dims()
        self.molecular = None
        mx = my = 0
        if info.is_molecular:
            self.molecular = MolecularFeatures(info.bond_orders, info.atom_weights, info.max_weight)
            mx, my = 1, 1
        dx, de = info.num_node_classes, info.num_edge_classes
        self.transformer = GraphTransformer(
            n_layers=n_layers, input_dims={"X": dx + fx + mx, "E": de + fe, "y": 1 + fy + my},
            hidden_mlp_dims=dict(hidden_mlp_dims), hidden_dims=dict(hidden_dims),
            output_dims={"X": 1, "E": 1, "y": self.num_outputs}, dropout=dropout, recompute_attention=False,
            input_residual=False)

    def forward(self, x: DenseGraph) -> torch.Tensor:
        """(B, P): the standardised predictions for each graph of ``x``."""
        B, n = x.node_mask.shape
        if n > self.max_nodes:
            raise ValueError(f"graphs with {n} nodes exceed the {self.max_nodes} nodes this regressor was built for")
        fx, fe, fy = self.features(x)
        xs, es, ys = [x.X, fx], [x.E, fe], [torch.ones(B, 1, device=x.X.device), fy]
        if self.molecular is not None:
            mx, my = self.molecular(x)
            xs.append(mx)
            ys.append(my)
        return self.transformer(torch.cat(xs, -1), torch.cat(es, -1), torch.cat(ys, -1), x.node_mask)[2]
