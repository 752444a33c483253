"""MOSES's dataset filters (Polykovskiy et al. 2020), with RDKit: a molecule passes when it has no ring of 8 or
more atoms, no charged atom, only the atoms C N S O F Cl Br H, none of the MCF and PAINS substructures (the SMARTS
files ``mcf.csv`` and ``wehi_pains.csv`` shipped in the ``molsets`` package, matched on the molecule with explicit
hydrogens), and a non-empty SMILES that parses again (the ``Filters`` metric of
:mod:`sympe.datasets.metrics.moses_metrics`).
"""
from __future__ import annotations

import csv
import functools

from rdkit import Chem
from rdkit.Chem import FilterCatalog

from sympe.datasets.metrics.moses_descriptors import molsets_file, moses_mol

__all__ = ["ALLOWED_ATOMS", "FILTER_FILES", "MAX_RING_SIZE", "filter_failure", "filter_patterns", "passes_filters"]

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING_SIZE = 7  # rings of 8 or more atoms fail the filters
FILTER_FILES = {"mcf": "moses/metrics/mcf.csv", "pains": "moses/metrics/wehi_pains.csv"}


@functools.lru_cache(maxsize=1)
def filter_patterns() -> tuple[tuple[str, Chem.Mol], ...]:
    """(name, compiled SMARTS) of MOSES's MCF (22, with a header ``names,smarts``) and PAINS (480, no header,
    columns smarts, name) patterns, read from the installed ``molsets`` package's data files."""
    out = []
    with open(molsets_file(FILTER_FILES["mcf"]), newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != ["names", "smarts"]:
        raise ValueError(f"{FILTER_FILES['mcf']}: expected the header ['names', 'smarts'], found {rows[0]}")
    out += [(name, smarts) for name, smarts in rows[1:]]
    with open(molsets_file(FILTER_FILES["pains"]), newline="") as f:
        out += [(name.strip(), smarts.strip()) for smarts, name in csv.reader(f)]
    compiled = []
    for name, smarts in out:
        patt = Chem.MolFromSmarts(smarts)
        if patt is None:
            raise ValueError(f"MOSES filter {name}: RDKit cannot compile the SMARTS {smarts!r}")
        compiled.append((name, patt))
    return tuple(compiled)


@functools.lru_cache(maxsize=1)
def _filter_catalog() -> FilterCatalog.FilterCatalog:
    """The patterns of :func:`filter_patterns` in an RDKit ``FilterCatalog`` (one C++ loop per molecule; about
    13 ms per molecule for the 502 patterns on one core)."""
    catalog = FilterCatalog.FilterCatalog()
    for name, patt in filter_patterns():
        catalog.AddEntry(FilterCatalog.FilterCatalogEntry(name, FilterCatalog.SmartsMatcher(name, patt, 1)))
    return catalog


def filter_failure(mol: Chem.Mol | None) -> str | None:
    """Why ``mol`` fails MOSES's filters (``None`` when it passes): ``"invalid"``, ``"ring>=8"``,
    ``"charge"``, ``"atom X"``, the name of the first MCF / PAINS pattern found, or ``"smiles"``."""
    if mol is None:
        return "invalid"
    if any(len(r) > MAX_RING_SIZE for r in mol.GetRingInfo().AtomRings()):
        return "ring>=8"
    if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
        return "charge"
    for a in mol.GetAtoms():
        if a.GetSymbol() not in ALLOWED_ATOMS:
            return f"atom {a.GetSymbol()}"
    match = _filter_catalog().GetFirstMatch(Chem.AddHs(mol))
    if match is not None:
        return match.GetDescription()
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    if not smiles or moses_mol(smiles) is None:
        return "smiles"
    return None


def passes_filters(mol: Chem.Mol | None) -> bool:
    """True when ``mol`` passes MOSES's filters (see :func:`filter_failure`)."""
    return filter_failure(mol) is None
