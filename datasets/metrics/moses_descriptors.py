"""What MOSES's metrics measure of a molecule (Polykovskiy et al., "Molecular Sets (MOSES)", Front. Pharmacol.
2020): the molecule of a SMILES as MOSES reads it, Morgan fingerprints and their Tanimoto similarities (SNN,
IntDiv), BRICS fragments and Bemis-Murcko scaffolds (Frag, Scaf), and the data files of the ``molsets`` package.
The metrics themselves are defined in :mod:`sympe.datasets.metrics.moses_metrics`.
"""
from __future__ import annotations

import functools
import importlib.metadata
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs

__all__ = ["MORGAN_BITS", "MORGAN_RADIUS", "SCAFFOLD_MIN_RINGS", "brics_fragments", "canonical", "cosine_similarity",
           "fragment_counts", "internal_diversity", "molsets_file", "morgan_fingerprints", "moses_mol",
           "murcko_scaffold", "scaffold_counts", "snn", "tanimoto_aggregate"]

MORGAN_RADIUS = 2
MORGAN_BITS = 1024
SCAFFOLD_MIN_RINGS = 2


# ---------------------------------------------------------------------- molecules
def moses_mol(smiles) -> Chem.Mol | None:
    """The molecule of a SMILES as MOSES reads it: ``None`` for a non-string, an empty or ``None`` string,
    or a SMILES that RDKit cannot parse and sanitize."""
    if not isinstance(smiles, str):
        return None
    s = smiles.strip()
    if not s or s == "None":
        return None
    _quiet = BlockLogs()  # noqa: F841 - invalid samples are counted, not printed
    return Chem.MolFromSmiles(s)  # parsing sanitizes


def canonical(smiles) -> str | None:
    """RDKit's canonical SMILES (isomeric, RDKit's default as in MOSES), ``None`` when invalid."""
    mol = moses_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


@functools.lru_cache(maxsize=1)
def _morgan_generator():
    return rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)


def morgan_fingerprints(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """Morgan fingerprints (radius 2, 1024 bits) as packed bits, (n, 128) uint8 (``np.packbits`` order)."""
    gen = _morgan_generator()
    out = np.zeros((len(mols), MORGAN_BITS // 8), dtype=np.uint8)
    for i, m in enumerate(mols):
        out[i] = np.packbits(gen.GetFingerprintAsNumPy(m).astype(np.uint8))
    return out


def brics_fragments(mol: Chem.Mol) -> list[str]:
    """Canonical SMILES of the pieces of ``mol`` after cutting every BRICS bond (with ``[n*]`` dummies)."""
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def murcko_scaffold(mol: Chem.Mol, min_rings: int = SCAFFOLD_MIN_RINGS) -> str | None:
    """Canonical SMILES of the Bemis-Murcko scaffold, ``None`` when it has fewer than ``min_rings`` rings
    (or is empty, or RDKit fails on it)."""
    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smiles = Chem.MolToSmiles(scaffold)
    if not smiles or scaffold.GetRingInfo().NumRings() < min_rings:
        return None
    return smiles


def fragment_counts(mols: Iterable[Chem.Mol]) -> Counter:
    """Counter of BRICS fragments over ``mols`` (every occurrence counts)."""
    out: Counter = Counter()
    for m in mols:
        out.update(brics_fragments(m))
    return out


def scaffold_counts(mols: Iterable[Chem.Mol]) -> Counter:
    """Counter of Bemis-Murcko scaffolds with at least two rings over ``mols``."""
    return Counter(s for s in map(murcko_scaffold, mols) if s is not None)


def cosine_similarity(a: Counter | dict, b: Counter | dict) -> float:
    """<a, b> / (|a| |b|) of two count dictionaries (missing keys are 0); NaN when either is empty."""
    if not a or not b:
        return float("nan")
    dot = sum(float(v) * float(b[k]) for k, v in a.items() if k in b)
    na = math.sqrt(sum(float(v) ** 2 for v in a.values()))
    nb = math.sqrt(sum(float(v) ** 2 for v in b.values()))
    return dot / (na * nb)


# ---------------------------------------------------------------------- Tanimoto
def _unpack(packed: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(packed, axis=1)).to(device=device, dtype=torch.float32)


def tanimoto_aggregate(gen_fps: np.ndarray, ref_fps: np.ndarray, agg: str = "max", p: float = 1.0,
                       device: str = "cpu", batch_size: int = 4096) -> np.ndarray:
    """Per generated molecule, the max (``agg="max"``) or the power mean ((mean_r T^p)^{1/p}, ``agg="mean"``)
    of its Tanimoto similarities T(g, r) = |g & r| / (|g| + |r| - |g & r|) to every reference fingerprint.

    ``gen_fps`` (n, 128) and ``ref_fps`` (m, 128) are packed 1024-bit fingerprints (:func:`morgan_fingerprints`).
    T = 1 for two empty fingerprints. Counts are exact in float32 (at most 1024). Returns (n,) float64.
    """
    if agg not in ("max", "mean"):
        raise ValueError(f"tanimoto_aggregate: agg must be 'max' or 'mean', got {agg!r}")
    if len(gen_fps) == 0 or len(ref_fps) == 0:
        raise ValueError(f"tanimoto_aggregate: empty fingerprint set ({len(gen_fps)} generated, {len(ref_fps)} reference)")
    out = np.zeros(len(gen_fps), dtype=np.float64)
    for i in range(0, len(gen_fps), batch_size):
        g = _unpack(gen_fps[i:i + batch_size], device)
        g_count = g.sum(1)
        acc = torch.zeros(len(g), dtype=torch.float64, device=device)
        for j in range(0, len(ref_fps), batch_size):
            r = _unpack(ref_fps[j:j + batch_size], device)
            both = g @ r.T
            union = g_count[:, None] + r.sum(1)[None, :] - both
            t = torch.where(union > 0, both / union.clamp_min(1), torch.ones_like(both))
            if agg == "max":
                acc = torch.maximum(acc, t.max(1).values.double())
            else:
                acc += (t.double() ** p).sum(1)
        if agg == "mean":
            acc = (acc / len(ref_fps)) ** (1.0 / p)
        out[i:i + len(g)] = acc.cpu().numpy()
    return out


def snn(gen_fps: np.ndarray, ref_fps: np.ndarray, device: str = "cpu") -> float:
    """SNN = mean over generated molecules of the Tanimoto similarity to their nearest reference molecule."""
    return float(tanimoto_aggregate(gen_fps, ref_fps, "max", device=device).mean())


def internal_diversity(fps: np.ndarray, p: float = 1.0, device: str = "cpu") -> float:
    """IntDiv_p = 1 - mean_g (mean_g' T(g, g')^p)^{1/p} over all ordered pairs, self-pairs included."""
    return float(1.0 - tanimoto_aggregate(fps, fps, "mean", p=p, device=device).mean())

# ---------------------------------------------------------------------- molsets data files
def molsets_file(rel: str) -> Path:
    """The path of a data file of the installed ``molsets`` package (``rel`` inside its distribution, e.g.
    ``moses/metrics/mcf.csv``), found with ``importlib.metadata`` (the package is never imported). Raises
    ``ImportError`` naming the install command, ``FileNotFoundError`` when that version lacks the file."""
    try:
        dist = importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("the MOSES filters read their SMARTS from the molsets package data: "
                          "`pip install --no-deps molsets==0.3.1`") from None
    path = Path(dist.locate_file(rel))
    if not path.is_file():
        raise FileNotFoundError(f"molsets {dist.version} lacks {rel}; install molsets==0.3.1")
    return path
