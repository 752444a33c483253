"""Canonical labellings, automorphism counts and uniform automorphisms of small coloured graphs (BLISS).

A *coloured graph* here is ``(node_colours (n,), edge_colours (n, n))`` of non-negative ints: ``edge_colours``
symmetric, 0 = no edge, the diagonal ignored. Several layers (a graph, its noisy version, a partition) are
combined into one coloured graph by :func:`stack_colours` (colour = the tuple of the layers' classes). Aut of a
coloured graph is the group of node permutations preserving every node colour and every pair colour.

BLISS (Junttila and Kaski, 2007; shipped in python-igraph's wheels) takes vertex colours only, so a pair of
colour ``k >= 1`` becomes a vertex of colour ``num_node_colours + k`` joined to its two ends (the subdivision
encoding of :mod:`sympe.datasets.floor.bliss`). The colour ids are fixed by the inputs (no relabelling of the
colour set), so canonical forms of two graphs are comparable.

Conventions: a *labelling* ``lab`` (n,) maps node ``i`` to its canonical label ``lab[i]`` in ``0..n-1``
(the order of the nodes by their BLISS canonical labels); relabelling the graph by it gives the *canonical
form*, the same for every graph of an isomorphism class.

* :func:`canonical_labelling`: the BLISS labelling (a function of the labelled graph);
* :func:`canonical_form`: a hashable canonical form (equal iff the coloured graphs are isomorphic);
* :func:`automorphism_count`: ``|Aut|`` (BLISS's search tree, no enumeration);
* :func:`random_labelling`: a labelling drawn uniformly from ``{lab ∘ τ : τ ∈ Aut}`` (every labelling that gives
  the canonical form), by relabelling the graph with a uniform colour-preserving permutation ``π`` first:
  ``lab_π(π·x) ∘ π`` is uniform on that set because ``π`` and ``πτ`` give the same relabelled graph;
* :func:`random_automorphism`: ``τ = lab⁻¹ ∘ lab'`` for a uniform ``lab'``: a uniform element of ``Aut``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["stack_colours", "canonical_labelling", "canonical_form", "automorphism_count", "random_labelling",
           "random_automorphism", "colour_classes"]


def _igraph():
    try:
        import igraph
    except ImportError as exc:  # pragma: no cover - igraph is a dependency
        raise ImportError("canonical labellings need python-igraph (BLISS): pip install igraph") from exc
    return igraph


def stack_colours(node_layers: list[np.ndarray], node_radix: list[int], edge_layers: list[np.ndarray],
                  edge_radix: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One coloured graph from several layers: colour = mixed-radix code of the tuple of the layers' classes.

    Args:
        node_layers: arrays (n,) of classes in ``0..radix-1``; edge_layers: symmetric (n, n) arrays of classes,
            0 = absent in that layer. A pair is an edge of the result iff some layer has a non-zero class there.
        node_radix / edge_radix: the number of classes of each layer (fixed, so codes are comparable across graphs).

    Returns: ``(node_colours (n,), edge_colours (n, n))`` with edge colour 0 exactly where every layer is 0.
    """
    node = np.zeros(len(node_layers[0]), dtype=np.int64)
    for layer, radix in zip(node_layers, node_radix):
        node = node * int(radix) + np.asarray(layer, dtype=np.int64)
    edge = np.zeros(np.shape(edge_layers[0]), dtype=np.int64)
    for layer, radix in zip(edge_layers, edge_radix):
        edge = edge * int(radix) + np.asarray(layer, dtype=np.int64)
    return node, edge


def _graph(node_colours: np.ndarray, edge_colours: np.ndarray):
    ig = _igraph()
    node_colours = np.asarray(node_colours, dtype=np.int64)
    edge_colours = np.asarray(edge_colours, dtype=np.int64)
    n = node_colours.shape[0]
    if edge_colours.shape != (n, n):
        raise ValueError(f"canonical labelling: edge colours {edge_colours.shape} do not match {n} nodes")
    if (node_colours < 0).any() or (edge_colours < 0).any():
        raise ValueError("canonical labelling: colours must be non-negative ints")
    iu, ju = np.nonzero(np.triu(edge_colours, 1))
    offset = int(node_colours.max(initial=0)) + 1
    colours = node_colours.tolist() + (offset + edge_colours[iu, ju]).tolist()
    w = n + np.arange(len(iu))
    links = np.concatenate([np.stack([iu, w], 1), np.stack([w, ju], 1)]).tolist() if len(iu) else []
    return ig.Graph(n=len(colours), edges=links), colours, n


def canonical_labelling(node_colours: np.ndarray, edge_colours: np.ndarray) -> np.ndarray:
    """BLISS canonical labelling of the nodes: (n,) int64, ``lab[i]`` in ``0..n-1`` (module docstring)."""
    g, colours, n = _graph(node_colours, edge_colours)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    perm = np.asarray(g.canonical_permutation(color=colours), dtype=np.int64)
    new_id = perm if _documented_convention() else np.argsort(perm)
    return np.argsort(np.argsort(new_id[:n], kind="stable"), kind="stable")  # node labels -> 0..n-1, order kept


_CONVENTION: list[bool] = []


def _documented_convention() -> bool:
    """Whether igraph's ``canonical_permutation`` returns ``perm[v]`` = the new id of vertex ``v`` (as documented)
    or its inverse (``perm[k]`` = the vertex given id ``k``, what builds on igraph C >= 1.0 return). Decided once,
    on a coloured graph with no automorphism and a relabelled copy: only the right reading gives both the same form."""
    if not _CONVENTION:
        ig = _igraph()
        edges = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5)]
        colours = [0, 1, 0, 2, 1, 0]
        order = [3, 5, 0, 4, 1, 2]  # copy: its vertex k is vertex order[k] of the original
        where = {v: k for k, v in enumerate(order)}
        g1 = ig.Graph(n=6, edges=edges)
        g2 = ig.Graph(n=6, edges=[(where[u], where[v]) for u, v in edges])
        c2 = [colours[order[k]] for k in range(6)]

        def form(g, col, documented):
            perm = np.asarray(g.canonical_permutation(color=col))
            new_id = perm if documented else np.argsort(perm)
            return (sorted(tuple(sorted((int(new_id[u]), int(new_id[v])))) for u, v in g.get_edgelist()),
                    [col[v] for v in np.argsort(new_id)])

        _CONVENTION.append(form(g1, colours, True) == form(g2, c2, True))
        if not _CONVENTION[0] and form(g1, colours, False) != form(g2, c2, False):  # pragma: no cover
            raise RuntimeError("igraph's canonical_permutation is canonical under neither reading; check the igraph build")
    return _CONVENTION[0]


def canonical_form(node_colours: np.ndarray, edge_colours: np.ndarray, lab: np.ndarray | None = None) -> tuple:
    """A hashable canonical form: (node colours in label order, sorted (a, b, colour) edges with a < b labels).

    Two coloured graphs have equal forms iff they are isomorphic (colours preserved). ``lab``: a labelling that
    gives the canonical form (default :func:`canonical_labelling`)."""
    node_colours = np.asarray(node_colours, dtype=np.int64)
    edge_colours = np.asarray(edge_colours, dtype=np.int64)
    lab = canonical_labelling(node_colours, edge_colours) if lab is None else np.asarray(lab)
    order = np.argsort(lab)
    nodes = tuple(node_colours[order].tolist())
    E = edge_colours[np.ix_(order, order)]
    iu, ju = np.nonzero(np.triu(E, 1))
    return nodes, tuple(zip(iu.tolist(), ju.tolist(), E[iu, ju].tolist()))


def automorphism_count(node_colours: np.ndarray, edge_colours: np.ndarray) -> int:
    """``|Aut|`` of the coloured graph (exact, a Python int; 1 for no nodes)."""
    g, colours, n = _graph(node_colours, edge_colours)
    return 1 if n == 0 else int(g.count_automorphisms(color=colours))


def colour_classes(node_colours: np.ndarray) -> list[np.ndarray]:
    """The nodes of each node colour, in increasing colour order (arrays of node indices)."""
    node_colours = np.asarray(node_colours)
    return [np.flatnonzero(node_colours == c) for c in np.unique(node_colours)]


def _uniform_colour_permutation(node_colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """π (n,) uniform among the permutations preserving the node colours: node i goes to π[i]."""
    n = len(node_colours)
    pi = np.arange(n)
    for cls in colour_classes(node_colours):
        pi[cls] = cls[rng.permutation(len(cls))]
    return pi


def random_labelling(node_colours: np.ndarray, edge_colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A labelling drawn uniformly from the ``|Aut|`` labellings that give the canonical form (module docstring)."""
    node_colours = np.asarray(node_colours, dtype=np.int64)
    edge_colours = np.asarray(edge_colours, dtype=np.int64)
    pi = _uniform_colour_permutation(node_colours, rng)
    inv = np.argsort(pi)  # node j of π·x is node inv[j] of x
    lab_pi = canonical_labelling(node_colours[inv], edge_colours[np.ix_(inv, inv)])
    return lab_pi[pi]  # node i of x is node π[i] of π·x


def random_automorphism(node_colours: np.ndarray, edge_colours: np.ndarray, rng: np.random.Generator,
                        lab: np.ndarray | None = None) -> np.ndarray:
    """A uniform element τ of Aut as an array (n,): node i maps to τ[i] (``x`` relabelled by τ is ``x``)."""
    lab = canonical_labelling(node_colours, edge_colours) if lab is None else np.asarray(lab)
    other = random_labelling(node_colours, edge_colours, rng)
    inv_lab = np.argsort(lab)
    return inv_lab[other]  # τ(i) = lab⁻¹(other(i))
