"""Sample quality of generated molecules: validity, uniqueness, novelty, stability, FCD.

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
  "Largest" = most atoms, hydrogens included when the spec has explicit H (DiGress counts graph
  nodes: all atoms with explicit H, heavy atoms without); ties are broken by the
  lexicographically smallest canonical SMILES (DiGress takes the first fragment in atom order,
  which is not permutation invariant).
* **validity_connected** = (valid *and* one fragment) / N.
* **relaxed_validity** (DiGress's ``compute_relaxed_validity``): as validity, but a graph that is
  not valid with neutral atoms is rebuilt with formal charges inferred by
  :func:`~sympe.datasets.molecules.infer_formal_charges` (N+ with four bonds, ...). Graphs given
  with explicit ``charges`` and SMILES lines state their charges, so for them relaxed = strict.
* **uniqueness** = |set of valid SMILES| / num_valid; **novelty** = |unique valid SMILES not in the
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
  SMILES lines are scored on the molecule with all hydrogens explicit (``Chem.AddHs``) and
  kekulized (as the graphs are); a line that parses only without sanitization is scored
  best-effort (RDKit's implicit H counts computed non-strictly, aromatic bonds 1.5 if it cannot be
  kekulized); a line that does not parse at all is an unstable molecule contributing no atoms.
  One deviation from DiGress: DiGress sums *class indices* (aromatic = 4); here aromatic = 1.5.
* **FCD** (Preuer et al., J. Chem. Inf. Model. 2018): :func:`fcd`, see there.

SMILES input (:meth:`MoleculeMetrics.from_smiles`, :func:`evaluate_smiles_file`): one sample
per line; the SMILES is the first whitespace-separated token (the SMILES-file convention "SMILES
name"), no header line. Blank lines at the *end* are ignored (a trailing newline is not a sample);
any other blank line, the literal ``None`` (DiGress and :mod:`sympe.datasets.outputs` write it for
invalid graphs) and anything RDKit cannot parse and sanitize are invalid samples. Elements outside
``spec.atom_classes`` are accepted (RDKit decides validity) and counted in ``num_outside_spec``.

Counts returned alongside: ``num_samples``, ``num_valid``, ``num_valid_connected``,
``num_relaxed_valid``, ``num_unique``, ``num_novel``, ``num_unique_relaxed``,
``num_novel_relaxed``, ``num_connected``, ``num_atoms``, ``num_stable_atoms``,
``num_stable_molecules``, ``num_outside_spec``.
"""
from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from scipy import linalg
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from sympe.datasets.molecules import _to_numpy_long
from sympe.datasets.molecules import (
    MoleculeSpec,
    bond_order_sums,
    build_molecule,
    canonical_smiles,
    sanitized_mol_to_smiles,
)

#: Allowed bond-order sums of neutral atoms (DiGress's ``allowed_bonds``, from EDM).
ALLOWED_BONDS: dict[str, tuple[int, ...]] = {
    "H": (1,), "C": (4,), "N": (3,), "O": (2,), "F": (1,), "B": (3,), "Al": (3,), "Si": (4,),
    "P": (3, 5), "S": (4,), "Cl": (1,), "As": (3,), "Br": (1,), "I": (1,), "Hg": (1, 2), "Bi": (3, 5),
}
#: Allowed bond-order sums of charged atoms, used only with ``use_charges=True`` (sympe convention,
#: the valence of the isoelectronic neutral atom: N+ like C, O+ like N, O- like F, ...). A
#: (element, charge) pair not listed is unstable.
CHARGED_ALLOWED_BONDS: dict[tuple[str, int], tuple[int, ...]] = {
    ("C", 1): (3,), ("C", -1): (3,), ("N", 1): (4,), ("N", -1): (2,), ("O", 1): (3,), ("O", -1): (1,),
    ("S", 1): (3,), ("S", -1): (1,), ("P", 1): (4,), ("B", -1): (4,),
}

_TOL = 1e-6  # bond-order sums are multiples of 0.5; compare floats with a tolerance


def stable_atoms(symbols: Sequence[str], valences, charges=None) -> np.ndarray:
    """(n,) bool: atom i is stable when ``valences[i]`` (its bond-order sum) is an allowed value.

    Neutral atoms (or all atoms when ``charges`` is None) use :data:`ALLOWED_BONDS`, charged atoms
    :data:`CHARGED_ALLOWED_BONDS`; elements / (element, charge) pairs not listed are unstable.
    """
    valences = np.asarray(valences, dtype=float)
    if valences.shape != (len(symbols),):
        raise ValueError(f"stable_atoms: valences must have shape ({len(symbols)},), got {valences.shape}")
    if charges is not None and len(charges) != len(symbols):
        raise ValueError(f"stable_atoms: charges must have length {len(symbols)}, got {len(charges)}")
    out = np.zeros(len(symbols), dtype=bool)
    for i, s in enumerate(symbols):
        q = 0 if charges is None else int(charges[i])
        allowed = ALLOWED_BONDS.get(s, ()) if q == 0 else CHARGED_ALLOWED_BONDS.get((s, q), ())
        out[i] = any(abs(valences[i] - a) < _TOL for a in allowed)
    return out


def largest_fragment_smiles(mol: Chem.Mol, count_hydrogens: bool) -> tuple[str | None, int]:
    """(canonical SMILES of the largest fragment or None, number of fragments) of a sanitized molecule.

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
        size = frag.GetNumAtoms()
        if count_hydrogens:
            size += sum(a.GetTotalNumHs() for a in frag.GetAtoms())
        else:
            size = frag.GetNumHeavyAtoms()
        smiles = sanitized_mol_to_smiles(frag)
        if smiles is None:
            return None, len(frags)
        key = (-size, smiles)
        if best is None or key < best:
            best = key
    return (None if best is None else best[1]), len(frags)


@dataclass(frozen=True)
class SampleRecord:
    """What the metrics need to know about one sample.

    ``smiles``: largest-fragment canonical SMILES when (strictly) valid, else None;
    ``single_fragment``: valid and one fragment; ``relaxed_smiles``: as ``smiles`` under relaxed
    validity; ``connected``: one connected component (valid or not); ``atom_stable``: (n_atoms,)
    bool, or None when stability is not scored (implicit-H spec); ``outside_spec``: the molecule
    uses an element that is not an atom class of the spec.
    """

    smiles: str | None
    single_fragment: bool
    relaxed_smiles: str | None
    connected: bool
    atom_stable: np.ndarray | None
    outside_spec: bool = False


def _as_int_array(a, what: str) -> np.ndarray:
    """Integer class indices (bool accepted, as 0/1) as an int64 numpy array."""
    if isinstance(a, torch.Tensor) and a.dtype == torch.bool:
        a = a.long()
    elif isinstance(a, np.ndarray) and a.dtype == bool:
        a = a.astype(np.int64)
    return _to_numpy_long(a, what)


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


class MoleculeMetrics:
    """Score generated molecules (graphs or SMILES) against an optional training set.

    ``spec``: the atom/bond classes of the graphs (and whether H is explicit: stability is scored
    only then). ``train_smiles``: training molecules for novelty (canonicalized here unless
    ``train_canonical=True`` says they already are canonical in the sense of
    :func:`~sympe.datasets.molecules.canonical_smiles`); None disables novelty and V.U.N.
    ``use_charges``: score charged atoms with :data:`CHARGED_ALLOWED_BONDS` (default: DiGress,
    charges ignored in stability). ``fill_hydrogens``: build explicit-H graphs letting RDKit add
    implicit hydrogens to under-bonded atoms, as DiGress's ``build_molecule`` does (default False:
    the graph is the whole molecule and a missing H makes an invalid radical). See the module
    docstring for every definition.
    """

    def __init__(self, spec: MoleculeSpec, train_smiles: Iterable[str] | None = None, *,
                 train_canonical: bool = False, use_charges: bool = False, fill_hydrogens: bool = False):
        if not isinstance(spec, MoleculeSpec):
            raise ValueError(f"MoleculeMetrics: spec must be a MoleculeSpec (e.g. QM9_SPEC), got {type(spec).__name__}")
        self.spec = spec
        self.use_charges = bool(use_charges)
        self.fill_hydrogens = bool(fill_hydrogens)
        self.train_set: frozenset[str] | None = None
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
        """Record of one graph: ``atoms`` (n,), ``bonds`` (n, n) class indices, ``charges`` (n,) or None."""
        spec = self.spec
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
            symbols = [spec.atom_classes[k] for k in atoms_np.tolist()]
            q = _as_int_array(charges, "charges") if (self.use_charges and charges is not None) else None
            stable = stable_atoms(symbols, bond_order_sums(atoms_np, bonds, spec), q)
        return SampleRecord(smiles, smiles is not None and n_frags == 1, relaxed, n_comp == 1, stable)

    def smiles_record(self, line: str | None) -> SampleRecord:
        """Record of one SMILES line (first whitespace-separated token; ``None``/empty: invalid)."""
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
        outside = any(a.GetSymbol() not in spec.atom_classes for a in raw.GetAtoms())
        mol = Chem.Mol(raw)
        try:
            Chem.SanitizeMol(mol)
        except Exception:
            mol = None
        if mol is not None and any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
            valid_mol = None  # same rule as build_molecule: radicals are not valid molecules
        else:
            valid_mol = mol
        smiles, n_frags = (None, 0) if valid_mol is None else largest_fragment_smiles(valid_mol, spec.explicit_h)
        stable = None
        if spec.explicit_h:
            symbols, valences, charges = _explicit_h_valences(mol if mol is not None else raw, mol is not None)
            stable = stable_atoms(symbols, valences, charges if self.use_charges else None)
        return SampleRecord(smiles, smiles is not None and n_frags == 1, smiles, connected, stable, outside)

    # ------------------------------------------------------------------ metrics
    def from_graphs(self, graphs: Sequence) -> dict:
        """Metrics of generated graphs: a list of ``(atoms, bonds)`` or ``(atoms, bonds, charges)``."""
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
        """Metrics of SMILES lines (see the module docstring for blank lines and ``None``)."""
        if isinstance(lines, str):
            raise ValueError("from_smiles: pass a list of SMILES lines, not one string (use str.splitlines())")
        lines = list(lines)
        while lines and isinstance(lines[-1], str) and not lines[-1].strip():
            lines.pop()  # trailing blank lines are not samples (a None object is an invalid sample)
        return self.summarize([self.smiles_record(line) for line in lines])

    def summarize(self, records: Sequence[SampleRecord]) -> dict:
        """Metrics dict from per-sample records (definitions in the module docstring)."""
        n = len(records)
        if n == 0:
            raise ValueError("MoleculeMetrics: no samples to score (got an empty list)")
        valid = [r.smiles for r in records if r.smiles is not None]
        relaxed = [r.relaxed_smiles for r in records if r.relaxed_smiles is not None]
        unique, unique_relaxed = set(valid), set(relaxed)
        out: dict = {
            "num_samples": n,
            "num_valid": len(valid), "validity": len(valid) / n,
            "num_valid_connected": sum(r.single_fragment for r in records),
            "num_relaxed_valid": len(relaxed), "relaxed_validity": len(relaxed) / n,
            "num_unique": len(unique), "uniqueness": _ratio(len(unique), len(valid)),
            "num_unique_relaxed": len(unique_relaxed),
            "uniqueness_relaxed": _ratio(len(unique_relaxed), len(relaxed)),
            "num_connected": sum(r.connected for r in records),
            "num_outside_spec": sum(r.outside_spec for r in records),
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


def _explicit_h_valences(mol: Chem.Mol, sanitized: bool) -> tuple[list[str], np.ndarray, list[int]]:
    """Symbols, bond-order sums and formal charges of ``mol`` with every hydrogen made an atom.

    Kekulized first (as graphs are), so aromatic 1.5 orders only remain when kekulization fails
    (possible for an unsanitized molecule).
    """
    _quiet = BlockLogs()  # noqa: F841
    m = Chem.Mol(mol)
    if not sanitized:
        m.UpdatePropertyCache(strict=False)
    try:
        m = Chem.AddHs(m)
    except Exception:
        pass  # unsanitized molecule whose H counts RDKit cannot compute: score the heavy atoms as they are
    try:
        Chem.Kekulize(m, clearAromaticFlags=True)
    except Exception:
        pass
    sums = np.zeros(m.GetNumAtoms())
    for b in m.GetBonds():
        order = b.GetBondTypeAsDouble()
        sums[b.GetBeginAtomIdx()] += order
        sums[b.GetEndAtomIdx()] += order
    atoms = list(m.GetAtoms())
    return [a.GetSymbol() for a in atoms], sums, [a.GetFormalCharge() for a in atoms]


# ---------------------------------------------------------------------- files
_BINARY_MAGIC = (b"PK\x03\x04", b"\x93NUMPY", b"\x1f\x8b", b"\x89HDF", b"\x80")


def read_smiles_file(path: str | os.PathLike) -> list[str]:
    """Lines of a SMILES text file (trailing blank lines dropped; see the module docstring).

    Raises ``ValueError`` naming the file when it is empty, holds no sample, or is binary
    (an ``.npz``/zip, ``.npy``, gzip, HDF5, pickle, NUL bytes or non-UTF-8 text).
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"SMILES file {str(path)!r} is empty: expected one SMILES per line")
    if data.startswith(_BINARY_MAGIC) or b"\x00" in data[:4096]:
        raise ValueError(f"SMILES file {str(path)!r} looks binary (an .npz/.npy/gzip/pickle?): expected a text "
                         "file with one SMILES per line; graphs in .npz go through MoleculeMetrics.from_graphs")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"SMILES file {str(path)!r} is not UTF-8 text ({e}); expected one SMILES per line") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def evaluate_smiles_file(path: str | os.PathLike, spec: MoleculeSpec, train_smiles: Iterable[str] | None = None,
                         **kwargs) -> dict:
    """:meth:`MoleculeMetrics.from_smiles` of the lines of a text file (``kwargs`` go to
    :class:`MoleculeMetrics`)."""
    return MoleculeMetrics(spec, train_smiles, **kwargs).from_smiles(read_smiles_file(path))


# ---------------------------------------------------------------------- FCD
def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) between N(mu1, S1) and N(mu2, S2).

    ``mu`` (d,), ``sigma`` (d, d). When the matrix square root is not finite (near-singular
    product), ``eps * I`` is added to both covariances; a tiny imaginary part is dropped.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"frechet_distance: shapes disagree: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    root = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(root).all():
        offset = eps * np.eye(s1.shape[0])
        root = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0.0, atol=1e-3):
            raise ValueError(f"frechet_distance: matrix square root has a large imaginary part "
                             f"({np.abs(root.imag).max():.3g})")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root))


def _fcd_inputs(smiles: Iterable[str | None], name: str) -> list[str]:
    if isinstance(smiles, str):
        raise ValueError(f"fcd: {name} must be a list of SMILES, not one string")
    out = [c for c in (canonical_smiles(s) if isinstance(s, str) and s.strip() and s.strip() != "None" else None
                       for s in smiles) if c is not None]
    if len(out) < 2:
        raise ValueError(f"fcd: {name} has {len(out)} valid molecules; the FCD needs at least 2 (a covariance)")
    return out


@functools.lru_cache(maxsize=2)
def _fcd_model(device: str, batch_size: int):
    """The fcd_torch ChemNet wrapper, loaded once per (device, batch size): loading takes seconds."""
    from fcd_torch import FCD

    return FCD(device=device, n_jobs=1, batch_size=batch_size, canonize=False)


def fcd(smiles_a: Iterable[str | None], smiles_b: Iterable[str | None], device: str = "cpu",
        batch_size: int = 512) -> float:
    """Fréchet ChemNet Distance (Preuer et al., 2018) between two sets of molecules, via ``fcd-torch``.

    Both lists are canonicalized with :func:`~sympe.datasets.molecules.canonical_smiles`
    (non-isomeric, so stereo marks never separate the two sides); entries RDKit cannot parse
    (and ``None``) are dropped, as MOSES does (FCD over valid molecules). Each set is mapped to
    the 512-d penultimate ChemNet activations, fitted by a Gaussian (mean, unbiased covariance), and
    the Fréchet distance of :func:`frechet_distance` is returned (the raw distance, not
    GuacaMol's score exp(-0.2 FCD)).

    Which implementation: the PyPI package ``fcd-torch`` (insilicomedicine/fcd_torch, the one
    MOSES uses; ChemNet weights ship inside the wheel, so it runs offline). The Keras-born package
    ``fcd`` by bioinf-jku preprocesses/tokenizes SMILES with its own code and gives different
    numbers for the same inputs; values from the two must not be compared. Raises ``ImportError``
    naming ``pip install fcd-torch`` when the package is missing, ``ValueError`` when a set has
    fewer than two valid molecules.
    """
    try:
        import fcd_torch  # noqa: F401
    except ImportError as e:
        raise ImportError("fcd() needs the optional package fcd-torch: `pip install fcd-torch` "
                          "(with torch already installed, `pip install fcd-torch --no-deps` suffices)") from e
    a, b = _fcd_inputs(smiles_a, "smiles_a"), _fcd_inputs(smiles_b, "smiles_b")
    model = _fcd_model(str(device), int(batch_size))
    stats = []
    for s in (a, b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fcd_torch uses np.row_stack
            acts = np.asarray(model.get_predictions(s), dtype=np.float64)
        stats.append((acts.mean(0), np.cov(acts.T)))
    value = frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
    return value if math.isfinite(value) else float("nan")
