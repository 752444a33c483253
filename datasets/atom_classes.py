"""Atom classes of molecular datasets: an element, optionally with a formal charge.

A class is written as its element symbol followed by the charge: ``"C"`` (neutral), ``"N+"`` (charge +1),
``"O-"`` (-1), ``"Fe+2"`` / ``"S-2"`` (|charge| >= 2). QM9 and MOSES use neutral names only and keep formal charges
in a separate per-atom array; ``dataset=smiles`` makes every (element, charge) pair seen in its train split a class
of its own, so a generated graph says which atoms are charged.

The valence of a class (:func:`class_valence`, the bond-order sum of the atom without hydrogens to fill) is the
usual organic valence of :data:`VALENCIES` for a neutral atom, else RDKit's default valence of the element; a charged
atom has the valence of its isoelectronic neutral element, atomic number Z - q (N+ like C: 4, O- like F: 1, S+ like
P: 3, B- like C: 4), which is also the rule of the charged stability table
(:data:`sympe.datasets.metrics.mol_stability.CHARGED_ALLOWED_BONDS`).
"""
from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["VALENCIES", "atom_class_name", "parse_atom_class", "class_valence", "element_symbols"]

#: Neutral valence of each element used for validity and charge inference (the usual organic
#: valence; RDKit accepts more for S via its own valence list).
VALENCIES: dict[str, int] = {
    "H": 1, "B": 3, "C": 4, "N": 3, "O": 2, "F": 1, "Si": 4, "P": 3, "S": 2, "Cl": 1, "Br": 1, "I": 1,
}

_NAME = re.compile(r"([A-Z][a-z]?)(?:([+-])([2-9]|[1-9][0-9]+)?)?")


def atom_class_name(symbol: str, charge: int = 0) -> str:
    """The class name of an atom: ``symbol`` for charge 0, else ``symbol`` + ``"+"`` / ``"-"`` (+ ``|charge|`` when
    it is 2 or more): ``("N", 1) -> "N+"``, ``("S", -2) -> "S-2"``."""
    charge = int(charge)
    if charge == 0:
        return symbol
    sign = "+" if charge > 0 else "-"
    return f"{symbol}{sign}{abs(charge) if abs(charge) > 1 else ''}"


def parse_atom_class(name: str) -> tuple[str, int]:
    """``(element symbol, formal charge)`` of a class name written by :func:`atom_class_name`. Raises ``ValueError``
    naming ``name`` when it is not of that form (``"N+1"``, ``"n"``, ``"C++"``); the symbol itself is not checked."""
    m = _NAME.fullmatch(str(name))
    if m is None:
        raise ValueError(f"atom class {name!r} is not an element symbol with an optional charge such as 'C', 'N+', "
                         "'O-' or 'Fe+2'")
    symbol, sign, size = m.groups()
    charge = 0 if sign is None else (1 if sign == "+" else -1) * int(size or 1)
    return symbol, charge


@lru_cache(maxsize=1)
def element_symbols() -> dict[str, int]:
    """Element symbol -> atomic number for atomic numbers 1..118 (RDKit's periodic table; imports RDKit)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return {table.GetElementSymbol(z): z for z in range(1, 119)}


def class_valence(symbol: str, charge: int = 0) -> int | None:
    """Valence of an atom of element ``symbol`` with formal ``charge`` (module docstring), or ``None`` when it is not
    known (an unknown symbol, an element without a default valence in RDKit such as most metals, or Z - q < 1)."""
    if charge == 0 and symbol in VALENCIES:
        return VALENCIES[symbol]
    from rdkit import Chem

    numbers = element_symbols()
    z = numbers.get(symbol, 0) - int(charge)
    if symbol not in numbers or not 1 <= z <= 118:
        return None
    table = Chem.GetPeriodicTable()
    like = table.GetElementSymbol(z)
    if like in VALENCIES:
        return VALENCIES[like]
    valence = int(table.GetDefaultValence(like))
    return valence if valence >= 0 else None
