"""Sample quality of generated graphs for a user's own graphs (``dataset=graphs``), against its own splits.

Everything :class:`~sympe.datasets.metrics.graph_metrics.GraphMetrics` reports for graphs without a validity test
(MMD² of degree, clustering, orbit counts and spectrum against the test split with the DiGress Gaussian-TV kernels,
the train-vs-test MMD² beside them as ``train_test_mmd`` and the ratios to it), plus:

* ``connected``: the fraction of generated graphs that are connected (a graph with 0 nodes is not), with
  ``connected_reference`` = the same fraction over the train and the test split;
* ``uniqueness`` / ``novelty`` / ``unique_novel`` up to isomorphism (``isomorphism`` says which): when the dataset
  has node or edge classes (more than one node class or more than one edge class besides "none") an isomorphism
  must preserve the classes, and the structure-only fractions are kept as ``structure_uniqueness`` /
  ``structure_novelty``;
* with classes, ``node_class_tv`` / ``edge_class_tv``: the total variation ½ Σ_k |p_k − q_k| between the class
  frequencies of all generated nodes (edges) and of the test split's, with ``class_tv_reference`` = the same
  distances between the train and the test split.
"""
from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np

from sympe.datasets.graph_utils import labelled_networkx, to_networkx
from sympe.datasets.metrics.graph_isomorphism import LABEL, IsomorphismIndex, uniqueness_novelty
from sympe.datasets.metrics.graph_metrics import GraphMetrics

__all__ = ["UserGraphMetrics", "class_frequencies", "connected_fraction", "total_variation"]


def connected_fraction(graphs: Sequence[nx.Graph]) -> float:
    """Fraction of the graphs that are connected; a graph with 0 nodes counts as not connected."""
    if not graphs:
        raise ValueError("connected_fraction needs at least one graph")
    return float(np.mean([g.number_of_nodes() > 0 and nx.is_connected(g) for g in graphs]))


def class_frequencies(graphs: Sequence[nx.Graph], size: int, edges: bool) -> np.ndarray:
    """(size,) frequencies of the classes (attribute ``c``) over all nodes, or all edges when ``edges``; a class
    index beyond ``size`` widens the vector. All zeros when there is nothing to count."""
    values = [a[LABEL] for g in graphs for *_, a in (g.edges(data=True) if edges else g.nodes(data=True))]
    counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=size).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """½ Σ_k |p_k − q_k| of two frequency vectors (the shorter zero-padded)."""
    width = max(p.size, q.size)
    return 0.5 * float(np.abs(np.pad(p, (0, width - p.size)) - np.pad(q, (0, width - q.size))).sum())


class UserGraphMetrics:
    """The numbers of the module docstring for generated graphs against ``train_graphs`` / ``test_graphs``.

    Graphs are any input :func:`~sympe.datasets.graph_utils.labelled_networkx` accepts (PyG ``Data`` of a split,
    ``(node classes (n,), edge classes (n, n))`` pairs as sampled); ``node_classes`` / ``edge_classes`` are the
    dataset's class names (``DatasetInfo``). Raises ``ValueError`` for an empty train or test list.
    """

    def __init__(self, train_graphs: Sequence, test_graphs: Sequence, node_classes: Sequence[str],
                 edge_classes: Sequence[str], name: str = "graphs"):
        self.sizes = (len(node_classes), len(edge_classes))
        self.labelled = self.sizes[0] > 1 or self.sizes[1] > 2
        train = [labelled_networkx(g) for g in train_graphs]
        test = [labelled_networkx(g) for g in test_graphs]
        self.structure = GraphMetrics(name, train, test)
        self.train_index = IsomorphismIndex(train, labelled=True) if self.labelled else None
        self.connected_reference = {"train": connected_fraction(train), "test": connected_fraction(test)}
        self.test_freq = [class_frequencies(test, self.sizes[k], edges=bool(k)) for k in (0, 1)]
        train_freq = [class_frequencies(train, self.sizes[k], edges=bool(k)) for k in (0, 1)]
        self.class_tv_reference = {"node_class_tv": total_variation(train_freq[0], self.test_freq[0]),
                                   "edge_class_tv": total_variation(train_freq[1], self.test_freq[1])}

    def __call__(self, generated: Sequence) -> dict:
        gens = [labelled_networkx(g) if not isinstance(g, nx.Graph) else g for g in generated]
        out = self.structure([to_networkx(g) for g in gens])
        out["connected"] = connected_fraction(gens)
        out["connected_reference"] = dict(self.connected_reference)
        if not self.labelled:
            out["isomorphism"] = "structure (one node class, one edge class)"
            return out
        labelled = uniqueness_novelty(gens, self.train_index, labelled=True)
        out.update({"structure_uniqueness": out["uniqueness"], "structure_novelty": out["novelty"],
                    "structure_unique_novel": out["unique_novel"]})
        out.update({k: labelled[k] for k in ("uniqueness", "novelty", "unique_novel")})
        out["isomorphism"] = "class-preserving (node and edge classes must match)"
        out["node_class_tv"] = total_variation(class_frequencies(gens, self.sizes[0], False), self.test_freq[0])
        out["edge_class_tv"] = total_variation(class_frequencies(gens, self.sizes[1], True), self.test_freq[1])
        out["class_tv_reference"] = dict(self.class_tv_reference)
        return out
