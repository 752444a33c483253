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

Reference statistics (``MosesReference``: ChemNet mean and covariance, packed fingerprints, fragment and
scaffold counts) are computed from a reference CSV in one streaming pass and cached as an ``.npz`` keyed by
the file and the library versions (:func:`reference_statistics`).
"""
from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import importlib.metadata
import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from rdkit import Chem, rdBase
from rdkit.Chem import FilterCatalog, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs

MORGAN_RADIUS = 2
MORGAN_BITS = 1024
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING_SIZE = 7  # rings of 8 or more atoms fail the filters
SCAFFOLD_MIN_RINGS = 2
UNIQUE_AT = (1000, 10000)
FILTER_FILES = {"mcf": "moses/metrics/mcf.csv", "pains": "moses/metrics/wehi_pains.csv"}
CACHE_FORMAT = 1


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


# ---------------------------------------------------------------------- filters
def _molsets_file(rel: str) -> Path:
    try:
        dist = importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("the MOSES filters read their SMARTS from the molsets package data: "
                          "`pip install --no-deps molsets==0.3.1`") from None
    path = Path(dist.locate_file(rel))
    if not path.is_file():
        raise FileNotFoundError(f"molsets {dist.version} lacks {rel}; install molsets==0.3.1")
    return path


@functools.lru_cache(maxsize=1)
def filter_patterns() -> tuple[tuple[str, Chem.Mol], ...]:
    """(name, compiled SMARTS) of MOSES's MCF (22, with a header ``names,smarts``) and PAINS (480, no header,
    columns smarts, name) patterns, read from the installed ``molsets`` package's data files."""
    out = []
    with open(_molsets_file(FILTER_FILES["mcf"]), newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != ["names", "smarts"]:
        raise ValueError(f"{FILTER_FILES['mcf']}: expected the header ['names', 'smarts'], found {rows[0]}")
    out += [(name, smarts) for name, smarts in rows[1:]]
    with open(_molsets_file(FILTER_FILES["pains"]), newline="") as f:
        out += [(name.strip(), smarts.strip()) for smarts, name in csv.reader(f)]
    compiled = []
    for name, smarts in out:
        patt = Chem.MolFromSmarts(smarts)
        if patt is None:
            raise ValueError(f"MOSES filter {name}: RDKit cannot compile the SMARTS {smarts!r}")
        compiled.append((name, patt))
    return tuple(compiled)


@functools.lru_cache(maxsize=1)
def _filter_catalog() -> FilterCatalog.FilterCatalog:
    """The patterns of :func:`filter_patterns` in an RDKit ``FilterCatalog`` (one C++ loop per molecule; about
    13 ms per molecule for the 502 patterns on one core)."""
    catalog = FilterCatalog.FilterCatalog()
    for name, patt in filter_patterns():
        catalog.AddEntry(FilterCatalog.FilterCatalogEntry(name, FilterCatalog.SmartsMatcher(name, patt, 1)))
    return catalog


def filter_failure(mol: Chem.Mol | None) -> str | None:
    """Why ``mol`` fails MOSES's filters (``None`` when it passes): ``"invalid"``, ``"ring>=8"``,
    ``"charge"``, ``"atom X"``, the name of the first MCF / PAINS pattern found, or ``"smiles"``."""
    if mol is None:
        return "invalid"
    if any(len(r) > MAX_RING_SIZE for r in mol.GetRingInfo().AtomRings()):
        return "ring>=8"
    if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
        return "charge"
    for a in mol.GetAtoms():
        if a.GetSymbol() not in ALLOWED_ATOMS:
            return f"atom {a.GetSymbol()}"
    match = _filter_catalog().GetFirstMatch(Chem.AddHs(mol))
    if match is not None:
        return match.GetDescription()
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    if not smiles or moses_mol(smiles) is None:
        return "smiles"
    return None


def passes_filters(mol: Chem.Mol | None) -> bool:
    """True when ``mol`` passes MOSES's filters (see :func:`filter_failure`)."""
    return filter_failure(mol) is None


# ---------------------------------------------------------------------- ChemNet statistics
@functools.lru_cache(maxsize=2)
def _chemnet(device: str, batch_size: int):
    try:
        from fcd_torch import FCD
    except ImportError as e:
        raise ImportError("the MOSES FCD needs fcd-torch: `pip install fcd-torch`") from e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FCD(device=device, n_jobs=1, batch_size=batch_size, canonize=True)


def chemnet_activations(smiles: Sequence[str], device: str = "cpu", batch_size: int = 512) -> np.ndarray:
    """(n, 512) float64 penultimate ChemNet activations of valid SMILES (``fcd_torch``, canonicalized)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fcd_torch uses np.row_stack
        return np.asarray(_chemnet(str(device), int(batch_size)).get_predictions(list(smiles)), dtype=np.float64)


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


def frechet(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance of two Gaussians with ``fcd_torch``'s function (the one MOSES uses), clipped at 0."""
    from fcd_torch.utils import calculate_frechet_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fcd_torch passes scipy's deprecated disp=
        value = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    return max(value, 0.0) if math.isfinite(value) else float("nan")


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
                acc.update(chemnet_activations(valid, device))
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
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

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
        with np.load(_molsets_file(f"moses/dataset/data/{name}_stats.npz"), allow_pickle=True) as z:
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
    from sympe.diffusion.bars import progress

    return progress(None, total=total, desc=f"MOSES {name}", unit="mol")


def read_csv_smiles(path: str | os.PathLike, column: str = "SMILES") -> Iterator[str]:
    """SMILES of a CSV with a ``SMILES`` header column (``.gz`` allowed), streamed."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or column not in header:
            raise ValueError(f"MOSES CSV {path}: needs a {column!r} column, found {header}")
        col = header.index(column)
        for row in reader:
            yield row[col]


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
    ref = MosesReference.from_smiles(read_csv_smiles(path), fcd=fcd, device=device, name=stem, progress=progress)
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
    for block in _chunks(read_csv_smiles(path), 8192):
        out.update(c for c in map(canonical, block) if c is not None)
        if bar is not None:
            bar.update(len(block))
    if bar is not None:
        bar.close()
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + ".tmp")
    with gzip.open(tmp, "wt") as f:
        f.write("\n".join(sorted(out)) + "\n")
    os.replace(tmp, cached)
    return out


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
    acts = None
    for name, ref in (references or {}).items():
        if ref.fcd_mu is not None:
            if len(gen) < 2:
                out[f"FCD/{name}"] = nan
                notes.append(f"FCD/{name}: needs at least 2 valid molecules")
            else:
                if acts is None:
                    acts = chemnet_activations(gen, device)
                out[f"FCD/{name}"] = frechet(acts.mean(0), np.cov(acts.T), ref.fcd_mu, ref.fcd_sigma)
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


def evaluate_moses_samples(samples: Sequence[str | None], params: dict | None, root: str | os.PathLike,
                           device: str = "cpu") -> dict:
    """:func:`moses_suite` for ``scripts/evaluate.py dataset=moses``: ``params`` are the dataset's config params
    (``source``, ``data_dir``; MOSESDataset's others are ignored) plus the optional ``fcd_stats`` ("csv" or
    "molsets"); caches go to ``root/moses_metrics``. Needs only the three CSVs, not the processed graphs."""
    from sympe.datasets.sources.moses import csv_paths

    params = dict(params or {})
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    paths = csv_paths(params.get("source", "molsets"), params.get("data_dir"), str(root))
    return moses_suite(samples, paths, Path(root) / "moses_metrics", device=device,
                       fcd_stats=params.get("fcd_stats", "csv"))
