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

Processing
    One streaming pass per file in chunks of :data:`CHUNK` SMILES, converted by ``num_workers`` processes
    (default: all CPU cores) straight into the collated tensors PyG stores (no per-molecule ``Data``
    object), with a progress bar. The graphs are exactly those of
    :func:`~sympe.datasets.molecules.mol_to_graph` (``remove_h=True``), collated as
    ``InMemoryDataset.collate`` does (tested). Time and memory are in the README.
"""
from __future__ import annotations

import importlib.metadata
import itertools
import multiprocessing as mp
import os
import os.path as osp
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from torch_geometric.data import Data, download_url
from torch_geometric.io import fs

from sympe.diffusion.bars import progress
from sympe.diffusion.files import atomic_path, atomic_write_text
from sympe.diffusion.info import DatasetInfo

from sympe.datasets.molecules import BOND_CLASS_OF_TYPE, BOND_CLASSES, MOSES_SPEC
from sympe.datasets.samples.smiles_files import read_csv_column
from sympe.datasets.sources.base import GraphDataset
from sympe.datasets.sources.cache_manifest import write_params

SPLIT_FILES = {"train": "train", "val": "test", "test": "test_scaffolds"}
MOSES_URLS = {f: f"https://media.githubusercontent.com/media/molecularsets/moses/master/data/{f}.csv"
              for f in SPLIT_FILES.values()}
MOLSETS_FILES = {f: f"moses/dataset/data/{f}.csv.gz" for f in SPLIT_FILES.values()}
MOSES_MAX_ATOMS = 27
MOSES_MAX_WEIGHT = 350.0  # DiGress's molecular-weight feature scale (u) for MOSES (moses_dataset.py)
SOURCES = ("molsets", "local", "download")
CHUNK = 4096
IN_PROCESS_CHUNKS = 8  # the first 8 chunks of a file are converted here; worker processes take the rest
MOLSETS_ROWS = {"train": 1584663, "test": 176074, "test_scaffolds": 176226}  # data rows of molsets 0.3.1


def convert_chunk(job: tuple) -> dict:
    """Worker: (SMILES list, first row number, file name, max_atoms, want_smiles) -> class-index arrays.

    Per kept molecule: ``n`` atoms, atom classes and formal charges (concatenated), bonds as (u, v, class)
    with u < v per RDKit's bond order; ``rows`` the file rows kept, ``unparsable`` / ``too_big`` the rows
    skipped, ``smiles`` canonical non-isomeric SMILES (as :func:`~sympe.datasets.molecules.canonical_smiles`)
    when ``want_smiles``. Raises ``ValueError`` naming the file row on an element outside MOSES's classes.
    """
    smiles, first_row, fname, max_atoms, want_smiles = job
    index = MOSES_SPEC.atom_indices
    _quiet = BlockLogs()  # noqa: F841 - parse errors are counted, not printed
    sizes, atoms, charges, bonds, rows, unparsable, too_big, canon = [], [], [], [], [], [], [], []
    for row, smi in enumerate(smiles, start=first_row):
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            unparsable.append(row)
            continue
        if mol.GetNumHeavyAtoms() != mol.GetNumAtoms():
            mol = Chem.RemoveHs(mol)
        n = mol.GetNumAtoms()
        if n > max_atoms:
            too_big.append(row)
            continue
        if n == 0:
            raise ValueError(f"MOSES {fname} row {row} ({smi}): the molecule has no atoms")
        if want_smiles:
            canon.append(Chem.MolToSmiles(mol, isomericSmiles=False))
        Chem.Kekulize(mol, clearAromaticFlags=True)
        for a in mol.GetAtoms():
            k = index.get(a.GetSymbol())
            if k is None:
                raise ValueError(f"element {a.GetSymbol()!r} of MOSES {fname} row {row} ({smi}) is not one of the atom "
                                 f"classes {list(MOSES_SPEC.atom_classes)}")
            atoms.append(k)
            charges.append(a.GetFormalCharge())
        for b in mol.GetBonds():
            c = BOND_CLASS_OF_TYPE.get(b.GetBondType())
            if c is None:
                raise ValueError(f"MOSES {fname} row {row} ({smi}): bond type {b.GetBondType()} is not one of "
                                 f"{list(BOND_CLASSES[1:])}")
            bonds.append((len(sizes), b.GetBeginAtomIdx(), b.GetEndAtomIdx(), c))
        sizes.append(n)
        rows.append(row)
    return {"n": np.asarray(sizes, np.int64), "atoms": np.asarray(atoms, np.int64),
            "charges": np.asarray(charges, np.int64), "bonds": np.asarray(bonds, np.int64).reshape(-1, 4),
            "rows": np.asarray(rows, np.int64), "unparsable": unparsable, "too_big": too_big, "smiles": canon}


def collate_chunks(parts: list[dict], num_atom_classes: int) -> tuple[dict, dict]:
    """(data dict, slices) of the molecules of ``parts`` (outputs of :func:`convert_chunk`) in the layout of
    ``InMemoryDataset.collate``: one-hot ``x``, ``edge_index`` with both directions sorted by (source,
    target) and node indices local to each graph, one-hot ``edge_attr``, ``charge``, ``mol_index``, ``y``
    (G, 0), ``num_nodes`` and ``_num_nodes``."""
    n = np.concatenate([p["n"] for p in parts]) if parts else np.zeros(0, np.int64)
    atoms = np.concatenate([p["atoms"] for p in parts]) if parts else np.zeros(0, np.int64)
    charges = np.concatenate([p["charges"] for p in parts]) if parts else np.zeros(0, np.int64)
    rows = np.concatenate([p["rows"] for p in parts]) if parts else np.zeros(0, np.int64)
    graph_offset = np.cumsum([0] + [len(p["n"]) for p in parts])
    bonds = (np.concatenate([p["bonds"] + [off, 0, 0, 0] for p, off in zip(parts, graph_offset)])
             if parts else np.zeros((0, 4), np.int64))
    g, u, v, c = bonds.T
    g, src, dst, c = np.concatenate([g, g]), np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([c, c])
    width = int(n.max()) + 1 if len(n) else 1
    order = np.argsort((g * width + src) * width + dst, kind="stable")
    g, src, dst, c = g[order], src[order], dst[order], c[order]
    node_ptr = np.concatenate([[0], np.cumsum(n)])
    edge_ptr = np.concatenate([[0], np.cumsum(np.bincount(g, minlength=len(n)))])
    data = {
        "x": torch.from_numpy(np.eye(num_atom_classes, dtype=np.float32)[atoms]),
        "edge_index": torch.from_numpy(np.stack([src, dst])),
        "edge_attr": torch.from_numpy(np.eye(len(BOND_CLASSES), dtype=np.float32)[c]),
        "y": torch.zeros(len(n), 0),
        "charge": torch.from_numpy(charges),
        "num_nodes": int(n.sum()),
        "mol_index": torch.from_numpy(rows),
        "_num_nodes": n.tolist(),
    }
    graph_ptr = torch.arange(len(n) + 1)
    slices = {"x": torch.from_numpy(node_ptr), "edge_index": torch.from_numpy(edge_ptr),
              "edge_attr": torch.from_numpy(edge_ptr.copy()), "y": graph_ptr, "charge": torch.from_numpy(node_ptr.copy()),
              "mol_index": graph_ptr.clone()}
    return data, slices


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


def csv_paths(source: str = "molsets", data_dir: str | None = None, root: str | None = None) -> dict[str, str]:
    """MOSES file name (train / test / test_scaffolds) -> CSV path for a ``source`` (see the module
    docstring): the molsets package files, ``data_dir`` for "local", ``root/raw`` for "download" (files
    already fetched by :class:`MOSESDataset`)."""
    if source == "molsets":
        return molsets_paths()
    if source == "local":
        if data_dir is None:
            raise ValueError("MOSES source 'local' needs data_dir= (a folder with train/test/test_scaffolds CSVs)")
        return local_paths(data_dir)
    if source == "download":
        if root is None:
            raise ValueError("MOSES source 'download' needs the dataset root (files in root/raw)")
        paths = {f: osp.join(root, "raw", f"{f}.csv") for f in SPLIT_FILES.values()}
        missing = [q for q in paths.values() if not osp.isfile(q)]
        if missing:
            raise FileNotFoundError(f"MOSES: {missing} not downloaded yet; build MOSESDataset(source='download') first")
        return paths
    raise ValueError(f"MOSES: unknown source {source!r}; choose one of {list(SOURCES)}")


class MOSESDataset(GraphDataset):
    """MOSES molecular graphs (see the module docstring for splits, fields and sources).

    Parameters: ``root``, ``split`` ("train" / "val" / "test" = MOSES train / test /
    test_scaffolds), ``source`` ("molsets" / "local" / "download"), ``data_dir`` (for "local"),
    ``max_atoms`` (27), ``limit`` (rows per file, None = all), ``num_workers`` (processes converting
    SMILES; 0 = one per CPU core, 1 = in this process, -1 = in this process without a progress bar).
    Every one of them except ``split`` and ``num_workers`` is part of the cache key.
    """

    name = "moses"
    extra_file_names = ("train_smiles.txt",)

    def __init__(self, root: str, split: str = "train", source: str = "molsets", data_dir: str | None = None,
                 max_atoms: int = MOSES_MAX_ATOMS, limit: int | None = None, num_workers: int = 0,
                 transform=None, force_reload: bool = False):
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
        self.num_workers = int(num_workers)
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
        return csv_paths(self.source, self.data_dir, self.root)

    def raw_source_problem(self) -> str | None:
        """Why the MOSES CSV files of this source cannot be read (for a rebuild), or ``None``."""
        try:
            missing = [p for p in self._paths().values() if not osp.isfile(p)]
        except (ImportError, OSError, ValueError) as exc:
            return str(exc)
        return f"the MOSES files {missing} are missing" if missing else None

    def process(self) -> None:
        """Stream each MOSES file through :func:`convert_chunk` (``num_workers`` processes) and write
        ``params.json``, then ``<split>.pt``, ``info.json``, ``train_smiles.txt``, and ``manifest.json`` last, atomically."""
        paths = self._paths()
        os.makedirs(self.processed_dir, exist_ok=True)
        write_params(self.processed_dir, self.cache_params())
        collated = {}
        for split, fname in SPLIT_FILES.items():
            parts = list(self._convert_file(paths[fname], fname, want_smiles=split == "train"))
            skipped = {k: [r for p in parts for r in p[k]] for k in ("unparsable", "too_big")}
            if skipped["unparsable"] or skipped["too_big"]:
                warnings.warn(f"MOSES {fname}: skipped {len(skipped['unparsable'])} unparsable SMILES (rows "
                              f"{skipped['unparsable'][:5]}) and {len(skipped['too_big'])} molecules with more than "
                              f"{self.max_atoms} heavy atoms (rows {skipped['too_big'][:5]})", stacklevel=2)
            if split == "train":
                atomic_write_text(Path(self.processed_dir) / "train_smiles.txt",
                                  "".join(s + "\n" for p in parts for s in p["smiles"]))
                info = self._info_from_parts(parts)
            collated[split] = collate_chunks(parts, len(self.spec.atom_classes))
            del parts
        info.save(osp.join(self.processed_dir, "info.json"))
        for split, (data, slices) in collated.items():
            with atomic_path(osp.join(self.processed_dir, f"{split}.pt")) as tmp:
                fs.torch_save((data, slices, Data), str(tmp))
        self.write_manifest()

    def _convert_file(self, path: str, fname: str, want_smiles: bool) -> Iterator[dict]:
        def jobs():
            block, start = [], 0
            for row, smi in enumerate(read_csv_column(path, "SMILES", self.limit)):
                block.append(smi)
                if len(block) == CHUNK:
                    yield block, start, fname, self.max_atoms, want_smiles
                    block, start = [], row + 1
            if block:
                yield block, start, fname, self.max_atoms, want_smiles

        total = MOLSETS_ROWS[fname] if self.source == "molsets" else None
        if total is not None and self.limit is not None:
            total = min(total, self.limit)
        bar = progress(None, total=total, desc=f"MOSES {fname}", unit="mol", enable=False if self.num_workers < 0 else None)
        if self.num_workers > 0:
            workers = self.num_workers
        elif self.num_workers < 0:
            workers = 1
        else:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        todo = jobs()
        head = list(itertools.islice(todo, IN_PROCESS_CHUNKS))  # small files never pay for starting workers
        try:
            for part in itertools.chain(map(convert_chunk, head), self._map_rest(todo, workers)):
                bar.update(len(part["n"]) + len(part["unparsable"]) + len(part["too_big"]))
                yield part
        finally:
            bar.close()

    @staticmethod
    def _map_rest(todo, workers: int) -> Iterator[dict]:
        first = next(todo, None)
        if first is None:
            return
        if workers == 1:
            yield from map(convert_chunk, itertools.chain([first], todo))
            return
        with mp.get_context("spawn").Pool(workers) as pool:
            yield from pool.imap(convert_chunk, itertools.chain([first], todo))

    def _info_from_parts(self, parts: list[dict]) -> DatasetInfo:
        """:meth:`DatasetInfo.from_graphs` of the train split, fed one summary per molecule (its atom-class
        counts and bond-class counts, both directions) instead of the one-hot tensors: the same sums."""
        dx, de = len(self.spec.atom_classes), len(BOND_CLASSES)

        def summaries():
            for p in parts:
                node_off = np.concatenate([[0], np.cumsum(p["n"])])
                gid = np.repeat(np.arange(len(p["n"])), p["n"])
                atom_counts = np.zeros((len(p["n"]), dx))
                np.add.at(atom_counts, (gid, p["atoms"]), 1)
                bond_counts = np.zeros((len(p["n"]), de))
                np.add.at(bond_counts, (p["bonds"][:, 0], p["bonds"][:, 3]), 2)
                for i in range(len(p["n"])):
                    yield SimpleNamespace(num_nodes=int(node_off[i + 1] - node_off[i]),
                                          x=torch.from_numpy(atom_counts[i:i + 1]),
                                          edge_attr=torch.from_numpy(bond_counts[i:i + 1]))

        return DatasetInfo.from_graphs(
            summaries(), name=self.name, node_classes=list(self.spec.atom_classes),
            edge_classes=list(self.spec.bond_classes), is_molecular=True, atom_valencies=list(self.spec.valencies),
            atom_weights=list(self.spec.weights), bond_orders=list(self.spec.bond_orders),
            max_weight=MOSES_MAX_WEIGHT, extra={"source": self.source, "max_atoms": self.max_atoms, "limit": self.limit},
        )

    def train_smiles(self) -> list[str]:
        """Canonical SMILES of the train split, in train order (for novelty)."""
        return self.processed_text("train_smiles.txt").splitlines()
