"""`DatasetInfo`: everything the diffusion model needs to know about a dataset.

It is computed once from the train split (by :func:`DatasetInfo.from_graphs`, called by the
dataset code in ``sympe.datasets``) and saved as JSON beside the processed data and inside every
checkpoint, so that a checkpoint can refuse a dataset it was not trained on.

Fields
------
* ``node_marginals`` (dx,): fraction of real nodes of each class over the train split.
* ``edge_marginals`` (de,): fraction of unordered node pairs {i, j}, i != j, of each edge class over
  the train split, counted over *all* pairs of each graph (class 0 = no edge). Each undirected edge
  is counted once (a pair, not two directed entries); the fractions are the same either way.
* ``n_nodes_dist`` (max_nodes + 1,): p(N = n) over the train split (entry 0 is 0).
* ``atom_valencies`` / ``atom_weights`` / ``bond_orders``: for molecular datasets only (None
  otherwise). ``bond_orders[k]`` is the real bond order of edge class k (0 for "no edge", 1.5 for
  aromatic): features and metrics use these, never class indices.
* ``max_weight``: molecular datasets only: the scale (atomic mass units) by which the molecular-weight
  feature of a noisy graph is divided (DiGress's per-dataset ``max_weight``: QM9 150, QM9 with H 390,
  MOSES 350). It is part of the fingerprint: a model trained with one scale refuses another.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from sympe.diffusion.files import atomic_write_text


@dataclass
class DatasetInfo:
    name: str
    node_classes: list[str]
    edge_classes: list[str]
    node_marginals: list[float]
    edge_marginals: list[float]
    n_nodes_dist: list[float]
    max_nodes: int
    num_train_graphs: int = 0
    is_molecular: bool = False
    atom_valencies: list[int] | None = None
    atom_weights: list[float] | None = None
    bond_orders: list[float] | None = None
    max_weight: float | None = None
    extra: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ tensors
    @property
    def num_node_classes(self) -> int:
        return len(self.node_classes)

    @property
    def num_edge_classes(self) -> int:
        return len(self.edge_classes)

    def node_marginals_tensor(self) -> Tensor:
        return torch.tensor(self.node_marginals, dtype=torch.float)

    def edge_marginals_tensor(self) -> Tensor:
        return torch.tensor(self.edge_marginals, dtype=torch.float)

    def n_nodes_tensor(self) -> Tensor:
        return torch.tensor(self.n_nodes_dist, dtype=torch.float)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_graphs(
        cls,
        graphs,
        name: str,
        node_classes: list[str],
        edge_classes: list[str],
        **molecular,
    ) -> "DatasetInfo":
        """Compute the statistics from an iterable of PyG ``Data`` (one-hot ``x``, ``edge_attr``).

        ``edge_index`` holds both directions of every undirected edge; each is counted once here.
        """
        dx, de = len(node_classes), len(edge_classes)
        node_counts = torch.zeros(dx, dtype=torch.float64)
        edge_counts = torch.zeros(de, dtype=torch.float64)
        sizes: list[int] = []
        for g in graphs:
            n = int(g.num_nodes)
            sizes.append(n)
            if g.x.shape[1] != dx:
                raise ValueError(f"{name}: x has {g.x.shape[1]} columns but {dx} node classes were given")
            node_counts += g.x.sum(0).double()
            if g.edge_attr is not None and g.edge_attr.numel():
                if g.edge_attr.shape[1] != de:
                    raise ValueError(f"{name}: edge_attr has {g.edge_attr.shape[1]} columns but {de} edge classes were given")
                edge_counts += g.edge_attr.sum(0).double() / 2.0  # both directions stored
            edge_counts[0] += n * (n - 1) / 2.0
        if not sizes:
            raise ValueError(f"{name}: cannot compute dataset statistics from an empty train split")
        edge_counts[0] -= edge_counts[1:].sum()
        max_n = max(sizes)
        hist = torch.bincount(torch.tensor(sizes), minlength=max_n + 1).double()
        return cls(
            name=name,
            node_classes=list(node_classes),
            edge_classes=list(edge_classes),
            node_marginals=(node_counts / node_counts.sum()).tolist(),
            edge_marginals=(edge_counts / edge_counts.sum()).tolist(),
            n_nodes_dist=(hist / hist.sum()).tolist(),
            max_nodes=max_n,
            num_train_graphs=len(sizes),
            **molecular,
        )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetInfo":
        return cls(**d)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))  # an interrupted write never leaves a half file

    @classmethod
    def load(cls, path: str | Path) -> "DatasetInfo":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def fingerprint(self) -> str:
        """Short hash of what the model depends on (classes, max nodes, marginals)."""
        key = json.dumps(
            [self.name, self.node_classes, self.edge_classes, self.max_nodes,
             [round(v, 6) for v in self.node_marginals], [round(v, 6) for v in self.edge_marginals]]
            + ([self.max_weight] if self.max_weight is not None else [])
        )
        return hashlib.sha1(key.encode()).hexdigest()[:12]

    def summary(self) -> str:
        lines = [f"dataset {self.name}: {self.num_train_graphs} train graphs, max {self.max_nodes} nodes"]
        lines.append("  node marginals: " + ", ".join(f"{c}={p:.4f}" for c, p in zip(self.node_classes, self.node_marginals)))
        lines.append("  edge marginals: " + ", ".join(f"{c}={p:.4f}" for c, p in zip(self.edge_classes, self.edge_marginals)))
        nz = [(n, p) for n, p in enumerate(self.n_nodes_dist) if p > 0]
        mean_n = sum(n * p for n, p in nz)
        lines.append(f"  node counts: {nz[0][0]}..{nz[-1][0]} (mean {mean_n:.2f}); " +
                     " ".join(f"{n}:{p:.3f}" for n, p in nz[:12]) + (" ..." if len(nz) > 12 else ""))
        return "\n".join(lines)
