"""The SPECTRE benchmark graphs (Martinkus et al., 2022): ``planar``, ``sbm`` and ``comm20``.

Each graph is an unattributed simple graph stored as described in
:mod:`sympe.datasets.graph_utils` (node classes ``["node"]``, edge classes ``["none", "edge"]``).

Sources (``source=``)
---------------------
* ``"benchmark"`` (default): the original SPECTRE graphs shipped inside the package
  (``sympe/datasets/data/spectre/{planar,sbm,community20}.npz``, MIT, with ``LICENSE`` and
  ``PROVENANCE.md`` beside them), in their original order. These are the graphs DiGress and the later
  literature train on and score against; :func:`benchmark_splits` gives their DiGress split directly.
* ``"generate"``: seeded re-generation with the published recipes, all drawn
  from one ``numpy.random.Generator(seed)`` graph after graph (graph g depends on g and the seed):

  - planar: the Delaunay triangulation (``scipy.spatial.Delaunay``) of 64 points uniform in the
    unit square; planar and connected by construction, 3·64 − 3 − h edges (h = hull points).
  - sbm: K ~ U{2..5} blocks, sizes s_k ~ U{20..40} (so 40..200 nodes), every pair linked
    independently with probability p_in = 0.3 inside a block and p_out = 0.005 across blocks.
    Graphs are **not** regenerated until connected: the reference set itself holds disconnected
    graphs (196 of its 200 are connected), so filtering would change the target distribution
    (P(two blocks of 20 share no edge) = 0.995^400 ≈ 0.13). Nodes are numbered block by block.
  - comm20: two communities of c nodes each, c ~ U{6..10} (so n = 2c ∈ {12, 14, .., 20}: the
    reference set holds only even n), each an Erdős–Rényi G(c, 0.7) redrawn until connected (the
    reference set is 100 % connected; G(6, 0.7) is disconnected w.p. ≈ 1.5 %). Every cross pair is
    linked with probability p = 0.05·2 / ((2 − 1)·c) = 0.1 / c, i.e. an expected 0.05 bridge
    per node (c is the community *size*: with c read as the number of communities, p = 0.05 and
    1.8..5 expected bridges, far from the ≈ 1.2 observed in the reference set); when no bridge was
    drawn one uniformly random cross pair is added. Nodes 0..c-1 form community 0.

  Generated sbm and comm20 graphs carry ``block`` (N,) long: the block / community of each node.
* ``"npz"``: a local file with the arrays ``num_nodes`` (G,), ``edges`` (M, 2) with u < v and
  ``edge_ptr`` (G + 1,) (graph g owns ``edges[edge_ptr[g]:edge_ptr[g + 1]]``), ``path=`` required.
* ``"url"``: the original SPECTRE ``.pt`` files, downloaded into ``root/raw`` by
  :meth:`SpectreDataset.download`. Each holds the tuple (adjs, eigvals, eigvecs, n_nodes,
  max_eigval, min_eigval, same_sample, n_max); only ``adjs`` (list of dense (n, n) adjacency
  tensors) is used, through :func:`graphs_from_adjacencies`.

Split (DiGress's)
-----------------
``perm = torch.randperm(G, generator=torch.Generator().manual_seed(0))``, with
``test_len = round(0.2·G)``, ``train_len = round(0.8·(G − test_len))``, ``val_len`` the rest:
train = perm[:train_len], val = the next val_len, test = the last test_len
(128 / 32 / 40 for G = 200 and 64 / 16 / 20 for G = 100).
Every graph appears **once** in its split: DiGress's SPECTRE loader duplicates every graph
(each train graph is seen twice per epoch); sympe does not.
"""
from __future__ import annotations

import hashlib
import os.path as osp

import networkx as nx
import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay
from torch_geometric.data import Data, download_url

from sympe.datasets.samples.readers import read_npz_edges
from sympe.datasets.sources.base import GraphDataset
from sympe.diffusion.bars import progress
from sympe.datasets.graph_utils import (EDGE_CLASSES, NODE_CLASSES, adjacency_to_data, edges_to_data,
                                        to_networkx_list)
from sympe.diffusion.info import DatasetInfo

SPECTRE_NAMES: tuple[str, ...] = ("planar", "sbm", "comm20")
SOURCES: tuple[str, ...] = ("benchmark", "generate", "npz", "url")
BENCHMARK_FILES: dict[str, str] = {"planar": "planar.npz", "sbm": "sbm.npz", "comm20": "community20.npz"}
BENCHMARK_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "data", "spectre")
DEFAULT_NUM_GRAPHS: dict[str, int] = {"planar": 200, "sbm": 200, "comm20": 100}
URL_BASE = "https://raw.githubusercontent.com/KarolisMart/SPECTRE/main/data"
URL_FILES: dict[str, str] = {"planar": "planar_64_200.pt", "sbm": "sbm_200.pt", "comm20": "community_12_21_100.pt"}
SPLIT_SEED = 0  # DiGress's torch.Generator seed for the split permutation


# ---------------------------------------------------------------------------- split
def digress_split_sizes(num_graphs: int) -> tuple[int, int, int]:
    """(train, val, test) sizes: test = round(0.2 G), train = round(0.8 (G - test)), val = rest."""
    test_len = int(round(num_graphs * 0.2))
    train_len = int(round((num_graphs - test_len) * 0.8))
    val_len = num_graphs - train_len - test_len
    if min(train_len, val_len, test_len) < 1:
        raise ValueError(f"{num_graphs} graphs give the split sizes {train_len}/{val_len}/{test_len}; "
                         "use at least 5 graphs so that every split is non-empty")
    return train_len, val_len, test_len


def digress_split_indices(num_graphs: int, seed: int = SPLIT_SEED) -> dict[str, list[int]]:
    """Indices of each split: ``torch.randperm(G, Generator().manual_seed(seed))`` cut in order."""
    tr, va, _ = digress_split_sizes(num_graphs)
    perm = torch.randperm(num_graphs, generator=torch.Generator().manual_seed(seed)).tolist()
    return {"train": perm[:tr], "val": perm[tr:tr + va], "test": perm[tr + va:]}


# ---------------------------------------------------------------------------- generators
def _is_connected(n: int, upper: np.ndarray) -> bool:
    """Connectivity of the graph whose (n, n) bool upper triangle is ``upper``."""
    if n <= 1:
        return True
    k, _ = connected_components(csr_matrix(upper), directed=False)
    return k == 1


def generate_planar(rng: np.random.Generator, num_nodes: int = 64) -> Data:
    """Delaunay triangulation of ``num_nodes`` points uniform in [0, 1]^2 (a planar, connected graph)."""
    if num_nodes < 3:
        raise ValueError(f"planar graphs need at least 3 points for a triangulation, got {num_nodes}")
    pts = rng.random((num_nodes, 2))
    tri = Delaunay(pts).simplices  # (T, 3) point indices of the triangles
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]], axis=0)
    return edges_to_data(num_nodes, edges)


def generate_sbm(rng: np.random.Generator, blocks: tuple[int, int] = (2, 5), block_size: tuple[int, int] = (20, 40),
                 p_in: float = 0.3, p_out: float = 0.005) -> Data:
    """Stochastic block model; ``blocks`` and ``block_size`` are inclusive integer ranges."""
    k = int(rng.integers(blocks[0], blocks[1] + 1))
    sizes = rng.integers(block_size[0], block_size[1] + 1, size=k)
    block = np.repeat(np.arange(k), sizes)
    n = block.size
    prob = np.where(block[:, None] == block[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < prob, k=1)
    u, v = np.nonzero(upper)
    return edges_to_data(n, np.stack([u, v], axis=1), block=torch.from_numpy(block).long())


def _connected_gnp(rng: np.random.Generator, n: int, p: float, max_tries: int = 1000) -> np.ndarray:
    """Upper triangle (n, n) bool of a G(n, p) graph, redrawn until connected."""
    for _ in range(max_tries):
        upper = np.triu(rng.random((n, n)) < p, k=1)
        if _is_connected(n, upper):
            return upper
    raise RuntimeError(f"no connected G({n}, {p}) graph in {max_tries} draws; raise p or n")


def generate_comm20(rng: np.random.Generator, community_size: tuple[int, int] = (6, 10), p_intra: float = 0.7,
                    p_inter_per_node: float = 0.05) -> Data:
    """Two connected G(c, p_intra) communities joined by Bernoulli(2·p_inter_per_node / c) bridges (>= 1)."""
    c = int(rng.integers(community_size[0], community_size[1] + 1))
    n = 2 * c
    upper = np.zeros((n, n), dtype=bool)
    upper[:c, :c] = _connected_gnp(rng, c, p_intra)
    upper[c:, c:] = _connected_gnp(rng, c, p_intra)
    p_bridge = p_inter_per_node * 2 / ((2 - 1) * c)
    cross = rng.random((c, c)) < p_bridge
    if not cross.any():
        cross[rng.integers(c), rng.integers(c)] = True
    upper[:c, c:] = cross
    u, v = np.nonzero(upper)
    block = torch.cat([torch.zeros(c, dtype=torch.long), torch.ones(c, dtype=torch.long)])
    return edges_to_data(n, np.stack([u, v], axis=1), block=block)


GENERATORS = {"planar": generate_planar, "sbm": generate_sbm, "comm20": generate_comm20}


def generate_graphs(name: str, num_graphs: int, seed: int = 0) -> list[Data]:
    """``num_graphs`` graphs of benchmark ``name``, drawn in order from ``numpy.random.default_rng(seed)``."""
    if name not in GENERATORS:
        raise ValueError(f"unknown SPECTRE dataset {name!r}; choose one of {list(SPECTRE_NAMES)}")
    rng = np.random.default_rng(seed)
    return [GENERATORS[name](rng) for _ in progress(range(num_graphs), desc=f"{name}: generating graphs")]


# ---------------------------------------------------------------------------- readers
def load_npz_graphs(path: str) -> list[Data]:
    """Graphs of an ``.npz`` file with ``num_nodes`` (G,), ``edges`` (M, 2) and ``edge_ptr`` (G + 1,).

    Read and checked by :func:`sympe.datasets.samples.readers.read_npz_edges` (self-loops, float ids,
    shapes, ids out of range raise ``ValueError`` naming the graph).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f"npz file {path!r} does not exist; pass path= to a file like "
                                "sympe/datasets/data/spectre/planar.npz")
    out = []
    for _, bonds in read_npz_edges(path):
        u, v = np.nonzero(np.triu(bonds, k=1))
        out.append(edges_to_data(bonds.shape[0], np.stack([u, v], axis=1)))
    return out


def benchmark_path(name: str) -> str:
    """Path of the shipped SPECTRE graphs of ``name`` (planar, sbm, comm20)."""
    if name not in BENCHMARK_FILES:
        raise ValueError(f"no SPECTRE benchmark graphs for {name!r}; choose one of {list(BENCHMARK_FILES)}")
    path = osp.join(BENCHMARK_DIR, BENCHMARK_FILES[name])
    if not osp.isfile(path):
        raise FileNotFoundError(f"the shipped SPECTRE graphs {path!r} are missing: reinstall sympe (they are "
                                "package data, see pyproject.toml [tool.setuptools.package-data])")
    return path


def benchmark_graphs(name: str) -> list[Data]:
    """All SPECTRE benchmark graphs of ``name`` in their original order (200 planar / sbm, 100 comm20)."""
    return load_npz_graphs(benchmark_path(name))


def benchmark_splits(name: str) -> dict[str, list[Data]]:
    """DiGress's train / val / test split of the SPECTRE benchmark graphs of ``name`` (no disk cache)."""
    graphs = benchmark_graphs(name)
    return {s: [graphs[i] for i in idx] for s, idx in digress_split_indices(len(graphs)).items()}


def graphs_from_adjacencies(adjs) -> list[Data]:
    """Dense adjacency matrices (a list of (n_g, n_g) tensors, or one (G, n, n) tensor) -> graphs.

    Each matrix must be 0/1, symmetric and zero on the diagonal; all its n_g rows are nodes.
    """
    out = []
    for g, a in enumerate(adjs):
        try:
            out.append(adjacency_to_data(a))
        except ValueError as err:
            raise ValueError(f"adjacency matrix {g}: {err}") from err
    return out


def load_spectre_pt(path: str) -> list[Data]:
    """Graphs of an original SPECTRE ``.pt`` file (a tuple whose first item is the list of adjacencies)."""
    obj = torch.load(path, weights_only=False)
    if not isinstance(obj, (tuple, list)) or len(obj) < 1:
        raise ValueError(f"{path}: expected the SPECTRE tuple (adjs, eigvals, eigvecs, n_nodes, ...), "
                         f"got {type(obj).__name__}")
    return graphs_from_adjacencies(obj[0])


def _file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------- dataset
class SpectreDataset(GraphDataset):
    """One split of a SPECTRE benchmark (see the module docstring for sources and split).

    Args:
        root: folder holding ``raw/`` (url downloads) and ``processed/<name>-<hash>/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        name: ``"planar"``, ``"sbm"`` or ``"comm20"`` (fixed by the subclasses below).
        source: ``"benchmark"`` (default) | ``"generate"`` | ``"npz"`` | ``"url"``.
        path: the ``.npz`` file for ``source="npz"`` (refused for other sources; put a local copy
            of a SPECTRE ``.pt`` file into ``root/raw/`` to skip the download).
        seed: generation seed (``source="generate"`` only).
        num_graphs: graphs to generate (default 200, 100 for comm20); for npz/url ``None`` means
            "all of the file", and any other value must equal the file's graph count.

    The cache key is (name, source, absolute path + content hash, seed, num_graphs).
    """

    default_name: str | None = None

    def __init__(self, root: str, split: str = "train", name: str | None = None, source: str = "benchmark",
                 path: str | None = None, seed: int = 0, num_graphs: int | None = None,
                 transform=None, force_reload: bool = False):
        name = name if name is not None else self.default_name
        if name not in SPECTRE_NAMES:
            raise ValueError(f"SpectreDataset: unknown name {name!r}; choose one of {list(SPECTRE_NAMES)}")
        if self.default_name is not None and name != self.default_name:
            raise ValueError(f"{type(self).__name__} is the {self.default_name!r} dataset, got name={name!r}")
        if source not in SOURCES:
            raise ValueError(f"SpectreDataset: unknown source {source!r}; choose one of {list(SOURCES)}")
        if source == "npz":
            if path is None:
                raise ValueError("SpectreDataset: source='npz' needs path= to an .npz file "
                                 "(arrays num_nodes, edges, edge_ptr)")
            path = osp.abspath(osp.expanduser(str(path)))
            if not osp.isfile(path):
                raise FileNotFoundError(f"SpectreDataset: npz file {path!r} does not exist")
        elif source == "benchmark":
            if path is not None:
                raise ValueError("SpectreDataset: source='benchmark' reads the shipped SPECTRE graphs; path= is only "
                                 "used with source='npz'")
            path = benchmark_path(name)
        elif path is not None:
            raise ValueError(f"SpectreDataset: path= is only used with source='npz' (got source={source!r}); "
                             "for 'url' put the SPECTRE .pt file into root/raw/ instead")
        if num_graphs is not None and int(num_graphs) < 5:
            raise ValueError(f"SpectreDataset: num_graphs must be >= 5 (every split non-empty), got {num_graphs}")
        self.name = name
        self.source = source
        self.path = path
        self.seed = int(seed)
        if num_graphs is None and source == "generate":
            num_graphs = DEFAULT_NUM_GRAPHS[name]
        self.num_graphs = None if num_graphs is None else int(num_graphs)
        self._path_hash = _file_sha1(path) if path is not None else None
        super().__init__(root, split=split, transform=transform, force_reload=force_reload)

    # ---------------------------------------------------------------- GraphDataset hooks
    def cache_params(self) -> dict:
        return {"name": self.name, "source": self.source, "path": self.path, "path_sha1": self._path_hash,
                "seed": self.seed, "num_graphs": self.num_graphs}

    @property
    def raw_file_names(self) -> list[str]:
        return [URL_FILES[self.name]] if self.source == "url" else []

    def download(self) -> None:
        if self.source == "url":
            download_url(f"{URL_BASE}/{URL_FILES[self.name]}", self.raw_dir)

    def load_all_graphs(self) -> list[Data]:
        """Every graph of the source, in its original order."""
        if self.source == "generate":
            return generate_graphs(self.name, self.num_graphs, self.seed)
        if self.source in ("npz", "benchmark"):
            graphs = load_npz_graphs(self.path)
        else:
            graphs = load_spectre_pt(self.raw_paths[0])
        if self.num_graphs is not None and self.num_graphs != len(graphs):
            raise ValueError(f"SpectreDataset({self.name}): num_graphs={self.num_graphs} but the {self.source} "
                             f"source holds {len(graphs)} graphs; pass num_graphs=None")
        return graphs

    def build_splits(self) -> dict[str, list]:
        graphs = self.load_all_graphs()
        idx = digress_split_indices(len(graphs))
        return {s: [graphs[i] for i in idx[s]] for s in self.splits}

    def make_info(self, train_graphs: list) -> DatasetInfo:
        return DatasetInfo.from_graphs(train_graphs, name=self.name, node_classes=NODE_CLASSES,
                                       edge_classes=EDGE_CLASSES)

    # ---------------------------------------------------------------- metrics helpers
    def to_networkx_list(self) -> list[nx.Graph]:
        """The graphs of this split as ``nx.Graph`` on nodes 0..N-1 (no transform applied)."""
        return to_networkx_list(self.get(i) for i in range(len(self)))


class PlanarDataset(SpectreDataset):
    """SPECTRE planar: 200 Delaunay graphs of 64 nodes."""

    default_name = "planar"


class SBMDataset(SpectreDataset):
    """SPECTRE sbm: 200 stochastic-block-model graphs with 2..5 blocks of 20..40 nodes."""

    default_name = "sbm"


class Comm20Dataset(SpectreDataset):
    """SPECTRE community-20: 100 two-community graphs of 12..20 nodes."""

    default_name = "comm20"


# ---------------------------------------------------------------------------- scoring reference
REFERENCES: tuple[str, ...] = ("benchmark", "dataset")


def scoring_reference(splits: dict, reference: str = "benchmark") -> tuple[list, list, dict]:
    """(train graphs, test graphs, description) to score generated graphs of a dataset against.

    ``splits``: the dataset's ``{"train", "val", "test"}`` datasets. For a SPECTRE dataset (planar, sbm,
    comm20) with ``reference="benchmark"`` (default) these are the shipped SPECTRE benchmark graphs in
    DiGress's split, whatever source the splits were built from: published numbers are computed against
    them. ``reference="dataset"`` scores against ``splits`` as they are (e.g. regenerated graphs), and the
    description then carries a warning. Other datasets always use ``splits``.
    The description holds ``reference`` (a sentence), ``reference_train_graphs``, ``reference_test_graphs``
    and ``warnings`` (a list of strings).
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference={reference!r} is unknown; choose one of {list(REFERENCES)}")
    train = splits["train"]
    name = getattr(train, "name", None)
    source = getattr(train, "source", None)
    warnings: list[str] = []
    if isinstance(train, SpectreDataset) and reference == "benchmark":
        bench = benchmark_splits(name)
        tr, te = bench["train"], bench["test"]
        text = f"SPECTRE {name} benchmark graphs shipped with sympe, DiGress's split"
        if source != "benchmark":
            text += f" (the dataset itself was built with source={source})"
    else:
        tr, te = list(train), list(splits["test"])
        text = f"the {name or 'dataset'} train / test splits as configured"
        if isinstance(train, SpectreDataset):
            text += f" (source={source})"
            if source != "benchmark":
                warnings.append(f"scored against source={source} graphs, not the SPECTRE benchmark graphs that "
                                "published numbers use; drop reference=dataset to compare with the literature")
    return tr, te, {"reference": text, "reference_train_graphs": len(tr), "reference_test_graphs": len(te),
                    "warnings": warnings}
