"""Conversions between plain graphs (edge lists, adjacency matrices, networkx) and PyG ``Data``.

Every unattributed ("structure only") graph of sympe's generic datasets is stored as

* ``x``: (N, 1) float, all ones: one-hot over the single node class ``"node"``,
* ``edge_index``: (2, 2M) long, both directions of each of the M undirected edges, sorted
  lexicographically by (source, target); no self-loops, no duplicate edges,
* ``edge_attr``: (2M, 2) float one-hot over the edge classes ``["none", "edge"]``: every row is
  ``[0, 1]`` (column 0, "no edge", never appears in sparse form),
* ``y``: (1, 0) float (no graph-level features), ``num_nodes``: N.

Metric inputs (:func:`to_adjacency`, :func:`to_networkx`) accept any of: ``nx.Graph`` (simple, undirected; nodes in the order of ``G.nodes()``), an ``(atoms, bonds)``
pair (numpy or torch; ``atoms`` (n,) or (n, dx), ``bonds`` (n, n) edge classes, any class > 0 is
an edge, the diagonal is ignored as in :class:`~sympe.diffusion.graph.DenseGraph`), a square 0/1
adjacency array (n, n) with zero diagonal, or a PyG ``Data`` (``edge_index``, ``num_nodes``).

Extra per-graph attributes (e.g. a block assignment (N,) long) are passed through as keyword
arguments. Node i of the edge list / adjacency matrix is node i of the ``Data``; a networkx graph
is relabelled to 0..N-1 in the order of ``G.nodes()``.
"""
from __future__ import annotations

from typing import Iterable

import networkx as nx
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

NODE_CLASSES: list[str] = ["node"]
EDGE_CLASSES: list[str] = ["none", "edge"]


def canonical_edges(num_nodes: int, edges) -> np.ndarray:
    """Undirected edge list -> (M, 2) int64 array with u < v, rows unique and sorted.

    ``edges`` is anything ``np.asarray`` turns into shape (M, 2) (M may be 0). Each undirected
    edge may be listed once or in both directions. Raises ``ValueError`` on self-loops and on
    node ids outside 0..num_nodes-1.
    """
    if int(num_nodes) < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    e = np.asarray(edges, dtype=np.int64)
    if e.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"edges must have shape (M, 2), got {e.shape}")
    if e.min() < 0 or e.max() >= num_nodes:
        raise ValueError(f"edge endpoints must lie in 0..{num_nodes - 1}, found {int(e.min())}..{int(e.max())}")
    if (e[:, 0] == e[:, 1]).any():
        bad = int(e[e[:, 0] == e[:, 1]][0, 0])
        raise ValueError(f"self-loop at node {bad}: simple graphs only, drop edges (i, i)")
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0)


def edges_to_data(num_nodes: int, edges, **attrs) -> Data:
    """Build the PyG ``Data`` of the module docstring from an undirected edge list (M, 2)."""
    e = canonical_edges(num_nodes, edges)
    both = np.concatenate([e, e[:, ::-1]], axis=0)
    order = np.lexsort((both[:, 1], both[:, 0]))
    edge_index = torch.from_numpy(np.ascontiguousarray(both[order].T)).long()
    m2 = edge_index.shape[1]
    edge_attr = torch.zeros(m2, len(EDGE_CLASSES))
    edge_attr[:, 1] = 1.0
    x = torch.ones(int(num_nodes), len(NODE_CLASSES))
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, y=torch.zeros(1, 0),
                num_nodes=int(num_nodes), **attrs)


def adjacency_to_data(adj, **attrs) -> Data:
    """Dense adjacency (n, n) (tensor or array, 0/1, symmetric, zero diagonal) -> ``Data``.

    Raises ``ValueError`` naming the violated property; weighted or directed inputs are refused
    rather than silently binarised or symmetrised.
    """
    a = adj.detach().cpu().numpy() if isinstance(adj, Tensor) else np.asarray(adj)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise ValueError("adjacency entries must be 0 or 1 (unweighted simple graph)")
    if not (a == a.T).all():
        raise ValueError("adjacency must be symmetric (undirected graph)")
    if np.diagonal(a).any():
        raise ValueError("adjacency must have a zero diagonal (no self-loops)")
    u, v = np.nonzero(np.triu(a, k=1))
    return edges_to_data(a.shape[0], np.stack([u, v], axis=1), **attrs)


def networkx_to_data(G: nx.Graph, **attrs) -> Data:
    """networkx graph -> ``Data``; nodes relabelled 0..N-1 in the order of ``G.nodes()``."""
    if G.is_directed() or G.is_multigraph():
        raise ValueError("networkx_to_data expects a simple undirected nx.Graph")
    index = {v: i for i, v in enumerate(G.nodes())}
    edges = [(index[u], index[v]) for u, v in G.edges()]
    return edges_to_data(len(index), np.asarray(edges, dtype=np.int64).reshape(-1, 2), **attrs)


def data_to_networkx(data: Data) -> nx.Graph:
    """``Data`` -> ``nx.Graph`` on nodes 0..N-1 (isolated nodes included), one edge per pair."""
    G = nx.Graph()
    G.add_nodes_from(range(int(data.num_nodes)))
    ei = data.edge_index
    keep = ei[0] < ei[1]
    G.add_edges_from(ei[:, keep].t().tolist())
    return G


def to_networkx_list(graphs: Iterable[Data]) -> list[nx.Graph]:
    """Convert every graph of an iterable of ``Data`` (e.g. a dataset split) to networkx."""
    return [data_to_networkx(g) for g in graphs]


# ---------------------------------------------------------------------------- metric inputs
def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def to_adjacency(graph) -> np.ndarray:
    """(n, n) bool adjacency of any accepted graph input (see the module docstring)."""
    if isinstance(graph, nx.Graph):
        if graph.is_directed() or graph.is_multigraph():
            raise ValueError("expected a simple undirected nx.Graph; convert with nx.Graph(G.to_undirected())")
        if nx.number_of_selfloops(graph):
            raise ValueError("graph has self-loops; remove them with G.remove_edges_from(nx.selfloop_edges(G))")
        index = {v: i for i, v in enumerate(graph.nodes())}
        a = np.zeros((len(index), len(index)), dtype=bool)
        if graph.number_of_edges():
            e = np.array([(index[u], index[v]) for u, v in graph.edges()], dtype=np.int64)
            a[e[:, 0], e[:, 1]] = True
            a[e[:, 1], e[:, 0]] = True
        return a
    if hasattr(graph, "edge_index") and hasattr(graph, "num_nodes"):  # PyG Data
        n = int(graph.num_nodes)
        ei = _to_numpy(graph.edge_index).astype(np.int64).reshape(2, -1)
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(f"Data.edge_index holds node ids outside 0..{n - 1}")
        a = np.zeros((n, n), dtype=bool)
        a[ei[0], ei[1]] = True
        if (a != a.T).any() or np.diagonal(a).any():
            raise ValueError("Data.edge_index must list both directions of every edge and no self-loops")
        return a
    if isinstance(graph, (tuple, list)):
        if len(graph) != 2:
            raise ValueError(f"a graph given as a sequence must be an (atoms, bonds) pair, got length {len(graph)}")
        atoms, bonds = _to_numpy(graph[0]), _to_numpy(graph[1])
        n = atoms.shape[0] if atoms.ndim >= 1 else -1
        if bonds.shape != (n, n):
            raise ValueError(f"(atoms, bonds): bonds must have shape (n, n) with n = len(atoms) = {n}, "
                             f"got {bonds.shape}; slice padded nodes away with the node mask")
        a = bonds > 0
        np.fill_diagonal(a, False)  # the diagonal carries no class (DenseGraph convention)
        if (a != a.T).any():
            raise ValueError("(atoms, bonds): bonds must be symmetric (bonds[i, j] > 0 iff bonds[j, i] > 0)")
        return a
    arr = _to_numpy(graph)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.dtype != object:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError("an adjacency matrix must be 0/1; pass (atoms, bonds) for edge classes")
        a = arr.astype(bool)
        if (a != a.T).any() or np.diagonal(a).any():
            raise ValueError("an adjacency matrix must be symmetric with a zero diagonal")
        return a
    raise ValueError(f"unsupported graph input {type(graph).__name__}: pass an nx.Graph, an (atoms, bonds) "
                     "pair, a square 0/1 adjacency array or a PyG Data")


def to_networkx(graph) -> nx.Graph:
    """``nx.Graph`` on nodes 0..n-1 of any accepted input (an ``nx.Graph`` is relabelled in node order).

    An ``nx.Graph`` whose nodes already are 0..n-1 in order is returned itself, not copied.
    """
    if isinstance(graph, nx.Graph):
        if graph.is_directed() or graph.is_multigraph() or nx.number_of_selfloops(graph):
            to_adjacency(graph)  # raises the explanatory error
        if all(v == i for i, v in enumerate(graph.nodes())):
            return graph  # already on 0..n-1 in order: returned as is (never modified here)
        return nx.convert_node_labels_to_integers(graph, ordering="default")
    a = to_adjacency(graph)
    g = nx.Graph()
    g.add_nodes_from(range(a.shape[0]))
    g.add_edges_from(zip(*(idx.tolist() for idx in np.nonzero(np.triu(a, k=1)))))
    return g


# ---------------------------------------------------------------------------- categorical classes
def classes_to_data(node_classes, edges, edge_classes, num_node_classes: int, num_edge_classes: int, **attrs) -> Data:
    """``Data`` of a graph with categorical node and edge classes (the layout of the module docstring, widened).

    ``node_classes`` (N,) ints in 0..num_node_classes-1; ``edges`` (M, 2) undirected edges, each listed once, no
    self-loops; ``edge_classes`` (M,) ints in 1..num_edge_classes-1 (0 is "no edge"). Returns ``x`` (N, dx) one-hot,
    ``edge_index`` (2, 2M) both directions sorted by (source, target), ``edge_attr`` (2M, de) one-hot, ``y`` (1, 0).
    Raises ``ValueError`` for a class out of range, a self-loop or an edge listed twice.
    """
    nc = np.asarray(node_classes, dtype=np.int64).reshape(-1)
    n = nc.size
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    ec = np.asarray(edge_classes, dtype=np.int64).reshape(-1)
    if ec.size != e.shape[0]:
        raise ValueError(f"{ec.size} edge classes for {e.shape[0]} edges")
    if nc.size and (nc.min() < 0 or nc.max() >= num_node_classes):
        raise ValueError(f"node classes must lie in 0..{num_node_classes - 1}, found {int(nc.min())}..{int(nc.max())}")
    if ec.size and (ec.min() < 1 or ec.max() >= num_edge_classes):
        raise ValueError(f"edge classes must lie in 1..{num_edge_classes - 1}, found {int(ec.min())}..{int(ec.max())}")
    lo, hi = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
    if len(canonical_edges(n, e)) != len(e):
        raise ValueError("an edge is listed twice: list each undirected edge once")
    src = np.concatenate([lo, hi])
    dst = np.concatenate([hi, lo])
    cls = np.concatenate([ec, ec])
    order = np.lexsort((dst, src))
    edge_attr = torch.zeros(len(cls), int(num_edge_classes))
    edge_attr[torch.arange(len(cls)), torch.from_numpy(cls[order])] = 1.0
    x = torch.zeros(n, int(num_node_classes))
    x[torch.arange(n), torch.from_numpy(nc)] = 1.0
    edge_index = torch.from_numpy(np.stack([src[order], dst[order]])).long()
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, y=torch.zeros(1, 0), num_nodes=n, **attrs)


def labelled_networkx(graph, attr: str = "c") -> nx.Graph:
    """``nx.Graph`` on nodes 0..n-1 whose nodes and edges carry their class index as attribute ``attr``.

    ``graph``: an ``(atoms, bonds)`` pair (``atoms`` (n,) class indices, ``bonds`` (n, n) edge classes, 0 = no edge)
    or a PyG ``Data`` with one-hot ``x`` and ``edge_attr``. Used to compare graphs up to class-preserving isomorphism.
    """
    g = nx.Graph()
    if hasattr(graph, "edge_index") and hasattr(graph, "num_nodes"):
        n = int(graph.num_nodes)
        nodes = graph.x.argmax(1).tolist() if graph.x is not None and graph.x.numel() else [0] * n
        ei = graph.edge_index
        cls = graph.edge_attr.argmax(1).tolist() if graph.edge_attr is not None else [1] * ei.shape[1]
        g.add_nodes_from((i, {attr: int(c)}) for i, c in enumerate(nodes))
        g.add_edges_from((int(u), int(v), {attr: int(c)}) for u, v, c in zip(ei[0].tolist(), ei[1].tolist(), cls)
                         if u < v)
        return g
    atoms, bonds = (_to_numpy(a) for a in graph)
    if atoms.ndim == 2:
        atoms = atoms.argmax(1)
    to_adjacency((atoms, bonds))  # checks the shapes and the symmetry
    g.add_nodes_from((i, {attr: int(c)}) for i, c in enumerate(atoms.tolist()))
    u, v = np.nonzero(np.triu(bonds > 0, k=1))
    g.add_edges_from((int(a), int(b), {attr: int(bonds[a, b])}) for a, b in zip(u, v))
    return g
