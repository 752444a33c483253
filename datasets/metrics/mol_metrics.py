"""Sample quality of generated molecules: validity, uniqueness, novelty, stability.

One scorer, :class:`MoleculeMetrics`, reads either generated graphs (``atoms`` (n,) class indices,
``bonds`` (n, n) class indices of a :class:`~sympe.datasets.molecules.MoleculeSpec`, optionally
``charges`` (n,)) or SMILES lines written by any system, and turns every sample into the same
per-sample record; every metric below is then computed from those records by the same code.

Definitions (N = number of samples, every fraction is a count divided by the stated denominator)
------------------------------------------------------------------------------------------------
* **validity** (DiGress, Vignac et al., ICLR 2023, ``compute_validity``): a sample is valid when
  the molecule it stands for sanitizes in RDKit (graphs: :func:`~sympe.datasets.molecules.build_molecule`
  with neutral atoms, or with the given charges; radicals are rejected, see that module) *and* its
  largest fragment (``Chem.GetMolFrags(asMols=True, sanitizeFrags=True)``) sanitizes and can be
  written as SMILES. Disconnected molecules therefore count as valid, and a valid sample is
  represented by the canonical SMILES of its largest fragment. ``validity = num_valid / N``.
  A sample using an element that is not an atom class of the dataset (``CC[Si]C`` for QM9; with
  element-and-charge classes, as ``dataset=smiles`` has, also a charged atom such as ``[O-]`` when
  ``O-`` is no class) is **invalid for that dataset**, whatever RDKit says: the model could not have produced it. Such
  samples are counted in ``num_outside_spec``, their elements in ``outside_spec_elements``, and
  named in a ``warnings`` entry. Hydrogen written in a SMILES is notation, never foreign.
  "Largest" = most atoms, hydrogens included when the spec has explicit H (DiGress counts graph
  nodes: all atoms with explicit H, heavy atoms without); ties are broken by the
  lexicographically smallest canonical SMILES (DiGress takes the first fragment in atom order,
  which is not permutation invariant).
* **validity_connected** = (valid *and* one fragment) / N.
* **relaxed_validity** (DiGress's ``compute_relaxed_validity``): as validity, but a graph that is
  not valid with neutral atoms is rebuilt with formal charges inferred by
  :func:`~sympe.datasets.molecules.infer_formal_charges` (N+ with four bonds, ...). Graphs given
  with explicit ``charges`` and SMILES lines state their charges, so for them relaxed = strict.
* **uniqueness** = |set of valid SMILES| / num_valid, where each valid sample is represented by a
  canonical form that identifies the same molecule however its hydrogens are written: canonical
  non-isomeric SMILES of the hydrogen-suppressed largest fragment, re-parsed and re-written once
  (so ``[H]C([H])([H])[H]``, ``[CH4]`` and, when it is valid, ``C`` are one molecule; isotopic
  ``[2H]`` is not distinguished either). DiGress compares raw ``MolToSmiles`` strings of the
  explicit-H molecule, which keeps ``[H]`` atoms and so can count such spellings apart.
  **novelty** = |unique valid SMILES not in the
  training set| / |unique valid SMILES| (DiGress's ``compute_uniqueness`` / ``compute_novelty``).
  Training SMILES are canonicalized the same way (whole molecule). These use the *strict* valid
  set, as defined above. DiGress's own ``evaluate`` computes them on the *relaxed* valid set;
  those numbers are reported too, as ``uniqueness_relaxed`` / ``novelty_relaxed``.
  A ratio whose denominator is 0 is reported as ``None`` (DiGress prints 0 and -1).
* **vun** (V.U.N.) = samples that are valid, unique and novel / N = |novel unique valid| / N
  (= validity * uniqueness * novelty). ``novelty``, ``vun`` are ``None`` without a training set.
* **connected** = samples whose graph has one connected component / N, over *all* samples,
  valid or not. Graphs: components of the bond graph. SMILES: fragments (``'.'``-separated parts,
  as RDKit reads them) of the molecule parsed without sanitization; a line RDKit cannot read at all
  counts as not connected.
* **atom_stability** / **molecule_stability** (Hoogeboom et al., EDM, ICML 2022; DiGress's
  ``check_stability``): an atom is stable when the sum of the orders of its bonds (single 1,
  double 2, triple 3, aromatic 1.5) equals an allowed valence of its element, :data:`ALLOWED_BONDS`
  (DiGress's ``allowed_bonds``; neutral atoms; an element not in the table is unstable). A molecule
  is stable when all its atoms are. ``atom_stability`` = stable atoms / all scored atoms,
  ``molecule_stability`` = stable molecules / N. Computed for every sample, valid or not, and only
  when the spec has explicit hydrogens: on implicit-H graphs the hydrogens are not in the graph,
  so stability is undefined and reported as ``None`` (not 0). Formal charges are ignored (as in
  DiGress: a QM9 N+ with four bonds is unstable) unless ``use_charges=True``, in which case a charged
  atom must match :data:`CHARGED_ALLOWED_BONDS` (a sympe convention, not DiGress's).
  Stability is always computed on the graph *as given*, by :mod:`sympe.datasets.metrics.mol_stability`:
  for a SMILES line that is the atoms of the string and the hydrogens written in it (``[H]`` atoms
  and bracket counts such as ``[CH3]``); no implicit H is added, whatever ``fill_hydrogens`` says.
  A line that does not parse at all is an unstable molecule contributing no atoms. Atoms of a
  foreign element are unstable. DiGress sums bond *class indices* (aromatic = 4); here aromatic = 1.5.
* **Explicit-H validity of SMILES** (spec with H, ``fill_hydrogens=False``, the default): as for
  graphs, the molecule is the atoms and the *written* hydrogens, with no implicit H, so ``C`` alone
  is a radical and invalid. ``fill_hydrogens=True`` lets RDKit add implicit H before sanitizing
  (DiGress's lenient ``build_molecule``), for graphs and SMILES alike. When no sample of an
  explicit-H file writes a single H, a ``warnings`` entry says so.
* **FCD** (Preuer et al., J. Chem. Inf. Model. 2018): :func:`sympe.datasets.metrics.fcd.fcd` (re-exported here).

SMILES input (:meth:`MoleculeMetrics.from_smiles`): one sample per string, the SMILES being its
first whitespace-separated token. Blank strings at the *end* are ignored (a trailing newline is not a
sample); any other blank string, the literal ``None`` (DiGress and :mod:`sympe.datasets.samples.writers` write
it for invalid graphs) and anything RDKit cannot parse and sanitize are invalid samples. Files (headers,
CSV columns, other formats) are read by :mod:`sympe.datasets.samples.readers`.

Counts returned alongside: ``num_samples``, ``num_valid``, ``num_valid_connected``,
``num_relaxed_valid``, ``num_unique``, ``num_novel``, ``num_unique_relaxed``,
``num_novel_relaxed``, ``num_connected``, ``num_atoms``, ``num_stable_atoms``,
``num_stable_molecules``, ``num_outside_spec``, ``outside_spec_elements`` ({element: samples}),
and ``warnings`` (a list of strings, empty when nothing needs saying).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from sympe.datasets.metrics.fcd import fcd, frechet_distance  # noqa: F401  (re-exported)
from sympe.datasets.metrics.mol_stability import (  # noqa: F401  (re-exported)
    ALLOWED_BONDS,
    CHARGED_ALLOWED_BONDS,
    bond_order_sums_of_mol,
    stable_atoms,
    written_h_molecule,
)
from sympe.datasets.molecules import (
    MoleculeSpec,
    atom_class_name,
    as_class_indices,
    bond_order_sums,
    build_molecule,
    canonical_smiles,
    sanitized_mol_to_smiles,
)
from sympe.datasets.samples.readers import read_samples


def molecule_key(mol: Chem.Mol) -> str | None:
    """Canonical form of a sanitized molecule that does not depend on how its hydrogens are written.

    Canonical non-isomeric SMILES of the H-suppressed molecule, parsed and written once more (RDKit keeps
    flags such as ``NoImplicit`` or isotopic H through the first writing). None when RDKit cannot write it.
    """
    first = sanitized_mol_to_smiles(mol)
    return None if first is None else (canonical_smiles(first) or first)


def largest_fragment_smiles(mol: Chem.Mol, count_hydrogens: bool) -> tuple[str | None, int]:
    """(:func:`molecule_key` of the largest fragment or None, number of fragments) of a sanitized molecule.

    Size = atoms of the fragment, plus its implicit/explicit H counts when ``count_hydrogens``
    (so an explicit-H graph and its SMILES rank fragments alike). Ties: smallest SMILES.
    The SMILES is None when a fragment fails to sanitize or cannot be written.
    """
    _quiet = BlockLogs()  # noqa: F841
    try:
        frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=True)
    except Exception:  # RDKit raises valence / kekulization errors of several types
        return None, 0
    best = None
    for frag in frags:
        if count_hydrogens:  # H atoms of the graph plus any implicit / bracket H
            size = frag.GetNumAtoms() + sum(a.GetTotalNumHs() for a in frag.GetAtoms())
        else:
            size = frag.GetNumHeavyAtoms()
        smiles = molecule_key(frag)
        if smiles is None:
            return None, len(frags)
        key = (-size, smiles)
        if best is None or key < best:
            best = key
    return (None if best is None else best[1]), len(frags)


@dataclass(frozen=True)
class SampleRecord:
    """What the metrics need to know about one sample.

    ``smiles``: largest-fragment canonical SMILES (:func:`molecule_key`) when (strictly) valid, else None;
    ``single_fragment``: valid and one fragment; ``relaxed_smiles``: as ``smiles`` under relaxed
    validity; ``connected``: one connected component (valid or not); ``atom_stable``: (n_atoms,)
    bool, or None when stability is not scored (implicit-H spec); ``foreign``: the elements of the
    sample that are not atom classes of the spec (sorted; empty for a sample of the dataset's elements).
    """

    smiles: str | None
    single_fragment: bool
    relaxed_smiles: str | None
    connected: bool
    atom_stable: np.ndarray | None
    foreign: tuple[str, ...] = ()

    @property
    def outside_spec(self) -> bool:
        return bool(self.foreign)


def _as_int_array(a, what: str) -> np.ndarray:
    """Integer class indices (bool accepted, as 0/1) as an int64 numpy array."""
    if isinstance(a, torch.Tensor) and a.dtype == torch.bool:
        a = a.long()
    elif isinstance(a, np.ndarray) and a.dtype == bool:
        a = a.astype(np.int64)
    return as_class_indices(a, what)


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _is_symbol_array(atoms) -> bool:
    arr = np.asarray(atoms) if not isinstance(atoms, torch.Tensor) else None
    return arr is not None and arr.dtype.kind in "OUS"


class MoleculeMetrics:
    """Score generated molecules (graphs or SMILES) against an optional training set.

    ``spec``: the atom/bond classes of the graphs (and whether H is explicit: stability is scored
    only then). ``train_smiles``: training molecules for novelty (canonicalized here unless
    ``train_canonical=True`` says they already are canonical in the sense of
    :func:`~sympe.datasets.molecules.canonical_smiles`); None disables novelty and V.U.N.
    ``use_charges``: score charged atoms with :data:`CHARGED_ALLOWED_BONDS` (default: DiGress,
    charges ignored in stability). ``fill_hydrogens``: build explicit-H molecules (graphs and SMILES)
    letting RDKit add implicit hydrogens to under-bonded atoms, as DiGress's ``build_molecule`` does
    (default False: the graph / the written atoms are the whole molecule and a missing H makes an
    invalid radical); stability never counts added H. See the module docstring for every definition.
    """

    def __init__(self, spec: MoleculeSpec, train_smiles: Iterable[str] | None = None, *,
                 train_canonical: bool = False, use_charges: bool = False, fill_hydrogens: bool = False):
        if not isinstance(spec, MoleculeSpec):
            raise ValueError(f"MoleculeMetrics: spec must be a MoleculeSpec (e.g. QM9_SPEC), got {type(spec).__name__}")
        self.spec = spec
        self.use_charges = bool(use_charges)
        self.fill_hydrogens = bool(fill_hydrogens)
        self.train_set: frozenset[str] | None = None
        self._wrote_h = False  # whether any SMILES scored so far writes a hydrogen
        if train_smiles is not None:
            if isinstance(train_smiles, str):
                raise ValueError("MoleculeMetrics: train_smiles must be a list of SMILES, not one string")
            train = list(train_smiles)
            if train_canonical:
                self.train_set = frozenset(train)
            else:
                canon, bad = [], []
                for i, s in enumerate(train):
                    c = canonical_smiles(s) if isinstance(s, str) and s.strip() else None
                    if c is None:
                        bad.append((i, s))
                    canon.append(c)
                if bad:
                    raise ValueError(f"MoleculeMetrics: {len(bad)} training SMILES cannot be parsed by RDKit "
                                     f"(first: index {bad[0][0]}, {bad[0][1]!r}); remove them from train_smiles")
                self.train_set = frozenset(canon)

    # ------------------------------------------------------------------ per-sample records
    def graph_record(self, atoms, bonds, charges=None) -> SampleRecord:
        """Record of one graph: ``atoms`` (n,) class indices (or element symbols), ``bonds`` (n, n) class
        indices, ``charges`` (n,) or None. A graph with an element that is not a class is invalid."""
        spec = self.spec
        if _is_symbol_array(atoms):
            return self._symbol_graph_record(np.asarray(atoms), bonds, charges)
        explicit = spec.explicit_h and not self.fill_hydrogens
        mol = build_molecule(atoms, bonds, spec, relaxed=False, charges=charges, explicit_h=explicit)  # validates
        atoms_np = _as_int_array(atoms, "atoms")
        bonds_np = _as_int_array(bonds, "bonds") > 0
        np.fill_diagonal(bonds_np, False)
        n_comp = connected_components(csr_matrix(bonds_np), directed=False)[0]
        smiles, n_frags = (None, 0) if mol is None else largest_fragment_smiles(mol, spec.explicit_h)
        if smiles is not None:
            relaxed = smiles
        elif charges is None:
            rmol = build_molecule(atoms, bonds, spec, relaxed=True, explicit_h=explicit)
            relaxed = None if rmol is None else largest_fragment_smiles(rmol, spec.explicit_h)[0]
        else:
            relaxed = None
        stable = None
        if spec.explicit_h:
            symbols = [spec.elements[k] for k in atoms_np.tolist()]
            q = None
            if self.use_charges:  # the given charges, else those of the classes (0 for element classes)
                q = (_as_int_array(charges, "charges") if charges is not None
                     else np.asarray(spec.class_charges, dtype=np.int64)[atoms_np])
            stable = stable_atoms(symbols, bond_order_sums(atoms_np, bonds, spec), q)
        return SampleRecord(smiles, smiles is not None and n_frags == 1, relaxed, n_comp == 1, stable)

    def _symbol_graph_record(self, symbols: np.ndarray, bonds, charges) -> SampleRecord:
        spec = self.spec
        index = {a: k for k, a in enumerate(spec.atom_classes)}
        foreign = tuple(sorted({str(s) for s in symbols.tolist() if s not in index}))
        if not foreign:
            return self.graph_record(np.array([index[s] for s in symbols.tolist()], dtype=np.int64), bonds, charges)
        b = _as_int_array(bonds, "bonds")
        if b.shape != (len(symbols), len(symbols)) or b.min(initial=0) < 0 or b.max(initial=0) >= spec.num_bond_classes:
            raise ValueError(f"bonds must be ({len(symbols)}, {len(symbols)}) class indices in 0..{spec.num_bond_classes - 1}")
        np.fill_diagonal(b, 0)
        n_comp = connected_components(csr_matrix(b > 0), directed=False)[0]
        stable = None
        if spec.explicit_h:
            sums = np.asarray(spec.bond_orders)[b].sum(1)
            stable = stable_atoms([str(s) for s in symbols], sums) & ~np.isin(symbols, foreign)
        return SampleRecord(None, False, None, n_comp == 1, stable, foreign)

    def smiles_record(self, line: str | None) -> SampleRecord:
        """Record of one SMILES (first whitespace-separated token; ``None``/empty: invalid)."""
        spec = self.spec
        tokens = line.split() if isinstance(line, str) else []
        text = tokens[0] if tokens else ""
        unscored = np.zeros(0, dtype=bool) if spec.explicit_h else None
        nothing = SampleRecord(None, False, None, False, unscored)
        if text in ("", "None"):
            return nothing
        _quiet = BlockLogs()  # noqa: F841
        raw = Chem.MolFromSmiles(text, sanitize=False)
        if raw is None or raw.GetNumAtoms() == 0:
            return nothing
        connected = len(Chem.GetMolFrags(raw)) == 1
        foreign = tuple(sorted({atom_class_name(a.GetSymbol(), a.GetFormalCharge()) for a in raw.GetAtoms()
                                if a.GetAtomicNum() != 1 and spec.class_index(a.GetSymbol(), a.GetFormalCharge()) is None}))
        written = written_h_molecule(raw) if spec.explicit_h else None
        if written is not None and written.GetNumAtoms() > raw.GetNumHeavyAtoms():
            self._wrote_h = True
        explicit = spec.explicit_h and not self.fill_hydrogens
        mol = _sanitize_or_none(written if explicit else raw)
        valid_mol = mol
        if mol is None or foreign or any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
            valid_mol = None  # radicals are not valid molecules (as build_molecule); foreign elements: not this dataset
        smiles, n_frags = (None, 0) if valid_mol is None else largest_fragment_smiles(valid_mol, spec.explicit_h)
        stable = None
        if spec.explicit_h:
            as_given = mol if explicit and mol is not None else (_sanitize_or_none(written) or written)
            symbols, valences, charges = bond_order_sums_of_mol(as_given)
            stable = stable_atoms(symbols, valences, charges if self.use_charges else None)
            if foreign:
                stable &= ~np.isin(symbols, foreign)
        return SampleRecord(smiles, smiles is not None and n_frags == 1, smiles, connected, stable, foreign)

    # ------------------------------------------------------------------ metrics
    def from_graphs(self, graphs: Sequence) -> dict:
        """Metrics of generated graphs: a list of ``(atoms, bonds)`` or ``(atoms, bonds, charges)``;
        ``atoms`` holds class indices of the spec or element symbols (e.g. read from a DiGress dump)."""
        records = []
        for i, g in enumerate(graphs):
            if not isinstance(g, (tuple, list)) or len(g) not in (2, 3):
                raise ValueError(f"from_graphs: sample {i} must be a tuple (atoms (n,), bonds (n, n)[, charges (n,)]), "
                                 f"got {type(g).__name__}")
            try:
                records.append(self.graph_record(*g))
            except ValueError as e:
                raise ValueError(f"from_graphs: sample {i}: {e}") from None
        return self.summarize(records)

    def from_smiles(self, lines: Sequence[str | None]) -> dict:
        """Metrics of SMILES strings (see the module docstring for blank strings and ``None``)."""
        if isinstance(lines, str):
            raise ValueError("from_smiles: pass a list of SMILES lines, not one string (use str.splitlines())")
        lines = list(lines)
        while lines and isinstance(lines[-1], str) and not lines[-1].strip():
            lines.pop()  # trailing blank lines are not samples (a None object is an invalid sample)
        self._wrote_h = False
        out = self.summarize([self.smiles_record(line) for line in lines])
        if self.spec.explicit_h and not self.fill_hydrogens and not self._wrote_h:
            out["warnings"].append(
                "no SMILES writes a hydrogen ([H] or [CH3]-style counts): for an explicit-H dataset the written atoms "
                "are the whole graph, so every molecule with H is a radical here; if the file uses implicit H, score "
                "it with fill_hydrogens=true (validity only; stability stays undefined for implicit H)")
        return out

    def summarize(self, records: Sequence[SampleRecord]) -> dict:
        """Metrics dict from per-sample records (definitions in the module docstring). The canonical SMILES of
        the valid samples, in sample order with duplicates, are kept in ``self.valid_smiles`` (e.g. for the FCD)."""
        n = len(records)
        if n == 0:
            raise ValueError("MoleculeMetrics: no samples to score (got an empty list)")
        valid = [r.smiles for r in records if r.smiles is not None]
        self.valid_smiles = list(valid)
        relaxed = [r.relaxed_smiles for r in records if r.relaxed_smiles is not None]
        unique, unique_relaxed = set(valid), set(relaxed)
        foreign = Counter(e for r in records for e in r.foreign)
        n_outside = sum(r.outside_spec for r in records)
        warnings_: list[str] = []
        if n_outside:
            named = ", ".join(f"{e} ({c})" for e, c in sorted(foreign.items()))
            warnings_.append(f"{n_outside} of {n} samples use elements outside the dataset's atom types "
                             f"{list(self.spec.atom_classes)}: {named} (samples per element); they count as invalid")
        out: dict = {
            "num_samples": n,
            "num_valid": len(valid), "validity": len(valid) / n,
            "num_valid_connected": sum(r.single_fragment for r in records),
            "num_relaxed_valid": len(relaxed), "relaxed_validity": len(relaxed) / n,
            "num_unique": len(unique), "uniqueness": _ratio(len(unique), len(valid)),
            "num_unique_relaxed": len(unique_relaxed),
            "uniqueness_relaxed": _ratio(len(unique_relaxed), len(relaxed)),
            "num_connected": sum(r.connected for r in records),
            "num_outside_spec": n_outside,
            "outside_spec_elements": dict(sorted(foreign.items())),
            "warnings": warnings_,
        }
        out["validity_connected"] = out["num_valid_connected"] / n
        out["connected"] = out["num_connected"] / n
        if self.train_set is None:
            out.update(num_novel=None, novelty=None, vun=None, num_novel_relaxed=None, novelty_relaxed=None)
        else:
            novel = sum(s not in self.train_set for s in unique)
            novel_relaxed = sum(s not in self.train_set for s in unique_relaxed)
            out.update(num_novel=novel, novelty=_ratio(novel, len(unique)), vun=novel / n,
                       num_novel_relaxed=novel_relaxed, novelty_relaxed=_ratio(novel_relaxed, len(unique_relaxed)))
        if any(r.atom_stable is None for r in records):
            out.update(num_atoms=None, num_stable_atoms=None, atom_stability=None,
                       num_stable_molecules=None, molecule_stability=None)
        else:
            n_atoms = sum(len(r.atom_stable) for r in records)
            n_stable = sum(int(r.atom_stable.sum()) for r in records)
            # a molecule with no scored atoms (an unreadable SMILES line) is not stable
            n_mol = sum(bool(len(r.atom_stable)) and bool(r.atom_stable.all()) for r in records)
            out.update(num_atoms=n_atoms, num_stable_atoms=n_stable, atom_stability=_ratio(n_stable, n_atoms),
                       num_stable_molecules=n_mol, molecule_stability=n_mol / n)
        return out


def _sanitize_or_none(mol: Chem.Mol) -> Chem.Mol | None:
    m = Chem.Mol(mol)
    _quiet = BlockLogs()  # noqa: F841
    try:
        Chem.SanitizeMol(m)
    except Exception:  # RDKit raises valence / kekulization errors of several types
        return None
    return m


# ---------------------------------------------------------------------- files
def read_smiles_file(path: str | os.PathLike) -> list[str]:
    """SMILES of a text file in the ``smiles`` or ``csv`` format of :mod:`sympe.datasets.samples.readers`
    (header detected, trailing blank lines dropped). Raises ``ValueError`` naming the file when it is
    empty, holds no sample, is binary / a graph file, or is not UTF-8 text."""
    samples = read_samples(Path(path), molecular=True)
    if samples.smiles is None:
        raise ValueError(f"SMILES file {str(path)!r} holds graphs ({samples.format}), not SMILES; "
                         "score graphs with MoleculeMetrics.from_graphs")
    return samples.smiles


def evaluate_smiles_file(path: str | os.PathLike, spec: MoleculeSpec, train_smiles: Iterable[str] | None = None,
                         **kwargs) -> dict:
    """:meth:`MoleculeMetrics.from_smiles` of the SMILES of a text file (``kwargs`` go to
    :class:`MoleculeMetrics`)."""
    return MoleculeMetrics(spec, train_smiles, **kwargs).from_smiles(read_smiles_file(path))
