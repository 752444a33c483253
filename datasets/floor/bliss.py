"""Exact automorphism-group sizes of labelled graphs (node classes and edge classes preserved).

For a graph x with node classes c(v) and edge classes c(u, v), Aut(x) is the group of node permutations
π with c(π v) = c(v) for every node and c(π u, π v) = c(u, v) for every pair. Its size enters the
exchangeable NLL floor (:mod:`sympe.datasets.floor.exchangeable`).

Why igraph: ``python-igraph`` ships manylinux wheels that contain BLISS (Junttila and Kaski, 2007), a
canonical-labelling / automorphism-group solver that returns |Aut| directly from its search tree, without
enumerating the group (|Aut| of neopentane with explicit H is 4!·(3!)^4 = 31,104; enumerating it
match by match, as networkx's VF2 or RDKit substructure matching would, costs that many matches). BLISS
takes vertex colours only, so edge classes are encoded by the standard subdivision: every edge {u, v} of
class k becomes a new vertex w of colour (num node colours + k) joined to u and v. Edge vertices and node
vertices never share a colour, and w is determined by its two neighbours, so automorphisms of the
subdivided graph are exactly the class-preserving automorphisms of x.

Graphs without edges of class > 0 between some nodes are fine (class 0 is "no edge" and is not encoded).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _igraph():
    try:
        import igraph
    except ImportError as exc:  # pragma: no cover - igraph is a dependency
        raise ImportError("exact automorphism counts need python-igraph: pip install igraph") from exc
    return igraph


def automorphism_group_size(node_classes: Sequence[int], edges: Sequence[tuple[int, int, int]]) -> int:
    """|Aut(x)| of a graph with integer node classes and classed undirected edges.

    Args:
        node_classes: length-N sequence of node class indices (any non-negative ints).
        edges: ``(u, v, k)`` triples, ``u != v``, class ``k >= 1``; each undirected edge once (a repeated
            pair with the same class is ignored; with two different classes it is an error).

    Returns:
        the exact group size (a Python int; 1 for the empty graph).

    Raises:
        ValueError: for a self-loop, an endpoint outside ``0..N-1``, a class < 1 or a pair given two classes.
    """
    ig = _igraph()
    N = len(node_classes)
    if N == 0:
        return 1
    pairs: dict[tuple[int, int], int] = {}
    for u, v, k in edges:
        u, v, k = int(u), int(v), int(k)
        if u == v:
            raise ValueError(f"automorphism_group_size: self-loop at node {u}")
        if not (0 <= u < N and 0 <= v < N):
            raise ValueError(f"automorphism_group_size: edge ({u}, {v}) outside 0..{N - 1}")
        if k < 1:
            raise ValueError(f"automorphism_group_size: edge ({u}, {v}) has class {k}; classes start at 1")
        key = (min(u, v), max(u, v))
        if pairs.get(key, k) != k:
            raise ValueError(f"automorphism_group_size: pair {key} given two edge classes {pairs[key]} and {k}")
        pairs[key] = k
    node_colours = [int(c) for c in node_classes]
    offset = max(node_colours) + 1
    colours = list(node_colours)
    links = []
    for (u, v), k in pairs.items():
        w = len(colours)
        colours.append(offset + k)
        links.append((u, w))
        links.append((w, v))
    g = ig.Graph(n=len(colours), edges=links)
    return int(g.count_automorphisms(color=colours))


def log_automorphism_group_size(node_classes: Sequence[int], edges: Sequence[tuple[int, int, int]]) -> float:
    """``log |Aut(x)|`` in nats (see :func:`automorphism_group_size`)."""
    return math.log(automorphism_group_size(node_classes, edges))


def pyg_graph_classes(data) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Node classes and ``(u, v, k)`` edges (u < v) of a PyG ``Data`` in the datasets' format.

    ``data.x`` is one-hot (N, dx); ``data.edge_index`` (2, M) holds both directions; ``data.edge_attr`` is
    one-hot (M, de) with column 0 = no edge (absent in sparse form). A graph without ``edge_attr`` has
    every edge of class 1.
    """
    x = data.x
    node_classes = x.argmax(-1).tolist() if x is not None and x.dim() == 2 and x.numel() else [0] * int(data.num_nodes)
    ei = data.edge_index
    if ei is None or ei.numel() == 0:
        return node_classes, []
    attr = getattr(data, "edge_attr", None)
    cls = attr.argmax(-1) if attr is not None and attr.dim() == 2 else torch.ones(ei.shape[1], dtype=torch.long)
    keep = ei[0] < ei[1]
    return node_classes, [(int(u), int(v), int(k)) for u, v, k in zip(ei[0][keep], ei[1][keep], cls[keep])]
