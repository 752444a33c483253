"""Fréchet ChemNet Distance (Preuer et al., J. Chem. Inf. Model. 2018) between two sets of molecules.

d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}) between the Gaussians fitted to the 512-d penultimate ChemNet
activations of the two sets. The distance is >= 0 in exact arithmetic; the matrix square root leaves round-off
of either sign (the FCD of a set with itself comes out around −2e−6), so :func:`fcd` clips at 0.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Iterable

import numpy as np
from scipy import linalg

from sympe.datasets.molecules import canonical_smiles


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


def _fcd_inputs(smiles: Iterable[str | None], name: str) -> list[str]:
    if isinstance(smiles, str):
        raise ValueError(f"fcd: {name} must be a list of SMILES, not one string")
    out = [c for c in (canonical_smiles(s) if isinstance(s, str) and s.strip() and s.strip() != "None" else None
                       for s in smiles) if c is not None]
    if len(out) < 2:
        raise ValueError(f"fcd: {name} has {len(out)} valid molecules; the FCD needs at least 2 (a covariance)")
    return out


@functools.lru_cache(maxsize=2)
def _fcd_model(device: str, batch_size: int):
    """The fcd_torch ChemNet wrapper, loaded once per (device, batch size): loading takes seconds."""
    from fcd_torch import FCD

    return FCD(device=device, n_jobs=1, batch_size=batch_size, canonize=False)


def fcd(smiles_a: Iterable[str | None], smiles_b: Iterable[str | None], device: str = "cpu",
        batch_size: int = 512) -> float:
    """Fréchet ChemNet Distance between two sets of molecules via ``fcd-torch``, clipped at 0.

    Both lists are canonicalized with :func:`~sympe.datasets.molecules.canonical_smiles`
    (non-isomeric, so stereo marks never separate the two sides); entries RDKit cannot parse
    (and ``None``) are dropped, as MOSES does (FCD over valid molecules). Each set is mapped to
    the 512-d penultimate ChemNet activations, fitted by a Gaussian (mean, unbiased covariance), and
    ``max(0, d²)`` of :func:`frechet_distance` is returned (the raw distance, not GuacaMol's score
    exp(−0.2 FCD); the clip removes round-off below 0, see the module docstring).

    Which implementation: the PyPI package ``fcd-torch`` (insilicomedicine/fcd_torch, the one
    MOSES uses; ChemNet weights ship inside the wheel, so it runs offline). The Keras-born package
    ``fcd`` by bioinf-jku preprocesses/tokenizes SMILES with its own code and gives different
    numbers for the same inputs; values from the two must not be compared. Raises ``ImportError``
    naming ``pip install fcd-torch`` when the package is missing, ``ValueError`` when a set has
    fewer than two valid molecules.
    """
    try:
        import fcd_torch  # noqa: F401
    except ImportError as e:
        raise ImportError("fcd() needs the optional package fcd-torch: `pip install fcd-torch` "
                          "(with torch already installed, `pip install fcd-torch --no-deps` suffices)") from e
    a, b = _fcd_inputs(smiles_a, "smiles_a"), _fcd_inputs(smiles_b, "smiles_b")
    model = _fcd_model(str(device), int(batch_size))
    stats = []
    for s in (a, b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fcd_torch uses np.row_stack
            acts = np.asarray(model.get_predictions(s), dtype=np.float64)
        stats.append((acts.mean(0), np.cov(acts.T)))
    value = frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
    return max(0.0, value) if math.isfinite(value) else float("nan")
