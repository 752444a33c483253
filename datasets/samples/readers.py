"""Reading files of generated samples written by sympe or by other systems.

:func:`read_samples` turns a file into a :class:`Samples` object holding either graphs or SMILES strings.
The format is detected from the content (never from the file name alone) or given with ``format=``.

Formats
-------
``npz_edges``
    sympe's own graph file (:func:`sympe.datasets.samples.writers.save_graphs_npz`, the layout of the shipped
    SPECTRE graphs): ``num_nodes`` (G,) int, ``edges`` (M, 2) int with u < v per graph, ``edge_ptr`` (G + 1,)
    int (graph g owns ``edges[edge_ptr[g]:edge_ptr[g + 1]]``); optional ``edge_classes`` (M,) int (default
    1 = edge) and ``node_classes`` (sum of num_nodes,) int (default 0). For a molecular dataset ``node_classes``
    is required (the file is refused without it) and a missing ``edge_classes`` is a warning.
``npz_adjacency``
    DiGress's graph file (``np.savez(file, *adjacency_matrices)``, written by its SPECTRE sampling metrics):
    arrays ``arr_0``, ``arr_1``, ... each an (n, n) 0/1 (bool, int or float) symmetric matrix with zero
    diagonal. Read in the order of the index in the name (``arr_10`` after ``arr_9``).
``digress_txt``
    DiGress's text dump of generated graphs (``generated_samples*.txt``): per graph a line ``N=<n>``, a line
    ``X:``, one line of n node-class indices, a line ``E:``, n lines of n edge-class indices, a blank line.
    For molecules the node classes index DiGress's atom decoder (``atom_decoder=``, e.g. ``("H", "C", "N",
    "O", "F")`` for QM9 with H; see :data:`DIGRESS_ATOM_DECODERS`) and the edge classes are 0 none,
    1 single, 2 double, 3 triple, 4 aromatic (sympe's :data:`~sympe.datasets.molecules.BOND_CLASSES`).
``csv``
    A comma-separated table with a SMILES column: ``column=`` (name or 0-based index), or else the column of
    a header row whose name contains ``smiles`` (case-insensitive), e.g. sympe's ``gdb_index,smiles``. With
    ``column=INDEX``, a first row whose field there is no SMILES and looks like a column name is a header (a
    warning says so).
``smiles``
    One SMILES per line, the first whitespace-separated token of the line (``SMILES name`` files), with an
    optional header line (detected when its first token contains ``smiles``, or is no SMILES and looks like a
    column name such as ``molecule``, which a warning states; or ``header=True``).
    Blank lines at the end are dropped; any other line (blank, ``None``, unparsable) is one sample. Samples of
    both SMILES formats that do not parse are counted in ``warnings`` with their line numbers; a file where
    none parses is refused (:mod:`sympe.datasets.samples.smiles_files`).

Detection (``format="auto"``): a zip archive is an ``.npz`` (``npz_edges`` when it holds ``num_nodes``,
``edges`` and ``edge_ptr``, ``npz_adjacency`` when all its arrays are named ``arr_<i>``); a text file whose
first non-blank line starts with ``N=`` is ``digress_txt``; other text is ``csv`` when its first line
contains a comma (SMILES never contain one) and ``smiles`` otherwise. Anything else raises ``ValueError``
naming the formats expected and what was found. Malformed content (self-loops, float node ids, wrong shapes,
ids out of range, no samples) raises ``ValueError`` naming the file, the graph (0-based) and the problem.

Molecules read from graph formats come back with node classes as *element symbols* (``digress_txt``) or as
sympe class indices (``npz_edges``); :func:`symbols_to_classes` maps symbols onto a
:class:`~sympe.datasets.molecules.MoleculeSpec`.

The SMILES formats are read by :mod:`sympe.datasets.samples.smiles_files`, the one reader of SMILES files (also of
the data sets' CSV files).
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sympe.datasets.samples.errors import SampleFileError, SampleFileMissing, fail
from sympe.datasets.samples.smiles_files import read_csv_samples, read_smiles_samples

FORMATS: tuple[str, ...] = ("npz_edges", "npz_adjacency", "digress_txt", "csv", "smiles")
GRAPH_FORMATS: tuple[str, ...] = ("npz_edges", "npz_adjacency", "digress_txt")
SMILES_FORMATS: tuple[str, ...] = ("csv", "smiles")

#: DiGress's atom decoders (class index -> element) per dataset, from its dataset modules.
DIGRESS_ATOM_DECODERS: dict[str, tuple[str, ...]] = {
    "qm9": ("C", "N", "O", "F"),
    "qm9_h": ("H", "C", "N", "O", "F"),
    "moses": ("C", "N", "S", "O", "F", "Cl", "Br", "H"),
}

_ARR = re.compile(r"arr_(\d+)$")


def digress_atom_decoder(atom_classes) -> tuple[str, ...] | None:
    """DiGress's atom decoder for a dataset with these element classes (QM9 with / without H, MOSES), or None."""
    elements = set(atom_classes)
    for name, decoder in DIGRESS_ATOM_DECODERS.items():
        # DiGress's MOSES decoder lists H although its MOSES graphs have none
        if elements == set(decoder) or (name == "moses" and elements == set(decoder) - {"H"}):
            return decoder
    return None


@dataclass
class Samples:
    """What a sample file holds.

    ``format``: one of :data:`FORMATS`. ``graphs``: list of (node classes (n,), edge classes (n, n)) pairs
    (numpy; node classes are int64 class indices, or element symbols (dtype object) for molecules read from
    ``digress_txt``), or None. ``smiles``: list of SMILES strings (one per sample), or None. ``notes``: how the
    file was read (header skipped, column used), for the report. ``warnings``: what the reader had to guess or
    could not read (a first line taken for a header, samples that do not parse as SMILES with their line numbers,
    a default that stands in for a missing array), for the report's ``warnings``.
    """

    format: str
    graphs: list | None = None
    smiles: list | None = None
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.graphs if self.graphs is not None else self.smiles)




# ---------------------------------------------------------------------------- detection
def detect_format(path: str | os.PathLike) -> str:
    """The format of a sample file from its content (see the module docstring)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head.strip():
        fail(path, "is empty", "samples in one of the formats " + ", ".join(FORMATS))
    if head.startswith(b"PK\x03\x04"):
        try:
            with np.load(path) as z:
                keys = list(z.files)
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            fail(path, f"is a zip archive numpy cannot read as .npz ({e})", "an .npz of graphs")
        if {"num_nodes", "edges", "edge_ptr"} <= set(keys):
            return "npz_edges"
        if keys and all(_ARR.match(k) for k in keys):
            return "npz_adjacency"
        fail(path, f"is an .npz with arrays {sorted(keys)[:8]}",
              "arrays num_nodes, edges, edge_ptr (sympe) or arr_0, arr_1, ... of adjacency matrices (DiGress)")
    if head.startswith(b"\x93NUMPY"):
        fail(path, "is a single .npy array", "an .npz of graphs (npz_edges or npz_adjacency) or a text file")
    if b"\x00" in head or head.startswith((b"\x1f\x8b", b"\x89HDF", b"\x80")):
        fail(path, "is binary (gzip, HDF5, pickle or NUL bytes)",
              "an .npz of graphs, DiGress's N=/X:/E: text dump, a CSV with a SMILES column or SMILES lines")
    first = next((ln.strip() for ln in head.decode("utf-8", errors="replace").splitlines() if ln.strip()), "")
    if first.startswith("N="):
        return "digress_txt"
    return "csv" if "," in first else "smiles"


def read_samples(path: str | os.PathLike, molecular: bool, format: str = "auto", column: str | int | None = None,
                 header: bool | str = "auto", atom_decoder: tuple[str, ...] | None = None) -> Samples:
    """Read a file of generated samples (see the module docstring for formats and detection).

    ``molecular``: the dataset is molecular (SMILES formats allowed; ``digress_txt`` node classes are
    decoded with ``atom_decoder``; an ``npz_edges`` file needs ``node_classes``; SMILES must parse, see
    :mod:`~sympe.datasets.samples.smiles_files`). Raises :class:`SampleFileMissing` (a ``FileNotFoundError``) or
    :class:`SampleFileError` (a ``ValueError``) naming the file; what was guessed or does not parse is in the
    result's ``warnings``.
    """
    path = Path(path)
    if not path.is_file():
        raise SampleFileMissing(f"samples file {str(path)!r} does not exist")
    if format not in ("auto", *FORMATS):
        raise SampleFileError(f"format={format!r} is unknown; choose auto or one of {list(FORMATS)}")
    if header not in ("auto", True, False):
        raise SampleFileError(f"header={header!r}: use auto, true or false")
    fmt = detect_format(path) if format == "auto" else format
    if fmt in SMILES_FORMATS and not molecular:
        fail(path, f"reads as {fmt} text (first line {_first_line(path)!r}) but the dataset is not molecular",
              "graphs: an .npz (npz_edges / npz_adjacency) or DiGress's N=/X:/E: text dump")
    if fmt == "npz_edges":
        return Samples(fmt, graphs=read_npz_edges(path), warnings=_molecule_arrays(path) if molecular else [])
    if fmt == "npz_adjacency":
        if molecular:
            fail(path, "holds bare adjacency matrices (npz_adjacency), which carry no atom or bond types",
                  "molecules as SMILES, as npz_edges with node_classes / edge_classes, or as a DiGress text dump")
        return Samples(fmt, graphs=read_npz_adjacency(path))
    if fmt == "digress_txt":
        graphs = read_digress_txt(path)
        if molecular:
            if atom_decoder is None:
                raise SampleFileError(f"samples file {str(path)!r} is a DiGress text dump of molecules: pass "
                                 f"atom_decoder= (DiGress's class order, e.g. {DIGRESS_ATOM_DECODERS['qm9_h']})")
            graphs = [(_decode_atoms(path, g, a, atom_decoder), b) for g, (a, b) in enumerate(graphs)]
        return Samples(fmt, graphs=graphs)
    read = read_csv_samples(path, column, header) if fmt == "csv" else read_smiles_samples(path, header)
    return Samples(fmt, smiles=read.smiles, notes=read.notes, warnings=read.warnings)


def _molecule_arrays(path: Path) -> list[str]:
    """Refuse an ``npz_edges`` file of molecules without ``node_classes`` (every atom would read as class 0);
    a warning when it lacks ``edge_classes`` (every bond reads as class 1, single)."""
    with np.load(path) as z:
        keys = set(z.files)
    if "node_classes" not in keys:
        fail(path, "is an npz_edges file without node_classes, so it says nothing of the atoms (each would be read as "
                   "the dataset's first atom type)", "node_classes (one atom class index per node) for a molecular "
                   "dataset, as save_graphs_npz writes it, or the molecules as SMILES")
    if "edge_classes" not in keys:
        return [f"samples file {str(path)!r} has no edge_classes: every edge is read as class 1 (a single bond)"]
    return []


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        return f.readline(200).decode("utf-8", errors="replace").strip()


# ---------------------------------------------------------------------------- graph formats
def _int_array(path, a: np.ndarray, name: str, graph: int | None = None) -> np.ndarray:
    where = f"{name}" if graph is None else f"graph {graph}: {name}"
    if a.dtype.kind == "b" or a.size == 0:  # an empty array (numpy's default dtype float) holds no float id
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        fail(path, f"{where} has dtype {a.dtype}", "integer node ids / class indices (float ids are refused)")
    return a.astype(np.int64)


def read_npz_edges(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """Graphs of an ``npz_edges`` file as (node classes (n,), edge classes (n, n)) int64 pairs."""
    path = Path(path)
    with np.load(path) as z:
        missing = [k for k in ("num_nodes", "edges", "edge_ptr") if k not in z.files]
        if missing:
            fail(path, f"lacks arrays {missing} (has {sorted(z.files)})", "num_nodes (G,), edges (M, 2), edge_ptr (G+1,)")
        arrays = {k: z[k] for k in z.files}
    n = _int_array(path, arrays["num_nodes"], "num_nodes")
    e = _int_array(path, arrays["edges"], "edges")
    ptr = _int_array(path, arrays["edge_ptr"], "edge_ptr")
    if n.ndim != 1:
        fail(path, f"num_nodes has shape {n.shape}", "shape (G,)")
    if n.size == 0:
        fail(path, "holds no graphs (num_nodes is empty)", "at least one graph")
    if (n < 0).any():
        fail(path, f"graph {int(np.argmax(n < 0))} has a negative node count", "num_nodes >= 0")
    if e.ndim != 2 or e.shape[1] != 2:
        if not (e.size == 0 and e.ndim <= 2):
            fail(path, f"edges has shape {e.shape}", "shape (M, 2): one row (u, v) per undirected edge")
        e = e.reshape(0, 2)
    if ptr.shape != (n.size + 1,) or ptr[0] != 0 or ptr[-1] != e.shape[0] or (np.diff(ptr) < 0).any():
        fail(path, f"edge_ptr has shape {ptr.shape} and runs {ptr[:1].tolist()}..{ptr[-1:].tolist()}",
              f"a non-decreasing edge_ptr of length G + 1 = {n.size + 1} from 0 to len(edges) = {e.shape[0]}")
    ecls = arrays.get("edge_classes")
    ecls = np.ones(e.shape[0], np.int64) if ecls is None else _int_array(path, ecls, "edge_classes")
    ncls = arrays.get("node_classes")
    ncls = np.zeros(int(n.sum()), np.int64) if ncls is None else _int_array(path, ncls, "node_classes")
    if ecls.shape != (e.shape[0],):
        fail(path, f"edge_classes has shape {ecls.shape}", f"shape ({e.shape[0]},), one class per edge")
    if ncls.shape != (int(n.sum()),):
        fail(path, f"node_classes has shape {ncls.shape}", f"shape ({int(n.sum())},) = the sum of num_nodes")
    graphs, offset = [], 0
    for g in range(n.size):
        ng = int(n[g])
        eg, cg = e[ptr[g]:ptr[g + 1]], ecls[ptr[g]:ptr[g + 1]]
        if eg.size and (eg.min() < 0 or eg.max() >= ng):
            fail(path, f"graph {g} has an edge endpoint {int(eg.max() if eg.max() >= ng else eg.min())} "
                        f"outside its nodes 0..{ng - 1}", "node ids numbered from 0 within each graph")
        loops = eg[:, 0] == eg[:, 1]
        if loops.any():
            fail(path, f"graph {g} has a self-loop at node {int(eg[loops][0, 0])}", "simple graphs (no edge (i, i))")
        if (cg <= 0).any():
            fail(path, f"graph {g} lists an edge with class {int(cg[cg <= 0][0])}", "edge classes >= 1 (0 = no edge)")
        bonds = np.zeros((ng, ng), np.int64)
        lo, hi = np.minimum(eg[:, 0], eg[:, 1]), np.maximum(eg[:, 0], eg[:, 1])
        if len(np.unique(lo * max(ng, 1) + hi)) != len(lo):
            fail(path, f"graph {g} lists an edge twice", "each undirected edge once")
        bonds[lo, hi] = cg
        bonds[hi, lo] = cg
        graphs.append((ncls[offset:offset + ng], bonds))
        offset += ng
    return graphs


def check_adjacency(path, g: int, a: np.ndarray) -> np.ndarray:
    """(n, n) int64 0/1 adjacency of graph ``g`` of ``path``, or ``ValueError`` naming the problem."""
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        fail(path, f"graph {g} has an adjacency of shape {a.shape}", "a square (n, n) matrix")
    if a.dtype.kind not in "biuf":
        fail(path, f"graph {g} has an adjacency of dtype {a.dtype}", "0/1 entries (bool, int or float)")
    if a.size and not np.isin(a, (0, 1)).all():
        bad = a[~np.isin(a, (0, 1))].ravel()[0].item()
        fail(path, f"graph {g} has an adjacency entry {bad!r}", "0/1 entries (an unweighted simple graph)")
    a = a.astype(np.int64)
    if np.diagonal(a).any():
        fail(path, f"graph {g} has a self-loop at node {int(np.flatnonzero(np.diagonal(a))[0])}", "a zero diagonal")
    if (a != a.T).any():
        i, j = map(int, np.argwhere(a != a.T)[0])
        fail(path, f"graph {g} has an asymmetric adjacency (entry ({i}, {j}) but not ({j}, {i}))",
              "a symmetric matrix (undirected graph)")
    return a


def read_npz_adjacency(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """Graphs of DiGress's ``np.savez(file, *adjacencies)`` as (zeros (n,), adjacency (n, n)) int64 pairs."""
    path = Path(path)
    with np.load(path) as z:
        keys = sorted(z.files, key=lambda k: int(_ARR.match(k).group(1)) if _ARR.match(k) else -1)
        if not keys:
            fail(path, "holds no arrays", "arr_0, arr_1, ...: one adjacency matrix per graph")
        others = [k for k in keys if not _ARR.match(k)]
        if others:
            fail(path, f"has arrays {others} besides arr_<i>", "only arr_0, arr_1, ... (DiGress's np.savez)")
        mats = [z[k] for k in keys]
    return [(np.zeros(a.shape[0], np.int64), check_adjacency(path, g, a)) for g, a in enumerate(mats)]


def read_digress_txt(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """Graphs of DiGress's ``N= / X: / E:`` dump as (node classes (n,), edge classes (n, n)) int64 pairs."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    graphs, i = [], 0

    def ints(text: str, g: int, lineno: int) -> np.ndarray:
        try:
            return np.array([int(t) for t in text.split()], dtype=np.int64)
        except ValueError:
            fail(path, f"graph {g} (line {lineno}): {text.strip()[:60]!r} is not a list of integers",
                  "integer class indices")

    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        g = len(graphs)
        head = lines[i].strip()
        m = re.fullmatch(r"N=\s*(\S+)", head)
        if m is None:
            fail(path, f"graph {g} (line {i + 1}) starts with {head[:60]!r}", "a line N=<number of nodes>")
        try:
            n = int(m.group(1))
        except ValueError:
            fail(path, f"graph {g} (line {i + 1}): N={m.group(1)!r} is not an integer", "N=<integer>")
        if n < 0:
            fail(path, f"graph {g} (line {i + 1}): N={n}", "N >= 0")
        if i + 4 + n > len(lines) or lines[i + 1].strip() != "X:" or lines[i + 3].strip() != "E:":
            fail(path, f"graph {g} (line {i + 1}, N={n}) is truncated or lacks its X: / E: lines",
                  "N=, X:, one line of N node classes, E:, N lines of N edge classes")
        atoms = ints(lines[i + 2], g, i + 3)
        if atoms.shape != (n,):
            fail(path, f"graph {g} (line {i + 3}) has {atoms.size} node classes for N={n}", f"{n} node classes")
        rows = [ints(lines[i + 4 + r], g, i + 5 + r) for r in range(n)]
        if any(r.shape != (n,) for r in rows):
            r = next(k for k, row in enumerate(rows) if row.shape != (n,))
            fail(path, f"graph {g} (line {i + 5 + r}): edge row {r} has {rows[r].size} entries", f"{n} per row")
        bonds = np.stack(rows) if n else np.zeros((0, 0), np.int64)
        if np.diagonal(bonds).any():
            fail(path, f"graph {g} has a self-loop at node {int(np.flatnonzero(np.diagonal(bonds))[0])}",
                  "a zero diagonal in E")
        if (bonds != bonds.T).any():
            a, b = map(int, np.argwhere(bonds != bonds.T)[0])
            fail(path, f"graph {g} has an asymmetric E (entry ({a}, {b}) = {bonds[a, b]}, ({b}, {a}) = {bonds[b, a]})",
                  "a symmetric E")
        if (bonds < 0).any() or (atoms < 0).any():
            fail(path, f"graph {g} has a negative class index", "class indices >= 0")
        graphs.append((atoms, bonds))
        i += 4 + n
    if not graphs:
        fail(path, "holds no graphs", "N=/X:/E: blocks")
    return graphs


def _decode_atoms(path, g: int, atoms: np.ndarray, decoder: tuple[str, ...]) -> np.ndarray:
    if atoms.size and atoms.max() >= len(decoder):
        fail(path, f"graph {g} has node class {int(atoms.max())} beyond the atom decoder {list(decoder)}",
              "node classes indexing atom_decoder")
    return np.array([decoder[k] for k in atoms.tolist()], dtype=object)


def symbols_to_classes(symbols, atom_classes: tuple[str, ...]) -> tuple[np.ndarray | None, list[str]]:
    """(class indices (n,) int64, []) of element symbols, or (None, foreign elements) when some are not classes."""
    index = {a: k for k, a in enumerate(atom_classes)}
    foreign = sorted({s for s in symbols if s not in index})
    if foreign:
        return None, foreign
    return np.array([index[s] for s in symbols], dtype=np.int64), []
