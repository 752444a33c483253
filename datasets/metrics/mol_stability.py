"""Atom and molecule stability of explicit-hydrogen molecules (EDM / DiGress's rule).

An atom is **stable** when the sum of the orders of its bonds (single 1, double 2, triple 3, aromatic 1.5)
equals an allowed valence of its element (:data:`ALLOWED_BONDS`, DiGress's ``allowed_bonds`` table, taken
from EDM: Hoogeboom et al., ICML 2022); a molecule is stable when all its atoms are. The rule is applied to
the graph *as given*: a hydrogen counts only when it is a node of the graph. Nothing fills missing H.

From a SMILES string (:func:`written_h_molecule`) the graph is the atoms of the string plus the hydrogens
*written* in it: ``[H]`` atoms and the H counts inside brackets (``[CH3]``, ``[NH3+]``). The H that RDKit
would add implicitly to an organic-subset atom (``C`` -> CH4) are not added, so ``C`` alone is a carbon with
no bonds (unstable), ``[CH4]`` and ``[H]C([H])([H])[H]`` are methane (stable).

One deviation from DiGress: DiGress sums bond *class indices*, so an aromatic bond counts 4; here it
counts 1.5 (graphs in sympe are kekulized, so this only matters for generated aromatic bonds).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.rdBase import BlockLogs

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


def written_h_molecule(raw: Chem.Mol) -> Chem.Mol:
    """The molecule of an *unsanitized* parse whose hydrogens are exactly those written in the SMILES.

    Bracket H counts become H atoms (bonded by single bonds); every atom is marked ``NoImplicit`` so that
    sanitization adds no hydrogen (an under-bonded atom then is a radical). ``raw`` is not modified.
    """
    rw = Chem.RWMol(raw)
    for atom in list(rw.GetAtoms()):
        h = atom.GetNumExplicitHs()
        atom.SetNumExplicitHs(0)
        atom.SetNoImplicit(True)
        for _ in range(h):
            j = rw.AddAtom(Chem.Atom(1))
            rw.GetAtomWithIdx(j).SetNoImplicit(True)
            rw.AddBond(atom.GetIdx(), j, Chem.BondType.SINGLE)
    return rw.GetMol()


def bond_order_sums_of_mol(mol: Chem.Mol) -> tuple[list[str], np.ndarray, list[int]]:
    """(symbols, bond-order sums (n,), formal charges) of the atoms of ``mol`` (hydrogen atoms included).

    Kekulized first when RDKit can (as graphs are), so aromatic 1.5 orders remain only for a ring that cannot
    be kekulized. Implicit hydrogens are never counted.
    """
    _quiet = BlockLogs()  # noqa: F841
    m = Chem.Mol(mol)
    try:
        Chem.Kekulize(m, clearAromaticFlags=True)
    except Exception:  # unsanitized or non-kekulizable ring: keep aromatic bonds at 1.5
        pass
    sums = np.zeros(m.GetNumAtoms())
    for b in m.GetBonds():
        order = b.GetBondTypeAsDouble()
        sums[b.GetBeginAtomIdx()] += order
        sums[b.GetEndAtomIdx()] += order
    atoms = list(m.GetAtoms())
    return [a.GetSymbol() for a in atoms], sums, [a.GetFormalCharge() for a in atoms]
