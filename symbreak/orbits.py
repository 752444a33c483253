"""Node partitions of graphs: 1-WL colour refinement, exact automorphism orbits, tie-group sizes.

Three partitions of the nodes of a graph ``G`` (optionally with node and edge labels) appear when
symmetry is broken by sorting node scores:

* the **orbit partition** of ``Aut(G)``: ``u ~ v`` iff some automorphism maps ``u`` to ``v``;
* the **1-WL (colour refinement) partition**, the coarsest *equitable* partition refining the node
  labels. Every automorphism preserves it, so every orbit lies inside one 1-WL cell (1-WL is
  coarser-or-equal to the orbits); on many graphs (trees, most random graphs) the two coincide;
* any **tie partition** of a ranking (nodes whose scores are equal up to a tolerance).

For a partition ``P`` of the ``n`` nodes, the group of permutations preserving every cell is the
product of the symmetric groups of the cells, of order ``prod_{C in P} |C|!``
(:func:`tie_group_size`). If ``P`` is the orbit partition or a coarsening of it (1-WL, ties of an
invariant score), this group contains the stabilizer ``Stab(G) = Aut(G)``.

Graphs are given as ``edge_index`` (2, M) long (PyG convention: an undirected edge is stored in both
directions; information flows ``edge_index[0] -> edge_index[1]``) or as a ``networkx`` graph.
"""
from __future__ import annotations

import math
from typing import Any, Hashable, Sequence

import torch
from torch import Tensor

__all__ = [
    "color_refinement",
    "automorphism_orbits",
    "automorphism_group_size",
    "tie_group_size",
    "log_tie_group_size",
    "partition_refines",
    "same_partition",
]

# Two Mersenne-like primes below 2**31: products of two residues stay below 2**62 (no int64 overflow).
_P1 = 2_147_483_647
_P2 = 2_147_483_629
_TABLE_CHUNK = 1024


# ---------------------------------------------------------------------------------------- helpers
def _labels_to_ids(labels: Tensor, name: str) -> Tensor:
    """(K,) or (K, d) tensor -> (K,) long ids; equal rows get equal ids, ids ordered by row value."""
    if labels.dim() == 1:
        _, inv = torch.unique(labels, return_inverse=True)
    elif labels.dim() == 2:
        _, inv = torch.unique(labels, dim=0, return_inverse=True)
    else:
        raise ValueError(f"{name} must be (K,) or (K, d), got shape {tuple(labels.shape)}")
    return inv.long()


def _hash_table(size: int, seed: int, modulus: int, device) -> Tensor:
    """(size,) int64 pseudo-random residues in [1, modulus), identical for every ``size`` (prefix-stable).

    Entry k depends only on (seed, k): the table is built from fixed chunks with their own seeds, so
    colour ids hash identically whatever the batch size and on every device.
    """
    chunks = []
    for c in range((size + _TABLE_CHUNK - 1) // _TABLE_CHUNK):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + c)
        chunks.append(torch.randint(1, modulus, (_TABLE_CHUNK,), generator=gen, dtype=torch.long))
    if not chunks:
        return torch.zeros(0, dtype=torch.long, device=device)
    return torch.cat(chunks)[:size].to(device)


def _rank_rows(key: Tensor, batch: Tensor | None) -> tuple[Tensor, int]:
    """Dense ids of the rows of ``key`` (N, k) in lexicographic row order.

    With ``batch`` given (and ``key[:, 0] == batch``), ids restart at 0 in every graph. Returns the ids
    and the total number of distinct rows.
    """
    uniq, inv = torch.unique(key, dim=0, return_inverse=True)
    if batch is None:
        return inv, uniq.shape[0]
    first = torch.full((int(batch.max()) + 1,), uniq.shape[0], dtype=torch.long, device=key.device)
    first = first.scatter_reduce(0, batch, inv, reduce="amin")
    return inv - first[batch], uniq.shape[0]


# ---------------------------------------------------------------------------------------- 1-WL
def color_refinement(
    edge_index: Tensor,
    num_nodes: int,
    batch: Tensor | None = None,
    node_colors: Tensor | None = None,
    edge_colors: Tensor | None = None,
    max_iter: int | None = None,
    per_graph: bool = True,
) -> Tensor:
    """1-WL colour refinement to the stable partition, vectorised over a batch of graphs.

    Iterates ``c_{t+1}(v) = relabel(c_t(v), deg(v), {{ (c_t(u), e_uv) : (u -> v) in edges }})`` until the
    number of colours stops growing (at most ``n - 1`` rounds per graph), or ``max_iter`` rounds.

    The neighbour multiset is hashed exactly-as-a-multiset by two independent sums of random residues
    ``h_k(v) = sum_{u -> v} r_k[c_t(u)] * s_k[e_uv]  mod p_k`` (k = 1, 2; fixed seeded tables), so two
    different multisets collide with probability <= 2/p_k per hash (about 1e-18 for both). The own
    colour and the degree enter the key exactly, so each round refines the previous partition.
    New colours are the dense ranks of the keys ``(graph, c_t, deg, h_1, h_2)``.

    Args:
        edge_index: (2, M) long; messages go ``edge_index[0] -> edge_index[1]`` (store both directions
            of undirected edges).
        num_nodes: N, total number of nodes.
        batch: (N,) long graph id of each node (any order); default one graph.
        node_colors: (N,) or (N, d) initial labels (equal rows = same colour); default all equal.
        edge_colors: (M,) or (M, d) edge labels aligned with ``edge_index``; default all equal.
        max_iter: cap on the number of rounds (None: run to the stable partition).
        per_graph: True (default): colours are renumbered 0, 1, ... inside every graph, in an order
            that depends only on the graph itself, so colours are a function of the isomorphism class:
            isomorphic graphs get the same colour multiset and isomorphisms map colours to colours.
            False: colours are numbered jointly over the batch (comparable across the graphs of this
            batch: two graphs are 1-WL-indistinguishable iff their colour histograms agree).

    Returns: (N,) long colours.
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"color_refinement: edge_index must be (2, M), got shape {tuple(edge_index.shape)}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"color_refinement: edge_index must be long, got {edge_index.dtype}")
    if num_nodes < 0:
        raise ValueError(f"color_refinement: num_nodes must be >= 0, got {num_nodes}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"color_refinement: edge_index refers to nodes outside 0 .. {num_nodes - 1}")
    if max_iter is not None and max_iter < 0:
        raise ValueError(f"color_refinement: max_iter must be >= 0 or None, got {max_iter}")
    device = edge_index.device
    if num_nodes == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    if batch.shape != (num_nodes,):
        raise ValueError(f"color_refinement: batch must be ({num_nodes},), got shape {tuple(batch.shape)}")
    batch = batch.long()
    src, dst = edge_index
    if edge_index.numel() and bool((batch[src] != batch[dst]).any()):
        raise ValueError("color_refinement: an edge joins two different graphs of the batch")

    if node_colors is None:
        c = torch.zeros(num_nodes, dtype=torch.long, device=device)
    else:
        if node_colors.shape[0] != num_nodes:
            raise ValueError(f"color_refinement: node_colors has {node_colors.shape[0]} rows, expected {num_nodes}")
        c = _labels_to_ids(node_colors.to(device), "node_colors")
    if edge_colors is None:
        e = torch.zeros(src.numel(), dtype=torch.long, device=device)
    else:
        if edge_colors.shape[0] != src.numel():
            raise ValueError(f"color_refinement: edge_colors has {edge_colors.shape[0]} rows, expected {src.numel()}")
        e = _labels_to_ids(edge_colors.to(device), "edge_colors")
    num_edge_colors = int(e.max()) + 1 if e.numel() else 1

    graph_key = batch if per_graph else None
    deg = torch.bincount(dst, minlength=num_nodes)

    def key_with(*cols: Tensor) -> Tensor:
        parts = ([batch] if per_graph else []) + list(cols)
        return torch.stack(parts, dim=1)

    c, num_colors = _rank_rows(key_with(c), graph_key)
    r1 = _hash_table(num_nodes, 1, _P1, device)
    r2 = _hash_table(num_nodes, 2, _P2, device)
    s1 = _hash_table(num_edge_colors, 3, _P1, device)
    s2 = _hash_table(num_edge_colors, 4, _P2, device)

    rounds = 0
    while max_iter is None or rounds < max_iter:
        m1 = (r1[c[src]] * s1[e]) % _P1
        m2 = (r2[c[src]] * s2[e]) % _P2
        h1 = torch.zeros(num_nodes, dtype=torch.long, device=device).index_add_(0, dst, m1) % _P1
        h2 = torch.zeros(num_nodes, dtype=torch.long, device=device).index_add_(0, dst, m2) % _P2
        new_c, new_num = _rank_rows(key_with(c, deg, h1, h2), graph_key)
        rounds += 1
        stable = new_num == num_colors
        c, num_colors = new_c, new_num
        if stable:
            break
    return c


# ---------------------------------------------------------------------------------------- exact orbits
_LABEL = "_sympe_label"


def _hashable(v: Any) -> Hashable:
    if torch.is_tensor(v):
        return tuple(v.reshape(-1).tolist()) if v.numel() != 1 else v.item()
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(a) for a in v)
    try:
        import numpy as np

        if isinstance(v, np.ndarray):
            return tuple(v.reshape(-1).tolist())
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return v


def _labelled_graph(graph, num_nodes, node_labels, edge_labels, max_nodes):
    """Build a networkx graph on nodes 0..n-1 with hashable labels in attribute ``_LABEL``.

    Returns (G, original node list).
    """
    import networkx as nx

    if isinstance(graph, nx.Graph):
        nodes = list(graph.nodes())
        index = {v: k for k, v in enumerate(nodes)}
        G = nx.DiGraph() if graph.is_directed() else nx.Graph()
        G.add_nodes_from(range(len(nodes)))
        if node_labels is None:
            labs = [None] * len(nodes)
        elif isinstance(node_labels, str):
            labs = [graph.nodes[v].get(node_labels) for v in nodes]
        else:
            labs = list(node_labels)
        for u, v, data in graph.edges(data=True):
            if edge_labels is None:
                lab = None
            elif isinstance(edge_labels, str):
                lab = data.get(edge_labels)
            else:
                raise ValueError("automorphism_orbits: for a networkx graph, edge_labels must be the name of "
                                 "an edge attribute (str)")
            G.add_edge(index[u], index[v], **{_LABEL: _hashable(lab)})
    elif torch.is_tensor(graph):
        if graph.dim() != 2 or graph.shape[0] != 2:
            raise ValueError(f"automorphism_orbits: edge_index must be (2, M), got shape {tuple(graph.shape)}")
        if num_nodes is None:
            raise ValueError("automorphism_orbits: pass num_nodes together with an edge_index")
        nodes = list(range(num_nodes))
        ei = graph.tolist()
        if ei[0] and (min(ei[0] + ei[1]) < 0 or max(ei[0] + ei[1]) >= num_nodes):
            raise ValueError(f"automorphism_orbits: edge_index refers to nodes outside 0 .. {num_nodes - 1}")
        G = nx.Graph()
        G.add_nodes_from(nodes)
        if edge_labels is not None and (not torch.is_tensor(edge_labels) and not isinstance(edge_labels, Sequence)):
            raise ValueError("automorphism_orbits: edge_labels must be a tensor/sequence aligned with edge_index columns")
        if edge_labels is not None and len(edge_labels) != len(ei[0]):
            raise ValueError(f"automorphism_orbits: edge_labels has {len(edge_labels)} entries, edge_index has {len(ei[0])}")
        for k, (u, v) in enumerate(zip(*ei)):
            lab = None if edge_labels is None else _hashable(edge_labels[k])
            if G.has_edge(u, v) and G.edges[u, v][_LABEL] != lab:
                raise ValueError(f"automorphism_orbits: edge ({u}, {v}) has two different labels in its two "
                                 "directions; the graph is treated as undirected")
            G.add_edge(u, v, **{_LABEL: lab})
        labs = [None] * num_nodes if node_labels is None else list(node_labels)
    else:
        raise ValueError(f"automorphism_orbits: graph must be a networkx graph or an edge_index tensor, "
                         f"got {type(graph).__name__}")
    if len(labs) != len(nodes):
        raise ValueError(f"automorphism_orbits: node_labels has {len(labs)} entries for {len(nodes)} nodes")
    if len(nodes) > max_nodes:
        raise ValueError(f"automorphism_orbits: the graph has {len(nodes)} nodes, above max_nodes={max_nodes}; "
                         "exact automorphism search is exponential in the worst case. Raise max_nodes if you "
                         "accept the cost, or use color_refinement (1-WL) for a coarser, fast partition")
    for k, lab in enumerate(labs):
        G.nodes[k][_LABEL] = ("node", _hashable(lab))
    return G, nodes


def _wl_cells(G) -> list[int]:
    """1-WL colours of the labelled networkx graph (used to prune the orbit search)."""
    n = G.number_of_nodes()
    labels = [G.nodes[k][_LABEL] for k in range(n)]
    lab_ids = {lab: i for i, lab in enumerate(dict.fromkeys(labels))}
    edges = list(G.edges(data=True))
    elabs = [d[_LABEL] for _, _, d in edges]
    e_ids = {lab: i for i, lab in enumerate(dict.fromkeys(elabs))}
    src = [u for u, v, _ in edges] + ([] if G.is_directed() else [v for u, v, _ in edges])
    dst = [v for u, v, _ in edges] + ([] if G.is_directed() else [u for u, v, _ in edges])
    ecol = [e_ids[l] for l in elabs] * (1 if G.is_directed() else 2)
    ei = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    return color_refinement(
        ei, n, node_colors=torch.tensor([lab_ids[l] for l in labels], dtype=torch.long),
        edge_colors=torch.tensor(ecol, dtype=torch.long) if ecol else None,
    ).tolist()


def _maps_to(G, u: int, v: int) -> bool:
    """True iff some label-preserving automorphism of G maps node u to node v."""
    from networkx.algorithms import isomorphism as iso

    if u == v:
        return True
    G1, G2 = G.copy(), G.copy()
    G1.nodes[u][_LABEL] = ("pinned", G.nodes[u][_LABEL])
    G2.nodes[v][_LABEL] = ("pinned", G.nodes[v][_LABEL])
    same = lambda a, b: a[_LABEL] == b[_LABEL]  # noqa: E731
    Matcher = iso.DiGraphMatcher if G.is_directed() else iso.GraphMatcher
    return Matcher(G1, G2, node_match=same, edge_match=same).is_isomorphic()


def _orbits_of(G) -> list[int]:
    """Orbit id per node 0..n-1, orbits numbered by their smallest node."""
    n = G.number_of_nodes()
    wl = _wl_cells(G)
    orbit = [-1] * n
    representatives: list[int] = []  # first node of each orbit found so far
    for v in range(n):
        # Test v against the representatives of its 1-WL cell; a new orbit if none maps to v.
        for u in representatives:
            if wl[u] == wl[v] and _maps_to(G, u, v):
                orbit[v] = orbit[u]
                break
        else:
            orbit[v] = len(representatives)
            representatives.append(v)
    return orbit


def automorphism_orbits(
    graph,
    num_nodes: int | None = None,
    node_labels=None,
    edge_labels=None,
    max_nodes: int = 64,
) -> Tensor:
    """Exact orbits of the (label-preserving) automorphism group: ``orbit[u] == orbit[v]`` iff some
    automorphism maps ``u`` to ``v``.

    For every node ``v`` and every earlier orbit representative ``u`` of the same 1-WL cell, one
    networkx ``GraphMatcher`` search decides whether an automorphism with ``u -> v`` exists (both nodes
    are "pinned" with a fresh label). At most ``n^2`` searches; each is exponential in the worst case,
    hence ``max_nodes``.

    Args:
        graph: a networkx ``Graph``/``DiGraph`` (nodes in ``list(graph.nodes())`` order), or an
            ``edge_index`` (2, M) long tensor read as an undirected graph on ``0 .. num_nodes - 1``.
        num_nodes: required with an ``edge_index``.
        node_labels: None, a sequence/tensor aligned with the nodes, or (networkx) a node-attribute name.
        edge_labels: None; with ``edge_index`` a sequence/tensor aligned with its columns (both
            directions must agree); with networkx an edge-attribute name.
        max_nodes: refuse (``ValueError``) graphs with more nodes.

    Returns: (n,) long orbit ids, numbered 0, 1, ... in order of each orbit's first node.
    """
    G, _ = _labelled_graph(graph, num_nodes, node_labels, edge_labels, max_nodes)
    device = graph.device if torch.is_tensor(graph) else "cpu"
    return torch.tensor(_orbits_of(G), dtype=torch.long, device=device)


def automorphism_group_size(
    graph,
    num_nodes: int | None = None,
    node_labels=None,
    edge_labels=None,
    max_nodes: int = 64,
) -> int:
    """Exact order ``|Aut(G)|`` of the label-preserving automorphism group (Python int).

    Orbit–stabilizer along a chain of individualised nodes: ``|Aut(G)| = |Aut(G) v_1| * |Stab(v_1)|``,
    and ``Stab(v_1)`` is the automorphism group of ``G`` with ``v_1`` given a unique label; repeat
    until every orbit is a single node (only the identity is left). Arguments as in
    :func:`automorphism_orbits`.
    """
    G, _ = _labelled_graph(graph, num_nodes, node_labels, edge_labels, max_nodes)
    size = 1
    step = 0
    while True:
        orbit = _orbits_of(G)
        sizes: dict[int, int] = {}
        for o in orbit:
            sizes[o] = sizes.get(o, 0) + 1
        nontrivial = [v for v in range(len(orbit)) if sizes[orbit[v]] > 1]
        if not nontrivial:
            return size
        v = nontrivial[0]
        size *= sizes[orbit[v]]
        G.nodes[v][_LABEL] = ("individualised", step)
        step += 1


# ---------------------------------------------------------------------------------------- partitions
def _cells(partition: Tensor, batch: Tensor | None) -> tuple[Tensor, Tensor, int]:
    """Unique (graph, cell) pairs: returns (graph of each cell, size of each cell, number of graphs)."""
    if partition.dim() != 1:
        raise ValueError(f"partition must be (N,) cell ids, got shape {tuple(partition.shape)}")
    if batch is None:
        batch = torch.zeros_like(partition, dtype=torch.long)
    if batch.shape != partition.shape:
        raise ValueError(f"batch must have the shape of partition {tuple(partition.shape)}, got {tuple(batch.shape)}")
    num_graphs = int(batch.max()) + 1 if batch.numel() else 1
    key = torch.stack([batch.long(), partition.long()], dim=1)
    cells, counts = torch.unique(key, dim=0, return_counts=True)
    return cells[:, 0], counts, num_graphs


def log_tie_group_size(partition: Tensor, batch: Tensor | None = None) -> Tensor:
    """``log prod_{C} |C|! = sum_C lgamma(|C| + 1)`` per graph: (B,) float64 (B = 1 without ``batch``).

    Args:
        partition: (N,) cell id of every node (e.g. 1-WL colours, orbit ids, tie groups).
        batch: (N,) long graph ids (cells are taken within each graph).
    """
    graph, counts, B = _cells(partition, batch)
    logs = torch.lgamma(counts.double() + 1)
    out = torch.zeros(B, dtype=torch.float64, device=partition.device)
    return out.index_add_(0, graph, logs)


def tie_group_size(partition: Tensor, batch: Tensor | None = None) -> Tensor:
    """Exact ``prod_{C} |C|!`` per graph: (B,) long (B = 1 without ``batch``).

    This is the order of the group of permutations mapping every cell onto itself. Raises
    ``OverflowError`` when a value does not fit in int64 (use :func:`log_tie_group_size`).
    """
    graph, counts, B = _cells(partition, batch)
    logs = log_tie_group_size(partition, batch)
    if bool((logs > 63 * math.log(2) - 1e-6).any()):
        raise OverflowError("tie_group_size: the group order exceeds int64; use log_tie_group_size")
    sizes = [1] * B
    for g, c in zip(graph.tolist(), counts.tolist()):
        sizes[g] *= math.factorial(c)
    return torch.tensor(sizes, dtype=torch.long, device=partition.device)


def partition_refines(fine: Tensor, coarse: Tensor, batch: Tensor | None = None) -> bool:
    """True iff every cell of ``fine`` lies inside one cell of ``coarse`` (within each graph).

    Both are (N,) cell ids; ``batch`` (N,) long graph ids (default one graph).
    """
    if fine.shape != coarse.shape or fine.dim() != 1:
        raise ValueError(f"partition_refines: fine and coarse must both be (N,), got {tuple(fine.shape)} "
                         f"and {tuple(coarse.shape)}")
    if batch is None:
        batch = torch.zeros_like(fine, dtype=torch.long)
    fine_cells = torch.unique(torch.stack([batch.long(), fine.long()], 1), dim=0).shape[0]
    joint = torch.unique(torch.stack([batch.long(), fine.long(), coarse.long()], 1), dim=0).shape[0]
    return fine_cells == joint


def same_partition(a: Tensor, b: Tensor, batch: Tensor | None = None) -> bool:
    """True iff ``a`` and ``b`` group the nodes into the same cells (ids may differ)."""
    return partition_refines(a, b, batch) and partition_refines(b, a, batch)
