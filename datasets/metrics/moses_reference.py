"""The reference side of MOSES's metrics (Polykovskiy et al. 2020): what :func:`~sympe.datasets.metrics.moses_metrics.moses_metrics`
needs of a reference set (``test`` or ``test_scaffolds``) and of the train set, computed from MOSES's CSV files.

:class:`MosesReference` holds the ChemNet mean and covariance (:mod:`sympe.datasets.metrics.fcd`), the packed Morgan
fingerprints, and the fragment and scaffold counts of a reference set, computed in one streaming pass
(:meth:`MosesReference.from_smiles`; the covariance by :class:`~sympe.datasets.metrics.fcd.GaussianAccumulator`, so
352k molecules never sit in memory at once) and cached as an ``.npz`` keyed by the file and the library versions
(:func:`reference_statistics`); :func:`train_set` caches the train molecules' canonical SMILES for ``Novelty``.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from rdkit import rdBase

from sympe.diffusion.bars import progress
from sympe.diffusion.files import atomic_path

from sympe.datasets.metrics.fcd import GaussianAccumulator, chemnet_activations
from sympe.datasets.metrics.moses_descriptors import (MORGAN_BITS, canonical, fragment_counts, molsets_file,
                                                      morgan_fingerprints, moses_mol, scaffold_counts)
from sympe.datasets.samples.smiles_files import read_csv_column

__all__ = ["CACHE_FORMAT", "MosesReference", "reference_statistics", "train_set"]

CACHE_FORMAT = 1


# ---------------------------------------------------------------------- reference statistics
@dataclass
class MosesReference:
    """What the metrics need of a reference set R: ``n`` molecules, ChemNet ``fcd_mu`` (512,) and
    ``fcd_sigma`` (512, 512) (``None`` when built with ``fcd=False``), packed Morgan ``fps`` (n, 128) uint8,
    ``frag`` and ``scaf`` Counters."""

    n: int
    fps: np.ndarray
    frag: Counter
    scaf: Counter
    fcd_mu: np.ndarray | None = None
    fcd_sigma: np.ndarray | None = None

    @classmethod
    def from_smiles(cls, smiles: Iterable[str], fcd: bool = True, device: str = "cpu", chunk: int = 4096,
                    name: str = "reference", progress: bool = False) -> "MosesReference":
        """One streaming pass over ``smiles`` in chunks of ``chunk``; invalid entries are skipped and counted
        in a warning; ``ValueError`` when fewer than 2 are valid."""
        acc = GaussianAccumulator(512) if fcd else None
        fps, frag, scaf, invalid = [], Counter(), Counter(), 0
        bar = _progress(name, progress)
        for block in _chunks(smiles, chunk):
            mols, valid = [], []
            for s in block:
                m = moses_mol(s)
                if m is None:
                    invalid += 1
                    continue
                mols.append(m)
                valid.append(s.strip())
            fps.append(morgan_fingerprints(mols))
            frag.update(fragment_counts(mols))
            scaf.update(scaffold_counts(mols))
            if acc is not None and valid:
                acc.update(chemnet_activations(valid, device, canonize=True))
            if bar is not None:
                bar.update(len(block))
        if bar is not None:
            bar.close()
        fps = np.concatenate(fps) if fps else np.zeros((0, MORGAN_BITS // 8), np.uint8)
        if invalid:
            warnings.warn(f"MOSES reference {name}: skipped {invalid} SMILES RDKit cannot parse", stacklevel=2)
        if len(fps) < 2:
            raise ValueError(f"MOSES reference {name}: {len(fps)} valid molecules; at least 2 are needed")
        return cls(n=len(fps), fps=fps, frag=frag, scaf=scaf, fcd_mu=None if acc is None else acc.mean,
                   fcd_sigma=None if acc is None else acc.covariance)

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (no pickles) atomically: a temporary file renamed over ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"n": np.array(self.n), "fps": self.fps,
                  "frag_keys": np.array(list(self.frag), dtype=str), "frag_counts": np.array(list(self.frag.values()), dtype=np.int64),
                  "scaf_keys": np.array(list(self.scaf), dtype=str), "scaf_counts": np.array(list(self.scaf.values()), dtype=np.int64)}
        if self.fcd_mu is not None:
            arrays.update(fcd_mu=self.fcd_mu, fcd_sigma=self.fcd_sigma)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MosesReference":
        with np.load(path, allow_pickle=False) as z:
            return cls(n=int(z["n"]), fps=z["fps"],
                       frag=Counter(dict(zip(z["frag_keys"].tolist(), z["frag_counts"].tolist()))),
                       scaf=Counter(dict(zip(z["scaf_keys"].tolist(), z["scaf_counts"].tolist()))),
                       fcd_mu=z["fcd_mu"] if "fcd_mu" in z else None,
                       fcd_sigma=z["fcd_sigma"] if "fcd_sigma" in z else None)

    def with_molsets_fcd(self, name: str) -> "MosesReference":
        """A copy whose ChemNet mean and covariance are the ones MOSES ships precomputed for its ``test`` or
        ``test_scaffolds`` set (``moses/dataset/data/<name>_stats.npz`` in the molsets package; a pickled
        dict, so it is loaded with ``allow_pickle=True`` from the installed package only)."""
        if name not in ("test", "test_scaffolds"):
            raise ValueError(f"MOSES ships FCD statistics for 'test' and 'test_scaffolds' only, not {name!r}")
        with np.load(molsets_file(f"moses/dataset/data/{name}_stats.npz"), allow_pickle=True) as z:
            stats = z["stats"].item()["FCD"]
        return MosesReference(self.n, self.fps, self.frag, self.scaf, np.asarray(stats["mu"], np.float64),
                              np.asarray(stats["sigma"], np.float64))


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    block = []
    for x in items:
        block.append(x)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def _progress(name: str, enabled: bool, total: int | None = None):
    if not enabled:
        return None
    return progress(None, total=total, desc=f"MOSES {name}", unit="mol")


def _cache_key(path: str, what: dict) -> str:
    st = os.stat(path)
    versions = {"rdkit": rdBase.rdkitVersion, "format": CACHE_FORMAT}
    for pkg in ("fcd-torch", "molsets"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    blob = json.dumps({"file": [os.path.abspath(path), st.st_size, st.st_mtime_ns], **versions, **what}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def reference_statistics(path: str | os.PathLike, cache_dir: str | os.PathLike, fcd: bool = True,
                         device: str = "cpu", progress: bool = True) -> MosesReference:
    """:class:`MosesReference` of the CSV ``path``, computed once and cached in ``cache_dir`` as
    ``<file stem>-<key>.npz`` (key: the file's path, size and mtime, RDKit / fcd-torch / molsets versions).
    A cache without ChemNet statistics is rebuilt when ``fcd=True``. The ChemNet pass dominates the cost
    (about 170 molecules/s on one CPU core; seconds on a GPU)."""
    path = str(path)
    stem = Path(path).name.split(".")[0]
    cached = Path(cache_dir) / f"{stem}-{_cache_key(path, {})}.npz"
    if cached.is_file():
        ref = MosesReference.load(cached)
        if not fcd or ref.fcd_mu is not None:
            return ref
    ref = MosesReference.from_smiles(read_csv_column(path), fcd=fcd, device=device, name=stem, progress=progress)
    ref.save(cached)
    return ref


def train_set(path: str | os.PathLike, cache_dir: str | os.PathLike, progress: bool = True) -> set[str]:
    """Canonical SMILES (installed RDKit) of the train CSV ``path``, cached as ``<stem>-<key>.smi.gz``."""
    path = str(path)
    stem = Path(path).name.split(".")[0]
    cached = Path(cache_dir) / f"{stem}-{_cache_key(path, {'what': 'canonical'})}.smi.gz"
    if cached.is_file():
        with gzip.open(cached, "rt") as f:
            return set(f.read().split())
    out, bar = set(), _progress(f"{stem} (canonical SMILES)", progress)
    for block in _chunks(read_csv_column(path), 8192):
        out.update(c for c in map(canonical, block) if c is not None)
        if bar is not None:
            bar.update(len(block))
    if bar is not None:
        bar.close()
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp, gzip.open(tmp, "wt") as f:  # the header names the temporary file, as it always did
        f.write("\n".join(sorted(out)) + "\n")
    return out
