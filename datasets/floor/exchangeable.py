"""The exchangeable NLL floor of a test set: no permutation-invariant model can score below it.

Statement. Let p be any distribution over labelled graphs that is exchangeable (p(π·x) = p(x) for every node
permutation π; every model whose sampler and likelihood are equivariant in distribution is one). The
N!/|Aut(x)| distinct relabellings of a graph x with N nodes all have the probability of x, and they sum to at
most p(N), so

    p(x) <= p(N) · |Aut(x)| / N!      i.e.      -log p(x) >= -log p(N) + log N! - log |Aut(x)|     (nats).

Averaged over a test set this is the floor E[-log p(N) + log N! - log |Aut(x)|] of the test NLL. Any reported
NLL below it comes from a model that is not exchangeable, e.g. one that reads node indices and so can learn
the order in which graphs are stored (QM9 files list heavy atoms first and hydrogens last).

``p(N)`` here is the node-count distribution the models of this project use: the train split's
(``DatasetInfo.n_nodes_dist``); the NLL bound uses the same ``log p(N)`` term, so floor and NLL differ only
in the part a model can learn. |Aut(x)| preserves node and edge classes (:mod:`sympe.datasets.floor.bliss`).

The per-graph ``log |Aut(x)|`` values of a split are cached beside the processed dataset
(``<processed_dir>/log_aut_<split>.pt``, written atomically), so the floor is computed once per dataset.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from sympe.diffusion.bars import progress as bar
from sympe.diffusion.files import atomic_path

from sympe.datasets.floor.bliss import log_automorphism_group_size, pyg_graph_classes

__all__ = ["FloorSummary", "dataset_log_aut", "exchangeable_floor", "floor_per_graph", "log_aut_of_graphs",
           "split_floor", "summarize"]


@dataclass
class FloorSummary:
    """The floor of one set of graphs, in nats per graph: ``mean`` and its standard error ``sem``."""

    mean: float
    sem: float
    num_graphs: int
    mean_log_aut: float

    def as_dict(self, prefix: str = "exchangeable_nll_floor") -> dict:
        return {f"{prefix}": self.mean, f"{prefix}_sem": self.sem, f"{prefix}_num_graphs": self.num_graphs,
                f"{prefix}_mean_log_aut": self.mean_log_aut}

    def __str__(self) -> str:
        return (f"exchangeable NLL floor {self.mean:.3f} ± {self.sem:.3f} nats per graph "
                f"({self.num_graphs} graphs, mean log|Aut| {self.mean_log_aut:.3f})")


def log_aut_of_graphs(graphs, progress: bool = False, desc: str = "automorphisms") -> Tensor:
    """``log |Aut(x)|`` (float64, (G,)) for an iterable of PyG ``Data`` in the datasets' format."""
    graphs = list(graphs)
    it = graphs
    if progress:  # a terminal-only bar, as for dataset processing (sympe.diffusion.bars; SYMPE_PROGRESS)
        it = bar(graphs, total=len(graphs), desc=desc, unit="graph")
    out = [log_automorphism_group_size(*pyg_graph_classes(g)) for g in it]
    return torch.tensor(out, dtype=torch.float64)


def floor_per_graph(num_nodes: Tensor, log_aut: Tensor, n_nodes_dist) -> Tensor:
    """Per-graph floor ``-log p(N) + log N! - log |Aut(x)|`` (float64, (G,)).

    Args:
        num_nodes: (G,) node counts. log_aut: (G,) ``log |Aut(x)|``. n_nodes_dist: (max_n + 1,) p(N).

    Raises:
        ValueError: if a graph has more nodes than ``n_nodes_dist`` covers or the lengths differ.
    """
    N = torch.as_tensor(num_nodes, dtype=torch.long).flatten()
    la = torch.as_tensor(log_aut, dtype=torch.float64).flatten()
    if N.numel() != la.numel():
        raise ValueError(f"floor_per_graph: {N.numel()} node counts but {la.numel()} log|Aut| values")
    dist = torch.as_tensor(n_nodes_dist, dtype=torch.float64).flatten()
    if N.numel() and int(N.max()) >= dist.numel():
        raise ValueError(f"floor_per_graph: a graph has {int(N.max())} nodes but p(N) covers only 0..{dist.numel() - 1}")
    log_pN = torch.log(dist[N].clamp_min(torch.finfo(torch.float64).tiny))
    return -log_pN + torch.lgamma(N.to(torch.float64) + 1) - la


def summarize(per_graph: Tensor, log_aut: Tensor) -> FloorSummary:
    """Mean and standard error of per-graph floors (``ValueError`` for none), with the mean ``log |Aut|``."""
    v = torch.as_tensor(per_graph, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise ValueError("exchangeable floor: no graphs")
    sem = float(v.std(unbiased=True) / math.sqrt(v.numel())) if v.numel() > 1 else math.nan
    return FloorSummary(float(v.mean()), sem, int(v.numel()), float(torch.as_tensor(log_aut).double().mean()))


def dataset_log_aut(dataset, progress: bool = True) -> Tensor:
    """``log |Aut(x)|`` of every graph of a sympe ``GraphDataset`` split, cached beside its processed data.

    Datasets without a ``processed_dir`` (plain lists, subsets) are computed without caching.
    """
    processed_dir = getattr(dataset, "processed_dir", None)
    split = getattr(dataset, "split", None)
    path = os.path.join(processed_dir, f"log_aut_{split}.pt") if processed_dir and split else None
    if path and os.path.exists(path):
        cached = torch.load(path, weights_only=True)
        if cached.numel() == len(dataset):
            return cached
    values = log_aut_of_graphs((dataset[i] for i in range(len(dataset))), progress=progress,
                               desc=f"|Aut| of {split or 'graphs'}")
    if path:
        with atomic_path(path) as tmp:
            torch.save(values, tmp)
    return values


def split_floor(dataset, n_nodes_dist, num_graphs: int | None = None,
                progress: bool = True) -> tuple[Tensor, FloorSummary]:
    """The floor of the first ``num_graphs`` graphs (all when None) of a dataset split (or any sequence of PyG
    ``Data``): per graph (float64 (G,), :func:`floor_per_graph`) and summarized. ``log |Aut|`` of the whole split
    is cached (:func:`dataset_log_aut`)."""
    log_aut = dataset_log_aut(dataset, progress=progress)
    n = len(dataset) if num_graphs is None else min(int(num_graphs), len(dataset))
    log_aut = log_aut[:n]
    num_nodes = torch.tensor([int(dataset[i].num_nodes) for i in range(n)], dtype=torch.long)
    per_graph = floor_per_graph(num_nodes, log_aut, n_nodes_dist)
    return per_graph, summarize(per_graph, log_aut)


def exchangeable_floor(dataset, n_nodes_dist, progress: bool = True) -> FloorSummary:
    """The floor (module docstring) of a dataset split (or any sequence of PyG ``Data``), mean ± s.e."""
    return split_floor(dataset, n_nodes_dist, progress=progress)[1]
