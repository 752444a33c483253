"""MOSES (Polykovskiy et al. 2020) drug-like molecules as a sympe molecular graph dataset.

Splits
    MOSES ships three files: ``train`` (1,584,663 molecules), ``test`` (176,074) and
    ``test_scaffolds`` (176,226; scaffolds absent from train). sympe maps them as DiGress does:

    =========  ======================
    sympe      MOSES file
    =========  ======================
    train      train.csv
    val        test.csv
    test       test_scaffolds.csv
    =========  ======================

    (:data:`SPLIT_FILES`). Each split keeps the file order.

Graphs (see :mod:`sympe.datasets.molecules`)
    Implicit hydrogens; ``x`` one-hot over C, N, S, O, F, Cl, Br; ``edge_attr`` one-hot over
    none/single/double/triple/aromatic (kekulized: aromatic unused); ``charge`` (N,);
    ``mol_index`` (1,) long, the row of the molecule in its file; ``y`` (1, 0).
    Molecules with more than ``max_atoms`` (27) heavy atoms are dropped and counted in a warning,
    as are SMILES RDKit cannot parse; an element outside the classes raises ``ValueError``.

Sources (``source=``)
    * ``"molsets"`` (default): the gzipped CSVs inside the PyPI package ``molsets==0.3.1``
      (install with ``pip install --no-deps molsets==0.3.1``; a 52 MB wheel), located with
      ``importlib.metadata`` and never imported.
    * ``"local"``: a folder ``data_dir`` holding ``train.csv``, ``test.csv``,
      ``test_scaffolds.csv`` (each optionally ``.gz``) with a ``SMILES`` column.
    * ``"download"``: the canonical files of the MOSES GitHub repository (:data:`MOSES_URLS`),
      fetched into ``root/raw``.
    ``limit`` keeps only the first ``limit`` rows of each file (quick experiments, tests).
"""
from __future__ import annotations

import csv
import gzip
import importlib.metadata
import os
import os.path as osp
import warnings
from typing import Iterator

import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from torch_geometric.data import download_url

from sympe.diffusion.info import DatasetInfo

from .base import GraphDataset
from .molecules import MOSES_SPEC, mol_to_graph, sanitized_mol_to_smiles
from .progress import progress

SPLIT_FILES = {"train": "train", "val": "test", "test": "test_scaffolds"}
MOSES_URLS = {f: f"https://media.githubusercontent.com/media/molecularsets/moses/master/data/{f}.csv"
              for f in SPLIT_FILES.values()}
MOLSETS_FILES = {f: f"moses/dataset/data/{f}.csv.gz" for f in SPLIT_FILES.values()}
MOSES_MAX_ATOMS = 27
MOSES_MAX_WEIGHT = 350.0  # DiGress's molecular-weight feature scale (u) for MOSES (moses_dataset.py)
SOURCES = ("molsets", "local", "download")


def molsets_paths() -> dict[str, str]:
    """MOSES file name -> path of its CSV inside the installed ``molsets`` package."""
    try:
        dist = importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("MOSES source 'molsets' needs the package: `pip install --no-deps molsets==0.3.1`, "
                          "or pass source='local' (data_dir=) or source='download'") from None
    paths = {f: str(dist.locate_file(p)) for f, p in MOLSETS_FILES.items()}
    missing = [p for p in paths.values() if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f"molsets {dist.version} lacks the data files {missing}; install molsets==0.3.1")
    return paths


def local_paths(data_dir: str) -> dict[str, str]:
    """MOSES file name -> ``data_dir/<name>.csv`` or ``.csv.gz`` (whichever exists)."""
    out = {}
    for f in SPLIT_FILES.values():
        cands = [osp.join(data_dir, f + ext) for ext in (".csv", ".csv.gz")]
        found = [c for c in cands if osp.isfile(c)]
        if not found:
            raise FileNotFoundError(f"MOSES: none of {cands} exists; data_dir must hold train/test/test_scaffolds CSVs")
        out[f] = found[0]
    return out


def read_smiles_csv(path: str, limit: int | None = None) -> Iterator[str]:
    """SMILES of a MOSES CSV (column ``SMILES``; optional ``.gz``), first ``limit`` rows only if given."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or "SMILES" not in header:
            raise ValueError(f"MOSES CSV {path}: needs a 'SMILES' column, found {header}")
        col = header.index("SMILES")
        for i, row in enumerate(reader):
            if limit is not None and i >= limit:
                return
            yield row[col]


class MOSESDataset(GraphDataset):
    """MOSES molecular graphs (see the module docstring for splits, fields and sources).

    Parameters: ``root``, ``split`` ("train" / "val" / "test" = MOSES train / test /
    test_scaffolds), ``source`` ("molsets" / "local" / "download"), ``data_dir`` (for "local"),
    ``max_atoms`` (27), ``limit`` (rows per file, None = all). Every one of them except ``split``
    is part of the cache key.
    """

    name = "moses"

    def __init__(self, root: str, split: str = "train", source: str = "molsets", data_dir: str | None = None,
                 max_atoms: int = MOSES_MAX_ATOMS, limit: int | None = None, transform=None,
                 force_reload: bool = False):
        if source not in SOURCES:
            raise ValueError(f"MOSESDataset: unknown source {source!r}; choose one of {list(SOURCES)}")
        if (source == "local") != (data_dir is not None):
            raise ValueError("MOSESDataset: data_dir= is required with source='local' and only used there")
        if limit is not None and limit < 1:
            raise ValueError(f"MOSESDataset: limit must be a positive number of rows or None, got {limit}")
        if max_atoms < 1:
            raise ValueError(f"MOSESDataset: max_atoms must be positive, got {max_atoms}")
        self.source = source
        self.data_dir = osp.abspath(os.fspath(data_dir)) if data_dir is not None else None
        self.max_atoms = int(max_atoms)
        self.limit = limit
        self.spec = MOSES_SPEC
        super().__init__(root, split=split, transform=transform, force_reload=force_reload)

    def cache_params(self) -> dict:
        params = {"source": self.source, "max_atoms": self.max_atoms, "limit": self.limit, "format": 2}  # 2: info.max_weight
        if self.source == "local":
            params["files"] = {f: [p, os.stat(p).st_size, os.stat(p).st_mtime_ns]
                               for f, p in local_paths(self.data_dir).items()}
        elif self.source == "molsets":
            try:
                params["molsets_version"] = importlib.metadata.version("molsets")
            except importlib.metadata.PackageNotFoundError:
                params["molsets_version"] = None
        return params

    # ------------------------------------------------------------------ raw files (source="download")
    @property
    def raw_file_names(self) -> list[str]:
        return [f"{f}.csv" for f in SPLIT_FILES.values()] if self.source == "download" else []

    def download(self) -> None:
        if self.source != "download":
            return
        for f, url in MOSES_URLS.items():
            if not osp.isfile(osp.join(self.raw_dir, f"{f}.csv")):
                download_url(url, self.raw_dir, filename=f"{f}.csv")

    # ------------------------------------------------------------------ processing
    def _paths(self) -> dict[str, str]:
        if self.source == "molsets":
            return molsets_paths()
        if self.source == "local":
            return local_paths(self.data_dir)
        return {f: osp.join(self.raw_dir, f"{f}.csv") for f in SPLIT_FILES.values()}

    def build_splits(self) -> dict[str, list]:
        paths = self._paths()
        out: dict[str, list] = {}
        self._train_smiles: list[str] = []
        no_features = torch.zeros(1, 0)
        _quiet = BlockLogs()  # noqa: F841 - parse errors are counted, not printed
        for split, fname in SPLIT_FILES.items():
            graphs, unparsable, too_big = [], [], []
            rows = enumerate(read_smiles_csv(paths[fname], self.limit))
            for row, smiles in progress(rows, desc=f"MOSES {fname}: molecules -> graphs", unit="mol"):
                mol = Chem.MolFromSmiles(smiles)
                if mol is None:
                    unparsable.append(row)
                    continue
                if mol.GetNumHeavyAtoms() > self.max_atoms:
                    too_big.append(row)
                    continue
                data = mol_to_graph(mol, self.spec, remove_h=True, name=f"{fname} row {row} ({smiles})")
                data.mol_index = torch.tensor([row])
                data.y = no_features
                graphs.append(data)
                if split == "train":
                    self._train_smiles.append(sanitized_mol_to_smiles(mol))
            if unparsable or too_big:
                warnings.warn(f"MOSES {fname}: skipped {len(unparsable)} unparsable SMILES (rows {unparsable[:5]}) and "
                              f"{len(too_big)} molecules with more than {self.max_atoms} heavy atoms "
                              f"(rows {too_big[:5]})", stacklevel=2)
            out[split] = graphs
        return out

    def extra_files(self, splits: dict[str, list]) -> dict[str, str]:
        return {"train_smiles.txt": "\n".join(self._train_smiles) + "\n"}

    def make_info(self, train_graphs: list) -> DatasetInfo:
        return DatasetInfo.from_graphs(
            train_graphs, name=self.name, node_classes=list(self.spec.atom_classes),
            edge_classes=list(self.spec.bond_classes), is_molecular=True, atom_valencies=list(self.spec.valencies),
            atom_weights=list(self.spec.weights), bond_orders=list(self.spec.bond_orders),
            max_weight=MOSES_MAX_WEIGHT, extra={"source": self.source, "max_atoms": self.max_atoms, "limit": self.limit},
        )

    def train_smiles(self) -> list[str]:
        """Canonical SMILES of the train split, in train order (for novelty)."""
        return self.processed_text("train_smiles.txt").splitlines()
