"""1-WL colour refinement: the coarsest equitable partition of a (labelled) graph's nodes.

Colour refinement starts from the node labels and repeatedly splits colour classes by the multiset
of (neighbour colour, edge label) pairs, until the partition is stable. The stable partition is
equitable and preserved by every automorphism, so each automorphism orbit lies inside one 1-WL cell
(:mod:`sympe.symbreak.orbits.partitions` states how the partitions relate). Vectorised over a PyG-style batch.

Graphs are given as ``edge_index`` (2, M) long (PyG convention: an undirected edge is stored in both
directions; information flows ``edge_index[0] -> edge_index[1]``).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["color_refinement"]

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
