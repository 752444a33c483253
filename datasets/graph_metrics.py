"""Sample quality of generated generic graphs: MMD² of graph descriptors, validity and V.U.N.

The numbers follow the definitions of GraphRNN (You et al., 2018), GRAN (Liao et al., 2019),
SPECTRE (Martinkus et al., 2022) and DiGress (Vignac et al., 2023), so that they can be compared
with the published tables. Every convention is stated here.

Graph inputs
------------
``nx.Graph`` (simple, undirected; nodes in the order of ``G.nodes()``), an ``(atoms, bonds)``
pair (numpy or torch; ``atoms`` (n,) or (n, dx), ``bonds`` (n, n) edge classes, any class > 0 is
an edge, the diagonal is ignored as in :class:`~sympe.diffusion.graph.DenseGraph`), a square 0/1
adjacency array (n, n) with zero diagonal, or a PyG ``Data`` (``edge_index``, ``num_nodes``).

Descriptors (one vector per graph)
----------------------------------
* ``degree``: the degree histogram h[k] = #{v : deg v = k}, k = 0..max deg (``nx.degree_histogram``).
* ``clustering``: the histogram of the local clustering coefficients
  c_v = 2 T_v / (d_v (d_v − 1)) (0 when d_v < 2; T_v = triangles at v), 100 bins on [0, 1].
* ``orbit``: the mean over nodes of the 15 graphlet orbit counts of
  :mod:`sympe.datasets.orbit_counts` (orbits 0..14 of 2-4-node graphlets, ORCA's numbering):
  o = (1 / n) Σ_v counts(v) ∈ R^15 (GraphRNN / GRAN / SPECTRE: ``sum(orca(G), axis=0) / n``).
* ``spectre``: the histogram of the eigenvalues of the normalised Laplacian
  L = D^{-1/2} (D − A) D^{-1/2} (rows/columns of isolated nodes are 0, as in networkx), 200 bins
  on [−1e−5, 2]. Eigenvalues are clipped into [0, 2] first (their exact range; only round-off
  such as 2 + 4e−16 for a bipartite component is affected, which the reference code would drop).

Graphs with 0 nodes are dropped before any descriptor (as GRAN / DiGress do for generated graphs).

Kernels and MMD²
----------------
For two sets X = {x_i}_{i<N}, Y = {y_j}_{j<M} of descriptors (vectors zero-padded to one length):

    MMD²(X, Y) = 1/N² Σ_{i,i'} k(x_i, x_i') + 1/M² Σ_{j,j'} k(y_j, y_j') − 2/(NM) Σ_{i,j} k(x_i, y_j)

(the biased V-statistic with the diagonal terms, as GRAN's ``compute_mmd``; it is >= 0 and equals
0 for identical multisets). Histogram descriptors are first normalised to sum 1 (``normalise``);
the orbit descriptor is not. Kernels, all k(x, y) = exp(−D(x, y)² / (2σ²)):

* ``tv``: D = TV(x, y) = ½ ‖x − y‖₁ (GRAN's ``gaussian_tv``);
* ``emd``: D = EMD(x, y) with ground distance |i − j| / s between bins, which for two histograms
  of equal mass is Σ_k |F_x(k) − F_y(k)| / s, F the cumulative sums (GraphRNN's ``gaussian_emd``);
* ``l2``: D = ‖x − y‖₂ (GraphRNN / GRAN's ``gaussian``).

Presets (``PRESETS``; descriptor -> (kernel, σ, normalise, s)):

================  ==================  ==================  ==================  ===================
preset            degree              clustering          orbit               spectre
================  ==================  ==================  ==================  ===================
``"digress"``     tv, 1               tv, 0.1             tv, 30, raw         tv, 1
``"graphrnn"``    emd, 1, s=1         emd, 0.1, s=100     l2, 30, raw         emd, 1, s=1
``"gran"``        tv, 1               tv, 0.1             l2, 30, raw         tv, 1
================  ==================  ==================  ==================  ===================

``"digress"`` is SPECTRE's ``compute_emd=False`` path, which DiGress uses for planar and SBM: the
orbit term is the **TV** Gaussian with σ = 30 on the raw mean orbit counts, not GRAN's L2 Gaussian.
``"graphrnn"`` is SPECTRE's ``compute_emd=True`` path, which DiGress uses for community-20.
:func:`default_preset` picks them per dataset name.

Ratios (:func:`ratio_metrics`): ratio_m = MMD²_m(generated, test) / MMD²_m(train, test), the
train-vs-test MMD² being the "how close real samples get" scale (SPECTRE / DiGress report these).
A zero reference gives inf (or nan when the numerator is 0 too).

Validity
--------
* planar: connected and planar (``nx.check_planarity``); the null graph is not valid.
* SBM (DiGress's ``is_sbm_graph`` without graph-tool): the blocks are found by Louvain modularity
  maximisation (``nx.community.louvain_communities``, ``resolution=0.5``, ``seed=0``; nodes of
  degree 0 form singleton Louvain communities and are instead put into the smallest community,
  where a node without edges is most likely under an SBM with p_in > p_out). graph-tool's
  ``minimize_blockmodel_dl`` + merge-split sweeps (DiGress) is replaced by this. On the 200 real
  SPECTRE SBM graphs, resolution 1.0 splits true blocks of 2- and 3-block graphs (only 88.5 % of
  the graphs get admissible block sizes), while every resolution in 0.3..0.7 gives 98.5 %.
  With block sizes n_r, edges m_rr inside block r and m_rs between blocks r ≠ s:

      p̂_rr = m_rr / C(n_r, 2),  p̂_rs = m_rs / (n_r n_s)          (0 when there are no pairs)
      W_rs = (p̂_rs − p_rs)² / (p̂_rs (1 − p̂_rs) + 1e−6),  p_rr = 0.3, p_rs = 0.005
      P = mean over all K × K entries of 1 − F_{χ²(1)}(W_rs)

  strict: valid iff 20 <= n_r <= 40 for every block, 2 <= K <= 5 and P > 0.9; non-strict returns P.
  This is DiGress's statistic as published in its code: a Wald statistic *without* the factor
  "number of pairs" (a textbook Wald test divides the variance by it, W = (p̂ − p)² n_pairs /
  (p̂(1 − p̂)), under which real SBM graphs would have mean p ≈ 0.5). A consequence: a block pair
  with no edge between them gets W = 0.005² / 1e−6 = 25, p ≈ 6e−7. Of the 200 real SBM graphs,
  180 (90 %) are valid here: 18 fail because two of their blocks share no edge, 2 on block sizes;
  ``GraphMetrics`` reports this ceiling on the test graphs as ``validity_test_ceiling``.

Uniqueness, novelty, V.U.N. (DiGress's ``eval_fraction_unique_non_isomorphic_valid``), over the
N generated graphs in order: *unique* = not isomorphic to an earlier generated graph; *novel* =
not isomorphic to any train graph; uniqueness, novelty = their fractions of N; ``unique_novel`` =
fraction both; ``vun`` = fraction valid, unique and novel. Isomorphism: bucket by
``nx.weisfeiler_lehman_graph_hash`` (isomorphic graphs share it), then exact ``nx.is_isomorphic``
within the bucket.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import networkx as nx
import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import chi2

from sympe.datasets.orbit_counts import orbit_counts

DESCRIPTORS: tuple[str, ...] = ("degree", "clustering", "orbit", "spectre")
CLUSTERING_BINS = 100
SPECTRE_BINS = 200
SPECTRE_RANGE = (-1e-5, 2.0)


# =========================================================================== graph inputs
def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def to_adjacency(graph) -> np.ndarray:
    """(n, n) bool adjacency of any accepted graph input (see the module docstring)."""
    if isinstance(graph, nx.Graph):
        if graph.is_directed() or graph.is_multigraph():
            raise ValueError("expected a simple undirected nx.Graph; convert with nx.Graph(G.to_undirected())")
        if nx.number_of_selfloops(graph):
            raise ValueError("graph has self-loops; remove them with G.remove_edges_from(nx.selfloop_edges(G))")
        index = {v: i for i, v in enumerate(graph.nodes())}
        a = np.zeros((len(index), len(index)), dtype=bool)
        if graph.number_of_edges():
            e = np.array([(index[u], index[v]) for u, v in graph.edges()], dtype=np.int64)
            a[e[:, 0], e[:, 1]] = True
            a[e[:, 1], e[:, 0]] = True
        return a
    if hasattr(graph, "edge_index") and hasattr(graph, "num_nodes"):  # PyG Data
        n = int(graph.num_nodes)
        ei = _to_numpy(graph.edge_index).astype(np.int64).reshape(2, -1)
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(f"Data.edge_index holds node ids outside 0..{n - 1}")
        a = np.zeros((n, n), dtype=bool)
        a[ei[0], ei[1]] = True
        if (a != a.T).any() or np.diagonal(a).any():
            raise ValueError("Data.edge_index must list both directions of every edge and no self-loops")
        return a
    if isinstance(graph, (tuple, list)):
        if len(graph) != 2:
            raise ValueError(f"a graph given as a sequence must be an (atoms, bonds) pair, got length {len(graph)}")
        atoms, bonds = _to_numpy(graph[0]), _to_numpy(graph[1])
        n = atoms.shape[0] if atoms.ndim >= 1 else -1
        if bonds.shape != (n, n):
            raise ValueError(f"(atoms, bonds): bonds must have shape (n, n) with n = len(atoms) = {n}, "
                             f"got {bonds.shape}; slice padded nodes away with the node mask")
        a = bonds > 0
        np.fill_diagonal(a, False)  # the diagonal carries no class (DenseGraph convention)
        if (a != a.T).any():
            raise ValueError("(atoms, bonds): bonds must be symmetric (bonds[i, j] > 0 iff bonds[j, i] > 0)")
        return a
    arr = _to_numpy(graph)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.dtype != object:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError("an adjacency matrix must be 0/1; pass (atoms, bonds) for edge classes")
        a = arr.astype(bool)
        if (a != a.T).any() or np.diagonal(a).any():
            raise ValueError("an adjacency matrix must be symmetric with a zero diagonal")
        return a
    raise ValueError(f"unsupported graph input {type(graph).__name__}: pass an nx.Graph, an (atoms, bonds) "
                     "pair, a square 0/1 adjacency array or a PyG Data")


def to_networkx(graph) -> nx.Graph:
    """``nx.Graph`` on nodes 0..n-1 of any accepted input (an ``nx.Graph`` is relabelled in node order).

    An ``nx.Graph`` whose nodes already are 0..n-1 in order is returned itself, not copied.
    """
    if isinstance(graph, nx.Graph):
        if graph.is_directed() or graph.is_multigraph() or nx.number_of_selfloops(graph):
            to_adjacency(graph)  # raises the explanatory error
        if all(v == i for i, v in enumerate(graph.nodes())):
            return graph  # already on 0..n-1 in order: returned as is (never modified here)
        return nx.convert_node_labels_to_integers(graph, ordering="default")
    a = to_adjacency(graph)
    g = nx.Graph()
    g.add_nodes_from(range(a.shape[0]))
    g.add_edges_from(zip(*(idx.tolist() for idx in np.nonzero(np.triu(a, k=1)))))
    return g


# =========================================================================== descriptors
def degree_histogram(adj: np.ndarray) -> np.ndarray:
    """(max_deg + 1,) int64 counts of nodes per degree of an (n, n) bool adjacency, n >= 1."""
    return np.bincount(adj.sum(1).astype(np.int64))


def clustering_coefficients(adj: np.ndarray) -> np.ndarray:
    """(n,) c_v = 2 T_v / (d_v (d_v − 1)), 0 where d_v < 2 (equal to ``nx.clustering`` as floats)."""
    a = adj.astype(np.float64)
    d = a.sum(1)
    tri2 = np.einsum("ij,ij->i", a, a @ a)  # 2 T_v
    denom = d * (d - 1)
    return np.divide(tri2, denom, out=np.zeros_like(tri2), where=denom > 0)


def clustering_histogram(adj: np.ndarray, bins: int = CLUSTERING_BINS) -> np.ndarray:
    """(bins,) counts of clustering coefficients in ``bins`` equal bins on [0, 1]."""
    return np.histogram(clustering_coefficients(adj), bins=bins, range=(0.0, 1.0))[0]


def normalized_laplacian_eigenvalues(adj: np.ndarray) -> np.ndarray:
    """(n,) ascending eigenvalues of L = D^{-1/2} (D − A) D^{-1/2} (isolated nodes: zero row/column)."""
    a = adj.astype(np.float64)
    d = a.sum(1)
    inv_sqrt = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    lap = inv_sqrt[:, None] * (np.diag(d) - a) * inv_sqrt[None, :]
    return np.linalg.eigvalsh(lap)


def spectral_histogram(adj: np.ndarray, bins: int = SPECTRE_BINS) -> np.ndarray:
    """(bins,) counts of normalised-Laplacian eigenvalues (clipped to [0, 2]) in bins on [−1e−5, 2]."""
    eig = np.clip(normalized_laplacian_eigenvalues(adj), 0.0, 2.0)
    return np.histogram(eig, bins=bins, range=SPECTRE_RANGE)[0]


def orbit_descriptor(adj: np.ndarray) -> np.ndarray:
    """(15,) mean over nodes of the orbit-count vector: Σ_v counts(v) / n."""
    return orbit_counts(adj.astype(np.float64)).sum(0) / adj.shape[0]


@dataclass
class GraphDescriptors:
    """Descriptors of a set of G non-empty graphs (``describe``).

    degree: list of G int arrays (max_deg_g + 1,); clustering (G, 100); orbit (G, 15) float;
    spectre (G, 200); num_dropped: graphs with 0 nodes that were left out.
    """

    degree: list
    clustering: np.ndarray
    orbit: np.ndarray
    spectre: np.ndarray
    num_dropped: int = 0

    def __len__(self) -> int:
        return len(self.degree)

    def get(self, name: str):
        if name not in DESCRIPTORS:
            raise ValueError(f"unknown descriptor {name!r}; choose one of {list(DESCRIPTORS)}")
        return getattr(self, name)


def describe(graphs: Iterable) -> GraphDescriptors:
    """Compute all four descriptors of every graph with >= 1 node (0-node graphs are counted and dropped)."""
    deg, clu, orb, spe = [], [], [], []
    dropped = 0
    for g in graphs:
        adj = to_adjacency(g)
        if adj.shape[0] == 0:
            dropped += 1
            continue
        deg.append(degree_histogram(adj))
        clu.append(clustering_histogram(adj))
        orb.append(orbit_descriptor(adj))
        spe.append(spectral_histogram(adj))
    stack = (lambda xs, w: np.stack(xs) if xs else np.zeros((0, w)))
    return GraphDescriptors(deg, stack(clu, CLUSTERING_BINS), stack(orb, 15), stack(spe, SPECTRE_BINS), dropped)


# =========================================================================== kernels and MMD
def pad_stack(samples: Sequence, length: int | None = None) -> np.ndarray:
    """(N, L) float64 matrix of N 1-D vectors zero-padded on the right to L = max length (or ``length``)."""
    rows = [np.asarray(s, dtype=np.float64).reshape(-1) for s in samples]
    width = max([r.size for r in rows], default=0) if length is None else int(length)
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        if r.size > width:
            raise ValueError(f"sample {i} has length {r.size} > the requested length {width}")
        out[i, :r.size] = r
    return out


def _pad_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = max(x.shape[1], y.shape[1])
    return np.pad(x, ((0, 0), (0, width - x.shape[1]))), np.pad(y, ((0, 0), (0, width - y.shape[1])))


def _as_matrix(samples) -> np.ndarray:
    return samples.astype(np.float64) if isinstance(samples, np.ndarray) and samples.ndim == 2 else pad_stack(samples)


def gaussian_tv_kernel(x, y, sigma: float = 1.0) -> np.ndarray:
    """(N, M) k = exp(−TV² / (2σ²)), TV(x, y) = ½ ‖x − y‖₁; rows of x (N, L) and y (M, L') zero-padded."""
    x, y = _pad_pair(_as_matrix(x), _as_matrix(y))
    tv = 0.5 * cdist(x, y, metric="cityblock")
    return np.exp(-tv ** 2 / (2.0 * sigma ** 2))


def gaussian_l2_kernel(x, y, sigma: float = 1.0) -> np.ndarray:
    """(N, M) k = exp(−‖x − y‖₂² / (2σ²)) on zero-padded rows."""
    x, y = _pad_pair(_as_matrix(x), _as_matrix(y))
    return np.exp(-cdist(x, y, metric="sqeuclidean") / (2.0 * sigma ** 2))


def gaussian_emd_kernel(x, y, sigma: float = 1.0, distance_scaling: float = 1.0) -> np.ndarray:
    """(N, M) k = exp(−EMD² / (2σ²)), EMD = Σ_k |F_x(k) − F_y(k)| / distance_scaling (F: cumulative sums).

    This is the earth mover's distance between 1-D histograms with ground distance
    |i − j| / distance_scaling, valid when all rows carry the same mass (normalise them first).
    """
    x, y = _pad_pair(_as_matrix(x), _as_matrix(y))
    mass = np.concatenate([x.sum(1), y.sum(1)])
    if mass.size and not np.allclose(mass, mass[0], rtol=1e-9, atol=1e-12):
        raise ValueError("gaussian_emd_kernel needs histograms of equal mass; normalise them to sum 1 first")
    emd = cdist(np.cumsum(x, axis=1), np.cumsum(y, axis=1), metric="cityblock") / distance_scaling
    return np.exp(-emd ** 2 / (2.0 * sigma ** 2))


KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "tv": gaussian_tv_kernel, "l2": gaussian_l2_kernel, "emd": gaussian_emd_kernel}


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (histogram -> pmf); an all-zero row is refused."""
    s = x.sum(1, keepdims=True)
    if (s <= 0).any():
        raise ValueError("cannot normalise an all-zero histogram (a graph with 0 nodes?)")
    return x / s


def mmd_squared(x, y, kernel: str = "tv", sigma: float = 1.0, normalise: bool = False,
                distance_scaling: float = 1.0) -> float:
    """Biased (V-statistic) MMD² between sample sets x (N vectors) and y (M vectors), see module docstring."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {list(KERNELS)}")
    x, y = _pad_pair(_as_matrix(x), _as_matrix(y))
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError(f"MMD needs two non-empty sample sets, got sizes {x.shape[0]} and {y.shape[0]}")
    if normalise:
        x, y = normalise_rows(x), normalise_rows(y)
    kw = {"sigma": sigma} | ({"distance_scaling": distance_scaling} if kernel == "emd" else {})
    k = KERNELS[kernel]
    return float(k(x, x, **kw).mean() + k(y, y, **kw).mean() - 2.0 * k(x, y, **kw).mean())


@dataclass(frozen=True)
class MMDSpec:
    """How one descriptor is compared: kernel name, σ, normalise to a pmf, EMD ground-distance scaling."""

    kernel: str
    sigma: float
    normalise: bool
    distance_scaling: float = 1.0


PRESETS: dict[str, dict[str, MMDSpec]] = {
    "digress": {"degree": MMDSpec("tv", 1.0, True), "clustering": MMDSpec("tv", 0.1, True),
                "orbit": MMDSpec("tv", 30.0, False), "spectre": MMDSpec("tv", 1.0, True)},
    "graphrnn": {"degree": MMDSpec("emd", 1.0, True), "clustering": MMDSpec("emd", 0.1, True, float(CLUSTERING_BINS)),
                 "orbit": MMDSpec("l2", 30.0, False), "spectre": MMDSpec("emd", 1.0, True)},
    "gran": {"degree": MMDSpec("tv", 1.0, True), "clustering": MMDSpec("tv", 0.1, True),
             "orbit": MMDSpec("l2", 30.0, False), "spectre": MMDSpec("tv", 1.0, True)},
}


def default_preset(dataset_name: str) -> str:
    """DiGress's choice: ``"graphrnn"`` (EMD kernels) for community-20, ``"digress"`` otherwise."""
    community = ("comm20", "community20", "community-20", "community_20")
    return "graphrnn" if dataset_name.lower() in community else "digress"


def _descriptors(graphs) -> GraphDescriptors:
    return graphs if isinstance(graphs, GraphDescriptors) else describe(graphs)


def mmd_metrics(generated, reference, preset: str = "digress") -> dict[str, float]:
    """{degree, clustering, orbit, spectre}: MMD² between two graph sets (lists or ``GraphDescriptors``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown MMD preset {preset!r}; choose one of {list(PRESETS)}")
    gen, ref = _descriptors(generated), _descriptors(reference)
    if len(gen) == 0 or len(ref) == 0:
        raise ValueError(f"MMD needs non-empty sets of non-empty graphs, got {len(gen)} generated "
                         f"({gen.num_dropped} with 0 nodes dropped) and {len(ref)} reference graphs")
    out = {}
    for name, spec in PRESETS[preset].items():
        out[name] = mmd_squared(gen.get(name), ref.get(name), kernel=spec.kernel, sigma=spec.sigma,
                                normalise=spec.normalise, distance_scaling=spec.distance_scaling)
    return out


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return math.nan if num == 0 else math.inf


def ratio_metrics(generated, test, train, preset: str = "digress") -> dict[str, float]:
    """{degree, clustering, orbit, spectre}: MMD²(generated, test) / MMD²(train, test), per descriptor."""
    test_d = _descriptors(test)
    num = mmd_metrics(generated, test_d, preset)
    den = mmd_metrics(train, test_d, preset)
    return {k: _ratio(num[k], den[k]) for k in num}


# =========================================================================== validity
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
    resolution: float = 0.5                  # Louvain resolution
    seed: int = 0                            # Louvain seed


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
    """Mean over the K × K block pairs of the χ²(1) p-value of DiGress's Wald statistic (module docstring)."""
    adj = to_adjacency(graph).astype(np.float64)
    n = adj.shape[0]
    labels = np.full(n, -1)
    for r, b in enumerate(blocks):
        labels[np.asarray(b, dtype=np.int64)] = r
    if n == 0 or (labels < 0).any() or sum(len(b) for b in blocks) != n:
        raise ValueError("blocks must partition the nodes 0..n-1 (every node in exactly one block)")
    k = len(blocks)
    z = np.eye(k)[labels]                               # (n, K) one-hot membership
    edges = z.T @ adj @ z                               # diagonal = 2 m_rr, off-diagonal = m_rs
    sizes = z.sum(0)
    pairs = np.outer(sizes, sizes)
    np.fill_diagonal(pairs, sizes * (sizes - 1))        # ordered pairs inside blocks (matches 2 m_rr)
    est = np.divide(edges, pairs, out=np.zeros_like(edges), where=pairs > 0)
    target = np.full((k, k), p_inter)
    np.fill_diagonal(target, p_intra)
    w = (est - target) ** 2 / (est * (1.0 - est) + 1e-6)
    return float(chi2.sf(w, df=1).mean())


def is_sbm_valid(graph, test: SBMTest = SBMTest(), strict: bool = True) -> bool | float:
    """strict: block sizes and counts in range and mean p-value > threshold; else the mean p-value."""
    g = to_networkx(graph)
    if g.number_of_nodes() == 0:
        return False if strict else 0.0
    blocks = sbm_partition(g, test.resolution, test.seed)
    sizes = [len(b) for b in blocks]
    if strict and not (test.num_blocks[0] <= len(blocks) <= test.num_blocks[1]
                       and all(test.block_size[0] <= s <= test.block_size[1] for s in sizes)):
        return False
    p = sbm_wald_pvalue(g, blocks, test.p_intra, test.p_inter)
    return bool(p > test.threshold) if strict else p


VALIDITY: dict[str, Callable[[object], bool]] = {"planar": is_planar_valid, "sbm": is_sbm_valid}


def validity_fn(dataset_name: str) -> Callable[[object], bool] | None:
    """The validity test of a dataset (``planar``, ``sbm``), or None when it has none."""
    return VALIDITY.get(dataset_name.lower())


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


def uniqueness_novelty(generated: Sequence, train, validity: Callable[[object], bool] | None = None) -> dict:
    """Fractions over the generated graphs: uniqueness, novelty, unique_novel, validity and vun.

    ``train`` is a sequence of graphs or a prebuilt :class:`IsomorphismIndex`; ``validity`` a
    predicate (None: ``validity`` and ``vun`` are None).
    """
    gens = [to_networkx(g) for g in generated]
    if not gens:
        raise ValueError("uniqueness_novelty needs at least one generated graph")
    index = train if isinstance(train, IsomorphismIndex) else IsomorphismIndex(train)
    seen = IsomorphismIndex()
    unique = novel = unique_novel = valid = vun = 0
    for g in gens:
        key = IsomorphismIndex.key(g)
        is_unique = not seen.contains(g, key)
        if is_unique:
            seen.add(g, key)
        is_novel = not index.contains(g, key)
        ok = bool(validity(g)) if validity is not None else False
        unique += is_unique
        novel += is_novel
        unique_novel += is_unique and is_novel
        valid += ok
        vun += ok and is_unique and is_novel
    n = len(gens)
    return {"uniqueness": unique / n, "novelty": novel / n, "unique_novel": unique_novel / n,
            "validity": valid / n if validity is not None else None,
            "vun": vun / n if validity is not None else None}


# =========================================================================== all together
class GraphMetrics:
    """All sample-quality numbers of generated graphs against a dataset's train and test graphs.

    ``__call__(generated)`` returns: ``degree``, ``clustering``, ``orbit``, ``spectre`` (MMD² to the
    test set), ``<name>_ratio`` (divided by MMD²(train, test)) and ``ratio_mean`` (their mean),
    ``validity``, ``uniqueness``, ``novelty`` (against train), ``unique_novel``, ``vun``,
    ``validity_test_ceiling`` (validity of the real test graphs; None with no validity test),
    ``num_generated`` and ``num_empty_generated`` (0-node graphs, left out of the MMDs).
    Train/test descriptors, the train-vs-test MMD² (``train_test_mmd``) and the test validity are
    computed once here.
    """

    def __init__(self, dataset_name: str, train_graphs: Sequence, test_graphs: Sequence, preset: str | None = None):
        self.dataset_name = dataset_name
        self.preset = default_preset(dataset_name) if preset is None else preset
        if self.preset not in PRESETS:
            raise ValueError(f"unknown MMD preset {self.preset!r}; choose one of {list(PRESETS)}")
        if len(train_graphs) == 0 or len(test_graphs) == 0:
            raise ValueError("GraphMetrics needs non-empty train and test graph lists")
        self.validity = validity_fn(dataset_name)
        train_nx = [to_networkx(g) for g in train_graphs]
        test_nx = [to_networkx(g) for g in test_graphs]
        self.train_index = IsomorphismIndex(train_nx)
        self.test_descriptors = describe(test_nx)
        self.train_test_mmd = mmd_metrics(describe(train_nx), self.test_descriptors, self.preset)
        self.validity_test_ceiling = (None if self.validity is None
                                      else float(np.mean([bool(self.validity(g)) for g in test_nx])))

    def __call__(self, generated: Sequence) -> dict:
        gens = [to_networkx(g) for g in generated]
        if not gens:
            raise ValueError("GraphMetrics: no generated graphs")
        gen_d = describe(gens)
        out: dict = dict(mmd_metrics(gen_d, self.test_descriptors, self.preset))
        ratios = {f"{k}_ratio": _ratio(out[k], self.train_test_mmd[k]) for k in DESCRIPTORS}
        out.update(ratios)
        out["ratio_mean"] = float(np.mean(list(ratios.values())))
        out.update(uniqueness_novelty(gens, self.train_index, self.validity))
        out["validity_test_ceiling"] = self.validity_test_ceiling
        out["num_generated"] = len(gens)
        out["num_empty_generated"] = gen_d.num_dropped
        return out
