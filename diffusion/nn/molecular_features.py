"""Molecular features of a noisy graph: current valency of each atom and molecular weight.

For a :class:`~sympe.diffusion.graph.DenseGraph` with edge classes whose REAL bond orders are
``bond_orders`` (de,) (class 0 = no edge -> 0; single 1, double 2, triple 3, aromatic 1.5; never
the class index) and node classes with atomic weights ``atom_weights`` (dx,):

* valency (B, n, 1):  ``v_i = Σ_{j real, j != i} Σ_k E_ijk · bond_orders[k]`` (raw, not rescaled),
* weight (B, 1):      ``w = (Σ_{i real} Σ_c X_ic · atom_weights[c]) / weight_scale``, where the
  network passes ``weight_scale = DatasetInfo.max_weight`` (DiGress's per-dataset ``max_weight``:
  150 u for QM9 without H, 390 u with H, 350 u for MOSES).

Both are invariant to padding content (only real nodes / real off-diagonal pairs are summed) and
permutation equivariant (valency) / invariant (weight). Valency is 0 on padded nodes.
"""
from __future__ import annotations

import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph

__all__ = ["MolecularFeatures"]


class MolecularFeatures:
    """``graph -> (valency (B, n, 1), weight (B, 1))`` (module docstring). ``dims()`` = (1, 0, 1)."""

    def __init__(self, bond_orders: list[float], atom_weights: list[float], weight_scale: float):
        bond_orders = [float(b) for b in bond_orders]
        atom_weights = [float(w) for w in atom_weights]
        if len(bond_orders) < 1 or bond_orders[0] != 0.0:
            raise ValueError(f"MolecularFeatures: bond_orders[0] must be 0 (edge class 0 = no edge), got {bond_orders}")
        if any(b < 0 for b in bond_orders):
            raise ValueError(f"MolecularFeatures: bond orders must be >= 0, got {bond_orders}")
        if len(atom_weights) < 1 or any(w < 0 for w in atom_weights):
            raise ValueError(f"MolecularFeatures: atom_weights must be a non-empty list of weights >= 0, got {atom_weights}")
        if weight_scale is None or not weight_scale > 0:
            raise ValueError(f"MolecularFeatures: weight_scale must be positive (DatasetInfo.max_weight of a molecular "
                             f"dataset; a processed cache or checkpoint written before it existed lacks it), got {weight_scale}")
        self.bond_orders = torch.tensor(bond_orders)
        self.atom_weights = torch.tensor(atom_weights)
        self.weight_scale = float(weight_scale)

    def __repr__(self) -> str:
        return (f"MolecularFeatures(bond_orders={self.bond_orders.tolist()}, "
                f"atom_weights={self.atom_weights.tolist()}, weight_scale={self.weight_scale})")

    @staticmethod
    def dims() -> tuple[int, int, int]:
        """(kx, ke, ky) = (1, 0, 1): valency per node, weight per graph."""
        return 1, 0, 1

    def __call__(self, graph: DenseGraph) -> tuple[Tensor, Tensor]:
        X, E = graph.X, graph.E
        if E.shape[-1] != len(self.bond_orders):
            raise ValueError(f"MolecularFeatures: E has {E.shape[-1]} edge classes but {len(self.bond_orders)} "
                             "bond orders were given (one per edge class, class 0 = no edge)")
        if X.shape[-1] != len(self.atom_weights):
            raise ValueError(f"MolecularFeatures: X has {X.shape[-1]} node classes but {len(self.atom_weights)} "
                             "atom weights were given (one per node class)")
        orders = self.bond_orders.to(device=E.device, dtype=E.dtype)
        weights = self.atom_weights.to(device=X.device, dtype=X.dtype)
        em = graph.edge_mask.to(E.dtype)
        valency = ((E @ orders) * em).sum(dim=-1, keepdim=True)  # (B, n, 1)
        nm = graph.node_mask.to(X.dtype)
        weight = ((X @ weights) * nm).sum(dim=-1, keepdim=True) / self.weight_scale  # (B, 1)
        return valency, weight
