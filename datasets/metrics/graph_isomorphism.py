"""Uniqueness and novelty of generated graphs up to isomorphism.

Uniqueness, novelty, V.U.N. (DiGress's ``eval_fraction_unique_non_isomorphic_valid``), over the
N generated graphs in order: *unique* = not isomorphic to an earlier generated graph; *novel* =
not isomorphic to any train graph; uniqueness, novelty = their fractions of N; ``unique_novel`` =
fraction both; ``vun`` = fraction valid, unique and novel. Isomorphism: bucket by
``nx.weisfeiler_lehman_graph_hash`` (isomorphic graphs share it), then exact ``nx.is_isomorphic``
within the bucket. ``labelled=True``: isomorphisms must also preserve the class stored as attribute ``c`` on
nodes and edges (:func:`sympe.datasets.graph_utils.labelled_networkx`); the hash then includes the classes.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterable, Sequence

import networkx as nx

from sympe.datasets.graph_utils import to_networkx

LABEL = "c"  # the node / edge attribute holding a class index in labelled graphs
_MATCH = {"node_match": nx.algorithms.isomorphism.categorical_node_match(LABEL, None),
          "edge_match": nx.algorithms.isomorphism.categorical_edge_match(LABEL, None)}


# =========================================================================== uniqueness / novelty
class IsomorphismIndex:
    """Graphs bucketed by Weisfeiler-Lehman hash; ``contains`` = isomorphic to a stored graph (exact).

    ``labelled``: graphs carry classes as attribute ``c`` on nodes and edges, which isomorphisms must preserve."""

    def __init__(self, graphs: Iterable = (), labelled: bool = False):
        self.labelled = bool(labelled)
        self._buckets: dict[str, list[nx.Graph]] = {}
        for g in graphs:
            self.add(g)

    @staticmethod
    def key(g: nx.Graph, labelled: bool = False) -> str:
        attr = LABEL if labelled else None
        with warnings.catch_warnings():  # networkx >= 3.5 warns that attribute-free hashes changed in 3.5;
            warnings.simplefilter("ignore", UserWarning)  # hashes are only compared within one run here
            return nx.weisfeiler_lehman_graph_hash(g, node_attr=attr, edge_attr=attr)

    def contains(self, g: nx.Graph, key: str | None = None) -> bool:
        key = self.key(g, self.labelled) if key is None else key
        match = _MATCH if self.labelled else {}
        return any(nx.is_isomorphic(g, h, **match) for h in self._buckets.get(key, ()))

    def add(self, g, key: str | None = None) -> None:
        g = g if self.labelled else to_networkx(g)
        self._buckets.setdefault(self.key(g, self.labelled) if key is None else key, []).append(g)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())


def uniqueness_novelty(generated: Sequence, train, validity: Callable[[object], bool] | Sequence[bool] | None = None,
                       labelled: bool = False) -> dict:
    """Fractions over the generated graphs: uniqueness, novelty, unique_novel, validity and vun.

    ``train`` is a sequence of graphs or a prebuilt :class:`IsomorphismIndex`; ``validity`` a
    predicate, or one bool per generated graph (None: ``validity`` and ``vun`` are None). ``labelled``: the graphs
    are labelled ``nx.Graph`` (class attribute ``c``) compared up to class-preserving isomorphism; a prebuilt index
    must then be labelled too (``ValueError`` otherwise).
    """
    gens = list(generated) if labelled else [to_networkx(g) for g in generated]
    if not gens:
        raise ValueError("uniqueness_novelty needs at least one generated graph")
    if validity is None:
        flags = [False] * len(gens)
    elif callable(validity):
        flags = [bool(validity(g)) for g in gens]
    else:
        flags = [bool(v) for v in validity]
        if len(flags) != len(gens):
            raise ValueError(f"uniqueness_novelty: {len(flags)} validity flags for {len(gens)} graphs")
    index = train if isinstance(train, IsomorphismIndex) else IsomorphismIndex(train, labelled=labelled)
    if index.labelled != bool(labelled):
        raise ValueError(f"uniqueness_novelty(labelled={labelled}) was given an index with labelled={index.labelled}")
    seen = IsomorphismIndex(labelled=labelled)
    unique = novel = unique_novel = valid = vun = 0
    for g, ok in zip(gens, flags):
        key = IsomorphismIndex.key(g, labelled)
        is_unique = not seen.contains(g, key)
        if is_unique:
            seen.add(g, key)
        is_novel = not index.contains(g, key)
        unique += is_unique
        novel += is_novel
        unique_novel += is_unique and is_novel
        valid += ok
        vun += ok and is_unique and is_novel
    n = len(gens)
    return {"uniqueness": unique / n, "novelty": novel / n, "unique_novel": unique_novel / n,
            "validity": valid / n if validity is not None else None,
            "vun": vun / n if validity is not None else None}
