"""Graph descriptors and their MMD² between graph sets (GraphRNN / GRAN / SPECTRE / DiGress definitions).

Graphs are any input :func:`sympe.datasets.graph_utils.to_adjacency` accepts.

Descriptors (one vector per graph)
----------------------------------
* ``degree``: the degree histogram h[k] = #{v : deg v = k}, k = 0..max deg (``nx.degree_histogram``).
* ``clustering``: the histogram of the local clustering coefficients
  c_v = 2 T_v / (d_v (d_v − 1)) (0 when d_v < 2; T_v = triangles at v), 100 bins on [0, 1].
* ``orbit``: the mean over nodes of the 15 graphlet orbit counts of
  :mod:`sympe.datasets.metrics.orbit_counts` (orbits 0..14 of 2-4-node graphlets, ORCA's numbering):
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

Negative MMD²
-------------
The biased V-statistic is >= 0 only for a positive-definite kernel. The Gaussian-TV kernel (``tv``, DiGress's
and SPECTRE's choice) is *not* positive definite (TV is an L1 distance, and exp(−d²) of an L1 distance is not
a PD kernel), nor in general is the Gaussian-EMD one; so MMD² can come out below 0, e.g.
``mmd_squared([[0.2, 0.7, 0.1], [0.0, 0.4, 0.6]], [[0.2, 0.3, 0.5], [0.0, 0.7, 0.3]], kernel="tv")`` = −0.0172.
The values are reported as computed (published numbers use the same kernels); :func:`negative_mmd_warnings`
names every negative one, and :class:`~sympe.datasets.metrics.graph_metrics.GraphMetrics` never averages a ratio
whose numerator or denominator is negative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.spatial.distance import cdist

from sympe.datasets.graph_utils import to_adjacency
from sympe.datasets.metrics.orbit_counts import orbit_counts

DESCRIPTORS: tuple[str, ...] = ("degree", "clustering", "orbit", "spectre")
CLUSTERING_BINS = 100
SPECTRE_BINS = 200
SPECTRE_RANGE = (-1e-5, 2.0)


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


def mmd_ratio(num: float, den: float) -> float:
    """``num / den`` of two MMD² values (generated vs test over train vs test): NaN for 0 / 0 and a denominator
    <= 0 with a zero numerator, inf for any other numerator over a denominator <= 0."""
    if den > 0:
        return num / den
    return math.nan if num == 0 else math.inf


def ratio_metrics(generated, test, train, preset: str = "digress") -> dict[str, float]:
    """{degree, clustering, orbit, spectre}: MMD²(generated, test) / MMD²(train, test), per descriptor."""
    test_d = _descriptors(test)
    num = mmd_metrics(generated, test_d, preset)
    den = mmd_metrics(train, test_d, preset)
    return {k: mmd_ratio(num[k], den[k]) for k in num}




def negative_mmd_warnings(values: dict[str, float], what: str) -> list[str]:
    """One message per negative entry of ``values`` ({descriptor: MMD²}); ``what`` names the pair of sets."""
    return [f"MMD² {k} of {what} is negative ({v:.3g}): the {k} kernel is not positive definite, the value is "
            "reported as computed" for k, v in values.items() if v is not None and v < 0]
