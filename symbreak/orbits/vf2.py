"""Exact automorphism orbits and automorphism group orders of small labelled graphs.

``Aut(G)`` is the group of node permutations preserving the edges and the node and edge labels. Its
orbits partition the nodes (``u ~ v`` iff some automorphism maps ``u`` to ``v``); its order follows
from the orbit–stabilizer theorem. Both are decided exactly with networkx's VF2 matcher, pruned by
1-WL colours (:func:`sympe.symbreak.orbits.wl.color_refinement`), which is exponential in the
worst case, hence a ``max_nodes`` guard. Graphs are a networkx graph or an ``edge_index`` (2, M).
"""
from __future__ import annotations

from typing import Any, Hashable, Sequence

import torch
from torch import Tensor

from sympe.symbreak.orbits.wl import color_refinement

__all__ = ["automorphism_orbits", "automorphism_group_size"]


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
