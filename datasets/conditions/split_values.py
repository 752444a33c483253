"""The property values of a dataset split's graphs: computed exactly (RDKit, networkx) or read from its columns.

:func:`split_values` returns one value per graph of a split, in the split's order (None where a graph has none: a
molecule RDKit cannot sanitize, an empty cell). Computed values are cached beside the processed split
(``<processed_dir>/property_<name>_<split>.json``, written atomically, used when its length matches), so QM9's
QED (~0.5 ms per molecule) is computed once.
"""
from __future__ import annotations

import json
import os

from sympe.datasets.conditions.properties import PROPERTIES, PropertyDef, column_property
from sympe.diffusion.files import atomic_write_json


def dataset_columns(dataset) -> dict[str, str]:
    """Columns (name -> kind) the dataset carries for each graph (``property_columns()``; none by default)."""
    fn = getattr(dataset, "property_columns", None)
    return dict(fn()) if fn is not None else {}


def available_properties(dataset) -> dict[str, PropertyDef]:
    """Every property ``model.condition`` may name for this dataset: its columns, the RDKit properties when it holds
    molecules, the networkx ones otherwise (graphs of a molecular dataset are molecules: RDKit's are used)."""
    out = {}
    for name, kind in dataset_columns(dataset).items():
        out[name] = PROPERTIES[name] if name in PROPERTIES else column_property(name, kind)
    molecular = bool(dataset.info.is_molecular)
    for name, p in PROPERTIES.items():
        if (p.source == "molecule" and molecular) or (p.source == "graph" and not molecular):
            out.setdefault(name, p)
    return out


def unavailable_message(name: str, dataset, prefix: str = "model.condition") -> str:
    """One line: why ``name`` cannot be a condition of this dataset, and what can."""
    offered = sorted(available_properties(dataset))
    p = PROPERTIES.get(name)
    if p is None:
        why = "is no known property and no column of the dataset"
    elif p.source == "column":
        why = f"is a column this dataset does not carry ({p.description})"
    elif p.source == "molecule":
        why = "is a molecular property (RDKit) and this dataset holds generic graphs"
    else:
        why = "is a graph property for generic graphs; this dataset holds molecules (use the RDKit properties)"
    return f"{prefix}: {name!r} {why}; this dataset ({dataset.info.name}) offers {offered}"


def graph_molecule(data, spec):
    """The sanitized RDKit molecule of a sparse molecular graph (None when RDKit rejects it)."""
    from sympe.datasets.molecules import graph_classes, graph_to_mol

    atoms, bonds, charges = graph_classes(data)
    return graph_to_mol(atoms, bonds, spec, charges=charges)


def networkx_graph(data):
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(int(data.num_nodes)))
    ei = data.edge_index
    g.add_edges_from((int(a), int(b)) for a, b in zip(ei[0].tolist(), ei[1].tolist()) if a < b)
    return g


def compute(prop: PropertyDef, graphs, spec=None, total: int | None = None) -> list:
    """``prop`` of every graph (PyG ``Data``) in order; molecules need the ``MoleculeSpec``."""
    from sympe.diffusion.bars import progress

    out = []
    for data in progress(graphs, total=total, desc=f"property {prop.name}", unit="graph"):
        if prop.source == "molecule":
            mol = graph_molecule(data, spec)
            out.append(None if mol is None else prop.compute(mol))
        else:
            out.append(prop.compute(networkx_graph(data)))
    return out


def split_values(dataset, name: str) -> list:
    """The values of property ``name`` for every graph of ``dataset`` (a sympe split), in order (module docstring).

    Raises ``ValueError`` (:func:`unavailable_message`) when the dataset cannot provide it."""
    props = available_properties(dataset)
    if name not in props:
        raise ValueError(unavailable_message(name, dataset))
    prop = props[name]
    if prop.source == "column":
        values = list(dataset.column_values(name))
        if len(values) != len(dataset):
            raise ValueError(f"{type(dataset).__name__}.column_values({name!r}) gave {len(values)} values for "
                             f"{len(dataset)} graphs")
        return values
    folder, split = getattr(dataset, "processed_dir", None), getattr(dataset, "split", None)
    path = os.path.join(folder, f"property_{name}_{split}.json") if folder and split else None
    if path and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                cached = json.load(f)
            if isinstance(cached, list) and len(cached) == len(dataset):
                return cached
        except (OSError, ValueError):
            pass  # recomputed below
    spec = None
    if prop.source == "molecule":
        from sympe.datasets.molecules import MoleculeSpec

        spec = MoleculeSpec.from_info(dataset.info)
    values = compute(prop, (dataset[i] for i in range(len(dataset))), spec, total=len(dataset))
    if path:
        try:
            atomic_write_json(path, values)
        except OSError:
            pass  # a read-only cache: computed again next time
    return values
