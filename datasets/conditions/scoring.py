"""How well samples meet the targets they were asked for.

For every sampled graph with a target, the property of the sample is computed exactly, as for the data
(:mod:`~sympe.datasets.conditions.properties`: RDKit on the sample's SMILES, networkx on its edges) or, for a dataset
column RDKit cannot compute (QM9's μ, HOMO), by an ``oracle`` (a regressor trained on clean graphs). Per property:

* ``mae``: mean |achieved − target| over the valid samples given that property (continuous), in the property's unit;
* ``within_tolerance``: the fraction of those with |achieved − target| <= ``tolerance`` (categorical: achieved ==
  target);
* ``correlation``: Pearson correlation of target and achieved (continuous, when both vary);
* ``num_scored``: how many samples entered (valid, with a target).

Beside them: ``validity`` (valid samples / samples) and ``uniqueness`` (distinct valid samples / valid samples;
canonical SMILES for molecules, isomorphism classes for graphs).
"""
from __future__ import annotations

import math

import numpy as np

from sympe.datasets.conditions.properties import PropertyDef
from sympe.diffusion.conditioning import is_missing


class PropertyUnavailable(ValueError):
    """A property of the targets that cannot be computed on samples (a dataset column without an oracle); the
    commands print it as one line."""

    user_error = True


def molecule_values(smiles: list, prop: PropertyDef) -> list:
    """``prop`` of each SMILES (None for None / unparsable)."""
    mols = (None if s is None else _mol_from_smiles(s) for s in smiles)
    return [None if mol is None else prop.compute(mol) for mol in mols]


def graph_values(graphs: list, prop: PropertyDef) -> list:
    """``prop`` of each ``(node classes, edge-class matrix)`` pair (edge class > 0 is an edge)."""
    import networkx as nx

    out = []
    for _, adj in graphs:
        g = nx.from_numpy_array((np.asarray(adj) > 0).astype(int))
        out.append(prop.compute(g))
    return out


def smiles_class_lists(smiles: list, info) -> list:
    """``(atoms, bonds)`` class lists of each SMILES under a molecular dataset's classes (``info``), for an oracle
    that reads graphs; an empty graph where the SMILES is None or has atoms the classes lack."""
    from sympe.datasets.molecules import MoleculeSpec, graph_classes, mol_to_graph

    spec = MoleculeSpec.from_info(info)
    out = []
    for s in smiles:
        try:
            mol = None if s is None else _mol_from_smiles(s)
            data = mol_to_graph(mol, spec, remove_h=not spec.explicit_h) if mol is not None else None
        except ValueError:
            data = None
        if data is None:
            out.append((np.zeros(1, dtype=np.int64), np.zeros((1, 1), dtype=np.int64)))
        else:
            a, b, _ = graph_classes(data)
            out.append((a.numpy(), b.numpy()))
    return out


def _mol_from_smiles(s: str):
    """The sanitized RDKit molecule of ``s`` (None when RDKit rejects it), RDKit's own messages silenced."""
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    with BlockLogs():
        return Chem.MolFromSmiles(s)


def achieved_values(props: dict[str, PropertyDef], smiles: list | None, graphs: list | None, oracle=None) -> dict:
    """``{name: [value or None per sample]}``: each property of the samples (module docstring). Raises
    :class:`PropertyUnavailable` naming the property when it is a column and no ``oracle(name, smiles, graphs)`` is
    given, or a molecular property of samples that are not molecules."""
    out = {}
    for name, prop in props.items():
        if prop.source == "column":
            if oracle is None:
                raise PropertyUnavailable(f"condition {name!r} ({prop.description}) cannot be computed on samples: it is "
                                          "a column of the dataset, not an RDKit / networkx property; give a property "
                                          "oracle (a regressor trained on clean graphs) or score another property")
            out[name] = list(oracle(name, smiles, graphs))
        elif prop.source == "molecule":
            if smiles is None:
                raise PropertyUnavailable(f"condition {name!r} is a molecular property and the samples are no molecules")
            out[name] = molecule_values(smiles, prop)
        else:
            out[name] = graph_values(graphs, prop)
    return out


def _uniqueness(smiles, graphs, valid) -> float | None:
    idx = [i for i, v in enumerate(valid) if v]
    if not idx:
        return None
    if smiles is not None:
        return len({smiles[i] for i in idx}) / len(idx)
    from sympe.datasets.metrics.graph_isomorphism import uniqueness_novelty

    kept = [graphs[i][1] for i in idx]
    return uniqueness_novelty([(np.asarray(a) > 0).astype(int) for a in kept], [])["uniqueness"]


def condition_metrics(targets: list[dict], achieved: dict[str, list], props: dict[str, PropertyDef],
                      tolerances: dict[str, float], valid: list[bool], smiles=None, graphs=None) -> dict:
    """The metrics of the module docstring: ``{"num_samples", "validity", "uniqueness", "properties": {name: {...}}}``.
    ``targets[i]`` are the targets of sample i (a property left out = not asked for)."""
    n = len(targets)
    if any(len(v) != n for v in achieved.values()) or len(valid) != n:
        raise ValueError("condition_metrics: targets, achieved values and validity must have one entry per sample")
    out = {"num_samples": n, "validity": sum(map(bool, valid)) / n if n else None,
           "uniqueness": _uniqueness(smiles, graphs, valid), "properties": {}}
    for name, prop in props.items():
        pairs = [(t[name], achieved[name][i]) for i, t in enumerate(targets)
                 if valid[i] and not is_missing(t.get(name)) and achieved[name][i] is not None]
        tol = float(tolerances[name])
        row = {"num_scored": len(pairs), "tolerance": tol, "unit": prop.unit, "kind": prop.kind}
        if prop.kind == "categorical":
            row["within_tolerance"] = (sum(1 for t, a in pairs if str(t) == str(a) or _same_number(t, a)) / len(pairs)
                                       if pairs else None)
        else:
            t = np.array([float(a) for a, _ in pairs])
            a = np.array([float(b) for _, b in pairs])
            err = np.abs(a - t)
            row.update({"mae": float(err.mean()) if pairs else None,
                        "within_tolerance": float((err <= tol).mean()) if pairs else None,
                        "mean_target": float(t.mean()) if pairs else None,
                        "mean_achieved": float(a.mean()) if pairs else None,
                        "correlation": (float(np.corrcoef(t, a)[0, 1]) if len(pairs) > 2 and t.std() > 0 and a.std() > 0
                                        else None)})
        out["properties"][name] = row
    return out


def _same_number(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b))
    except (TypeError, ValueError):
        return False


def score_targets(spec, rows: list[dict], smiles: list | None, graphs: list, oracle=None) -> dict:
    """:func:`condition_metrics` of samples against the targets they were asked for, with the properties and
    tolerances of a model's :class:`~sympe.diffusion.conditioning.ConditionSpec`. A property that cannot be computed
    on these samples (a column without ``oracle``) is listed under ``"not_scored"`` with the reason, not raised:
    the samples are written either way."""
    from sympe.datasets.conditions.properties import PROPERTIES, column_property

    props, skipped = {}, {}
    asked = {k for r in rows for k, v in r.items() if not is_missing(v)}
    for p in spec.properties:
        if p.name not in asked:
            continue
        d = PROPERTIES.get(p.name) or column_property(p.name, p.kind)
        try:
            achieved_values({p.name: d}, None if smiles is None else [], [], oracle)  # availability only
        except PropertyUnavailable as exc:
            skipped[p.name] = str(exc)
            continue
        props[p.name] = d
    achieved = achieved_values(props, smiles, graphs, oracle)
    valid = [s is not None for s in smiles] if smiles is not None else [True] * len(rows)
    out = condition_metrics(rows, achieved, props, {p.name: p.tolerance for p in spec.properties if p.name in props}, valid,
                            smiles=smiles, graphs=graphs)
    out["not_scored"] = skipped
    return out


def score_targets_file(rows: list[dict], splits: dict, smiles: list | None, graphs: list | None, option: str = "targets",
                       oracle=None) -> dict:
    """:func:`condition_metrics` of a samples file against a file of targets (one row per sample, same order) for
    a dataset's ``splits``: the properties the dataset offers (:func:`~sympe.datasets.conditions.split_values.
    available_properties`), the registry's tolerances (a user column's: a tenth of its train standard deviation).
    Raises :class:`~sympe.diffusion.conditioning.ConditionError` (one line) for a row count that differs from the
    samples' or a property the dataset does not offer, :class:`PropertyUnavailable` for one no sample can be scored on."""
    from sympe.datasets.conditions.split_values import available_properties, split_values, unavailable_message
    from sympe.diffusion.conditioning import ConditionError

    n = len(smiles) if smiles is not None else len(graphs)
    if len(rows) != n:
        raise ConditionError(f"{option}: {len(rows)} target rows for {n} samples; give one row per sample, in the "
                             "samples' order")
    offered = available_properties(splits["train"])
    names = sorted({k for r in rows for k, v in r.items() if not is_missing(v)})
    for name in names:
        if name not in offered:
            raise ConditionError(f"{option}: " + unavailable_message(name, splits["train"], prefix="column").split(": ", 1)[1])
    props = {k: offered[k] for k in names}
    tolerances = {}
    for k, p in props.items():
        tol = p.tolerance
        if tol <= 0 and p.kind == "continuous":
            v = np.array([float(x) for x in split_values(splits["train"], k) if not is_missing(x)])
            tol = 0.1 * float(v.std()) if v.size else 0.0
        tolerances[k] = tol
    if smiles is not None:  # a file's lines: "None" (an invalid sample) and unparsable text are invalid samples
        smiles = [s if s is not None and molecule_parses(s) else None for s in smiles]
        if graphs is None and oracle is not None:  # the oracle reads graphs
            graphs = smiles_class_lists(smiles, splits["train"].info)
    achieved = achieved_values(props, smiles, graphs, oracle)
    valid = [s is not None for s in smiles] if smiles is not None else [True] * n
    return condition_metrics(rows, achieved, props, tolerances, valid, smiles=smiles, graphs=graphs)


def molecule_parses(smiles: str) -> bool:
    """True when RDKit reads (and sanitizes) ``smiles`` into a molecule with atoms."""
    mol = _mol_from_smiles(smiles) if smiles.strip() else None
    return mol is not None and mol.GetNumAtoms() > 0
