"""QM9 (GDB-9 subset with DFT properties) as a sympe molecular graph dataset, with DiGress's split.

Molecules
    133,885 molecules numbered by ``gdb_index`` 1..133885 (the number in ``dsgdb9nsd_XXXXXX``);
    3,054 "uncharacterized" ones (their relaxed geometry is a different molecule) are dropped,
    leaving 130,831. Up to 9 heavy atoms C, N, O, F (29 atoms with hydrogens).

Split (DiGress's, reproduced exactly)
    ``perm = np.random.RandomState(42).permutation(133885)``; position p holds molecule
    ``gdb_index = perm[p] + 1``; train = positions [0, 100000), val = [100000, 120497),
    test = [120497, 133885). After dropping the uncharacterized molecules the splits hold
    97,734 / 20,042 / 13,055 graphs. Within a split graphs keep the permutation order (DiGress
    itself orders each split by gdb_index; the content is the same).

Graphs (see :mod:`sympe.datasets.molecules`)
    ``x`` one-hot over C, N, O, F (+ H last when ``remove_h=False``), ``edge_attr`` one-hot over
    none/single/double/triple/aromatic (kekulized: aromatic unused), ``charge`` (N,) formal charges,
    ``gdb_index`` (1,) long, ``y`` (1, 0).

Sources (``source=``)
    * ``"qm9pack"`` (default, offline): the CSV files of the PyPI package ``qm9pack`` (columns
      ``Index``, ``SMILES``); located with ``importlib.metadata``, never imported.
    * ``"csv"``: a local CSV (or ``.csv.gz``) with columns ``gdb_index,smiles`` (``csv_path=``).
    * ``"raw"``: the archive DiGress downloads (``gdb9.sdf``, SDF record i = gdb_index i + 1) and
      the list of uncharacterized molecules, fetched into ``root/raw``.
    Rows whose molecule RDKit cannot read are skipped with a warning that counts them.
"""
from __future__ import annotations

import importlib.metadata
import os
import os.path as osp
import sys
import warnings
from typing import Iterable, Iterator

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from torch_geometric.data import download_url, extract_zip

from sympe.diffusion.bars import progress
from sympe.diffusion.info import DatasetInfo

from sympe.datasets.molecules import QM9_SPEC, QM9_SPEC_WITH_H, MoleculeSpec, mol_to_graph, sanitized_mol_to_smiles
from sympe.datasets.samples.smiles_files import open_csv_table
from sympe.datasets.sources.base import GraphDataset

QM9_NUM_MOLECULES = 133_885
QM9_NUM_UNCHARACTERIZED = 3_054
QM9_SPLIT_SIZES = {"train": 100_000, "val": 20_497, "test": 13_388}
QM9_SPLIT_SEED = 42
QM9_RAW_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/molnet_publish/qm9.zip"
QM9_UNCHARACTERIZED_URL = "https://ndownloader.figshare.com/files/3195404"
# DiGress's molecular-weight feature scale (u): ``remove_h`` -> max_weight (qm9_dataset.py's QM9infos)
QM9_MAX_WEIGHT = {True: 150.0, False: 390.0}
QM9PACK_FILES = tuple(f"qm9pack/data/qm9_part{i}.csv" for i in (1, 2, 3))
SOURCES = ("qm9pack", "csv", "raw")


def qm9_split_indices() -> dict[str, np.ndarray]:
    """gdb_index arrays (1-based, in permutation order) of DiGress's train / val / test split of
    all 133,885 molecules, uncharacterized ones included."""
    perm = np.random.RandomState(QM9_SPLIT_SEED).permutation(QM9_NUM_MOLECULES) + 1
    out, start = {}, 0
    for name, size in QM9_SPLIT_SIZES.items():
        out[name] = perm[start:start + size]
        start += size
    return out


# ---------------------------------------------------------------------- sources
def qm9pack_paths() -> list[str]:
    """Paths of the three qm9pack CSV files; ImportError with a fix when the package is missing."""
    try:
        dist = importlib.metadata.distribution("qm9pack")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("QM9 source 'qm9pack' needs the PyPI package qm9pack: `pip install qm9pack`, "
                          "or pass source='csv' (with csv_path=) or source='raw' (downloads DiGress's archive)") from None
    paths = [str(dist.locate_file(f)) for f in QM9PACK_FILES]
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f"qm9pack {dist.version} is installed but lacks its data files {missing}; "
                                "reinstall it (`pip install --force-reinstall qm9pack`)")
    return paths


def _read_csv_columns(path: str, index_col: str, smiles_col: str) -> Iterator[tuple[int, str]]:
    # large_fields: qm9pack rows hold long coordinate / frequency fields
    with open_csv_table(path, (index_col, smiles_col), "QM9 CSV", large_fields=True) as ((a, b), rows):
        for line, row in enumerate(rows, start=2):
            try:
                idx = int(row[a])
            except (ValueError, IndexError):
                raise ValueError(f"QM9 CSV {path}, line {line}: {index_col!r} is not an integer: {row[:3]}") from None
            yield idx, row[b]


def read_qm9pack() -> Iterator[tuple[int, str]]:
    """(gdb_index, SMILES) rows of the qm9pack package, in file order."""
    for path in qm9pack_paths():
        yield from _read_csv_columns(path, "Index", "SMILES")


def read_index_smiles_csv(path: str) -> Iterator[tuple[int, str]]:
    """(gdb_index, SMILES) rows of a CSV (optionally gzipped) with columns ``gdb_index,smiles``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"QM9 CSV source: no file at {path!r}")
    yield from _read_csv_columns(path, "gdb_index", "smiles")


def read_uncharacterized(path: str) -> set[int]:
    """gdb indices listed in the QM9 ``uncharacterized.txt`` (figshare file 3195404).

    The file is a text header, a dashed separator line, one row per molecule whose first field is
    its gdb index, and a closing separator. Rows are those between the first and the last
    separator; without separators every line whose first field is an integer counts.
    """
    with open(path) as f:
        lines = f.read().splitlines()
    seps = [i for i, ln in enumerate(lines) if len(ln.strip()) >= 5 and set(ln.strip()) <= set("-=")]
    body = lines[seps[0] + 1:seps[-1]] if len(seps) >= 2 else lines
    out = set()
    for ln in body:
        tok = ln.split()
        if tok and tok[0].isdigit():
            out.add(int(tok[0]))
    return out


def read_qm9_sdf(sdf_path: str, uncharacterized_path: str | None = None) -> Iterator[tuple[int, Chem.Mol | None]]:
    """(gdb_index, molecule) for every record of ``gdb9.sdf``: record i has gdb_index i + 1.

    Records listed in ``uncharacterized_path`` are left out. Molecules are read with their explicit
    hydrogens and sanitized here; a record RDKit cannot read or sanitize yields ``None``.
    """
    drop = read_uncharacterized(uncharacterized_path) if uncharacterized_path else set()
    supplier = Chem.SDMolSupplier(sdf_path, removeHs=False, sanitize=False)
    if len(supplier) == QM9_NUM_MOLECULES and uncharacterized_path and len(drop) != QM9_NUM_UNCHARACTERIZED:
        raise ValueError(f"{uncharacterized_path}: expected {QM9_NUM_UNCHARACTERIZED} uncharacterized molecules, "
                         f"parsed {len(drop)}; delete it to download it again")
    for i, mol in enumerate(supplier):
        gdb = i + 1
        if gdb in drop:
            continue
        if mol is not None:
            try:
                Chem.SanitizeMol(mol)
            except Exception:  # valence / kekulization errors of a broken record
                mol = None
        yield gdb, mol


# ---------------------------------------------------------------------- conversion
def build_qm9_splits(records: Iterable[tuple[int, object]], spec: MoleculeSpec, remove_h: bool,
                     source_name: str = "QM9") -> tuple[dict[str, list], list[str]]:
    """Convert (gdb_index, SMILES or Mol or None) records into the three DiGress splits.

    Returns ``({split: [Data, ...]}, train_smiles)``; each split keeps the permutation order,
    ``train_smiles`` (canonical, see :func:`~sympe.datasets.molecules.mol_to_smiles`) follows the
    train split. Records that cannot be read are skipped and counted in one warning; a gdb index
    out of range or repeated, or an element outside ``spec``, raises ``ValueError``.
    """
    splits = qm9_split_indices()
    names = list(splits)
    split_of = np.full(QM9_NUM_MOLECULES + 1, -1, dtype=np.int64)
    position = np.full(QM9_NUM_MOLECULES + 1, -1, dtype=np.int64)
    for s, idx in enumerate(splits.values()):
        split_of[idx] = s
        position[idx] = np.arange(len(idx))
    found: list[list[tuple[int, object, str | None]]] = [[] for _ in names]
    seen = np.zeros(QM9_NUM_MOLECULES + 1, dtype=bool)
    skipped: list[int] = []
    _quiet = BlockLogs()  # noqa: F841 - silence RDKit parse errors; they are counted instead
    gdb_tensor = torch.arange(QM9_NUM_MOLECULES + 1)  # per-graph views gdb_tensor[g:g+1] (cheaper than new tensors)
    no_features = torch.zeros(1, 0)
    # the sources hold the characterized molecules only (130,831): the bar ends at the molecules kept
    expected = QM9_NUM_MOLECULES - QM9_NUM_UNCHARACTERIZED
    for gdb, item in progress(records, total=expected, desc=f"{source_name}: molecules -> graphs", unit="mol"):
        if not 1 <= gdb <= QM9_NUM_MOLECULES:
            raise ValueError(f"{source_name}: gdb_index {gdb} is outside 1..{QM9_NUM_MOLECULES}")
        if seen[gdb]:
            raise ValueError(f"{source_name}: gdb_index {gdb} appears twice")
        seen[gdb] = True
        mol = Chem.MolFromSmiles(item) if isinstance(item, str) else item
        if mol is None:
            skipped.append(gdb)
            continue
        label = f"gdb_index {gdb}" + (f" ({item})" if isinstance(item, str) else "")
        data = mol_to_graph(mol, spec, remove_h=remove_h, name=label)
        data.gdb_index = gdb_tensor[gdb:gdb + 1]
        data.y = no_features
        s = int(split_of[gdb])
        smiles = sanitized_mol_to_smiles(mol) if names[s] == "train" else None
        found[s].append((int(position[gdb]), data, smiles))
    if skipped:
        warnings.warn(f"{source_name}: skipped {len(skipped)} molecules that RDKit could not read "
                      f"(first gdb indices: {skipped[:5]})", stacklevel=2)
    kept = sum(len(f) for f in found)
    absent = QM9_NUM_MOLECULES - int(seen[1:].sum())
    print(f"[sympe] {source_name}: {kept:,} molecules kept of {QM9_NUM_MOLECULES:,}; {absent:,} not in the source"
          + (f" (the {QM9_NUM_UNCHARACTERIZED:,} uncharacterized ones)" if absent == QM9_NUM_UNCHARACTERIZED else "")
          + (f", {len(skipped):,} unreadable" if skipped else ""), file=sys.stderr)
    out, train_smiles = {}, []
    for s, name in enumerate(names):
        found[s].sort(key=lambda t: t[0])
        out[name] = [d for _, d, _ in found[s]]
        if name == "train":
            train_smiles = [sm for _, _, sm in found[s]]
    return out, train_smiles


# ---------------------------------------------------------------------- dataset
class QM9Dataset(GraphDataset):
    """QM9 molecular graphs with DiGress's split (see the module docstring).

    Parameters: ``root`` (cache folder), ``split`` ("train" / "val" / "test"), ``remove_h``
    (implicit hydrogens when True; hydrogens as nodes, class "H" last, when False), ``source``
    ("qm9pack" / "csv" / "raw"), ``csv_path`` (for ``source="csv"``). The processed folder is keyed
    by source, remove_h and the CSV's path, size and modification time.
    """

    name = "qm9"
    extra_file_names = ("train_smiles.txt",)

    def __init__(self, root: str, split: str = "train", remove_h: bool = True, source: str = "qm9pack",
                 csv_path: str | None = None, transform=None, force_reload: bool = False):
        if source not in SOURCES:
            raise ValueError(f"QM9Dataset: unknown source {source!r}; choose one of {list(SOURCES)}")
        if source == "csv":
            if csv_path is None:
                raise ValueError("QM9Dataset: source='csv' needs csv_path= (a CSV with columns gdb_index,smiles)")
            csv_path = osp.abspath(os.fspath(csv_path))
            if not osp.isfile(csv_path):
                raise FileNotFoundError(f"QM9Dataset: csv_path {csv_path!r} does not exist")
        elif csv_path is not None:
            raise ValueError(f"QM9Dataset: csv_path is only used with source='csv' (source is {source!r})")
        self.remove_h = bool(remove_h)
        self.source = source
        self.csv_path = csv_path
        self.spec = QM9_SPEC if self.remove_h else QM9_SPEC_WITH_H
        super().__init__(root, split=split, transform=transform, force_reload=force_reload)

    # ------------------------------------------------------------------ cache key
    def cache_params(self) -> dict:
        params = {"source": self.source, "remove_h": self.remove_h, "format": 2}  # 2: info.max_weight
        if self.source == "csv":
            st = os.stat(self.csv_path)
            params.update(csv_path=self.csv_path, csv_size=st.st_size, csv_mtime_ns=st.st_mtime_ns)
        elif self.source == "qm9pack":
            params["qm9pack_version"] = _qm9pack_version()
        return params

    # ------------------------------------------------------------------ raw files (source="raw")
    @property
    def raw_file_names(self) -> list[str]:
        return ["gdb9.sdf", "uncharacterized.txt"] if self.source == "raw" else []

    def download(self) -> None:
        if self.source != "raw":
            return
        sdf = osp.join(self.raw_dir, "gdb9.sdf")
        if not osp.isfile(sdf):
            archive = download_url(QM9_RAW_URL, self.raw_dir)
            extract_zip(archive, self.raw_dir)
            os.unlink(archive)
        unchar = osp.join(self.raw_dir, "uncharacterized.txt")
        if not osp.isfile(unchar):
            download_url(QM9_UNCHARACTERIZED_URL, self.raw_dir, filename="uncharacterized.txt")

    def raw_source_problem(self) -> str | None:
        """Why this source cannot be read for a rebuild (qm9pack missing, the CSV or raw files gone), or ``None``."""
        if self.source == "qm9pack":
            try:
                qm9pack_paths()
            except (ImportError, OSError) as exc:
                return str(exc)
            return None
        if self.source == "csv":
            return None if osp.isfile(self.csv_path) else f"the QM9 CSV {self.csv_path!r} is missing"
        return super().raw_source_problem()

    # ------------------------------------------------------------------ processing
    def _records(self) -> Iterable[tuple[int, object]]:
        if self.source == "qm9pack":
            return read_qm9pack()
        if self.source == "csv":
            return read_index_smiles_csv(self.csv_path)
        return read_qm9_sdf(*self.raw_paths)

    def build_splits(self) -> dict[str, list]:
        splits, self._train_smiles = build_qm9_splits(self._records(), self.spec, self.remove_h,
                                                      source_name=f"QM9 ({self.source})")
        return splits

    def extra_files(self, splits: dict[str, list]) -> dict[str, str]:
        return {"train_smiles.txt": "\n".join(self._train_smiles) + "\n"}

    def make_info(self, train_graphs: list) -> DatasetInfo:
        return DatasetInfo.from_graphs(
            train_graphs, name=self.name,
            node_classes=list(self.spec.atom_classes), edge_classes=list(self.spec.bond_classes),
            is_molecular=True, atom_valencies=list(self.spec.valencies), atom_weights=list(self.spec.weights),
            bond_orders=list(self.spec.bond_orders), max_weight=QM9_MAX_WEIGHT[self.remove_h],
            extra={"remove_h": self.remove_h, "source": self.source},
        )

    def train_smiles(self) -> list[str]:
        """Canonical SMILES of the train split, in train order (for novelty)."""
        return self.processed_text("train_smiles.txt").splitlines()

    # ------------------------------------------------------------------ property columns (conditions)
    def property_columns(self) -> dict[str, str]:
        """The DFT properties conditions may name (``mu``, ``homo``; :mod:`sympe.datasets.conditions.qm9_columns`);
        none for ``source=csv``."""
        from sympe.datasets.conditions.qm9_columns import COLUMNS, SOURCES_WITH_COLUMNS

        return dict(COLUMNS) if self.source in SOURCES_WITH_COLUMNS else {}

    def column_values(self, name: str) -> list:
        """Column ``name`` of every graph of this split, in order."""
        from sympe.datasets.conditions.qm9_columns import qm9_column_values

        return qm9_column_values(self, name)


def _qm9pack_version() -> str | None:
    try:
        return importlib.metadata.version("qm9pack")
    except importlib.metadata.PackageNotFoundError:
        return None
