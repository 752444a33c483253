"""Uniqueness and novelty of generated graphs up to isomorphism.

Uniqueness, novelty, V.U.N. (DiGress's ``eval_fraction_unique_non_isomorphic_valid``), over the
N generated graphs in order: *unique* = not isomorphic to an earlier generated graph; *novel* =
not isomorphic to any train graph; uniqueness, novelty = their fractions of N; ``unique_novel`` =
fraction both; ``vun`` = fraction valid, unique and novel. Isomorphism: bucket by
``nx.weisfeiler_lehman_graph_hash`` (isomorphic graphs share it), then exact ``nx.is_isomorphic``
within the bucket.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterable, Sequence

import networkx as nx

from sympe.datasets.graph_utils import to_networkx


# =========================================================================== uniqueness / novelty
class IsomorphismIndex:
    """Graphs bucketed by Weisfeiler-Lehman hash; ``contains`` = isomorphic to a stored graph (exact)."""

    def __init__(self, graphs: Iterable = ()):
        self._buckets: dict[str, list[nx.Graph]] = {}
        for g in graphs:
            self.add(g)

    @staticmethod
    def key(g: nx.Graph) -> str:
        with warnings.catch_warnings():  # networkx >= 3.5 warns that attribute-free hashes changed in 3.5;
            warnings.simplefilter("ignore", UserWarning)  # hashes are only compared within one run here
            return nx.weisfeiler_lehman_graph_hash(g)

    def contains(self, g: nx.Graph, key: str | None = None) -> bool:
        key = self.key(g) if key is None else key
        return any(nx.is_isomorphic(g, h) for h in self._buckets.get(key, ()))

    def add(self, g, key: str | None = None) -> None:
        g = to_networkx(g)
        self._buckets.setdefault(self.key(g) if key is None else key, []).append(g)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())


def uniqueness_novelty(generated: Sequence, train, validity: Callable[[object], bool] | Sequence[bool] | None = None
                       ) -> dict:
    """Fractions over the generated graphs: uniqueness, novelty, unique_novel, validity and vun.

    ``train`` is a sequence of graphs or a prebuilt :class:`IsomorphismIndex`; ``validity`` a
    predicate, or one bool per generated graph (None: ``validity`` and ``vun`` are None).
    """
    gens = [to_networkx(g) for g in generated]
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
    index = train if isinstance(train, IsomorphismIndex) else IsomorphismIndex(train)
    seen = IsomorphismIndex()
    unique = novel = unique_novel = valid = vun = 0
    for g, ok in zip(gens, flags):
        key = IsomorphismIndex.key(g)
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
