"""The graph-level properties a model can be conditioned on, and how each is computed exactly.

Three kinds of source (``model.condition=[...]`` names them):

* **molecules** (RDKit, from the sanitized molecule of a graph or of a SMILES): ``logp`` (Wildman–Crippen logP,
  ``Crippen.MolLogP``), ``qed`` (Bickerton et al. 2012, ``QED.qed``), ``mol_weight`` (average molecular weight in
  Da with implicit hydrogens, ``Descriptors.MolWt``), ``tpsa`` (topological polar surface area in Å²,
  ``rdMolDescriptors.CalcTPSA``), ``num_rings`` (SSSR ring count, categorical);
* **graphs** (networkx, from the graph's edges): ``num_edges``, ``num_triangles`` (continuous);
* **dataset columns**: values a dataset carries for each graph: QM9's ``mu`` (dipole moment, Debye) and ``homo``
  (HOMO energy, eV), read from the QM9 source files (:meth:`~sympe.datasets.sources.qm9.QM9Dataset.property_columns`);
  the numeric or text columns of a ``dataset=smiles`` CSV. RDKit cannot compute these: samples are scored on them
  by a regressor trained on the clean graphs, where one exists.

Each :class:`PropertyDef` states its kind (continuous / categorical), unit and the default tolerance of the
evaluation's "within tolerance" fraction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: Where a property comes from: an RDKit molecule, a networkx graph, or a column of the dataset.
SOURCES = ("molecule", "graph", "column")


@dataclass(frozen=True)
class PropertyDef:
    """A property: ``source`` (:data:`SOURCES`), ``kind`` (continuous / categorical), ``unit``, ``tolerance`` (default
    "within tolerance" distance, in ``unit``), ``compute`` (molecule or graph -> value; None for columns)."""
    name: str
    source: str
    kind: str
    unit: str
    tolerance: float
    description: str
    compute: Callable | None = None


def _logp(mol):
    from rdkit.Chem import Crippen
    return float(Crippen.MolLogP(mol))


def _qed(mol):
    from rdkit.Chem import QED
    return float(QED.qed(mol))


def _mol_weight(mol):
    from rdkit.Chem import Descriptors
    return float(Descriptors.MolWt(mol))


def _tpsa(mol):
    from rdkit.Chem import rdMolDescriptors
    return float(rdMolDescriptors.CalcTPSA(mol))


def _num_rings(mol):
    from rdkit.Chem import rdMolDescriptors
    return int(rdMolDescriptors.CalcNumRings(mol))


def _num_edges(graph):
    return int(graph.number_of_edges())


def _num_triangles(graph):
    import networkx as nx
    return int(sum(nx.triangles(graph).values()) // 3)


#: Every property with a fixed meaning. Dataset columns that are not listed here (a user's CSV) are found by
#: :func:`sympe.datasets.conditions.split_values.available_properties`.
PROPERTIES: dict[str, PropertyDef] = {p.name: p for p in (
    PropertyDef("logp", "molecule", "continuous", "", 0.5, "Wildman-Crippen logP (RDKit Crippen.MolLogP)", _logp),
    PropertyDef("qed", "molecule", "continuous", "", 0.05, "quantitative estimate of drug-likeness (RDKit QED.qed)", _qed),
    PropertyDef("mol_weight", "molecule", "continuous", "Da", 10.0, "molecular weight (RDKit Descriptors.MolWt)",
                _mol_weight),
    PropertyDef("tpsa", "molecule", "continuous", "Å²", 5.0, "topological polar surface area (RDKit CalcTPSA)", _tpsa),
    PropertyDef("num_rings", "molecule", "categorical", "", 0.0, "number of rings, SSSR (RDKit CalcNumRings)",
                _num_rings),
    PropertyDef("num_edges", "graph", "continuous", "", 0.5, "number of edges (networkx)", _num_edges),
    PropertyDef("num_triangles", "graph", "continuous", "", 0.5, "number of triangles (networkx)", _num_triangles),
    PropertyDef("mu", "column", "continuous", "D", 0.5, "QM9 dipole moment (DFT, B3LYP/6-31G(2df,p))"),
    PropertyDef("homo", "column", "continuous", "eV", 0.2, "QM9 HOMO energy (DFT, B3LYP/6-31G(2df,p))"),
)}


def column_property(name: str, kind: str) -> PropertyDef:
    """The definition of a dataset column that :data:`PROPERTIES` does not list (a user's CSV column); its default
    tolerance is 0 (exact match) for categories and a tenth of the train standard deviation otherwise (set by
    the evaluation)."""
    return PropertyDef(name, "column", kind, "", 0.0, f"column {name!r} of the dataset's file")
