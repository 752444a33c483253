"""Fréchet ChemNet Distance (Preuer et al., J. Chem. Inf. Model. 2018) between two sets of molecules.

d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}) between the Gaussians fitted to the 512-d penultimate ChemNet
activations of the two sets; a dimensionless distance (0 = the same Gaussian). The distance is >= 0 in exact
arithmetic; the matrix square root leaves round-off of either sign (the FCD of a set with itself comes out
around −2e−6), so :func:`fcd` and :func:`fcd_from_stats` clip at 0.

The one ChemNet of sympe: :func:`chemnet_activations` (``fcd-torch``'s ChemNet, loaded once per device, batch size
and ``canonize``) serves both this module's FCD (QM9 and every molecular dataset of ``scripts/evaluate.py``) and
MOSES's suite (:mod:`sympe.datasets.metrics.moses_metrics`, which lets fcd-torch canonicalize, as MOSES does, and
fits its reference sets in a stream with :class:`GaussianAccumulator`); :func:`frechet_distance` is the one
Fréchet distance.

One side's statistics can be computed once and reused: :func:`chemnet_stats` gives ``(mu (512,), sigma
(512, 512), n)`` of a list of SMILES, :func:`fcd_from_stats` the distance of two such triples, and
:func:`split_chemnet_stats` the statistics of a molecular dataset split (its graphs written as SMILES by
:func:`split_smiles`), cached beside the processed split in
``<processed_dir>/fcd_chemnet_<split>-<num graphs>-<key>.npz`` (written atomically). The key hashes the split's
processed file, the versions of fcd-torch and RDKit and :data:`STATS_FORMAT`, and is checked again on load, so
a split whose content changed never gets stale statistics.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import math
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
from scipy import linalg

from sympe.diffusion.files import atomic_path

from sympe.datasets.molecules import MoleculeSpec, canonical_smiles, graph_to_smiles

__all__ = ["ChemNetStats", "FCD_INSTALL", "GaussianAccumulator", "STATS_FORMAT", "chemnet_activations", "chemnet_stats",
           "fcd", "fcd_from_stats", "fcd_section", "fcd_torch_missing", "frechet_distance", "split_chemnet_stats",
           "split_smiles"]

FCD_INSTALL = '`pip install "sympe[metrics]"` (or `pip install fcd-torch`)'
"""How to install the optional package behind the FCD, as error and warning messages say it."""

STATS_FORMAT = 1
"""Version of the cached split statistics (part of the cache key): bump it when :func:`split_smiles` or
:func:`chemnet_stats` change what they compute."""


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) between N(mu1, S1) and N(mu2, S2), unclipped.

    ``mu`` (d,), ``sigma`` (d, d). When the matrix square root is not finite (near-singular
    product), ``eps * I`` is added to both covariances; a tiny imaginary part is dropped.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"frechet_distance: shapes disagree: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    root = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(root).all():
        offset = eps * np.eye(s1.shape[0])
        root = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0.0, atol=1e-3):
            raise ValueError(f"frechet_distance: matrix square root has a large imaginary part "
                             f"({np.abs(root.imag).max():.3g})")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root))


class ChemNetStats(NamedTuple):
    """The Gaussian fitted to the ChemNet activations of a set of molecules: ``mu`` (d,) mean, ``sigma`` (d, d)
    unbiased covariance (float64; d = 512 for ChemNet), ``n`` the number of molecules it was fitted to."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def of(cls, activations: np.ndarray) -> "ChemNetStats":
        """The statistics of activations (n, d): ``activations.mean(0)`` and ``np.cov(activations.T)``."""
        return cls(activations.mean(0), np.atleast_2d(np.cov(activations.T)), len(activations))


class GaussianAccumulator:
    """Streaming mean and unbiased covariance of row vectors (pairwise merge of Chan et al., 1979):
    ``update(x)`` with x (b, d), then ``mean`` (d,) and ``covariance`` (d, d), equal to ``x.mean(0)`` and
    ``np.cov(x.T)`` of all rows at once."""

    def __init__(self, dim: int):
        self.n = 0
        self.mean = np.zeros(dim)
        self.scatter = np.zeros((dim, dim))

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return
        m_b = x.mean(0)
        c = x - m_b
        n_new = self.n + len(x)
        delta = m_b - self.mean
        self.scatter += c.T @ c + np.outer(delta, delta) * (self.n * len(x) / n_new)
        self.mean = self.mean + delta * (len(x) / n_new)
        self.n = n_new

    @property
    def covariance(self) -> np.ndarray:
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 rows, got {self.n}")
        return self.scatter / (self.n - 1)


def fcd_torch_missing() -> str | None:
    """None when the optional package ``fcd-torch`` imports, else a one-line reason naming how to install it."""
    try:
        import fcd_torch  # noqa: F401
    except ImportError as e:
        return f"the optional package fcd-torch is not installed ({e}); install it with {FCD_INSTALL}"
    return None


def _require_fcd_torch(who: str) -> None:
    try:
        import fcd_torch  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{who} needs the optional package fcd-torch: {FCD_INSTALL}; with torch already installed, "
                          "`pip install fcd-torch --no-deps` suffices") from e


def _fcd_inputs(smiles: Iterable[str | None], name: str) -> list[str]:
    if isinstance(smiles, str):
        raise ValueError(f"fcd: {name} must be a list of SMILES, not one string")
    out = [c for c in (canonical_smiles(s) if isinstance(s, str) and s.strip() and s.strip() != "None" else None
                       for s in smiles) if c is not None]
    if len(out) < 2:
        raise ValueError(f"fcd: {name} has {len(out)} valid molecules; the FCD needs at least 2 (a covariance)")
    return out


@functools.lru_cache(maxsize=4)
def _chemnet_model(device: str, batch_size: int, canonize: bool):
    """The fcd_torch ChemNet wrapper, loaded once per (device, batch size, canonize): loading takes seconds."""
    _require_fcd_torch("the FCD (ChemNet)")
    from fcd_torch import FCD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FCD(device=device, n_jobs=1, batch_size=batch_size, canonize=canonize)


def chemnet_activations(smiles: Sequence[str], device: str = "cpu", batch_size: int = 512,
                        canonize: bool = False) -> np.ndarray:
    """(n, 512) float64 penultimate ChemNet activations (``fcd-torch``) of n valid SMILES, in order.

    ``canonize``: fcd-torch first rewrites each SMILES as RDKit's canonical (isomeric) SMILES, as MOSES does;
    :func:`chemnet_stats` passes :func:`~sympe.datasets.molecules.canonical_smiles` strings and leaves it off.
    ``device`` and ``batch_size`` as in :func:`chemnet_stats`; ``ImportError`` naming the install command when
    fcd-torch is missing."""
    model = _chemnet_model(str(device), int(batch_size), bool(canonize))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fcd_torch uses np.row_stack
        return np.asarray(model.get_predictions(list(smiles)), dtype=np.float64)


def _stats_of_valid(valid: list[str], device: str, batch_size: int) -> ChemNetStats:
    return ChemNetStats.of(chemnet_activations(valid, device, batch_size))


def chemnet_stats(smiles: Iterable[str | None], device: str = "cpu", batch_size: int = 512,
                  name: str = "smiles") -> ChemNetStats:
    """Mean (512,) and unbiased covariance (512, 512) of the penultimate ChemNet activations of a set of molecules.

    The SMILES are canonicalized with :func:`~sympe.datasets.molecules.canonical_smiles` (non-isomeric, so
    stereo marks never separate two sets); entries RDKit cannot parse (and ``None``, ``"None"``, blanks) are
    dropped, as MOSES does (the FCD is over valid molecules); ``n`` counts the molecules kept. Activations come
    from ``fcd-torch``'s ChemNet on ``device`` (``"cpu"``, ``"cuda"``, ...) in batches of ``batch_size`` (QM9's
    13,055 test molecules: about 30 s on two CPU cores). Raises ``ImportError`` naming the install command when
    fcd-torch is missing, ``ValueError`` (naming ``name``) when fewer than two molecules are valid.
    """
    _require_fcd_torch("the FCD (chemnet_stats)")
    return _stats_of_valid(_fcd_inputs(smiles, name), device, batch_size)


def fcd_from_stats(a: ChemNetStats | tuple, b: ChemNetStats | tuple) -> float:
    """Fréchet ChemNet Distance ``max(0, d²)`` (dimensionless) between two sets given by their
    :func:`chemnet_stats` ``(mu, sigma, n)``; ``n`` is not used. NaN when the distance is not finite;
    ``ValueError`` from :func:`frechet_distance` when the shapes disagree or the square root is far from real."""
    value = frechet_distance(a[0], a[1], b[0], b[1])
    return max(0.0, value) if math.isfinite(value) else float("nan")


def fcd(smiles_a: Iterable[str | None], smiles_b: Iterable[str | None], device: str = "cpu",
        batch_size: int = 512) -> float:
    """Fréchet ChemNet Distance between two sets of molecules via ``fcd-torch``, clipped at 0 (dimensionless).

    Both lists are canonicalized with :func:`~sympe.datasets.molecules.canonical_smiles`
    (non-isomeric, so stereo marks never separate the two sides); entries RDKit cannot parse
    (and ``None``) are dropped, as MOSES does (FCD over valid molecules). Each set is mapped to
    the 512-d penultimate ChemNet activations, fitted by a Gaussian (mean, unbiased covariance), and
    ``max(0, d²)`` of :func:`frechet_distance` is returned (the raw distance, not GuacaMol's score
    exp(−0.2 FCD); the clip removes round-off below 0, see the module docstring). Equal to
    ``fcd_from_stats(chemnet_stats(smiles_a), chemnet_stats(smiles_b))``.

    Which implementation: the PyPI package ``fcd-torch`` (insilicomedicine/fcd_torch, the one
    MOSES uses; ChemNet weights ship inside the wheel, so it runs offline). The Keras-born package
    ``fcd`` by bioinf-jku preprocesses/tokenizes SMILES with its own code and gives different
    numbers for the same inputs; values from the two must not be compared. Raises ``ImportError``
    naming ``pip install fcd-torch`` when the package is missing, ``ValueError`` when a set has
    fewer than two valid molecules.
    """
    _require_fcd_torch("fcd()")
    a, b = _fcd_inputs(smiles_a, "smiles_a"), _fcd_inputs(smiles_b, "smiles_b")  # both checked before ChemNet runs
    return fcd_from_stats(_stats_of_valid(a, device, batch_size), _stats_of_valid(b, device, batch_size))


# ---------------------------------------------------------------------- statistics of a dataset split
def split_smiles(dataset, spec=None) -> list[str | None]:
    """Canonical SMILES (:func:`~sympe.datasets.molecules.graph_to_smiles`: formal charges from ``data.charge``,
    hydrogen-suppressed, non-isomeric) of every graph of a molecular split, in split order; ``None`` for a graph
    RDKit rejects. ``dataset``: a sympe ``GraphDataset`` or any sequence of PyG ``Data``; ``spec``: its
    :class:`~sympe.datasets.molecules.MoleculeSpec` (default: ``dataset.spec``, else one built from
    ``dataset.info.node_classes``; ``ValueError`` when it has neither)."""
    spec = spec or getattr(dataset, "spec", None)
    if spec is None:
        info = getattr(dataset, "info", None)
        if info is None or not getattr(info, "is_molecular", False):
            raise ValueError(f"split_smiles: {type(dataset).__name__} has no molecule spec (.spec or a molecular "
                             ".info); pass spec=")
        spec = MoleculeSpec.from_info(info)
    return [graph_to_smiles(dataset[i], spec) for i in range(len(dataset))]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _split_cache(dataset) -> tuple[Path, str] | tuple[None, None]:
    """(cache path, key) of a sympe ``GraphDataset`` split; (None, None) for anything without a processed file."""
    processed_dir, split = getattr(dataset, "processed_dir", None), getattr(dataset, "split", None)
    splits = getattr(dataset, "splits", None)
    if not (processed_dir and split and splits and split in splits):
        return None, None
    split_file = Path(dataset.processed_paths[list(splits).index(split)])
    if not split_file.is_file():
        return None, None
    h = hashlib.sha1()
    with open(split_file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(f"|{len(dataset)}|{STATS_FORMAT}|{_version('fcd-torch')}|{_version('rdkit')}".encode())
    key = h.hexdigest()
    return Path(processed_dir) / f"fcd_chemnet_{split}-{len(dataset)}-{key[:12]}.npz", key


def _load_stats(path: Path, key: str, num_graphs: int) -> ChemNetStats | None:
    """The cached statistics when the file holds this key and count and well-shaped arrays, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or int(z["num_graphs"]) != num_graphs:
                return None
            mu, sigma, n = np.asarray(z["mu"], dtype=np.float64), np.asarray(z["sigma"], dtype=np.float64), int(z["n"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # missing, truncated or foreign file: recompute
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]) or n < 2:
        return None
    return ChemNetStats(mu, sigma, n)


def split_chemnet_stats(dataset, device: str = "cpu", batch_size: int = 512, progress: bool = True,
                        spec=None) -> tuple[ChemNetStats, Path | None]:
    """:func:`chemnet_stats` of the molecules of a dataset split (:func:`split_smiles`), cached beside it.

    Returns ``(stats, cache path)``. For a sympe ``GraphDataset`` split the statistics are read from, or
    written (atomically, :func:`sympe.diffusion.files.atomic_path`) to,
    ``<processed_dir>/fcd_chemnet_<split>-<num graphs>-<key>.npz``; ``key`` is the SHA-1 of the split's
    processed file, its graph count, :data:`STATS_FORMAT` and the fcd-torch and RDKit versions, stored in the
    file and compared on load, so a changed split (or a foreign, truncated or tampered file) is recomputed, never
    served. Anything else (a list of ``Data``, a subset) is computed without caching (path ``None``); ``spec`` as
    in :func:`split_smiles`. With ``progress`` one line goes to stderr before a ChemNet pass (about 30 s for
    QM9's 13,055 test molecules on two CPU cores). Raises ``ImportError`` (fcd-torch missing) and ``ValueError`` (fewer than two valid molecules)
    as :func:`chemnet_stats` does.
    """
    path, key = _split_cache(dataset)
    if path is not None:
        cached = _load_stats(path, key, len(dataset))
        if cached is not None:
            return cached, path
    _require_fcd_torch("the FCD (split_chemnet_stats)")
    split = getattr(dataset, "split", None) or "reference"
    if progress:
        where = f"then cached in {path}" if path is not None else "not cached: the split has no processed file"
        print(f"[sympe] FCD: computing the ChemNet statistics of {len(dataset):,} {split} molecules (once; about "
              f"{max(1, round(len(dataset) / 400)):,} s on a 2-core CPU; {where})", file=sys.stderr, flush=True)
    smiles = split_smiles(dataset, spec)
    stats = chemnet_stats(smiles, device, batch_size, name=f"the {split} split")
    if path is not None:
        with atomic_path(path, unique=True) as tmp, open(tmp, "wb") as f:  # unique: parallel runs share the cache
            np.savez(f, mu=stats.mu, sigma=stats.sigma, n=np.int64(stats.n), num_graphs=np.int64(len(dataset)),
                     key=np.str_(key), smiles_sha1=np.str_(hashlib.sha1("\n".join(
                         "None" if s is None else s for s in smiles).encode()).hexdigest()))
    return stats, path


def fcd_section(test_split, valid_smiles: list[str], mode, device: str) -> tuple[dict, list[str]]:
    """``({"fcd": d or None, "fcd_reference": text or None}, warnings)`` for the valid generated molecules.

    ``d`` is the Fréchet ChemNet Distance (Preuer et al., J. Chem. Inf. Model. 2018; dimensionless, clipped at
    0) between the valid samples (canonical SMILES of their largest fragment, duplicates
    kept, as MOSES) and the molecules of ``test_split`` (``fcd_reference`` = "test split (N molecules)"); the
    split's ChemNet statistics are cached beside its processed data. ``mode``: False = not computed, no warning;
    ``"auto"`` = computed when fcd-torch imports, else one warning naming the extra; True = required (raises
    ``ImportError`` without fcd-torch; evaluate.py refuses ``fcd=true`` before anything loads). Fewer than 2 valid
    samples: ``fcd`` None and a warning, whatever the mode. ``device``: where ChemNet runs.
    """
    none = {"fcd": None, "fcd_reference": None}
    if mode in (False, "false"):
        return none, []
    missing = fcd_torch_missing()
    if missing and mode in (True, "true"):
        raise ImportError(f"fcd=true: {missing}")
    if missing:
        return none, [f"fcd: not computed: the optional package fcd-torch is not installed; install the extra with "
                      f"{FCD_INSTALL}, or pass fcd=false to skip it without this warning"]
    if len(valid_smiles) < 2:
        return none, [f"fcd: not computed: {len(valid_smiles)} valid sample(s); the Fréchet ChemNet Distance needs "
                      "at least 2 (a covariance)"]
    reference, _ = split_chemnet_stats(test_split, device=device)
    generated = chemnet_stats(valid_smiles, device=device, name="the valid samples")
    return {"fcd": fcd_from_stats(generated, reference),
            "fcd_reference": f"{getattr(test_split, 'split', 'test')} split ({reference.n:,} molecules)"}, []
