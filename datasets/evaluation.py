"""Scoring generated graphs for a dataset: the one place that joins the sample metrics with a dataset's splits
(which metrics apply to it, and which split they are measured against)."""
from __future__ import annotations

__all__ = ["sample_metrics"]


def sample_metrics(splits: dict, generated=None, smiles_lines=None, fill_hydrogens: bool = False,
                   reference: str = "benchmark", sbm_method: str = "auto", sbm_workers: int = 1,
                   fcd="auto", device: str = "cpu") -> dict:
    """Sample metrics of generated ``(atoms, bonds)`` pairs, or of SMILES lines (molecules only), for the dataset
    whose ``{"train", "val", "test"}`` splits are given.

    Molecules: :class:`~sympe.datasets.metrics.mol_metrics.MoleculeMetrics` against the train split (novelty), plus
    ``fcd`` / ``fcd_reference`` against the test split (:func:`~sympe.datasets.metrics.fcd.fcd_section`; ``fcd`` is
    ``"auto"``, True or False, ``device`` runs ChemNet). Graphs: :class:`~sympe.datasets.metrics.graph_metrics.GraphMetrics`
    against the scoring reference of :func:`~sympe.datasets.sources.spectre.scoring_reference` (``reference``:
    ``"benchmark"`` or ``"dataset"``; SBM validity by ``sbm_method`` in ``sbm_workers`` processes). Raises
    ``ValueError`` for SMILES lines on a dataset that is not molecular."""
    train = splits["train"]
    info = train.info
    if info.is_molecular:
        from sympe.datasets.metrics.fcd import fcd_section
        from sympe.datasets.metrics.mol_metrics import MoleculeMetrics
        from sympe.datasets.molecules import MoleculeSpec

        metrics = MoleculeMetrics(MoleculeSpec(tuple(info.node_classes)), train.train_smiles(),
                                  fill_hydrogens=fill_hydrogens)
        out = metrics.from_smiles(smiles_lines) if smiles_lines is not None else metrics.from_graphs(generated)
        section, fcd_warnings = fcd_section(splits["test"], metrics.valid_smiles, fcd, device)
        out["warnings"] += fcd_warnings
        return {**out, **section}
    if smiles_lines is not None:
        raise ValueError(f"a SMILES file was given but dataset {info.name!r} is not molecular; give an .npz of graphs")
    from sympe.datasets.metrics.graph_metrics import GraphMetrics, SBMTest
    from sympe.datasets.sources.spectre import scoring_reference

    ref_train, ref_test, described = scoring_reference(splits, reference)
    out = GraphMetrics(info.name, ref_train, ref_test, sbm=SBMTest(method=sbm_method, workers=sbm_workers))(generated)
    out["warnings"] = described.pop("warnings") + out["warnings"]
    return {**described, **out}
