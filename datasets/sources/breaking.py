"""Seeded graph families whose generation needs symmetry breaking, with their exact entropy.

Each family is a distribution over *labelled* graphs (nodes 0..N-1) whose clean graphs force
correlated choices among nodes that a noisy graph makes interchangeable. An equivariant denoiser that
predicts every node and pair independently must give interchangeable nodes the same distribution and
cannot make those choices in one reverse step; a g̃-mixture denoiser (SymPE, see
:mod:`sympe.diffusion.objectives.mixture`) can. Because the exact negative log-likelihood of the data
distribution is known, a model's NLL can be placed against it.

Families
--------
``matching`` (parameter m >= 1): a uniformly random perfect matching on N = 2m labelled nodes; every
node has degree 1. One node class ("node").

``marked_cycle`` (n >= 3, 1 <= k <= n-1): a cycle through all n nodes with exactly k nodes of class
"marked" and the others "unmarked" (node classes ``["unmarked", "marked"]``). With ``permute_nodes``
(default) the labelled graph is uniform over all (n-1)!/2 labelled Hamiltonian cycles times the
C(n, k) mark sets. Without it the cycle is the fixed ring 0-1-...-(n-1)-0 and only the mark set is
random (uniform k-subset): a distribution that is *not* exchangeable, so a model that reads node
indices can go below the exchangeable floor (a control for the node-order leak test).

``star`` (n >= 3): the star K_{1,n-1} with a uniformly random hub; one node class. This is the
family "where the noisy graph at large t is vertex-transitive but no clean graph is": every star
with n >= 3 has one node of degree n-1 and n-1 of degree 1, so Aut(G) is not transitive; at large t
the noisy graph carries no information about x0 and its nodes are interchangeable. Exactly so under
the absorbing transition (the noisy graph tends to the empty graph, on which S_n acts transitively);
under the marginal/uniform transitions in distribution (each node's and each pair's noisy state is
i.i.d., independent of the hub). At the empty noisy graph every pair lies in one orbit, so an
equivariant factorised denoiser predicts each pair as an edge with one probability p; a *single* reverse step
from the empty graph to x0 would produce a given star with probability p^(n-1) (1-p)^((n-1)(n-2)/2), at most
its value at p = 2/n, while the mixture "the node ranked first by g̃ is the hub" produces a uniformly random
star exactly. That one-step picture is not the project's T = 1: the chain is x -> z_0 -> ... -> z_T, so T = 1
has two reverse steps (z_1 -> z_0 -> x, with ᾱ_0 ≈ 0.494 under the cosine schedule, and z_0 often keeps two
hub edges). The best bound any deterministic factorised denoiser (equivariant or not) reaches for a given T
is F(T) = :func:`factorised_bound` (:mod:`sympe.datasets.floor.factorised`, re-exported here). Its exact values
under the absorbing transition (cosine schedule, exact limit; nats per graph, fixed size so -log p(N) = 0):

=====  ======================  ==================
T      matching m = 4          star n = 8
=====  ======================  ==================
1      8.477                   6.231
10     5.401                   2.712
500    4.670                   2.092
H      4.654                   2.079
=====  ======================  ==================

(Under the marginal transition at T = 10, Monte Carlo: F - H ≈ 0.88 on matching m = 4 and ≈ 1.63 on
marked_cycle n = 8, k = 1; at T = 500 a few hundredths.)

The star is the simplest such family: a single correlated choice (which node is the hub) determines all
N(N-1)/2 edge variables. (Matchings and marked cycles are
the other two kinds: many pairwise choices, and one choice on a fixed vertex-transitive skeleton.)

Sizes: ``m`` / ``n`` is an int or an inclusive range [min, max]; each graph draws its size uniformly
from the range (so p(N) is uniform over the sizes), then its structure.

Exact NLL of the data distribution (nats per graph; the entropy H of the labelled graphs)
-----------------------------------------------------------------------------------------
With S the set of sizes (p(N) = 1/|S|), H = log |S| + mean over s in S of H(x | s), and every
labelled graph of size s in the support has probability exp(-H(x | s)) / |S| (uniform given s):

=================  =======================================  =============================================
family             H(x | size), permute_nodes               exchangeable floor given size,
                   (without: matching 0, star 0,            log N! - E[log |Aut(x)|]
                   marked_cycle log C(n, k))
=================  =======================================  =============================================
matching (m)       log (2m-1)!!  (= log (2m)! - log 2^m m!)  log (2m-1)!!      (|Aut| = 2^m m!)
marked_cycle       log ((n-1)!/2) + log C(n, k)             log n! - E_S[log |Stab_{D_n}(S)|]
(n, k)             (k = 1: log (n!/2))                      (k = 1: log (n!/2), |Aut| = 2)
star (n)           log n                                    log n              (|Aut| = (n-1)!)
=================  =======================================  =============================================

Counts behind the table: (2m)!/(2^m m!) = (2m-1)!! perfect matchings of 2m labelled nodes; (n-1)!/2
Hamiltonian cycles of n >= 3 labelled nodes; n choices of hub. The exchangeable floor
E[-log p(N) + log N! - log |Aut(x)|] (see DESIGN.md) bounds the NLL of every permutation-invariant
model; here it is computed under the generating distribution, with the expectation over the uniform
mark set S of a fixed ring for marked cycles (Stab_{D_n}(S): the rotations and reflections of the ring
that map S onto itself; enumerated exactly). For matchings, stars and 1-marked cycles the data
distribution is uniform over a single isomorphism class per size, so entropy = floor. For k >= 2
marks, the entropy exceeds the floor (several isomorphism classes). Without ``permute_nodes``, the
entropy is below the floor (the ring order is a node-order leak).

Data
----
Each graph is a PyG ``Data`` in the format of :mod:`sympe.datasets.graph_utils` (``x`` one-hot over
the family's node classes), plus ``aut_size`` (1,) float64 (|Aut(x)| of the labelled graph with its
node classes) and ``data_nll`` (1,) float64 (-log p(x) under the generating distribution, nats; its
mean is the entropy). The train split's :class:`~sympe.diffusion.info.DatasetInfo` carries
``extra["data_entropy"]`` and ``extra["exchangeable_floor"]`` (:func:`data_entropy` and :func:`data_floor`: nats
per graph, of the generating distribution; the floor of a finite test set uses its own p(N) and graphs). Split s
of (train, val, test) draws from ``numpy.random.default_rng([seed, index of s])``: the splits are independent draws
from one distribution, and with small supports they share graphs.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch_geometric.data import Data

from sympe.datasets.sources.base import GraphDataset, split_counts
from sympe.datasets.graph_utils import EDGE_CLASSES, NODE_CLASSES, edges_to_data
from sympe.diffusion.info import DatasetInfo

FAMILIES: tuple[str, ...] = ("matching", "marked_cycle", "star")
SIZE_PARAM: dict[str, str] = {"matching": "m", "marked_cycle": "n", "star": "n"}
MIN_SIZE: dict[str, int] = {"matching": 1, "marked_cycle": 3, "star": 3}
MARK_CLASSES: list[str] = ["unmarked", "marked"]
DEFAULT_NUM_GRAPHS: dict[str, int] = {"train": 512, "val": 64, "test": 64}
MAX_MARK_SUBSETS = 2_000_000


def check_family(family: str) -> str:
    """``family`` if it is one of :data:`FAMILIES`, else ``ValueError`` naming the choices."""
    if family not in FAMILIES:
        raise ValueError(f"unknown symmetry-breaking family {family!r}; choose one of {list(FAMILIES)}")
    return family


def size_range(family: str, size) -> list[int]:
    """The sizes (m for matchings, n otherwise) of an int or an inclusive [min, max] range, validated."""
    check_family(family)
    key = SIZE_PARAM[family]
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        lo = hi = int(size)
    elif (isinstance(size, (list, tuple)) and len(size) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        lo, hi = int(size[0]), int(size[1])
    else:
        raise ValueError(f"{family}: {key} must be an int or an inclusive range [min, max], got {size!r}")
    if lo > hi:
        raise ValueError(f"{family}: range {key}={[lo, hi]} has min > max")
    if lo < MIN_SIZE[family]:
        raise ValueError(f"{family}: {key} must be >= {MIN_SIZE[family]}, got {key}={[lo, hi] if lo != hi else lo}")
    return list(range(lo, hi + 1))


def check_marks(sizes: list[int], k: int) -> int:
    """``k`` (marked nodes of a marked cycle) as an int, or ``ValueError`` unless ``1 <= k <= n-1`` for every size."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= int(k) < min(sizes):
        raise ValueError(f"marked_cycle: k (number of marked nodes) must be an int with 1 <= k <= n-1 for every "
                         f"size n in {sizes[0]}..{sizes[-1]}, got k={k!r}")
    return int(k)


def num_nodes(family: str, size: int) -> int:
    return 2 * size if family == "matching" else size


# ---------------------------------------------------------------------------- exact quantities
def log_double_factorial_odd(m: int) -> float:
    """log (2m-1)!! = log (2m)! - m log 2 - log m!  (1 for m = 0)."""
    return math.lgamma(2 * m + 1) - m * math.log(2) - math.lgamma(m + 1)


def conditional_entropy(family: str, size: int, k: int = 1, permute_nodes: bool = True) -> float:
    """H(x | size) in nats: the log of the number of labelled graphs of that size in the support."""
    check_family(family)
    if family == "matching":
        return log_double_factorial_odd(size) if permute_nodes else 0.0
    if family == "star":
        return math.log(size) if permute_nodes else 0.0
    marks = math.log(math.comb(size, k))
    return marks + (math.lgamma(size) - math.log(2) if permute_nodes else 0.0)


def ring_mark_stabilizers(n: int, k: int) -> np.ndarray:
    """|Stab_{D_n}(S)| for every k-subset S of the ring Z_n (C(n, k) entries, exact enumeration).

    D_n acts on the ring by i -> i + r and i -> r - i (mod n); a subset is held as an n-bit mask.
    """
    if math.comb(n, k) > MAX_MARK_SUBSETS:
        raise ValueError(f"marked_cycle: C({n}, {k}) = {math.comb(n, k)} mark sets exceed the enumeration limit "
                         f"{MAX_MARK_SUBSETS} of the exact floor; use fewer nodes or marks")
    masks = np.fromiter((sum(1 << i for i in c) for c in itertools.combinations(range(n), k)), dtype=np.int64)
    full = (1 << n) - 1

    def rotate(a: np.ndarray, r: int) -> np.ndarray:
        return ((a << r) | (a >> (n - r))) & full if r else a

    reflected = np.zeros_like(masks)
    for i in range(n):  # i -> -i mod n
        reflected |= ((masks >> i) & 1) << ((-i) % n)
    count = np.zeros(masks.shape, dtype=np.int64)
    for r in range(n):
        count += rotate(masks, r) == masks
        count += rotate(reflected, r) == masks
    return count


def aut_size_of(family: str, size: int, marks: np.ndarray | None = None) -> int:
    """|Aut| of one graph of the family (with its node classes); ``marks``: bool (n,) on the fixed ring."""
    check_family(family)
    if family == "matching":
        return 2**size * math.factorial(size)
    if family == "star":
        return math.factorial(size - 1)
    S = set(np.flatnonzero(marks).tolist())
    n = size
    return sum({(i + r) % n for i in S} == S for r in range(n)) + sum({(r - i) % n for i in S} == S for r in range(n))


def conditional_floor(family: str, size: int, k: int = 1) -> float:
    """log N! - E[log |Aut(x)|] given the size (the exchangeable floor without the -log p(N) term)."""
    check_family(family)
    if family == "matching":
        return log_double_factorial_odd(size)
    if family == "star":
        return math.log(size)
    if k == 1 or k == size - 1:
        return math.lgamma(size + 1) - math.log(2)
    return math.lgamma(size + 1) - float(np.log(ring_mark_stabilizers(size, k)).mean())


def data_entropy(family: str, size, k: int = 1, permute_nodes: bool = True) -> float:
    """Exact NLL (entropy) of the data distribution, nats per labelled graph: log |S| + mean_s H(x | s)."""
    sizes = size_range(family, size)
    if family == "marked_cycle":
        k = check_marks(sizes, k)
    return math.log(len(sizes)) + float(np.mean([conditional_entropy(family, s, k, permute_nodes) for s in sizes]))


def data_floor(family: str, size, k: int = 1) -> float:
    """The exchangeable floor E[-log p(N) + log N! - log |Aut(x)|] (:mod:`sympe.datasets.floor.exchangeable`)
    under the generating distribution, exactly (nats per graph): log |S| + mean_s :func:`conditional_floor`.
    (The floor of a finite split of graphs: :func:`sympe.datasets.floor.exchangeable.exchangeable_floor`.)"""
    sizes = size_range(family, size)
    if family == "marked_cycle":
        k = check_marks(sizes, k)
    return math.log(len(sizes)) + float(np.mean([conditional_floor(family, s, k) for s in sizes]))


# ---------------------------------------------------------------------------- sampling
def sample_structure(family: str, size: int, rng: np.random.Generator, k: int = 1,
                     permute_nodes: bool = True) -> tuple[np.ndarray, np.ndarray | None, int]:
    """One labelled graph: (edges (M, 2) int64, marks (N,) bool or None, |Aut|).

    Built in a canonical labelling (matching {2i, 2i+1}; star with hub 0; ring 0-1-...-(n-1) with a
    uniform k-subset marked), then relabelled by a uniform random permutation when ``permute_nodes``.
    """
    check_family(family)
    N = num_nodes(family, size)
    marks = None
    if family == "matching":
        edges = np.stack([np.arange(0, N, 2), np.arange(1, N, 2)], axis=1)
    elif family == "star":
        edges = np.stack([np.zeros(N - 1, dtype=np.int64), np.arange(1, N)], axis=1)
    else:
        edges = np.stack([np.arange(N), (np.arange(N) + 1) % N], axis=1)
        marks = np.zeros(N, dtype=bool)
        marks[rng.choice(N, size=k, replace=False)] = True
    aut = aut_size_of(family, size, marks)
    if permute_nodes:
        perm = rng.permutation(N)  # canonical node i becomes node perm[i]
        edges = perm[edges]
        if marks is not None:
            new = np.zeros_like(marks)
            new[perm] = marks
            marks = new
    return edges.astype(np.int64), marks, aut


def graph_to_data(family: str, edges: np.ndarray, N: int, marks: np.ndarray | None, aut: int, nll: float) -> Data:
    data = edges_to_data(N, edges, aut_size=torch.tensor([float(aut)], dtype=torch.float64),
                         data_nll=torch.tensor([nll], dtype=torch.float64))
    if marks is not None:
        data.x = torch.nn.functional.one_hot(torch.from_numpy(marks.astype(np.int64)), len(MARK_CLASSES)).float()
    return data


def node_classes(family: str) -> list[str]:
    return list(MARK_CLASSES) if family == "marked_cycle" else list(NODE_CLASSES)


# ---------------------------------------------------------------------------- dataset
class SymmetryBreakingDataset(GraphDataset):
    """One split of a symmetry-breaking family (families, entropy and sampling: module docstring).

    Args:
        root, split, transform, force_reload: as for every :class:`GraphDataset`.
        family: ``"matching"``, ``"marked_cycle"`` or ``"star"`` (fixed by the registry entry).
        m: matchings only, number of edges (N = 2m): int or inclusive [min, max]; default 4.
        n: marked cycles and stars, number of nodes: int or [min, max]; default 8.
        k: marked cycles only, number of marked nodes (1 <= k <= n-1); default 1.
        num_graphs: graphs per split, an int or a dict split -> int (default 512 / 64 / 64).
        seed: split s is drawn from ``numpy.random.default_rng([seed, s_index])``.
        permute_nodes: relabel every graph by a uniform random permutation (default). False keeps the
            canonical labelling: a non-exchangeable control (entropy below the floor).

    Raises:
        ValueError naming the parameter, before any generation, for an unknown family, a parameter of
        another family, a size or k out of range, or bad split sizes.
    """

    def __init__(self, root: str, split: str = "train", family: str = "matching", m=None, n=None, k: int | None = None,
                 num_graphs: int | dict | None = None, seed: int = 0, permute_nodes: bool = True,
                 transform=None, force_reload: bool = False):
        check_family(family)
        given = {"m": m, "n": n, "k": k}
        allowed = {"matching": {"m"}, "marked_cycle": {"n", "k"}, "star": {"n"}}[family]
        wrong = sorted(key for key, v in given.items() if v is not None and key not in allowed)
        if wrong:
            raise ValueError(f"{family}: parameters {wrong} do not apply; it takes {sorted(allowed)}")
        key = SIZE_PARAM[family]
        size = given[key] if given[key] is not None else (4 if family == "matching" else 8)
        self.family = family
        self.name = family
        self.sizes = size_range(family, _plain(size))
        self.k = check_marks(self.sizes, 1 if k is None else k) if family == "marked_cycle" else None
        self.num_graphs = split_counts(num_graphs, self.splits, DEFAULT_NUM_GRAPHS)
        self.seed = int(seed)
        self.permute_nodes = bool(permute_nodes)
        super().__init__(root, split=split, transform=transform, force_reload=force_reload)

    # ------------------------------------------------------------------ exact numbers
    @property
    def size_spec(self) -> list[int]:
        return [self.sizes[0], self.sizes[-1]]

    def data_entropy(self) -> float:
        """Exact NLL of the generating distribution, nats per graph (see :func:`data_entropy`)."""
        return data_entropy(self.family, self.size_spec, self.k or 1, self.permute_nodes)

    def data_floor(self) -> float:
        """The exchangeable floor of the generating distribution, nats per graph (see :func:`data_floor`)."""
        return data_floor(self.family, self.size_spec, self.k or 1)

    # ------------------------------------------------------------------ GraphDataset
    def cache_params(self) -> dict:
        return {"family": self.family, "sizes": self.size_spec, "k": self.k, "num_graphs": self.num_graphs,
                "seed": self.seed, "permute_nodes": self.permute_nodes}

    def build_splits(self) -> dict[str, list]:
        k = self.k or 1
        log_sizes = math.log(len(self.sizes))
        nll = {s: log_sizes + conditional_entropy(self.family, s, k, self.permute_nodes) for s in self.sizes}
        out = {}
        for i, split in enumerate(self.splits):
            rng = np.random.default_rng([self.seed, i])
            graphs = []
            for _ in range(self.num_graphs[split]):
                s = self.sizes[int(rng.integers(len(self.sizes)))]
                edges, marks, aut = sample_structure(self.family, s, rng, k, self.permute_nodes)
                graphs.append(graph_to_data(self.family, edges, num_nodes(self.family, s), marks, aut, nll[s]))
            out[split] = graphs
        return out

    def make_info(self, train_graphs: list) -> DatasetInfo:
        info = DatasetInfo.from_graphs(train_graphs, name=self.name, node_classes=node_classes(self.family),
                                       edge_classes=EDGE_CLASSES)
        info.extra.update({"family": self.family, "data_entropy": self.data_entropy(),
                           "exchangeable_floor": self.data_floor()})
        return info




def _plain(obj):
    """Config containers (omegaconf ListConfig) -> plain lists of ints."""
    if isinstance(obj, (int, np.integer, str, bytes)) or obj is None:
        return obj
    if hasattr(obj, "__iter__"):
        return [v for v in obj]
    return obj


def __getattr__(name: str):
    """``factorised_bound`` (F(T), :mod:`sympe.datasets.floor.factorised`), re-exported on first use: that module
    imports this one, so a top-level import here would be circular."""
    if name == "factorised_bound":
        from sympe.datasets.floor.factorised import factorised_bound

        return factorised_bound
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
