"""Validity of generated planar and SBM graphs (SPECTRE / DiGress definitions).

Planar
------
Valid iff connected and planar (``nx.check_planarity``); the null graph is not valid.

SBM (DiGress's ``is_sbm_graph``)
--------------------------------
Fit a block partition, then test the fitted edge densities against the generating ones. With block
sizes n_r and directed edge counts e_rs (e_rr = 2 m_rr, twice the edges inside block r; e_rs = m_rs, the
edges between blocks r ≠ s):

    p̂_rr = e_rr / (n_r (n_r − 1) + 1e−6),   p̂_rs = e_rs / (n_r n_s + 1e−6)
    W_rs = (p̂_rs − p_rs)² / (p̂_rs (1 − p̂_rs) + 1e−6),   p_rr = 0.3, p_rs = 0.005
    P = mean over all K × K entries of 1 − F_{χ²(1)}(W_rs)

strict: valid iff 20 <= n_r <= 40 for every block, 2 <= K <= 5 and P > 0.9; non-strict returns P. This is
DiGress's statistic as its code computes it: a Wald statistic *without* the factor "number of pairs" (a
textbook Wald test multiplies by it, under which real SBM graphs would have mean p ≈ 0.5). A consequence: a
block pair with no edge between them gets W = 0.005² / 1e−6 = 25, p ≈ 6e−7, and fails a graph with few
blocks on its own.

How the partition is found (``SBMTest.method``):

* ``"graph_tool"`` (DiGress): graph-tool's ``minimize_blockmodel_dl`` followed by 1000 merge-split sweeps
  ``multiflip_mcmc_sweep(beta=inf, niter=10)``, run by :mod:`sympe.datasets.metrics.graph_tool_worker` in a
  separate Python that can import graph-tool (see :func:`graph_tool_python`). As in DiGress the fitted graph
  holds both directions of every edge (graph-tool's directed mode) and only the vertices up to the largest
  edge endpoint (isolated nodes numbered after it are not counted in any block). Unlike DiGress, every
  random generator in reach is seeded (``SBMTest.seed``), yet the fit is not exactly reproducible: the
  verdict on a few real SBM graphs changes between runs (see the worker). A fit that raises ``ValueError``
  is invalid (P = 0).
* ``"louvain"`` (the approximation used when graph-tool is not available): Louvain modularity maximisation
  (``nx.community.louvain_communities``, ``resolution=0.5``, ``seed``); nodes of degree 0 form singleton
  Louvain communities and are instead put into the smallest community (where a node without edges is most
  likely under an SBM with p_in > p_out). On the 200 real SPECTRE SBM graphs resolution 1.0 splits true
  blocks of 2- and 3-block graphs (88.5 % of the graphs get admissible block sizes), every resolution in
  0.3..0.7 gives 98.5 %; 180 of the 200 (90 %) are valid: 18 fail because two of their blocks share no
  edge, 2 on block sizes.
* ``"auto"`` (default): graph-tool when :func:`graph_tool_python` finds it, Louvain otherwise. Every result
  says which was used (:attr:`ValidityTest.definition`, ``validity_definition`` in the metrics).
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import networkx as nx
import numpy as np
from scipy.stats import chi2

from sympe.datasets.graph_utils import to_adjacency, to_networkx

SBM_METHODS: tuple[str, ...] = ("auto", "graph_tool", "louvain")
GRAPH_TOOL_ENV = "SYMPE_GRAPH_TOOL_PYTHON"
_WORKER = Path(__file__).with_name("graph_tool_worker.py")


def is_planar_valid(graph) -> bool:
    """Connected and planar (the null graph is not valid)."""
    g = to_networkx(graph)
    return g.number_of_nodes() > 0 and nx.is_connected(g) and nx.check_planarity(g)[0]


@dataclass(frozen=True)
class SBMTest:
    """Parameters of the SBM validity test (defaults: SPECTRE's SBM data set and DiGress's test)."""

    p_intra: float = 0.3
    p_inter: float = 0.005
    block_size: tuple[int, int] = (20, 40)   # inclusive
    num_blocks: tuple[int, int] = (2, 5)     # inclusive
    threshold: float = 0.9                   # valid iff mean p-value > threshold
    method: str = "auto"                     # auto | graph_tool | louvain
    resolution: float = 0.5                  # Louvain resolution
    seed: int = 0                            # Louvain seed / graph-tool generator seed
    refinement_steps: int = 1000             # graph-tool merge-split sweeps (DiGress: 1000)
    workers: int = 1                         # graph-tool processes fitting graphs in parallel

    def __post_init__(self):
        if self.method not in SBM_METHODS:
            raise ValueError(f"SBMTest.method={self.method!r}; choose one of {list(SBM_METHODS)}")


# ---------------------------------------------------------------------------- graph-tool
@functools.lru_cache(maxsize=None)
def graph_tool_python() -> str | None:
    """A Python executable that can import graph-tool, or None.

    ``$SYMPE_GRAPH_TOOL_PYTHON`` when set (``none`` disables graph-tool), else the first of this
    interpreter and ``/usr/bin/python3`` (where Debian's ``python3-graph-tool`` installs) whose
    ``import graph_tool.inference`` succeeds. Probed in a subprocess: a graph-tool built against another numpy
    can crash the importing process. The answer is cached for the process.
    """
    env = os.environ.get(GRAPH_TOOL_ENV)
    if env is not None:
        candidates = [] if env.strip().lower() in ("", "none", "0", "false") else [env]
    else:
        candidates = [sys.executable, "/usr/bin/python3"]
    for exe in candidates:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            continue
        try:
            proc = subprocess.run([exe, "-c", "import graph_tool.inference"], capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            return exe
    return None


def graph_tool_blocks(graphs: Sequence, refinement_steps: int = 1000, seed: int = 0,
                      python: str | None = None, workers: int = 1) -> list[np.ndarray | None]:
    """Block labels of DiGress's graph-tool fit per graph (see the module docstring), None where it failed.

    Labels cover graph-tool's vertices 0..(largest edge endpoint); a graph without edges gives an empty
    array. Raises ``RuntimeError`` when graph-tool is not available or the worker fails.
    """
    exe = python or graph_tool_python()
    if exe is None:
        raise RuntimeError("graph-tool is not importable by any Python found (install Debian's python3-graph-tool "
                           f"or set ${GRAPH_TOOL_ENV} to a Python that imports graph_tool)")
    job = {"graphs": [], "refinement_steps": int(refinement_steps), "seed": int(seed), "workers": int(workers)}
    for g in graphs:
        a = to_adjacency(g)
        u, v = np.nonzero(np.triu(a, k=1))
        job["graphs"].append([int(a.shape[0]), np.stack([u, v], 1).tolist()])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}  # reproducible fits (see the worker)
    proc = subprocess.run([exe, str(_WORKER)], input=json.dumps(job), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"graph-tool worker ({exe} {_WORKER}) failed with exit code {proc.returncode}:\n"
                           f"{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    return [None if lab is None else np.asarray(lab, dtype=np.int64) for lab in out]


# ---------------------------------------------------------------------------- Wald test
def sbm_wald_pvalue_from_counts(sizes, edge_counts, p_intra: float = 0.3, p_inter: float = 0.005) -> float:
    """P of the module docstring from block sizes (K,) and directed edge counts (K, K) (e_rr = 2 m_rr)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    e = np.asarray(edge_counts, dtype=np.float64)
    k = sizes.size
    if e.shape != (k, k):
        raise ValueError(f"edge_counts must be ({k}, {k}) for {k} blocks, got {e.shape}")
    pairs = np.outer(sizes, sizes)
    np.fill_diagonal(pairs, sizes * (sizes - 1))
    est = e / (pairs + 1e-6)
    target = np.full((k, k), p_inter)
    np.fill_diagonal(target, p_intra)
    w = (est - target) ** 2 / (est * (1.0 - est) + 1e-6)
    return float(chi2.sf(np.abs(w), df=1).mean())


def _block_counts(adj: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sizes (K,), directed edge counts (K, K)) of the nodes 0..len(labels)-1 labelled 0..K-1."""
    k = int(labels.max()) + 1 if labels.size else 0
    z = np.eye(k)[labels]
    sub = adj[: labels.size, : labels.size].astype(np.float64)
    return z.sum(0), z.T @ sub @ z


def sbm_partition(graph, resolution: float = 0.5, seed: int = 0) -> list[list[int]]:
    """Blocks (sorted node lists, nodes 0..n-1) from Louvain; degree-0 nodes join the smallest block."""
    g = to_networkx(graph)
    if g.number_of_nodes() == 0:
        return []
    comms = [sorted(c) for c in nx.community.louvain_communities(g, resolution=resolution, seed=seed)]
    isolated = [c[0] for c in comms if len(c) == 1 and g.degree(c[0]) == 0]
    blocks = [c for c in comms if not (len(c) == 1 and g.degree(c[0]) == 0)]
    if not blocks:  # no edge at all: one block
        return [sorted(g.nodes())]
    for v in isolated:
        i = min(range(len(blocks)), key=lambda j: (len(blocks[j]), j))
        blocks[i] = sorted(blocks[i] + [v])
    return sorted(blocks, key=lambda b: b[0])


def sbm_wald_pvalue(graph, blocks: Sequence[Sequence[int]], p_intra: float = 0.3, p_inter: float = 0.005) -> float:
    """P of the module docstring for a partition ``blocks`` of all nodes 0..n-1 of ``graph``."""
    adj = to_adjacency(graph)
    n = adj.shape[0]
    labels = np.full(n, -1)
    for r, b in enumerate(blocks):
        labels[np.asarray(b, dtype=np.int64)] = r
    if n == 0 or (labels < 0).any() or sum(len(b) for b in blocks) != n:
        raise ValueError("blocks must partition the nodes 0..n-1 (every node in exactly one block)")
    sizes, e = _block_counts(adj, labels)
    return sbm_wald_pvalue_from_counts(sizes, e, p_intra, p_inter)


def _sbm_decision(sizes: np.ndarray, e: np.ndarray, test: SBMTest, strict: bool) -> bool | float:
    if strict and not (test.num_blocks[0] <= sizes.size <= test.num_blocks[1]
                       and all(test.block_size[0] <= s <= test.block_size[1] for s in sizes)):
        return False
    p = sbm_wald_pvalue_from_counts(sizes, e, test.p_intra, test.p_inter)
    return bool(p > test.threshold) if strict else p


def resolved_sbm_method(test: SBMTest = SBMTest()) -> str:
    """``"graph_tool"`` or ``"louvain"``: what ``test.method`` means on this machine."""
    if test.method == "auto":
        return "graph_tool" if graph_tool_python() is not None else "louvain"
    return test.method


def sbm_validity(graphs: Sequence, test: SBMTest = SBMTest(), strict: bool = True) -> list:
    """:func:`is_sbm_valid` of many graphs (one graph-tool process for all of them)."""
    method = resolved_sbm_method(test)
    adjs = [to_adjacency(g) for g in graphs]
    out = []
    if method == "graph_tool":
        fits = graph_tool_blocks(adjs, test.refinement_steps, test.seed, workers=test.workers) if adjs else []
        for a, labels in zip(adjs, fits):
            if a.shape[0] == 0 or labels is None or labels.size == 0:
                out.append(False if strict else 0.0)
                continue
            out.append(_sbm_decision(*_block_counts(a, labels), test, strict))
        return out
    for a in adjs:
        if a.shape[0] == 0:
            out.append(False if strict else 0.0)
            continue
        blocks = sbm_partition(a, test.resolution, test.seed)
        labels = np.empty(a.shape[0], dtype=np.int64)
        for r, b in enumerate(blocks):
            labels[b] = r
        out.append(_sbm_decision(*_block_counts(a, labels), test, strict))
    return out


def is_sbm_valid(graph, test: SBMTest = SBMTest(), strict: bool = True) -> bool | float:
    """strict: block sizes and counts in range and mean p-value > threshold; else the mean p-value P."""
    return sbm_validity([graph], test, strict)[0]


# ---------------------------------------------------------------------------- per dataset
@dataclass(frozen=True)
class ValidityTest:
    """A dataset's validity test: ``check(graphs) -> list[bool]`` and a label saying what it computes."""

    definition: str
    check: Callable[[Sequence], list]

    def __call__(self, graphs: Sequence) -> list[bool]:
        return [bool(v) for v in self.check(list(graphs))]


def is_star(g) -> bool:
    """A star K_{1,n-1}, n >= 3: connected, n - 1 edges, one node of degree n - 1 (the symmetry-breaking family)."""
    n = g.number_of_nodes()
    return n >= 3 and g.number_of_edges() == n - 1 and max(dict(g.degree()).values()) == n - 1


def is_perfect_matching(g) -> bool:
    """A perfect matching: at least one edge and every node of degree exactly 1."""
    return g.number_of_edges() > 0 and all(d == 1 for _, d in g.degree())


def is_hamiltonian_cycle(g) -> bool:
    """One cycle through every node (n >= 3): connected and 2-regular (marked cycles; the marks are not checked)."""
    import networkx as nx

    n = g.number_of_nodes()
    return n >= 3 and all(d == 2 for _, d in g.degree()) and nx.is_connected(g)


def validity_test(dataset_name: str, sbm: SBMTest = SBMTest()) -> ValidityTest | None:
    """The validity test of a dataset (``planar``, ``sbm``, the symmetry-breaking families ``star``, ``matching``,
    ``marked_cycle``), or None when it has none."""
    name = dataset_name.lower()
    family = {"star": ("star: K_{1,n-1}", is_star), "matching": ("matching: every node of degree 1", is_perfect_matching),
              "marked_cycle": ("marked_cycle: a Hamiltonian cycle (marks not checked)", is_hamiltonian_cycle)}
    if name in family:
        label, fn = family[name]
        return ValidityTest(label, lambda gs: [fn(g) for g in gs])
    if name == "planar":
        return ValidityTest("planar: connected and planar", lambda gs: [is_planar_valid(g) for g in gs])
    if name == "sbm":
        method = resolved_sbm_method(sbm)
        fixed = replace(sbm, method=method)
        if method == "graph_tool":
            label = (f"sbm: graph-tool block-model fit as DiGress's is_sbm_graph ({sbm.refinement_steps} merge-split "
                     f"sweeps, seed {sbm.seed}) + Wald test")
        else:
            label = (f"sbm: Louvain approximation of DiGress's block-model test (resolution {sbm.resolution}, "
                     f"seed {sbm.seed}; graph-tool not used) + Wald test")
        return ValidityTest(label, lambda gs: sbm_validity(gs, fixed))
    return None


VALIDITY: dict[str, Callable[[object], bool]] = {"planar": is_planar_valid, "sbm": is_sbm_valid, "star": is_star,
                                                 "matching": is_perfect_matching,
                                                 "marked_cycle": is_hamiltonian_cycle}


def validity_fn(dataset_name: str) -> Callable[[object], bool] | None:
    """The one-graph validity predicate of a dataset (``planar``, ``sbm`` with the default ``SBMTest``)."""
    return VALIDITY.get(dataset_name.lower())


# ---------------------------------------------------------------------------- agreement of the two SBM fits
def sbm_method_agreement(graphs: Sequence, test: SBMTest = SBMTest()) -> dict:
    """Validity of ``graphs`` under the graph-tool fit and under the Louvain approximation, and their agreement.

    Returns counts: ``num_graphs``, ``valid_graph_tool``, ``valid_louvain``, ``both``, ``neither``,
    ``graph_tool_only``, ``louvain_only``, ``agreement`` (fraction with the same verdict) and the indices
    where they differ. Needs graph-tool (see :func:`graph_tool_python`).
    """
    gt_valid = sbm_validity(graphs, replace(test, method="graph_tool"))
    lv_valid = sbm_validity(graphs, replace(test, method="louvain"))
    pairs = list(zip(gt_valid, lv_valid))
    return {"num_graphs": len(pairs), "refinement_steps": test.refinement_steps, "seed": test.seed,
            "valid_graph_tool": sum(gt_valid), "valid_louvain": sum(lv_valid),
            "both": sum(a and b for a, b in pairs), "neither": sum(not a and not b for a, b in pairs),
            "graph_tool_only": [i for i, (a, b) in enumerate(pairs) if a and not b],
            "louvain_only": [i for i, (a, b) in enumerate(pairs) if b and not a],
            "agreement": sum(a == b for a, b in pairs) / max(len(pairs), 1)}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sympe.datasets.metrics.graph_validity [--steps R] [--seed S] [--split test|all]``: agreement of the
    graph-tool and Louvain SBM tests on the shipped SPECTRE SBM graphs, printed as JSON."""
    import argparse

    from sympe.datasets.sources.spectre import benchmark_graphs, benchmark_splits

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--steps", type=int, default=1000, help="graph-tool merge-split sweeps (DiGress: 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("train", "val", "test", "all"), default="all")
    args = ap.parse_args(argv)
    graphs = benchmark_graphs("sbm") if args.split == "all" else benchmark_splits("sbm")[args.split]
    result = sbm_method_agreement(graphs, SBMTest(refinement_steps=args.steps, seed=args.seed))
    print(json.dumps({"split": args.split, **result}))


if __name__ == "__main__":
    main()
