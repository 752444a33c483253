"""``dataset=smiles``: a molecular graph dataset made from the user's own file of SMILES.

File and options (checked before anything loads: :mod:`sympe.datasets.sources.smiles_input`)
    ``path``: a CSV with a SMILES column (``column``, default the header named like ``smiles``) or one SMILES per
    line, optionally gzipped. ``remove_h`` (default true: implicit hydrogens; false: every H a node),
    ``max_atoms`` (default null: no limit; an int leaves larger molecules out), ``elements`` (default null: any
    element; a list leaves molecules with other elements out; hydrogen follows ``remove_h``), ``split_fractions``
    and ``split_seed`` (the random split when the CSV has no ``split`` column).

Processing (once; the folder is keyed by the SHA-256 of the file's bytes and every option, so editing the file
builds a new one)
    1. Each row becomes a graph or is left out for a reason (:mod:`sympe.datasets.sources.smiles_molecules`).
    2. The kept molecules are split: by the CSV's ``split`` column when it has one, else at random
       (:func:`~sympe.datasets.sources.user_splits.assign_splits`: fractions of the *kept* molecules, seeded).
    3. The classes are those of the **train split**: atom classes are its (element, formal charge) pairs (``C``,
       ``N+``, ``O-``; :mod:`sympe.datasets.atom_classes`), in
       :func:`~sympe.datasets.sources.smiles_molecules.class_order` (plus ``H`` with explicit hydrogens); bond classes are none, single, double, triple up to the highest bond
       of the train split (kekulized: never aromatic). Marginals, p(N), the valences and weights come from it too
       (:meth:`SmilesDataset.make_info`).
    4. A val / test molecule the train split cannot model is left out too, with its reason: an atom class or a
       bond no train molecule has, more nodes than the largest train molecule, or a node count no train molecule
       has (p(N) = 0 there: its test NLL would be infinite). Splits therefore hold fewer molecules than the
       fractions say when that happens; the summary states the sizes.
    5. Every row left out is written to ``rejected.csv`` beside the processed data (columns ``line`` (1-based, in
       the file; the header is line 1), ``smiles``, ``reason``) and counted in the summary. When more than half of
       the rows are left out, processing stops with one error naming the file and the most common reason (the
       list is still written).

Graphs as in :mod:`sympe.datasets.molecules`, with ``line`` (1,) long (the row's line in the file) and ``y`` (1, 0).
``train_smiles()`` gives the canonical SMILES of the train split (novelty). Disconnected molecules (salts) stay one
graph, as their SMILES.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from sympe.diffusion.bars import progress
from sympe.diffusion.files import atomic_write_text
from sympe.diffusion.info import DatasetInfo

from sympe.datasets.molecules import BOND_CLASSES, MoleculeSpec
from sympe.datasets.sources.base import GraphDataset
from sympe.datasets.sources.smiles_input import SmilesInputError, check_labels, check_params, file_sha256, read_table
from sympe.datasets.sources.smiles_molecules import Molecule, Rejected, class_order, parse_row
from sympe.datasets.sources.user_splits import DEFAULT_FRACTIONS, SPLITS, assign_splits, describe_splits

__all__ = ["SmilesDataset"]

CACHE_FORMAT = 1  # bump when the processed content changes for the same file and options
PREFIX = "dataset.params"


class SmilesDataset(GraphDataset):
    """The user's molecules (module docstring). Raises
    :class:`~sympe.datasets.sources.smiles_input.SmilesInputError` (one line) for a bad option or file before any
    processing, and during processing for bad split labels, a split left empty, or a file of which more than half of
    the rows are left out."""

    name = "smiles"
    extra_file_names = ("train_smiles.txt", "rejected.csv")

    def __init__(self, root: str, split: str = "train", path: str | None = None, column: str | None = None,
                 remove_h: bool = True, max_atoms: int | None = None, elements: list[str] | None = None,
                 split_fractions=DEFAULT_FRACTIONS, split_seed: int = 0, transform=None, force_reload: bool = False):
        opts = check_params(dict(path=path, column=column, remove_h=remove_h, max_atoms=max_atoms, elements=elements,
                                 split_fractions=split_fractions, split_seed=split_seed), PREFIX)
        self.path = opts["path"]
        self.column = column
        self.remove_h = bool(remove_h)
        self.max_atoms = max_atoms
        self.elements = opts["elements"]
        self.split_fractions = tuple(opts["split_fractions"])
        self.split_seed = int(split_seed)
        self.sha256 = file_sha256(self.path)
        super().__init__(root, split=split, transform=transform, force_reload=force_reload)

    # ------------------------------------------------------------------ cache
    def cache_params(self) -> dict:
        return {"sha256": self.sha256, "column": self.column, "remove_h": self.remove_h, "max_atoms": self.max_atoms,
                "elements": self.elements, "split_fractions": list(self.split_fractions),
                "split_seed": self.split_seed, "format": CACHE_FORMAT}

    def raw_source_problem(self) -> str | None:
        if not os.path.isfile(self.path):
            return f"the SMILES file {self.path!r} is missing"
        if file_sha256(self.path) != self.sha256:
            return f"the SMILES file {self.path!r} changed while it was read"
        return None

    # ------------------------------------------------------------------ property columns (conditions)
    def property_columns(self) -> dict[str, str]:
        """The CSV's columns besides the SMILES and split ones, name -> kind (:mod:`sympe.datasets.conditions.csv_columns`)."""
        from sympe.datasets.conditions.csv_columns import read_csv_columns

        return dict(read_csv_columns(self.path, self.column, os.stat(self.path).st_mtime_ns)[0])

    def column_values(self, name: str) -> list:
        """Column ``name`` of every graph of this split, in order (None for an empty cell)."""
        from sympe.datasets.conditions.csv_columns import smiles_column_values

        return smiles_column_values(self, name)

    @property
    def spec(self) -> MoleculeSpec:
        """The :class:`~sympe.datasets.molecules.MoleculeSpec` of the inferred classes."""
        return MoleculeSpec.from_info(self.info)

    # ------------------------------------------------------------------ processing
    def build_splits(self) -> dict[str, list]:
        table = read_table(self.path, self.column, PREFIX)
        check_labels(table, self.path, PREFIX)
        rows = len(table.smiles)
        allowed = None if self.elements is None else set(self.elements)
        rejected: list[tuple[int, str, Rejected]] = []
        kept: list[tuple[int, Molecule]] = []
        for i, text in enumerate(progress(table.smiles, desc="SMILES -> graphs", unit="mol")):
            got = parse_row(text, self.remove_h, allowed, self.max_atoms)
            if isinstance(got, Rejected):
                rejected.append((table.lines[i], text, got))
            else:
                kept.append((i, got))
        self._stop_if_mostly_rejected(rows, rejected)
        labels = None if table.labels is None else [table.labels[i] for i, _ in kept]
        try:
            parts = assign_splits(len(kept), labels, self.split_fractions, self.split_seed,
                                  where=f"{PREFIX}.path={self.path} ({len(kept)} usable molecules)")
        except ValueError as exc:
            raise SmilesInputError(str(exc)) from None
        train = [kept[j][1] for j in parts["train"]]
        spec = self._infer_spec(train)
        sizes = {m.num_nodes for m in train}
        out, self._train_smiles = {}, []
        for split in SPLITS:
            graphs = []
            for j in parts[split]:
                i, mol = kept[j]
                why = None if split == "train" else _unmodelled(mol, spec, sizes)
                if why is not None:
                    rejected.append((table.lines[i], table.smiles[i], why))
                    continue
                data = mol.on_spec(spec)
                data.line = torch.tensor([table.lines[i]])
                data.y = torch.zeros(1, 0)
                graphs.append(data)
                if split == "train":
                    self._train_smiles.append(mol.smiles)
            out[split] = graphs
        rejected.sort(key=lambda r: r[0])
        self._rejected = rejected
        self._stop_if_mostly_rejected(rows, rejected)
        empty = [s for s in SPLITS if not out[s]]
        if empty:
            raise SmilesInputError(f"{PREFIX}.path={self.path}: no molecule of the {', '.join(empty)} split can be "
                                   f"modelled from the train split (listed in {self._write_rejected(rejected)}); give "
                                   "more molecules, or other split_fractions or split labels")
        self._spec = spec
        self._extra = {
            "file_sha256": self.sha256, "read_as": table.described, "rows": rows,
            "kept": sum(len(g) for g in out.values()), "remove_h": self.remove_h, "max_atoms_option": self.max_atoms,
            "rejected": dict(Counter(r.reason for _, _, r in rejected).most_common()),
            "split": describe_splits({s: len(out[s]) for s in SPLITS}, table.labels is not None,
                                     self.split_fractions, self.split_seed),
        }
        return out

    def _infer_spec(self, train: list[Molecule]) -> MoleculeSpec:
        """Atom classes seen in the train split (and H with explicit hydrogens), bonds up to its highest one."""
        classes = {a for m in train for a in m.atoms} | (set() if self.remove_h else {"H"})
        top = max(m.top_bond for m in train)
        return MoleculeSpec(tuple(sorted(classes, key=class_order)), BOND_CLASSES[:top + 1])

    def _stop_if_mostly_rejected(self, rows: int, rejected: list) -> None:
        if 2 * len(rejected) <= rows:
            return
        counts = Counter(r.reason for _, _, r in rejected)
        reason, count = counts.most_common(1)[0]
        line, text, first = next(r for r in rejected if r[2].reason == reason)
        listed = self._write_rejected(rejected)
        raise SmilesInputError(
            f"{PREFIX}.path={self.path}: {len(rejected):,} of {rows:,} molecules cannot be used, most for "
            f"'{reason}' ({count:,}; first at line {line}: {text[:60]!r}, {first.text()}); all are listed in {listed}; "
            f"check the file, {PREFIX}.column, {PREFIX}.elements and {PREFIX}.max_atoms")

    def _write_rejected(self, rejected: list) -> Path:
        """Write ``rejected.csv`` of a build that stops (the folder has no params.json: it is rebuilt next time)."""
        os.makedirs(self.processed_dir, exist_ok=True)
        listed = Path(self.processed_dir) / "rejected.csv"
        atomic_write_text(listed, _rejected_csv(sorted(rejected, key=lambda r: r[0])))
        return listed

    def extra_files(self, splits: dict[str, list]) -> dict[str, str]:
        return {"train_smiles.txt": "".join(s + "\n" for s in self._train_smiles),
                "rejected.csv": _rejected_csv(self._rejected)}

    def make_info(self, train_graphs: list) -> DatasetInfo:
        """Statistics of the train split over the inferred classes; ``max_weight`` (the molecular-weight feature's
        scale) is the largest summed atomic weight of a train graph's nodes, rounded up to 10 u; ``extra`` records
        how the file was read (:meth:`summary_lines`)."""
        spec = self._spec
        weights = np.asarray(spec.weights)
        heaviest = max(float(weights[g.x.argmax(1).numpy()].sum()) for g in train_graphs)
        return DatasetInfo.from_graphs(
            train_graphs, name=self.name, node_classes=list(spec.atom_classes), edge_classes=list(spec.bond_classes),
            is_molecular=True, atom_valencies=list(spec.valencies), atom_weights=list(spec.weights),
            bond_orders=list(spec.bond_orders), max_weight=10.0 * math.ceil(heaviest / 10.0), extra=self._extra)

    # ------------------------------------------------------------------ reading back
    def train_smiles(self) -> list[str]:
        """Canonical SMILES of the train split, in train order (for novelty)."""
        return self.processed_text("train_smiles.txt").splitlines()

    def rejected_path(self) -> Path:
        """``rejected.csv`` of this dataset (columns line, smiles, reason)."""
        return Path(self.processed_dir) / "rejected.csv"

    def summary_lines(self) -> list[str]:
        """What the dataset summary says of the file: how it was read, what was left out and why, the split, the
        inferred classes and the largest molecule."""
        e, info = self.info.extra, self.info
        rejected = sum(e["rejected"].values())
        why = "; ".join(f"{r} {c:,}" for r, c in e["rejected"].items())
        h = "hydrogens implicit (remove_h=true)" if e["remove_h"] else "hydrogens as nodes (remove_h=false)"
        limit = ("from the data" if e["max_atoms_option"] is None
                 else f"max_atoms={e['max_atoms_option']} left larger out")
        return [
            f"[sympe] smiles file {self.path} ({e['read_as']}; sha256 {e['file_sha256'][:12]}): {e['rows']:,} rows, "
            f"{e['kept']:,} kept, {rejected:,} left out" + (f" ({why})" if rejected else "")
            + f"; listed in {self.rejected_path()}",
            f"[sympe] {e['split']}",
            f"[sympe] atom classes (train split): {', '.join(info.node_classes)}; bond classes: "
            f"{', '.join(info.edge_classes)} (kekulized); {h}",
            f"[sympe] max atoms per molecule: {info.max_nodes} ({limit})",
        ]


def _unmodelled(mol: Molecule, spec: MoleculeSpec, sizes: set[int]) -> Rejected | None:
    """Why a val / test molecule cannot be modelled by the train split's classes and p(N), or None."""
    unseen = sorted({a for a in mol.atoms if a not in spec.atom_indices}, key=class_order)
    if unseen:
        return Rejected("atom class not in train", ", ".join(unseen))
    if mol.top_bond >= spec.num_bond_classes:
        return Rejected("bond not in train", BOND_CLASSES[mol.top_bond])
    if mol.num_nodes > max(sizes):
        return Rejected("larger than train", f"{mol.num_nodes} > {max(sizes)} atoms")
    if mol.num_nodes not in sizes:
        return Rejected("size not in train", f"{mol.num_nodes} atoms")
    return None


def _rejected_csv(rejected: list[tuple[int, str, Rejected]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["line", "smiles", "reason"])
    for line, text, why in rejected:
        writer.writerow([line, text, why.text()])
    return buf.getvalue()
