"""Scoring generated graphs for a dataset: the one place that joins the sample metrics and the exchangeable floor
with a dataset (which metrics apply to it, which split they are measured against, how its sample files are read).

* :func:`sample_metrics`: generated graphs (or SMILES lines) against a dataset's splits;
* :func:`evaluate_moses_samples`: MOSES's own suite (:mod:`sympe.datasets.metrics.moses_metrics`) from its CSVs;
* :func:`score_sample_file`: a file of samples for a dataset given by its config name (picks one of the two);
* :func:`floor_of_test_split`: the exchangeable NLL floor of a dataset's test graphs, for the NLL section of
  ``scripts/evaluate.py`` (:mod:`sympe.datasets.floor.exchangeable`).

The metric modules (RDKit, graph statistics, torch) are imported when a dataset needs them: scoring graphs never
imports RDKit, and ``scripts/evaluate.py``, which imports this module, checks its options before torch loads.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sympe.datasets.config import dataset_params
from sympe.datasets.registry import build_splits
from sympe.datasets.samples.errors import SampleFileError
from sympe.datasets.samples.readers import Samples, digress_atom_decoder, read_samples

if TYPE_CHECKING:
    from torch import Tensor

    from sympe.datasets.floor.exchangeable import FloorSummary

__all__ = ["check_scoring_options", "checkpoint_splits", "evaluate_moses_samples", "floor_of_test_split",
           "read_dataset_samples", "sample_metrics", "score_sample_file"]


def _device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"`` (the rule of the commands' ``device=``)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_scoring_options(fcd, format: str = "auto") -> None:
    """The scoring options of ``evaluate.py``, before anything loads: ``fcd=true`` needs fcd-torch installed, and
    ``format`` is ``auto`` or one of the sample readers' formats. Raises
    :class:`~sympe.datasets.config.DatasetConfigError` (one line naming the option and the fix)."""
    from sympe.datasets.config import DatasetConfigError
    from sympe.datasets.samples.readers import FORMATS

    if fcd in (True, "true"):
        from sympe.datasets.metrics.fcd import FCD_INSTALL, fcd_torch_missing

        if fcd_torch_missing():
            raise DatasetConfigError(f"fcd=true needs the optional package fcd-torch, which is not installed: "
                                     f"{FCD_INSTALL}, or pass fcd=auto (computed when installed) or fcd=false")
    if format not in ("auto", *FORMATS):
        raise DatasetConfigError(f"format={format} is not accepted: expected one of auto, {', '.join(FORMATS)}")


def checkpoint_splits(record: dict | None, root: str | os.PathLike, checkpoint, condition=None) -> dict:
    """The splits of the dataset a checkpoint recorded (``record``: its ``{"name", "params"}``, the run's
    ``dataset`` config) under data root ``root``; ``ValueError`` naming ``checkpoint`` when it recorded none.
    ``condition``: a conditional model's :class:`~sympe.diffusion.conditioning.ConditionSpec`: every graph then
    carries its encoded condition (:func:`~sympe.datasets.conditions.attach.attach_conditions`), so that the NLL is
    that of ``p(x | y)``."""
    if not record:
        raise ValueError(f"{checkpoint} does not record its dataset config; use samples= mode with dataset=NAME")
    splits = build_splits(record["name"], root, **dataset_params(record["params"]))
    if condition is not None:
        from sympe.datasets.conditions.attach import attach_conditions

        splits, _ = attach_conditions(splits, condition.names, condition.dropout, spec=condition)
    return splits


def sample_metrics(splits: dict, generated=None, smiles_lines=None, fill_hydrogens: bool = False,
                   reference: str = "benchmark", sbm_method: str = "auto", sbm_workers: int = 1,
                   fcd="auto", device: str = "cpu") -> dict:
    """Sample metrics of generated ``(atoms, bonds)`` pairs, or of SMILES lines (molecules only), for the dataset
    whose ``{"train", "val", "test"}`` splits are given.

    Molecules: :class:`~sympe.datasets.metrics.mol_metrics.MoleculeMetrics` against the train split (novelty), plus
    ``fcd`` / ``fcd_reference`` against the test split (:func:`~sympe.datasets.metrics.fcd.fcd_section`; ``fcd`` is
    ``"auto"``, True or False, ``device`` runs ChemNet). Graphs: :class:`~sympe.datasets.metrics.graph_metrics.GraphMetrics`
    against the scoring reference of :func:`~sympe.datasets.sources.spectre.scoring_reference` (``reference``:
    ``"benchmark"`` or ``"dataset"``; SBM validity by ``sbm_method`` in ``sbm_workers`` processes); a user's graphs
    (``dataset=graphs``) by :class:`~sympe.datasets.metrics.user_graph_metrics.UserGraphMetrics` against their own
    train / test splits. Raises
    ``ValueError`` for SMILES lines on a dataset that is not molecular."""
    train = splits["train"]
    info = train.info
    if info.is_molecular:
        from sympe.datasets.metrics.fcd import fcd_section
        from sympe.datasets.metrics.mol_metrics import MoleculeMetrics
        from sympe.datasets.molecules import MoleculeSpec

        spec = MoleculeSpec.from_info(info)  # charged classes (dataset=smiles): stability scores their charges
        metrics = MoleculeMetrics(spec, train.train_smiles(), fill_hydrogens=fill_hydrogens,
                                  use_charges=spec.has_charged_classes)
        out = metrics.from_smiles(smiles_lines) if smiles_lines is not None else metrics.from_graphs(generated)
        section, fcd_warnings = fcd_section(splits["test"], metrics.valid_smiles, fcd, device)
        out["warnings"] += fcd_warnings
        return {**out, **section}
    if smiles_lines is not None:
        raise ValueError(f"a SMILES file was given but dataset {info.name!r} is not molecular; give an .npz of graphs")
    from sympe.datasets.metrics.graph_metrics import GraphMetrics, SBMTest
    from sympe.datasets.sources.graph_files import GraphFilesDataset
    from sympe.datasets.sources.spectre import scoring_reference

    ref_train, ref_test, described = scoring_reference(splits, reference)
    if isinstance(train, GraphFilesDataset):  # a user's graphs: + connectivity, class-preserving isomorphism
        from sympe.datasets.metrics.user_graph_metrics import UserGraphMetrics

        out = UserGraphMetrics(ref_train, ref_test, info.node_classes, info.edge_classes)(generated)
    else:
        out = GraphMetrics(info.name, ref_train, ref_test, sbm=SBMTest(method=sbm_method, workers=sbm_workers))(generated)
    out["warnings"] = described.pop("warnings") + out["warnings"]
    return {**described, **out}


def evaluate_moses_samples(samples, params: dict | None, root: str | os.PathLike, device: str = "cpu") -> dict:
    """:func:`~sympe.datasets.metrics.moses_metrics.moses_suite` of SMILES ``samples`` for ``dataset=moses``:
    ``params`` are the dataset's config params (``source``, ``data_dir``; MOSESDataset's others are ignored) plus
    the optional ``fcd_stats`` ("csv" or "molsets"); caches go to ``root/moses_metrics``. Needs only the three
    CSVs (:func:`~sympe.datasets.sources.moses.csv_paths`), not the processed graphs."""
    from sympe.datasets.metrics.moses_metrics import moses_suite
    from sympe.datasets.sources.moses import csv_paths

    params = dict(params or {})
    device = _device(device)
    paths = csv_paths(params.get("source", "molsets"), params.get("data_dir"), str(root))
    return moses_suite(samples, paths, Path(root) / "moses_metrics", device=device,
                       fcd_stats=params.get("fcd_stats", "csv"))


def read_dataset_samples(path: str | os.PathLike, info, format: str = "auto", column=None, header="auto",
                         atom_decoder=None) -> Samples:
    """:func:`~sympe.datasets.samples.readers.read_samples` for a dataset with :class:`~sympe.diffusion.info.DatasetInfo`
    ``info`` (``None``: MOSES, scored from SMILES only). Molecules of a DiGress text dump are decoded with
    ``atom_decoder``, by default DiGress's decoder for the dataset's elements."""
    molecular = True if info is None else info.is_molecular
    decoder = tuple(atom_decoder) if atom_decoder else (
        digress_atom_decoder(info.node_classes) if info is not None and info.is_molecular else None)
    return read_samples(path, molecular, format=format, column=column, header=header, atom_decoder=decoder)


def score_sample_file(path: str | os.PathLike, name: str, params: dict, root: str | os.PathLike, label: str | None = None,
                      format: str = "auto", column=None, header="auto", atom_decoder=None, device: str = "cpu",
                      targets: str | None = None, oracle=None, **metric_options) -> dict:
    """Score a file of samples for dataset ``name`` (registry name) with ``params`` under data root ``root``.

    MOSES is scored by its own suite from its CSVs (:func:`evaluate_moses_samples`; SMILES only, never processed
    graphs); every other dataset by :func:`sample_metrics` against its splits (``metric_options``: its
    ``fill_hydrogens``, ``reference``, ``sbm_method``, ``sbm_workers``, ``fcd``). Returns ``{"samples", "dataset"
    (``label``, default ``name``), "num_samples", "samples_format", "samples_notes", **metrics}``; its ``warnings``
    list starts with the reader's (a guessed header, samples that do not parse, with their line numbers). Raises
    :class:`~sympe.datasets.samples.errors.SampleFileError` for graphs given for MOSES. ``device``: where ChemNet
    (and MOSES's similarities) run, ``"auto"`` for a GPU when one is visible. ``targets``: a CSV of the targets each
    sample was asked for (a conditional model's ``targets.csv``): adds ``"condition"``, how well they are met
    (:func:`~sympe.datasets.conditions.scoring.score_targets_file`; ``oracle``: the property regressor that scores
    dataset columns such as QM9's μ); read before anything else loads.
    """
    rows = None
    if targets is not None:
        from sympe.datasets.conditions.targets import read_targets_csv

        rows = read_targets_csv(str(targets), "targets")
        from sympe.datasets.conditions.properties import PROPERTIES
        from sympe.datasets.conditions.scoring import PropertyUnavailable

        asked = {k for r in rows for k, v in r.items() if v is not None}
        columns = sorted(k for k in asked if k in PROPERTIES and PROPERTIES[k].source == "column")
        if columns and oracle is None:
            raise PropertyUnavailable(f"targets={targets}: {columns} cannot be computed on samples (dataset columns, "
                                      "not RDKit / networkx properties); give oracle=FILE, a property regressor "
                                      "(scripts/train_regressor.py)")
    splits = None if name == "moses" else build_splits(name, root, **params)
    path = Path(path)
    samples = read_dataset_samples(path, None if splits is None else splits["train"].info, format=format,
                                   column=column, header=header, atom_decoder=atom_decoder)
    graphs, lines, device = samples.graphs, samples.smiles, _device(device)
    out = {"samples": str(path), "dataset": label or name, "num_samples": len(graphs or lines),
           "samples_format": samples.format, "samples_notes": samples.notes}
    if splits is None:
        if lines is None:
            raise SampleFileError(f"samples={path}: dataset=moses is scored on SMILES (MOSES's metrics are defined on "
                                  f"molecules as strings); this file was read as {samples.format!r} graphs")
        out.update(evaluate_moses_samples(lines, params, root, device=device))
    else:
        out.update(sample_metrics(splits, generated=graphs, smiles_lines=lines, device=device, **metric_options))
        if rows is not None:
            from sympe.datasets.conditions.scoring import score_targets_file

            out["condition"] = {"targets": str(targets), **score_targets_file(rows, splits, lines, graphs, oracle=oracle)}
    out["warnings"] = list(samples.warnings) + list(out.get("warnings", []))  # the file's first, then the metrics'
    return out


def floor_of_test_split(splits: dict, num_graphs: int | None = None) -> tuple[Tensor, FloorSummary]:
    """The exchangeable NLL floor of the first ``num_graphs`` test graphs (all when None), under the train split's
    p(N): per graph (float64 (G,), for :func:`sympe.diffusion.likelihood.nll_section.nll_section`) and
    summarized (:func:`~sympe.datasets.floor.exchangeable.split_floor`; ``log |Aut|`` cached beside the split)."""
    from sympe.datasets.floor.exchangeable import split_floor

    return split_floor(splits["test"], splits["train"].info.n_nodes_tensor(), num_graphs)


def breaking_bounds(splits: dict, T: int, schedule: str, transition: str, num_samples: int = 2000,
                    log=None) -> dict:
    """The exact reference numbers of a symmetry-breaking family (``matching``, ``star``, ``marked_cycle``) for a
    model with ``T`` steps, ``schedule`` and ``transition``: ``data_entropy`` (H) and ``factorised_bound`` /
    ``factorised_bound_sem`` (F(T), :func:`sympe.datasets.floor.factorised.factorised_bound`: exact for the absorbing
    transition, Monte Carlo with ``num_samples`` graphs otherwise), in nats per graph; ``{}`` for another dataset.
    F uses the family's exact class marginals, which equal the train split's for a fixed size. ``log`` (a callable),
    if given, receives one line with both numbers."""
    from sympe.datasets.floor.factorised import factorised_bound
    from sympe.datasets.sources.breaking import SymmetryBreakingDataset

    train = splits["train"]
    if not isinstance(train, SymmetryBreakingDataset) or not train.permute_nodes:
        return {}
    value, se = factorised_bound(train.family, train.size_spec, int(T), str(transition), k=train.k or 1,
                                 schedule=str(schedule), num_samples=int(num_samples))
    if log is not None:
        log(f"[sympe] data entropy H {train.data_entropy():.3f}; best factorised bound F(T={int(T)}) {value:.3f} ± "
            f"{se:.3f} nats per graph")
    return {"data_entropy": train.data_entropy(), "factorised_bound": value, "factorised_bound_sem": se,
            "factorised_bound_definition": f"F(T): exact posterior marginals at every step, T={int(T)}, "
                                           f"{transition} transition, {schedule} schedule"}
