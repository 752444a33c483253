"""Molecules <-> graphs: the chemistry every molecular dataset and metric in sympe shares.

A molecule with ``N`` atoms and ``M`` undirected bonds is stored as a PyG ``Data``:

* ``x`` (N, dx) float one-hot over ``spec.atom_classes`` (element symbols, e.g. C, N, O, F [, H], or
  element-and-charge classes such as ``N+`` / ``O-``, :mod:`sympe.datasets.atom_classes`),
* ``edge_index`` (2, 2M) long, both directions of every bond, sorted by (source, target),
* ``edge_attr`` (2M, de) float one-hot over ``spec.bond_classes``, a prefix of
  (none, single, double, triple, aromatic) (QM9 and MOSES: all five; ``dataset=smiles``: up to the highest bond
  of its train split); column 0 ("no bond") is always 0 in sparse form,
* ``charge`` (N,) long formal charges, ``num_nodes`` = N.

Charges: when a spec has charged classes, an atom's class is its (element, charge) pair and a graph built back
into a molecule takes each atom's charge from its class; a spec of neutral names only (QM9, MOSES) puts an atom of
any charge in its element's class and keeps the charge in ``charge`` alone.

Conventions (stated once, here):

* Molecules are **kekulized** (``Chem.Kekulize(..., clearAromaticFlags=True)``) before conversion,
  so the aromatic class exists in the class list but is never used by data (as in DiGress);
  a *generated* graph may still use it, and it then means bond order 1.5.
* The real bond order of class k is ``spec.bond_orders[k]`` = (0, 1, 2, 3, 1.5)[k]; no code uses a
  class index as a bond order.
* Hydrogens: with ``remove_h=True`` hydrogens are implicit (``Chem.RemoveHs``) and RDKit fills
  them back from the default valences when a graph is turned into a molecule; with
  ``remove_h=False`` every hydrogen is an explicit node (``Chem.AddHs``) and
  :func:`graph_to_mol` forbids implicit hydrogens (the graph is the whole molecule).
* SMILES are canonical, non-isomeric (graphs carry no stereo), of the hydrogen-suppressed
  molecule: the same molecule gives the same string whether its graph had explicit H or not.

Validity (:func:`build_molecule`): a graph is a molecule when RDKit sanitization succeeds and,
unless ``allow_radicals``, no atom is left with unpaired electrons (in explicit-H mode an atom
whose bonds sum below its valence would otherwise silently become a radical). The relaxed
variant first infers the formal charges that QM9-like data uses, see
:func:`infer_formal_charges`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from torch_geometric.data import Data

from sympe.datasets.atom_classes import VALENCIES, atom_class_name, class_valence, parse_atom_class  # noqa: F401

BOND_CLASSES: tuple[str, ...] = ("none", "single", "double", "triple", "aromatic")
BOND_ORDERS: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 1.5)

_RDKIT_BOND_TYPES = {
    Chem.BondType.SINGLE: "single",
    Chem.BondType.DOUBLE: "double",
    Chem.BondType.TRIPLE: "triple",
    Chem.BondType.AROMATIC: "aromatic",
}
_BOND_TYPE_BY_NAME = {name: bt for bt, name in _RDKIT_BOND_TYPES.items()}
#: RDKit bond type -> sympe edge class (index into :data:`BOND_CLASSES`); other bond types have no class.
BOND_CLASS_OF_TYPE: dict = {bt: BOND_CLASSES.index(name) for bt, name in _RDKIT_BOND_TYPES.items()}

#: Relaxed mode: an atom whose bond orders exceed its neutral valence by exactly one gets charge +1
#: (N+ with 4 bonds, O+ / S+ with 3), the rule DiGress uses for its "relaxed" validity.
POSITIVE_ONE_EXCESS = ("N", "O", "S")
#: Relaxed mode, explicit-H graphs only: an atom one bond short of its valence may be an anion
#: (O-, N-, C- as in QM9's zwitterions); such charges are only assigned to balance positive ones.
NEGATIVE_ONE_DEFICIT = ("O", "N", "C")


@dataclass(frozen=True)
class MoleculeSpec:
    """Which atoms and bonds a molecular dataset uses.

    ``atom_classes[k]`` is the name of node class k: an element symbol, or an element with a formal charge
    (``"N+"``, ``"O-"``; :mod:`sympe.datasets.atom_classes`), whose ``elements[k]`` / ``class_charges[k]`` it
    names. ``bond_classes`` is a prefix of :data:`BOND_CLASSES` (at least none and single) with real bond orders
    ``bond_orders`` (default: the matching prefix of :data:`BOND_ORDERS`). ``valencies[k]`` (the valence of the
    class: :func:`~sympe.datasets.atom_classes.class_valence`) and ``weights[k]`` (standard atomic weight of the
    element, from RDKit's periodic table) follow ``atom_classes``. Raises ``ValueError`` for an empty or repeated
    class list, a class name that is no element (with charge) or whose valence is unknown, or other bond classes.
    """

    atom_classes: tuple[str, ...]
    bond_classes: tuple[str, ...] = BOND_CLASSES
    bond_orders: tuple[float, ...] | None = None
    valencies: tuple[int, ...] = field(init=False)
    weights: tuple[float, ...] = field(init=False)
    elements: tuple[str, ...] = field(init=False)
    class_charges: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        atoms = tuple(self.atom_classes)
        bonds = tuple(self.bond_classes)
        orders = BOND_ORDERS[:len(bonds)] if self.bond_orders is None else tuple(float(b) for b in self.bond_orders)
        object.__setattr__(self, "atom_classes", atoms)
        object.__setattr__(self, "bond_classes", bonds)
        object.__setattr__(self, "bond_orders", orders)
        if not atoms:
            raise ValueError("MoleculeSpec: atom_classes is empty; give element symbols such as ('C', 'N', 'O', 'F')")
        if len(set(atoms)) != len(atoms):
            raise ValueError(f"MoleculeSpec: atom_classes {atoms} contain duplicates")
        parsed = [parse_atom_class(a) for a in atoms]
        valencies = [class_valence(e, q) for e, q in parsed]
        unknown = [a for a, v in zip(atoms, valencies) if v is None]
        if unknown:
            raise ValueError(f"MoleculeSpec: no valence known for atom classes {unknown}; known: elements of "
                             f"{sorted(VALENCIES)} and those with a default valence in RDKit, with charges")
        if len(bonds) < 2 or bonds != BOND_CLASSES[:len(bonds)] or orders != BOND_ORDERS[:len(bonds)]:
            raise ValueError(f"MoleculeSpec: bond_classes must be a prefix of {BOND_CLASSES} (at least none, single) "
                             f"with the orders {BOND_ORDERS} (got {bonds}, {orders})")
        table = Chem.GetPeriodicTable()
        object.__setattr__(self, "elements", tuple(e for e, _ in parsed))
        object.__setattr__(self, "class_charges", tuple(q for _, q in parsed))
        object.__setattr__(self, "valencies", tuple(valencies))
        object.__setattr__(self, "weights", tuple(float(table.GetAtomicWeight(e)) for e, _ in parsed))
        # lookup tables for fast conversion (not part of the spec's identity)
        object.__setattr__(self, "_index", {a: k for k, a in enumerate(atoms)})
        object.__setattr__(self, "_charged", any(q != 0 for _, q in parsed))
        object.__setattr__(self, "_atom_eye", np.eye(len(atoms), dtype=np.float32))
        object.__setattr__(self, "_bond_eye", np.eye(len(bonds), dtype=np.float32))

    @property
    def has_charged_classes(self) -> bool:
        """True when some atom class carries a formal charge (``N+``, ``O-``: ``dataset=smiles``)."""
        return self._charged

    @classmethod
    def from_info(cls, info) -> "MoleculeSpec":
        """The spec of a molecular :class:`~sympe.diffusion.info.DatasetInfo`: its ``node_classes`` and
        ``edge_classes`` (checkpoints and processed datasets record both)."""
        return cls(tuple(info.node_classes), tuple(info.edge_classes))

    def class_index(self, symbol: str, charge: int = 0) -> int | None:
        """Node class of an atom of element ``symbol`` with formal ``charge``, or ``None`` when it has none: its
        (element, charge) class; in a spec of neutral names only, its element's class whatever the charge."""
        k = self._index.get(symbol if charge == 0 else atom_class_name(symbol, charge))
        if k is None and charge != 0 and not self._charged:
            k = self._index.get(symbol)
        return k

    @property
    def num_atom_classes(self) -> int:
        return len(self.atom_classes)

    @property
    def num_bond_classes(self) -> int:
        return len(self.bond_classes)

    @property
    def explicit_h(self) -> bool:
        """True when hydrogen is a node class (graphs hold every atom, no implicit H)."""
        return "H" in self.atom_classes

    @property
    def atom_indices(self) -> dict[str, int]:
        """Class name -> node class index (a lookup table; do not modify it)."""
        return self._index

    def atom_index(self, symbol: str) -> int:
        try:
            return self.atom_classes.index(symbol)
        except ValueError:
            raise ValueError(f"element {symbol!r} is not one of the atom classes {list(self.atom_classes)}") from None


QM9_SPEC = MoleculeSpec(("C", "N", "O", "F"))
QM9_SPEC_WITH_H = MoleculeSpec(("C", "N", "O", "F", "H"))
MOSES_SPEC = MoleculeSpec(("C", "N", "S", "O", "F", "Cl", "Br"))


# ---------------------------------------------------------------------- molecule -> graph
def _describe(mol, name) -> str:
    if name is not None:
        return str(name)
    try:
        return Chem.MolToSmiles(mol)
    except Exception:  # pragma: no cover - a molecule that cannot even be written
        return "<unprintable molecule>"


def mol_to_graph(mol, spec: MoleculeSpec, remove_h: bool, name=None) -> Data:
    """Convert an RDKit molecule (or a SMILES string) into a sympe molecular graph.

    ``remove_h=True``: hydrogens implicit; ``remove_h=False``: every hydrogen becomes a node
    (``spec`` must then contain "H"). ``name`` (e.g. a SMILES or an index) names the molecule in
    error messages. Raises ``ValueError`` on an unknown element, an unparsable SMILES, an
    unsupported bond type or an empty molecule. See the module docstring for the output fields.
    """
    if isinstance(mol, str):
        smiles = mol
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise ValueError(f"mol_to_graph: RDKit cannot parse SMILES {smiles!r}" + (f" ({name})" if name is not None else ""))
        if name is None:
            name = smiles
    if not remove_h and not spec.explicit_h:
        raise ValueError(f"mol_to_graph: remove_h=False needs an 'H' atom class, but the spec has {list(spec.atom_classes)}; "
                         "pass remove_h=True or a spec that includes 'H'")
    if not remove_h:
        mol = Chem.AddHs(mol)  # a new molecule
    elif mol.GetNumHeavyAtoms() != mol.GetNumAtoms():
        mol = Chem.RemoveHs(mol)  # a new molecule
    else:
        mol = Chem.Mol(mol)  # copy: Kekulize below must not change the caller's molecule
    Chem.Kekulize(mol, clearAromaticFlags=True)
    n = mol.GetNumAtoms()
    if n == 0:
        raise ValueError(f"mol_to_graph: molecule {_describe(mol, name)} has no atoms")

    class_index = spec.class_index
    atom_types, charges = [], []
    for i in range(n):  # index loops: RDKit's Python-level atom/bond iterators are several times slower
        atom = mol.GetAtomWithIdx(i)
        q = atom.GetFormalCharge()
        k = class_index(atom.GetSymbol(), q)
        if k is None:
            what = "element" if q == 0 or not spec._charged else "atom class"
            raise ValueError(f"mol_to_graph: {what} {atom_class_name(atom.GetSymbol(), q)!r} of molecule "
                             f"{_describe(mol, name)} is not one of the atom classes {list(spec.atom_classes)}")
        atom_types.append(k)
        charges.append(q)

    rows, cols, kinds = [], [], []
    num_bond_classes = len(spec.bond_classes)
    for j in range(mol.GetNumBonds()):
        b = mol.GetBondWithIdx(j)
        c = BOND_CLASS_OF_TYPE.get(b.GetBondType())
        if c is None or c >= num_bond_classes:
            raise ValueError(f"mol_to_graph: bond type {b.GetBondType()} of molecule {_describe(mol, name)} is not one "
                             f"of {list(spec.bond_classes[1:])}")
        u, v = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        rows += (u, v)
        cols += (v, u)
        kinds += (c, c)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    order = np.lexsort((cols, rows))
    edge_index = torch.from_numpy(np.stack([rows[order], cols[order]]).reshape(2, -1))
    edge_attr = torch.from_numpy(spec._bond_eye[np.asarray(kinds, dtype=np.int64)[order]])
    x = torch.from_numpy(spec._atom_eye[atom_types])
    charges = torch.from_numpy(np.asarray(charges, dtype=np.int64))
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, charge=charges, num_nodes=n)


def graph_classes(data: Data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Class indices of a sparse molecular graph: atoms (N,), dense bond classes (N, N), charges or None."""
    n = int(data.num_nodes)
    atoms = data.x.argmax(-1)
    bonds = torch.zeros(n, n, dtype=torch.long)
    if data.edge_index.numel():
        bonds[data.edge_index[0], data.edge_index[1]] = data.edge_attr.argmax(-1)
    return atoms, bonds, getattr(data, "charge", None)


# ---------------------------------------------------------------------- graph -> molecule
def as_class_indices(a, what: str) -> np.ndarray:
    """Integer class indices (tensor, array or list) as an int64 numpy array; ``ValueError`` naming ``what`` for
    any other dtype."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_graph(atoms, bonds, spec: MoleculeSpec, charges):
    atoms = as_class_indices(atoms, "atom_classes")
    bonds = as_class_indices(bonds, "bond_classes")
    if atoms.ndim != 1 or atoms.shape[0] == 0:
        raise ValueError(f"atom_classes must have shape (n,) with n >= 1, got {atoms.shape}")
    n = atoms.shape[0]
    if bonds.shape != (n, n):
        raise ValueError(f"bond_classes must have shape ({n}, {n}) to match atom_classes, got {bonds.shape}")
    if atoms.min() < 0 or atoms.max() >= spec.num_atom_classes:
        raise ValueError(f"atom_classes must lie in 0..{spec.num_atom_classes - 1} (pass only real nodes, "
                         f"e.g. slice padded rows away with node_mask), got values {sorted(set(atoms.tolist()))}")
    bonds = bonds.copy()
    np.fill_diagonal(bonds, 0)  # the diagonal carries no class (see DenseGraph)
    if bonds.min() < 0 or bonds.max() >= spec.num_bond_classes:
        raise ValueError(f"bond_classes off the diagonal must lie in 0..{spec.num_bond_classes - 1}")
    if (bonds != bonds.T).any():
        raise ValueError("bond_classes must be symmetric (bond_classes[i, j] == bond_classes[j, i])")
    if charges is not None:
        charges = as_class_indices(charges, "charges")
        if charges.shape != (n,):
            raise ValueError(f"charges must have shape ({n},), got {charges.shape}")
    return atoms, bonds, charges


def bond_order_sums(atoms, bonds, spec: MoleculeSpec) -> np.ndarray:
    """(n,) float: sum over neighbours j of ``bond_orders[bonds[i, j]]`` (the diagonal is ignored)."""
    atoms, bonds, _ = _check_graph(atoms, bonds, spec, None)
    orders = np.asarray(spec.bond_orders)[bonds]
    np.fill_diagonal(orders, 0.0)
    return orders.sum(1)


def _assemble(atoms: np.ndarray, bonds: np.ndarray, spec: MoleculeSpec, charges, explicit_h: bool) -> Chem.Mol:
    rw = Chem.RWMol()
    for i, k in enumerate(atoms.tolist()):
        atom = Chem.Atom(spec.elements[k])
        charge = spec.class_charges[k] if charges is None else int(charges[i])
        if charge:
            atom.SetFormalCharge(charge)
        if explicit_h:
            atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    us, vs = np.nonzero(np.triu(bonds, 1))
    for u, v in zip(us.tolist(), vs.tolist()):
        rw.AddBond(u, v, _BOND_TYPE_BY_NAME[spec.bond_classes[bonds[u, v]]])
    return rw.GetMol()


def _sanitized(mol: Chem.Mol, copy: bool = True) -> Chem.Mol | None:
    """The sanitized molecule (a copy unless ``copy=False``), or None when RDKit rejects it."""
    if copy:
        mol = Chem.Mol(mol)
    _quiet = BlockLogs()  # noqa: F841 - RDKit logging is silenced while this object lives
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several exception types (valence, kekulization, ...)
        return None
    return mol


def graph_to_mol(atom_classes, bond_classes, spec: MoleculeSpec, charges=None, sanitize: bool = True,
                 explicit_h: bool | None = None) -> Chem.Mol | None:
    """Build an RDKit molecule from class indices: atoms (n,) and a symmetric bond matrix (n, n).

    Bond (i, j), i < j, exists when ``bond_classes[i, j] > 0``; its RDKit type is looked up from the
    class *name* (single/double/triple/aromatic). ``charges`` (n,) sets formal charges (default: each class's
    charge, 0 for neutral class names).
    ``explicit_h`` (default: ``spec.explicit_h``) forbids implicit hydrogens on every atom.
    With ``sanitize=True`` returns the sanitized molecule, or ``None`` when RDKit rejects it
    (e.g. an atom above its valence); with ``sanitize=False`` returns the raw molecule.
    Malformed input (shapes, class ranges, asymmetry) raises ``ValueError``.
    """
    atoms, bonds, charges = _check_graph(atom_classes, bond_classes, spec, charges)
    explicit_h = spec.explicit_h if explicit_h is None else explicit_h
    mol = _assemble(atoms, bonds, spec, charges, explicit_h)
    return _sanitized(mol, copy=False) if sanitize else mol


def infer_formal_charges(atom_classes, bond_classes, spec: MoleculeSpec, explicit_h: bool | None = None) -> np.ndarray:
    """(n,) long formal charges for a graph without charges (the "relaxed" rule).

    Let s_i be the bond-order sum of atom i and v_i its neutral valence. Atoms of
    :data:`POSITIVE_ONE_EXCESS` with s_i = v_i + 1 get +1 (N+ with four bonds, ...). With explicit
    hydrogens, atoms of :data:`NEGATIVE_ONE_DEFICIT` with s_i = v_i - 1 then get -1, in that element
    order and by index, but only as many as there are positive charges (zwitterions such as
    ``[NH3+]CC([O-])=O``); without explicit H such an atom just gets an implicit hydrogen.
    Atoms of a charged class (``N+``) keep their class's charge; the rule applies to the neutral ones.
    """
    atoms, bonds, _ = _check_graph(atom_classes, bond_classes, spec, None)
    explicit_h = spec.explicit_h if explicit_h is None else explicit_h
    sums = bond_order_sums(atoms, bonds, spec)
    sym = [spec.elements[k] for k in atoms.tolist()]
    val = np.array([spec.valencies[k] for k in atoms.tolist()], dtype=float)
    charges = np.array([spec.class_charges[k] for k in atoms.tolist()], dtype=np.int64)
    neutral = charges == 0
    for i, s in enumerate(sym):
        if neutral[i] and s in POSITIVE_ONE_EXCESS and abs(sums[i] - val[i] - 1) < 1e-6:
            charges[i] = 1
    if explicit_h:
        budget = int(charges[neutral].sum())
        for element in NEGATIVE_ONE_DEFICIT:
            for i, s in enumerate(sym):
                if budget and neutral[i] and s == element and abs(sums[i] - val[i] + 1) < 1e-6:
                    charges[i] = -1
                    budget -= 1
    return charges


def build_molecule(atoms, bonds, spec: MoleculeSpec, relaxed: bool = False, charges=None,
                   allow_radicals: bool = False, explicit_h: bool | None = None) -> Chem.Mol | None:
    """The molecule a generated graph stands for, or ``None`` when it is not a valid molecule.

    Strict (``relaxed=False``): atoms carry ``charges`` (default: their classes' charges, neutral for
    element classes). Relaxed: when no
    ``charges`` are given they are inferred by :func:`infer_formal_charges`. In both modes the
    molecule must sanitize, and unless ``allow_radicals`` no atom may carry unpaired electrons.
    """
    explicit_h = spec.explicit_h if explicit_h is None else explicit_h
    if relaxed and charges is None:
        charges = infer_formal_charges(atoms, bonds, spec, explicit_h=explicit_h)
    mol = graph_to_mol(atoms, bonds, spec, charges=charges, sanitize=True, explicit_h=explicit_h)
    if mol is None:
        return None
    if not allow_radicals and any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return None
    return mol


def mol_to_smiles(mol: Chem.Mol | None) -> str | None:
    """Canonical, non-isomeric SMILES of the hydrogen-suppressed molecule, or ``None`` when
    ``mol`` is ``None`` or RDKit cannot sanitize it."""
    if mol is None:
        return None
    mol = _sanitized(mol)
    return None if mol is None else sanitized_mol_to_smiles(mol)


def sanitized_mol_to_smiles(mol: Chem.Mol) -> str | None:
    """:func:`mol_to_smiles` for a molecule that is already sanitized (skips the defensive copy
    and re-sanitization; only for molecules returned by RDKit's parsers or by :func:`graph_to_mol`)."""
    _quiet = BlockLogs()  # noqa: F841
    try:
        if mol.GetNumHeavyAtoms() != mol.GetNumAtoms():
            mol = Chem.RemoveHs(mol)
        return Chem.MolToSmiles(mol, isomericSmiles=False)
    except Exception:
        return None


def canonical_smiles(smiles: str) -> str | None:
    """Canonical form (as :func:`mol_to_smiles`) of a SMILES string; ``None`` if RDKit cannot parse it."""
    _quiet = BlockLogs()  # noqa: F841
    mol = Chem.MolFromSmiles(smiles)  # parsing sanitizes
    return None if mol is None else sanitized_mol_to_smiles(mol)


def graph_to_smiles(data: Data, spec: MoleculeSpec) -> str | None:
    """Canonical SMILES of a sparse molecular graph (formal charges from ``data.charge`` when present)."""
    atoms, bonds, charges = graph_classes(data)
    mol = graph_to_mol(atoms, bonds, spec, charges=charges)  # sanitized already
    return None if mol is None else sanitized_mol_to_smiles(mol)
