"""One row of a user's SMILES file (``dataset=smiles``) as a molecular graph, or the reason it is left out.

:func:`parse_row` reads a SMILES with RDKit and returns a :class:`Molecule` (its graph over the atom classes of its
own atoms, :mod:`sympe.datasets.molecules`) or a :class:`Rejected` naming one of :data:`REASONS`. The checks, in order:

1. the text is not empty and RDKit parses it (``Chem.MolFromSmiles(..., sanitize=False)``);
2. with ``elements`` given, every atom but hydrogen is one of them;
3. RDKit sanitizes it: kekulization failures and other sanitization errors (valences) are told apart;
4. no atom has unpaired electrons (a graph cannot say so: the radical would come back with hydrogens);
5. its bonds are single, double, triple or aromatic (aromatic bonds are kekulized, as for QM9);
6. with ``remove_h``, every hydrogen can become implicit (``[H][H]``, ``[H+]`` cannot);
7. at most ``max_atoms`` nodes (heavy atoms with ``remove_h``, all atoms with explicit H);
8. every atom class (element and formal charge, ``N+``) has a known valence
   (:func:`~sympe.datasets.atom_classes.class_valence`; most metals have none);
9. the graph gives the molecule back: the canonical SMILES of the graph equals that of the molecule (this catches
   any hydrogen count or charge a graph of classes cannot carry).

Isotopes and stereochemistry are dropped (graphs and sympe's SMILES are non-isomeric). Class names sort by
:func:`class_order`: atomic number, then neutral before charged, hydrogen last (as QM9's C, N, O, F, H).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs
from torch_geometric.data import Data

from sympe.datasets.atom_classes import atom_class_name, class_valence, element_symbols, parse_atom_class
from sympe.datasets.molecules import BOND_CLASSES, MoleculeSpec, graph_to_smiles, mol_to_graph, sanitized_mol_to_smiles

__all__ = ["REASONS", "Rejected", "Molecule", "parse_row", "class_order"]

#: why a row is left out (``rejected.csv``'s reason is one of these, then ``: detail``)
REASONS = {
    "empty SMILES": "the row has no SMILES",
    "cannot parse": "RDKit cannot read the SMILES",
    "element not allowed": "an element outside dataset.params.elements",
    "cannot kekulize": "RDKit cannot kekulize an aromatic system",
    "cannot sanitize": "RDKit rejects the molecule (e.g. an atom above its valence)",
    "radical": "an atom with unpaired electrons",
    "unsupported bond": "a bond that is not single, double, triple or aromatic (e.g. dative)",
    "hydrogen cannot be implicit": "a hydrogen that is not bonded to a heavy atom once H are implicit",
    "too many atoms": "more nodes than dataset.params.max_atoms",
    "no known valence": "an atom class without a known valence (e.g. a metal)",
    "changes as a graph": "the graph reads back as another molecule",
    # val / test only (sympe.datasets.sources.smiles): what the model of the train split cannot give
    "atom class not in train": "an atom class that no train molecule has",
    "bond not in train": "a bond type that no train molecule has",
    "larger than train": "more nodes than the largest train molecule",
    "size not in train": "a node count that no train molecule has (p(N) = 0)",
}
_BONDS = {Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC}
_TOP_BOND = 3  # graphs are kekulized: none, single, double, triple


@dataclass(frozen=True)
class Rejected:
    """A row left out: ``reason`` (a key of :data:`REASONS`) and a ``detail`` (may be empty)."""

    reason: str
    detail: str = ""

    def text(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass
class Molecule:
    """A row that became a graph: ``smiles`` (canonical, non-isomeric, H-suppressed), ``atoms`` (the class name of
    each node) and ``graph`` (one-hot over the sorted classes of its own atoms, bonds over none..triple)."""

    smiles: str
    atoms: list[str]
    graph: Data

    @property
    def num_nodes(self) -> int:
        return len(self.atoms)

    @property
    def top_bond(self) -> int:
        """The highest bond class (1 single, 2 double, 3 triple) of the molecule; 1 when it has no bond."""
        attr = self.graph.edge_attr
        return max(1, int(attr.argmax(1).max())) if attr.numel() else 1

    def on_spec(self, spec: MoleculeSpec) -> Data:
        """The graph over ``spec``'s classes (which must hold its atom classes and bonds): ``x`` (n, dx),
        ``edge_index``, ``edge_attr`` (2m, de), ``charge`` (n,)."""
        index = spec.atom_indices
        x = torch.from_numpy(spec._atom_eye[[index[a] for a in self.atoms]])
        g = self.graph
        return Data(x=x, edge_index=g.edge_index, edge_attr=g.edge_attr[:, :spec.num_bond_classes].contiguous(),
                    charge=g.charge, num_nodes=self.num_nodes)


def class_order(name: str) -> tuple:
    """Sort key of atom class names: atomic number, neutral before +1, -1, +2, ...; hydrogen last."""
    symbol, charge = parse_atom_class(name)
    return symbol == "H", element_symbols().get(symbol, 999), abs(charge), -charge


@lru_cache(maxsize=None)
def _valence(name: str) -> int | None:
    return class_valence(*parse_atom_class(name))


@lru_cache(maxsize=4096)
def _spec(classes: tuple[str, ...]) -> MoleculeSpec:
    return MoleculeSpec(classes, BOND_CLASSES[:_TOP_BOND + 1])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


def parse_row(text: str, remove_h: bool = True, elements=None, max_atoms: int | None = None) -> Molecule | Rejected:
    """The :class:`Molecule` of one SMILES, or why it is left out (module docstring). ``elements``: allowed element
    symbols (a set or list; None: any), ``max_atoms``: the largest node count kept (None: any)."""
    text = text.strip()
    if not text:
        return Rejected("empty SMILES")
    _quiet = BlockLogs()  # noqa: F841 - RDKit's complaints become reasons
    raw = Chem.MolFromSmiles(text, sanitize=False)
    if raw is None or raw.GetNumAtoms() == 0:
        return Rejected("cannot parse")
    if elements is not None:
        bad = sorted({a.GetSymbol() for a in raw.GetAtoms() if a.GetAtomicNum() != 1 and a.GetSymbol() not in elements})
        if bad:
            return Rejected("element not allowed", ", ".join(bad))
    mol = Chem.Mol(raw)
    try:
        Chem.SanitizeMol(mol)
    except Chem.KekulizeException as exc:
        return Rejected("cannot kekulize", _first_line(exc))
    except Exception as exc:  # noqa: BLE001 - RDKit raises valence and other errors of several types
        return Rejected("cannot sanitize", _first_line(exc))
    radicals = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetNumRadicalElectrons()})
    if radicals:
        return Rejected("radical", ", ".join(radicals))
    odd = sorted({str(b.GetBondType()) for b in mol.GetBonds() if b.GetBondType() not in _BONDS})
    if odd:
        return Rejected("unsupported bond", ", ".join(odd))
    for atom in mol.GetAtoms():
        atom.SetIsotope(0)
    smiles = sanitized_mol_to_smiles(mol)
    if smiles is None:
        return Rejected("cannot sanitize", "RDKit cannot write it as SMILES")
    mol = Chem.RemoveHs(mol) if remove_h else Chem.AddHs(mol)
    if remove_h and mol.GetNumHeavyAtoms() != mol.GetNumAtoms():
        return Rejected("hydrogen cannot be implicit")
    n = mol.GetNumAtoms()
    if max_atoms is not None and n > max_atoms:
        return Rejected("too many atoms", f"{n} > max_atoms={max_atoms}")
    atoms = [atom_class_name(a.GetSymbol(), a.GetFormalCharge()) for a in mol.GetAtoms()]
    unknown = sorted({a for a in atoms if _valence(a) is None})
    if unknown:
        return Rejected("no known valence", ", ".join(unknown))
    classes = set(atoms) | (set() if remove_h else {"H"})  # explicit H: the spec says so by its H class
    spec = _spec(tuple(sorted(classes, key=class_order)))
    graph = mol_to_graph(mol, spec, remove_h=remove_h)
    back = graph_to_smiles(graph, spec)
    if back != smiles:
        return Rejected("changes as a graph", f"reads back as {back}")
    return Molecule(smiles, atoms, graph)
