"""Dense, padded graph batches: the currency between data, diffusion and symbreak.

A batch of ``B`` graphs with at most ``n`` nodes is held as

* ``X``: (B, n, dx) one-hot node classes,
* ``E``: (B, n, n, de) one-hot edge classes, class 0 = "no edge",
* ``y``: (B, dy) graph-level features (``dy`` may be 0),
* ``node_mask``: (B, n) bool, True for real nodes.

Invariants (checked by :meth:`DenseGraph.validate`):

1. ``E`` is symmetric: ``E[b, i, j] == E[b, j, i]``.
2. The diagonal is all zeros: ``E[b, i, i] == 0`` (a node pair (i, i) has no class at all).
3. Every real node has exactly one hot entry in ``X``; every real off-diagonal pair (i, j) has
   exactly one hot entry in ``E`` (class 0 when the pair is not an edge).
4. Padding is zero: rows of padded nodes in ``X``, and rows/columns of padded nodes in ``E``.

Conversion with PyG: a PyG graph stores ``x`` (N, dx) one-hot, ``edge_index`` (2, M) with both
directions of each undirected edge, and ``edge_attr`` (M, de) one-hot with a class >= 1 (the
"no edge" class never appears in a sparse graph). Graph features ``y`` are (1, dy) per graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sympe.symbreak.masks import pair_mask
from sympe.symbreak.permutation import permute_graph


@dataclass
class DenseGraph:
    """A padded batch of graphs with one-hot node and edge classes (see module docstring)."""

    X: Tensor
    E: Tensor
    y: Tensor
    node_mask: Tensor

    # ------------------------------------------------------------------ basic properties
    @property
    def batch_size(self) -> int:
        return self.X.shape[0]

    @property
    def max_nodes(self) -> int:
        return self.X.shape[1]

    @property
    def num_nodes(self) -> Tensor:
        """(B,) long: number of real nodes of each graph."""
        return self.node_mask.sum(dim=1)

    def pair_mask(self, upper: bool = False) -> Tensor:
        """(B, n, n) bool: real off-diagonal pairs (i != j), or only those with i < j if ``upper``.

        ``upper=True`` lists every undirected pair once (loss, likelihood, symmetric edge draws).
        Built by :func:`sympe.symbreak.masks.pair_mask`.
        """
        return pair_mask(self.node_mask, diagonal=False, upper=upper)

    @property
    def edge_mask(self) -> Tensor:
        """(B, n, n) bool: True on real off-diagonal pairs; ``pair_mask()``."""
        return self.pair_mask()

    def to(self, device) -> "DenseGraph":
        """Move every tensor to ``device``."""
        return DenseGraph(self.X.to(device), self.E.to(device), self.y.to(device), self.node_mask.to(device))

    def clone(self) -> "DenseGraph":
        return DenseGraph(self.X.clone(), self.E.clone(), self.y.clone(), self.node_mask.clone())

    # ------------------------------------------------------------------ masking / collapsing
    def mask(self) -> "DenseGraph":
        """Zero the padding of X and E and the diagonal of E. Returns a new DenseGraph."""
        nm = self.node_mask.to(self.X.dtype)
        X = self.X * nm.unsqueeze(-1)
        em = self.edge_mask.to(self.E.dtype)
        E = self.E * em.unsqueeze(-1)
        return DenseGraph(X, E, self.y, self.node_mask)

    def collapse(self, fill: int = -1) -> tuple[Tensor, Tensor]:
        """Class indices: X (B, n) and E (B, n, n) long, ``fill`` on padding and on the diagonal."""
        X = self.X.argmax(dim=-1)
        E = self.E.argmax(dim=-1)
        X = torch.where(self.node_mask, X, torch.full_like(X, fill))
        E = torch.where(self.edge_mask, E, torch.full_like(E, fill))
        return X, E

    @classmethod
    def from_indices(
        cls, X: Tensor, E: Tensor, node_mask: Tensor, dx: int, de: int, y: Tensor | None = None
    ) -> "DenseGraph":
        """Inverse of :meth:`collapse`: class indices (any value on padding/diagonal) -> one-hot.

        ``E`` is read on the upper triangle and mirrored, so the result is symmetric by construction.
        """
        B, n = X.shape
        Xh = torch.nn.functional.one_hot(X.clamp(0, dx - 1), dx).float()
        upper = pair_mask(node_mask.bool(), diagonal=False, upper=True)
        Eu = torch.where(upper, E, torch.zeros_like(E))
        Es = Eu + Eu.transpose(1, 2)
        Eh = torch.nn.functional.one_hot(Es.clamp(0, de - 1), de).float()
        if y is None:
            y = torch.zeros(B, 0, device=X.device)
        return cls(Xh, Eh, y, node_mask.bool()).mask()

    # ------------------------------------------------------------------ permutations
    def permute(self, perm: Tensor) -> "DenseGraph":
        """Relabel nodes: new node i is old node ``perm[b, i]``. ``perm``: (B, n) or (n,) long.

        The convention of :mod:`sympe.symbreak.permutation`; ``y`` is unchanged.
        """
        X, E, node_mask = permute_graph(self.X, self.E, self.node_mask, perm)
        return DenseGraph(X, E, self.y, node_mask)

    # ------------------------------------------------------------------ validation
    def validate(self, atol: float = 0.0) -> "DenseGraph":
        """Check the four invariants; raise ``ValueError`` naming the invariant and the graph."""
        B, n, dx = self.X.shape
        if self.E.shape[:3] != (B, n, n):
            raise ValueError(f"DenseGraph: E has shape {tuple(self.E.shape)}, expected ({B}, {n}, {n}, de)")
        if self.node_mask.shape != (B, n):
            raise ValueError(f"DenseGraph: node_mask has shape {tuple(self.node_mask.shape)}, expected ({B}, {n})")
        if self.y.dim() != 2 or self.y.shape[0] != B:
            raise ValueError(f"DenseGraph: y has shape {tuple(self.y.shape)}, expected ({B}, dy)")
        if self.node_mask.dtype != torch.bool:
            raise ValueError("DenseGraph: node_mask must be a bool tensor")

        def first_bad(per_graph_bad: Tensor) -> int | None:
            idx = torch.nonzero(per_graph_bad).flatten()
            return int(idx[0]) if idx.numel() else None

        asym = (self.E - self.E.transpose(1, 2)).abs().amax(dim=(1, 2, 3)) > atol
        if (g := first_bad(asym)) is not None:
            raise ValueError(f"DenseGraph: E is not symmetric in graph {g} (E[i, j] != E[j, i])")
        diag = torch.diagonal(self.E, dim1=1, dim2=2).abs().amax(dim=(1, 2)) > atol
        if (g := first_bad(diag)) is not None:
            raise ValueError(f"DenseGraph: E has a non-zero diagonal in graph {g}; self-loops are not allowed")
        pad_x = (self.X.abs().sum(-1) * (~self.node_mask)).amax(dim=1) > atol
        if (g := first_bad(pad_x)) is not None:
            raise ValueError(f"DenseGraph: padded nodes of graph {g} have non-zero X; call .mask()")
        em = self.edge_mask
        pad_e = (self.E.abs().sum(-1) * (~em & ~torch.eye(n, dtype=torch.bool, device=em.device))).amax(dim=(1, 2)) > atol
        if (g := first_bad(pad_e)) is not None:
            raise ValueError(f"DenseGraph: padded node pairs of graph {g} have non-zero E; call .mask()")
        onehot_x = ((self.X - self.X.round()).abs() > atol).any(-1) | (self.X.round() < 0).any(-1) | (self.X.sum(-1) - 1).abs().gt(atol)
        bad_x = (onehot_x & self.node_mask).any(dim=1)
        if (g := first_bad(bad_x)) is not None:
            node = int(torch.nonzero(onehot_x[g] & self.node_mask[g]).flatten()[0])
            raise ValueError(f"DenseGraph: X row of node {node} in graph {g} is not one-hot")
        onehot_e = ((self.E - self.E.round()).abs() > atol).any(-1) | (self.E.round() < 0).any(-1) | (self.E.sum(-1) - 1).abs().gt(atol)
        bad_e = (onehot_e & em).any(dim=(1, 2))
        if (g := first_bad(bad_e)) is not None:
            i, j = (int(v) for v in torch.nonzero(onehot_e[g] & em[g])[0])
            raise ValueError(f"DenseGraph: E[{i}, {j}] in graph {g} is not one-hot (class 0 marks 'no edge')")
        return self

    # ------------------------------------------------------------------ PyG conversion
    @classmethod
    def from_pyg(cls, batch, max_nodes: int | None = None) -> "DenseGraph":
        """Build from a PyG ``Batch`` (or a single ``Data``) of one-hot ``x`` and ``edge_attr``.

        ``edge_attr`` has the full width ``de`` (column 0 = no edge, always zero in sparse form).
        Pairs that are not edges get class 0; the diagonal and padding stay zero.
        """
        from torch_geometric.utils import to_dense_adj, to_dense_batch

        x, edge_index, edge_attr = batch.x, batch.edge_index, batch.edge_attr
        b = getattr(batch, "batch", None)
        if b is None:
            b = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        if edge_attr is None:
            raise ValueError("DenseGraph.from_pyg: the batch has no edge_attr; store one-hot edge classes (M, de)")
        if edge_attr.dim() != 2:
            raise ValueError(f"DenseGraph.from_pyg: edge_attr must be (M, de) one-hot, got shape {tuple(edge_attr.shape)}")
        X, node_mask = to_dense_batch(x.float(), b, max_num_nodes=max_nodes)
        B, n = node_mask.shape
        E = to_dense_adj(edge_index, b, edge_attr.float(), max_num_nodes=n, batch_size=B)
        no_edge = (E.sum(-1) == 0).float()
        E[..., 0] = E[..., 0] + no_edge
        y = getattr(batch, "y", None)
        if y is None or not torch.is_tensor(y) or y.dim() != 2 or y.shape[0] != B:
            y = torch.zeros(B, 0, device=x.device)
        return cls(X, E, y.float(), node_mask).mask()

    def to_pyg(self):
        """Convert back to a PyG ``Batch`` (x one-hot, both edge directions, one-hot edge_attr)."""
        from torch_geometric.data import Batch, Data

        Xi, Ei = self.collapse(fill=0)
        data = []
        for b in range(self.batch_size):
            nb = int(self.node_mask[b].sum())
            # Real nodes are assumed to come first (true for from_pyg and the sampler).
            if not bool(self.node_mask[b, :nb].all()):
                raise ValueError(f"DenseGraph.to_pyg: real nodes of graph {b} are not contiguous at the start")
            Eb = Ei[b, :nb, :nb]
            ei = torch.nonzero(Eb > 0).t()
            ea = self.E[b, ei[0], ei[1]]
            data.append(Data(x=self.X[b, :nb], edge_index=ei, edge_attr=ea, y=self.y[b : b + 1], num_nodes=nb))
        return Batch.from_data_list(data)
