"""Per-graph operations on sparse (PyG-style) batches of graphs.

A sparse batch of ``B`` graphs with ``N`` nodes in total is described by

* ``batch``: (N,) long, ``batch[i]`` = graph of node ``i``. Graphs are **contiguous and in order**
  (``batch`` is non-decreasing), as in every PyG ``Batch``; functions that rely on this check it.
* ``ptr``: (B + 1,) long, graph ``g`` owns the global nodes ``ptr[g] <= i < ptr[g + 1]``;
  ``ptr = [0, cumsum(counts)]``.
* the *local index* of node ``i`` is ``i - ptr[batch[i]]`` (0 .. n_g - 1).

Permutation and rank conventions (those of :mod:`sympe.symbreak.permutation`, written for sparse
batches):

* ``perm`` (N,) long, **global** indices: after relabelling, new node ``i`` is old node ``perm[i]``.
  ``perm`` never leaves a graph: ``batch[perm[i]] == batch[i]``.
* ``ranks`` (N,) long, **local** positions: old node ``j`` goes to local position ``ranks[j]`` of its
  graph. ``ranks`` and ``perm`` describe the same relabelling: ``perm[ptr[batch[j]] + ranks[j]] = j``.
* Sorting by a score: ``graph_argsort(s, batch)`` is the ``perm`` that orders each graph's nodes by
  increasing ``s``; its ranks give rank 0 to the smallest score of each graph.

Everything runs on the device of its inputs and uses scatter/sort primitives only (no Python loop
over graphs).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import softmax

from sympe.symbreak.permutation import invert_permutation

__all__ = [
    "ptr_from_batch",
    "check_batch_vector",
    "local_index",
    "graph_softmax",
    "graph_argsort",
    "ranks_to_perm",
    "perm_to_ranks",
    "random_perm_of_batch_vector",
    "permute_batch",
    "random_permutation_of_batch",
    "to_dense_with_order",
    "to_sparse",
]


# ---------------------------------------------------------------------------------------- batch vectors
def _default_batch(num_nodes: int, device) -> Tensor:
    return torch.zeros(num_nodes, dtype=torch.long, device=device)


def check_batch_vector(batch: Tensor, num_nodes: int | None = None, name: str = "batch") -> Tensor:
    """Check that ``batch`` is a 1-D long vector of non-decreasing graph ids (contiguous graphs).

    Returns ``batch`` unchanged. Raises ``ValueError`` saying what is wrong otherwise.
    """
    if not torch.is_tensor(batch) or batch.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor of graph ids (N,), got {type(batch).__name__} "
                         f"with shape {tuple(batch.shape) if torch.is_tensor(batch) else None}")
    if batch.dtype != torch.long:
        raise ValueError(f"{name} must be a long tensor, got {batch.dtype}; use batch.long()")
    if num_nodes is not None and batch.numel() != num_nodes:
        raise ValueError(f"{name} has {batch.numel()} entries but there are {num_nodes} nodes")
    if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError(f"{name} must be non-decreasing (each graph's nodes contiguous, graphs in order), "
                         "as in a PyG Batch; sort the nodes by graph first")
    if batch.numel() > 0 and int(batch[0]) < 0:
        raise ValueError(f"{name} contains negative graph ids")
    return batch


def ptr_from_batch(batch: Tensor, num_graphs: int | None = None) -> Tensor:
    """(B + 1,) long offsets of each graph's first node: ``ptr[g] = #{i : batch[i] < g}``.

    ``num_graphs`` defaults to ``batch.max() + 1`` (0 for an empty batch). Empty graphs are allowed.
    """
    check_batch_vector(batch)
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    counts = torch.bincount(batch, minlength=num_graphs)
    if counts.numel() > num_graphs:
        raise ValueError(f"batch has graph id {counts.numel() - 1} but num_graphs={num_graphs}")
    ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=batch.device)
    ptr[1:] = torch.cumsum(counts, 0)
    return ptr


def local_index(batch: Tensor, ptr: Tensor | None = None) -> Tensor:
    """(N,) long: position of each node inside its graph, ``i - ptr[batch[i]]``."""
    if ptr is None:
        ptr = ptr_from_batch(batch)
    return torch.arange(batch.numel(), device=batch.device) - ptr[batch]


# ---------------------------------------------------------------------------------------- scores
def graph_softmax(scores: Tensor, batch: Tensor | None = None, num_graphs: int | None = None,
                  temperature: float = 1.0) -> Tensor:
    """Softmax of node scores within each graph.

    ``p_i = exp(s_i / T) / sum_{j : batch[j] = batch[i]} exp(s_j / T)``, computed stably
    (max-subtracted) by :func:`torch_geometric.utils.softmax`.

    Args:
        scores: (N,) or (N, k) float; with (N, k) each column is normalised separately.
        batch: (N,) long graph ids (default: one graph).
        num_graphs: number of graphs ``B`` (optional, avoids a device sync).
        temperature: ``T > 0``.

    Returns: same shape as ``scores``; each graph's entries of each column sum to 1.
    """
    if temperature <= 0:
        raise ValueError(f"graph_softmax: temperature must be > 0, got {temperature}")
    if scores.dim() not in (1, 2):
        raise ValueError(f"graph_softmax: scores must be (N,) or (N, k), got shape {tuple(scores.shape)}")
    if batch is None:
        batch = _default_batch(scores.shape[0], scores.device)
    if batch.numel() != scores.shape[0]:
        raise ValueError(f"graph_softmax: scores has {scores.shape[0]} rows but batch has {batch.numel()}")
    return softmax(scores / temperature, batch, num_nodes=num_graphs, dim=0)


def graph_argsort(scores: Tensor, batch: Tensor | None = None, descending: bool = False) -> Tensor:
    """Sort each graph's nodes by score; returns ``perm`` (N,) long of **global** node indices.

    ``perm[ptr[g] : ptr[g+1]]`` are the nodes of graph ``g`` ordered by increasing score (decreasing if
    ``descending``); equal scores keep their original relative order (stable sort). So ``perm`` is the
    relabelling "new node i = old node perm[i]" that sorts every graph, and
    ``perm_to_ranks(perm, batch)`` gives rank 0 to each graph's smallest score.

    Args:
        scores: (N,) real scores (NaN raises ``ValueError``).
        batch: (N,) long, non-decreasing graph ids (default: one graph).
    """
    if scores.dim() != 1:
        raise ValueError(f"graph_argsort: scores must be (N,), got shape {tuple(scores.shape)}")
    if batch is None:
        batch = _default_batch(scores.shape[0], scores.device)
    check_batch_vector(batch, scores.shape[0])
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        raise ValueError("graph_argsort: scores contain NaN; NaN cannot be ordered")
    order = torch.sort(scores, descending=descending, stable=True).indices
    # A stable sort by graph id keeps the score order inside each graph.
    regroup = torch.sort(batch[order], stable=True).indices
    return order[regroup]


# ---------------------------------------------------------------------------------------- perms / ranks
def _check_perm_like(t: Tensor, batch: Tensor, name: str) -> None:
    if t.dim() != 1 or t.numel() != batch.numel():
        raise ValueError(f"{name} must be (N,) with N={batch.numel()} (one entry per node), got shape {tuple(t.shape)}")
    if t.dtype != torch.long:
        raise ValueError(f"{name} must be a long tensor, got {t.dtype}")


def ranks_to_perm(ranks: Tensor, batch: Tensor | None = None, ptr: Tensor | None = None) -> Tensor:
    """Local ranks -> global order: ``perm[ptr[batch[j]] + ranks[j]] = j``.

    The global ranks ``ptr[batch] + ranks`` inverted (:func:`sympe.symbreak.permutation.invert_permutation`).

    Args:
        ranks: (N,) long, within each graph a permutation of ``0 .. n_g - 1``.
        batch: (N,) long non-decreasing graph ids (default: one graph).
    Raises ``ValueError`` if ``ranks`` is not a permutation of each graph's local positions.
    """
    if batch is None:
        batch = _default_batch(ranks.numel(), ranks.device)
    _check_perm_like(ranks, batch, "ranks")
    if ptr is None:
        ptr = ptr_from_batch(batch)
    n_g = (ptr[1:] - ptr[:-1])[batch]
    if bool(((ranks < 0) | (ranks >= n_g)).any()):
        raise ValueError("ranks: every rank must lie in 0 .. n_g - 1 of its graph")
    target = ptr[batch] + ranks
    if bool((torch.bincount(target, minlength=ranks.numel()) != 1).any()):
        raise ValueError("ranks: two nodes of the same graph share a rank; ranks must be a permutation per graph")
    return invert_permutation(target)


def perm_to_ranks(perm: Tensor, batch: Tensor | None = None, ptr: Tensor | None = None) -> Tensor:
    """Global order -> local ranks: ``ranks[perm[i]] = i - ptr[batch[i]]`` (inverse of :func:`ranks_to_perm`).

    Raises ``ValueError`` if ``perm`` is not a permutation or moves a node to another graph.
    """
    if batch is None:
        batch = _default_batch(perm.numel(), perm.device)
    _check_perm_like(perm, batch, "perm")
    if ptr is None:
        ptr = ptr_from_batch(batch)
    N = perm.numel()
    if bool(((perm < 0) | (perm >= N)).any()):
        raise ValueError(f"perm: entries must be global node indices in 0 .. {N - 1}")
    if bool((batch[perm] != batch).any()):
        raise ValueError("perm: a node is moved to another graph; perm must permute nodes within each graph")
    if bool((torch.bincount(perm, minlength=N) != 1).any()):
        raise ValueError("perm: repeated entries; perm must be a permutation of the nodes")
    return invert_permutation(perm) - ptr[batch]


def random_perm_of_batch_vector(batch: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """A uniformly random permutation of each graph's nodes, independent across graphs.

    Returns ``perm`` (N,) global (new node i = old node perm[i]). Sorting i.i.d. uniform keys within
    each graph gives every ordering the same probability (ties have probability 0 up to float
    resolution). ``generator`` must live on ``batch.device``.
    """
    keys = torch.rand(batch.numel(), device=batch.device, generator=generator)
    return graph_argsort(keys, batch)


# ---------------------------------------------------------------------------------------- PyG batches
def permute_batch(batch, perm: Tensor):
    """Relabel the nodes of a PyG ``Data``/``Batch``: new node ``i`` is old node ``perm[i]``.

    * every node-level attribute ``a`` (``data.node_attrs()``: ``x``, ``pos``, ``batch``, ...) becomes
      ``a[perm]``;
    * ``edge_index`` becomes ``inv[edge_index]`` with ``inv = perm^{-1}``, so old edge (u, v) is now
      (inv[u], inv[v]); edges keep their order, hence every edge-level attribute (``edge_attr``, ...)
      is carried along unchanged;
    * graph-level attributes and ``ptr`` are unchanged (``perm`` never leaves a graph).

    Returns a new object (the input is not modified).
    """
    N = batch.num_nodes
    b = getattr(batch, "batch", None)
    if b is None:
        b = _default_batch(N, perm.device)
    _check_perm_like(perm, b, "perm")
    perm_to_ranks(perm, b)  # validates: a permutation, within graphs
    out = batch.clone()
    inv = invert_permutation(perm)
    for key in batch.node_attrs():
        val = batch[key]
        if torch.is_tensor(val) and val.dim() >= 1 and val.shape[0] == N:
            out[key] = val[perm]
    if getattr(batch, "edge_index", None) is not None:
        out.edge_index = inv[batch.edge_index]
    return out


def random_permutation_of_batch(batch, generator: Optional[torch.Generator] = None):
    """Apply an independent uniformly random node permutation to every graph of a PyG batch.

    Returns ``(permuted_batch, perm)`` with ``perm`` (N,) global (new node i = old node perm[i]).
    """
    b = getattr(batch, "batch", None)
    if b is None:
        device = batch.edge_index.device if getattr(batch, "edge_index", None) is not None else "cpu"
        x = getattr(batch, "x", None)
        device = x.device if torch.is_tensor(x) else device
        b = _default_batch(batch.num_nodes, device)
    perm = random_perm_of_batch_vector(b, generator)
    return permute_batch(batch, perm), perm


# ---------------------------------------------------------------------------------------- dense <-> sparse
def to_dense_with_order(
    x: Tensor | None,
    edge_index: Tensor,
    edge_attr: Tensor | None,
    batch: Tensor | None = None,
    ranks: Tensor | None = None,
    num_nodes: int | None = None,
    max_num_nodes: int | None = None,
    num_graphs: int | None = None,
) -> tuple[Tensor | None, Tensor, Tensor]:
    """Scatter a sparse batch into dense padded tensors, node ``j`` at position ``pos[j]`` of its graph.

    ``pos = ranks`` when given, else the local index (original order). With ``n = max_num_nodes``
    (default: largest graph):

    * ``X[batch[j], pos[j]] = x[j]``: (B, n) or (B, n, dx); ``None`` if ``x`` is None,
    * ``E[g, pos[u], pos[v]] += edge_attr[e]`` for every edge ``e = (u, v)``: (B, n, n, de) for 2-D
      ``edge_attr``, (B, n, n) for 1-D ``edge_attr``, and the edge count (B, n, n) when ``edge_attr`` is
      None (duplicate edges are summed, as in :func:`torch_geometric.utils.to_dense_adj`),
    * ``node_mask[g, p]`` True iff some node of graph ``g`` is at position ``p`` (the first ``n_g``).

    So ``to_dense_with_order(..., ranks=r)`` equals the original-order dense tensors permuted by the
    ranks, and equals the dense tensors of ``permute_batch(data, ranks_to_perm(r))``.
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be (2, M), got shape {tuple(edge_index.shape)}")
    if num_nodes is None:
        if x is not None:
            num_nodes = x.shape[0]
        elif batch is not None:
            num_nodes = batch.numel()
        elif ranks is not None:
            num_nodes = ranks.numel()
        else:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    device = edge_index.device
    if batch is None:
        batch = _default_batch(num_nodes, device)
    check_batch_vector(batch, num_nodes)
    if x is not None and x.shape[0] != num_nodes:
        raise ValueError(f"x has {x.shape[0]} rows but there are {num_nodes} nodes")
    if edge_attr is not None and edge_attr.shape[0] != edge_index.shape[1]:
        raise ValueError(f"edge_attr has {edge_attr.shape[0]} rows but edge_index has {edge_index.shape[1]} edges")
    ptr = ptr_from_batch(batch, num_graphs)
    B = ptr.numel() - 1
    counts = ptr[1:] - ptr[:-1]
    largest = int(counts.max()) if B > 0 else 0
    n = largest if max_num_nodes is None else max_num_nodes
    if n < largest:
        raise ValueError(f"max_num_nodes={max_num_nodes} is smaller than the largest graph ({largest} nodes)")
    if ranks is None:
        pos = local_index(batch, ptr)
    else:
        _check_perm_like(ranks, batch, "ranks")
        ranks_to_perm(ranks, batch, ptr)  # validates a permutation per graph
        pos = ranks

    node_mask = torch.zeros(B, n, dtype=torch.bool, device=device)
    node_mask[batch, pos] = True
    X = None
    if x is not None:
        X = x.new_zeros((B, n) + tuple(x.shape[1:]))
        X[batch, pos] = x

    src, dst = edge_index
    g = batch[src]
    if edge_attr is None:
        E = torch.zeros(B, n, n, device=device)
        vals = torch.ones(src.numel(), device=device)
    else:
        E = edge_attr.new_zeros((B, n, n) + tuple(edge_attr.shape[1:]))
        vals = edge_attr
    E.index_put_((g, pos[src], pos[dst]), vals, accumulate=True)
    return X, E, node_mask


def to_sparse(
    X: Tensor | None,
    E: Tensor,
    node_mask: Tensor,
    no_edge_class: int | None = None,
) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
    """Dense padded batch -> sparse batch ``(x, edge_index, edge_attr, batch)``.

    Real nodes (``node_mask`` True) are numbered graph by graph, in increasing position. A real pair
    ``(i, j)`` of graph ``g`` is an edge iff

    * ``no_edge_class is None``: ``E[g, i, j]`` has a non-zero entry (any dtype, (B,n,n) or (B,n,n,de));
    * ``no_edge_class = c`` (one-hot/probability edges (B,n,n,de)): ``E[g, i, j]`` is non-zero and its
      argmax is not ``c`` (``DenseGraph`` uses ``c = 0``).

    ``edge_attr`` keeps the full channel width (M, de) (or (M,) for (B, n, n) ``E``); edges are listed in
    row-major order of (g, i, j), so both directions of a symmetric ``E`` appear.

    Args:
        X: (B, n, ...) node features or None.  E: (B, n, n) or (B, n, n, de).  node_mask: (B, n) bool.
    Returns:
        x (N, ...) or None, edge_index (2, M) long, edge_attr (M, ...) , batch (N,) long.
    """
    if node_mask.dim() != 2 or node_mask.dtype != torch.bool:
        raise ValueError(f"node_mask must be a (B, n) bool tensor, got {node_mask.dtype} {tuple(node_mask.shape)}")
    B, n = node_mask.shape
    if E.dim() < 3 or E.shape[:3] != (B, n, n):
        raise ValueError(f"E must be (B, n, n[, de]) = ({B}, {n}, {n}[, de]), got shape {tuple(E.shape)}")
    if X is not None and X.shape[:2] != (B, n):
        raise ValueError(f"X must be (B, n, ...) = ({B}, {n}, ...), got shape {tuple(X.shape)}")
    flat_mask = node_mask.reshape(-1)
    new_index = torch.cumsum(flat_mask.long(), 0) - 1  # global index of each real (g, i)
    g_all = torch.arange(B, device=node_mask.device).repeat_interleave(n)
    batch = g_all[flat_mask]
    x = X.reshape((B * n,) + tuple(X.shape[2:]))[flat_mask] if X is not None else None

    if E.dim() == 3:
        present = E != 0
    else:
        present = (E != 0).any(dim=-1)
        if no_edge_class is not None:
            if not 0 <= no_edge_class < E.shape[-1]:
                raise ValueError(f"no_edge_class={no_edge_class} is not a channel of E (de={E.shape[-1]})")
            present = present & (E.argmax(dim=-1) != no_edge_class)
    pair_mask = node_mask.unsqueeze(2) & node_mask.unsqueeze(1)
    g, i, j = torch.nonzero(present & pair_mask, as_tuple=True)
    edge_attr = E[g, i, j]
    edge_index = torch.stack([new_index[g * n + i], new_index[g * n + j]])
    return x, edge_index, edge_attr, batch
