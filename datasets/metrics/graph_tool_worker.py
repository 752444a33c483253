"""Block-model fits with graph-tool, run as a script by any Python that can import graph-tool.

sympe calls it through :func:`sympe.datasets.metrics.graph_validity.graph_tool_blocks` in a separate process, so
that graph-tool (often a system package built against another numpy, e.g. Debian's ``python3-graph-tool``)
never loads into the caller's interpreter. This file imports nothing from sympe.

Protocol: stdin is one JSON object ``{"graphs": [[num_nodes, [[u, v], ...]], ...], "refinement_steps": R,
"seed": S, "workers": W}`` (W processes fit graphs in parallel; optional, default 1) (each undirected edge once); stdout is one JSON list with, per graph, either the block label
of each graph-tool vertex (a list of ints, labels 0..B-1 contiguous) or null when graph-tool's fit raised
``ValueError``.

The fit (DiGress's ``is_sbm_graph``, as SPECTRE describes it: a stochastic block model fitted by minimising
its description length, then refined by merge-split MCMC): the graph-tool graph is built from *both*
directions of every edge, in graph-tool's default directed mode, with vertices 0..(largest endpoint)
(so isolated nodes numbered after the last edge endpoint are not part of the fit); then
``minimize_blockmodel_dl`` and R sweeps of ``multiflip_mcmc_sweep(beta=inf, niter=10)``. graph-tool's
random generator (and numpy's and Python's) is seeded with S before each graph, graph-tool runs
single-threaded, every graph is fitted in a fresh process, and the caller starts this script with
``OMP_NUM_THREADS=1 PYTHONHASHSEED=0``. Each of these removed a visible source of run-to-run differences, but
the fit is still not exactly reproducible: with all of them, the verdict on a few SPECTRE SBM graphs changes
between runs. DiGress seeds nothing.
"""
import json
import random
import sys


def fit(num_nodes, edges, refinement_steps, seed):
    import graph_tool
    import numpy as np
    from graph_tool.inference import contiguous_map, minimize_blockmodel_dl

    graph_tool.openmp_set_num_threads(1)  # threads make the fit depend on scheduling even with a seed
    graph_tool.seed_rng(seed)
    np.random.seed(seed)
    random.seed(seed)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    g = graph_tool.Graph()  # directed, as DiGress builds it
    g.add_edge_list(np.concatenate([e, e[:, ::-1]]) if len(e) else e)
    try:
        state = minimize_blockmodel_dl(g)
    except ValueError:
        return None
    for _ in range(refinement_steps):
        state.multiflip_mcmc_sweep(beta=np.inf, niter=10)
    blocks = contiguous_map(state.get_blocks())
    return [int(b) for b in blocks.a]


def _fit_job(args):
    return fit(*args)


def main():
    job = json.load(sys.stdin)
    tasks = [(n, e, int(job["refinement_steps"]), int(job["seed"])) for n, e in job["graphs"]]
    workers = max(1, min(int(job.get("workers", 1)), len(tasks)))
    # every graph is fitted in a fresh process forked from this one (which never fits): graph-tool keeps
    # random state between fits that seed_rng does not reset, so a graph's fit would otherwise depend on the
    # graphs fitted before it in the same process
    import graph_tool.inference  # noqa: F401  (imported once, before forking)
    from multiprocessing import get_context

    with get_context("fork").Pool(workers, maxtasksperchild=1) as pool:
        out = pool.map(_fit_job, tasks, chunksize=1) if tasks else []
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
