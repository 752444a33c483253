"""The MOSES metric suite (Polykovskiy et al., "Molecular Sets (MOSES)", Front. Pharmacol. 2020), with
RDKit and ``fcd-torch``, without importing the ``molsets`` package (its metric code no longer imports:
it calls ``pandas.DataFrame.append``, removed in pandas 2).

Every generated sample is a SMILES string. Definitions (G = the valid generated molecules, in file order,
each as RDKit's canonical SMILES; R = a reference set, MOSES's ``test`` or ``test_scaffolds``):

* **valid**: fraction of samples RDKit parses and sanitizes (empty lines and ``None`` are invalid).
* **unique@k**: |set(G[:k])| / |G[:k]| on the first k valid molecules (k = 1000, 10000); with fewer than k
  valid molecules it is computed on all of them and a warning says so (as MOSES does).
* **FCD/Test, FCD/TestSF**: Fréchet ChemNet Distance (Preuer et al., 2018) between Gaussians fitted to the
  512-d penultimate ChemNet activations of G and of R (``fcd_torch``, the implementation MOSES uses;
  canonical SMILES in, mean and unbiased covariance),
  d² = ||mu_G - mu_R||² + Tr(S_G + S_R - 2 (S_G S_R)^{1/2}). Clipped at 0 (round-off makes it about
  -1e-6 for a set against itself); MOSES does not clip.
* **SNN/Test, SNN/TestSF**: (1/|G|) sum_{g in G} max_{r in R} T(g, r), T the Tanimoto similarity of
  Morgan fingerprints (radius 2, 1024 bits, RDKit's defaults otherwise); T = 1 when both fingerprints are
  empty (0/0).
* **Frag/Test, Frag/TestSF**: cosine similarity of the fragment-count vectors of G and R. The fragments of a
  molecule are the pieces left by cutting every BRICS bond (Degen et al., 2008;
  ``FragmentOnBRICSBonds``), each written as canonical SMILES with its attachment dummies ``[n*]``;
  a fragment is counted once per occurrence.
* **Scaf/Test, Scaf/TestSF**: cosine similarity of the Bemis-Murcko scaffold-count vectors. As in
  MOSES's code, a molecule counts only if its scaffold has at least two rings (``min_rings=2``): acyclic and
  single-ring scaffolds such as benzene are left out of both vectors.
  Frag and Scaf are NaN when either vector is empty.
* **IntDiv, IntDiv2**: IntDiv_p = 1 - (1/|G|) sum_{g in G} ((1/|G|) sum_{g' in G} T(g, g')^p)^{1/p}, with
  p = 1 and 2, over all ordered pairs including g = g'. This is the formula of MOSES's code, which produced
  its published numbers; the paper writes IntDiv_p = 1 - ((1/|G|²) sum T^p)^{1/p}, which is the same for
  p = 1 and slightly smaller for p = 2 (Jensen).
* **Filters**: fraction of G that passes MOSES's dataset filters: no ring of 8 or more atoms, no charged
  atom, only the atoms C N S O F Cl Br H, none of the MCF and PAINS substructures (the SMARTS files
  ``mcf.csv`` and ``wehi_pains.csv`` shipped in the ``molsets`` package, matched on the molecule with
  explicit hydrogens), and a non-empty SMILES that parses again.
* **Novelty**: |set(G) - train| / |set(G)|, train = MOSES's train split. MOSES compares with the train CSV
  strings as written in 2019; here the train SMILES are re-canonicalized with the installed RDKit (cached),
  so that a train molecule whose canonical form changed since is still recognized (1 in 5,000 train strings
  differ from RDKit 2026's canonical form).

The numbers MOSES reports for its train set against its test sets (README of molecularsets/moses) and what
this module gives are compared in the project README.

The parts live by concept: molecules, fingerprints, fragments and scaffolds in
:mod:`~sympe.datasets.metrics.moses_descriptors`, the filters in :mod:`~sympe.datasets.metrics.moses_filters`, the
ChemNet activations and the Fréchet distance in :mod:`~sympe.datasets.metrics.fcd` (the one FCD of sympe, also
behind the QM9 ``fcd``), the reference statistics (``MosesReference``: ChemNet mean and covariance, packed
fingerprints, fragment and scaffold counts, computed from a reference CSV in one streaming pass and cached as an
``.npz`` keyed by the file and the library versions) in :mod:`~sympe.datasets.metrics.moses_reference`.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from rdkit import Chem

from sympe.datasets.metrics.fcd import ChemNetStats, chemnet_activations, fcd_from_stats
from sympe.datasets.metrics.moses_descriptors import (cosine_similarity, fragment_counts, internal_diversity,
                                                      morgan_fingerprints, moses_mol, scaffold_counts, snn)
from sympe.datasets.metrics.moses_filters import passes_filters
from sympe.datasets.metrics.moses_reference import MosesReference, reference_statistics, train_set

__all__ = ["UNIQUE_AT", "moses_metrics", "moses_suite"]

UNIQUE_AT = (1000, 10000)


# ---------------------------------------------------------------------- the suite
def moses_metrics(samples: Sequence[str | None], references: dict[str, MosesReference] | None = None,
                  train: set[str] | None = None, unique_at: Sequence[int] = UNIQUE_AT, device: str = "cpu") -> dict:
    """MOSES's metrics of generated SMILES (see the module docstring for each definition).

    ``samples``: one SMILES (or ``None``) per generated molecule, in generation order. ``references``: name ->
    :class:`MosesReference`, e.g. ``{"Test": ..., "TestSF": ...}``; keys ``FCD/<name>``, ``SNN/<name>``,
    ``Frag/<name>``, ``Scaf/<name>`` are reported for each (``FCD`` only when the reference has ChemNet
    statistics). ``train``: canonical train SMILES for ``Novelty`` (left out when ``None``).
    Returns a dict with MOSES's keys (``valid``, ``unique@1000``, ..., ``IntDiv``, ``IntDiv2``, ``Filters``,
    ``Novelty``), ``num_samples``, ``num_valid`` and ``warnings`` (a list of strings). Metrics of the valid
    molecules are NaN when none is valid. Raises ``ValueError`` on an empty or string ``samples``.
    """
    if samples is None or isinstance(samples, str) or len(samples) == 0:
        raise ValueError("moses_metrics: samples must be a non-empty list of SMILES strings (MOSES scores SMILES, "
                         "not graphs)")
    mols = [moses_mol(s) for s in samples]
    valid_mols = [m for m in mols if m is not None]
    gen = [Chem.MolToSmiles(m) for m in valid_mols]
    out: dict = {"num_samples": len(samples), "num_valid": len(gen), "valid": len(gen) / len(samples)}
    notes: list[str] = []
    nan = float("nan")
    for k in unique_at:
        first = gen[:k]
        if len(first) < k:
            notes.append(f"unique@{k}: only {len(first)} valid molecules; computed on all of them")
        out[f"unique@{k}"] = len(set(first)) / len(first) if first else nan
    if not gen:
        notes.append("no valid molecule: the metrics of valid molecules are NaN")
    fps = morgan_fingerprints(valid_mols) if gen else None
    frag = fragment_counts(valid_mols)
    scaf = scaffold_counts(valid_mols)
    gen_stats = None
    for name, ref in (references or {}).items():
        if ref.fcd_mu is not None:
            if len(gen) < 2:
                out[f"FCD/{name}"] = nan
                notes.append(f"FCD/{name}: needs at least 2 valid molecules")
            else:
                if gen_stats is None:  # canonize: fcd-torch canonicalizes the SMILES itself, as in MOSES
                    gen_stats = ChemNetStats.of(chemnet_activations(gen, device, canonize=True))
                out[f"FCD/{name}"] = fcd_from_stats(gen_stats, (ref.fcd_mu, ref.fcd_sigma))
        out[f"SNN/{name}"] = snn(fps, ref.fps, device) if gen else nan
        out[f"Frag/{name}"] = cosine_similarity(ref.frag, frag)
        out[f"Scaf/{name}"] = cosine_similarity(ref.scaf, scaf)
    out["IntDiv"] = internal_diversity(fps, 1.0, device) if gen else nan
    out["IntDiv2"] = internal_diversity(fps, 2.0, device) if gen else nan
    out["Filters"] = float(np.mean([passes_filters(m) for m in valid_mols])) if gen else nan
    if train is not None:
        unique = set(gen)
        out["Novelty"] = len(unique - train) / len(unique) if unique else nan
    out["warnings"] = notes
    return out


def moses_suite(samples: Sequence[str | None], paths: dict[str, str], cache_dir: str | os.PathLike,
                device: str = "cpu", fcd_stats: str = "csv", progress: bool = True) -> dict:
    """:func:`moses_metrics` against MOSES's own files, as MOSES reports them: ``paths`` maps ``train``,
    ``test``, ``test_scaffolds`` to their CSVs (e.g. :func:`sympe.datasets.sources.moses.csv_paths`); references and the
    canonical train set are cached in ``cache_dir``. ``fcd_stats="csv"`` computes the ChemNet statistics of the
    test sets from the CSVs (once; a ChemNet pass over 352k molecules), ``"molsets"`` uses the ones MOSES ships
    precomputed (``MosesReference.with_molsets_fcd``)."""
    if fcd_stats not in ("csv", "molsets"):
        raise ValueError(f"moses_suite: fcd_stats must be 'csv' or 'molsets', got {fcd_stats!r}")
    missing = [k for k in ("train", "test", "test_scaffolds") if k not in paths]
    if missing:
        raise ValueError(f"moses_suite: paths lacks {missing}; give the train, test and test_scaffolds CSVs")
    refs = {}
    for key, name in (("Test", "test"), ("TestSF", "test_scaffolds")):
        ref = reference_statistics(paths[name], cache_dir, fcd=fcd_stats == "csv", device=device, progress=progress)
        refs[key] = ref.with_molsets_fcd(name) if fcd_stats == "molsets" else ref
    out = moses_metrics(samples, refs, train_set(paths["train"], cache_dir, progress=progress), device=device)
    out["fcd_reference"] = {"csv": "ChemNet statistics of the test CSVs (computed here)",
                            "molsets": "ChemNet statistics shipped in molsets (test_stats.npz)"}[fcd_stats]
    return out
