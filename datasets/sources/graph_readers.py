"""Reading a user's graph files (``dataset=graphs``) into simple undirected graphs, never unpickling anything.

Inputs (``path``)
-----------------
* an ``.npz`` (``np.load(allow_pickle=False)``): sympe's / SPECTRE's edge lists (``num_nodes``, ``edges``,
  ``edge_ptr``, optional ``node_classes`` / ``edge_classes``, read by
  :func:`sympe.datasets.samples.readers.read_npz_edges`) or DiGress's ``arr_0, arr_1, ...`` adjacency matrices.
  The class arrays become the node / edge attribute ``class`` (their values, or the names in the optional string
  arrays ``node_class_names`` / ``edge_class_names``); an optional string array ``split`` (G,) gives each
  graph's split.
* a folder of graph files, one graph per file (a GraphML file may hold several), read in sorted name order; hidden
  files (``.name``) are ignored, any other file must have one of :data:`FILE_TYPES`' suffixes.
* one file of those types: ``.graphml`` (``GraphMLReader``: every graph of the file), ``.gml`` (``nx.read_gml``,
  node ids kept, ``label`` stays an attribute), ``.edgelist`` / ``.edges`` (``nx.read_edgelist``: ``u v`` or
  ``u v {"attr": value}`` per line, ``#`` comments), ``.csv`` / ``.tsv`` (a header with ``source`` and
  ``target``, optionally ``graph_id`` (one graph per id, in order of first appearance) and ``split``; every other
  column is an edge attribute, an empty cell a missing value).

Node order is the file's (edge lists: first appearance); nodes become 0..n-1 in that order. Edge lists cannot
hold isolated nodes or node attributes. A graph's split is its graph attribute ``split`` (GraphML / GML), its
``split`` column (constant per graph) or the npz's ``split`` array.

Rules (:func:`simple_graph`; every violation is one :class:`GraphFilesError` naming the file and the graph)
--------------------------------------------------------------------------------------------------------------
* Self-loops are refused; so are multi-edges: an undirected pair listed twice in a graph declared undirected
  (GraphML ``edgedefault="undirected"``, GML without ``directed 1``, npz), the same arc twice in a directed graph.
* A graph declared directed (GraphML / GML) is refused unless ``symmetrize=True``; then every arc u->v is the
  undirected edge {u, v}, and u->v with v->u is one edge (their attributes must agree).
* Edge lists do not declare a direction: every edge listed once, or every edge listed in both directions (read
  as one edge each), is an undirected graph; a mix of the two is refused (the data are likely directed) unless
  ``symmetrize=True``, which reads it as above.
"""
from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from sympe.datasets.sources.user_splits import check_split_options

__all__ = ["FILE_TYPES", "GraphFilesError", "RawGraph", "check_params", "input_files", "read_graphs", "simple_graph"]

#: suffix -> reader of the graph files a folder (or ``path`` itself) may hold
FILE_TYPES: dict[str, str] = {".graphml": "graphml", ".gml": "gml", ".edgelist": "edgelist", ".edges": "edgelist",
                              ".csv": "csv", ".tsv": "csv"}


class GraphFilesError(ValueError):
    """A graph input that cannot be used as given; one line naming the option or file, the graph and the fix.
    ``user_error``: the commands print it as one line (``sympe.diffusion.runs.options.user_errors``)."""

    user_error = True


@dataclass
class RawGraph:
    """One graph as read: ``name`` (file, and graph within it), node attributes in node order, ``edges`` as
    ``(u, v, attrs)`` with u < v node indices (each undirected edge once), ``split`` label or None;
    ``symmetrised``: a directed graph (or an edge list mixing directions) read as undirected with ``symmetrize``;
    ``merged_pairs``: pairs listed in both directions that became one edge each."""

    name: str
    nodes: list[dict]
    edges: list[tuple[int, int, dict]]
    split: str | None = None
    symmetrised: bool = False
    merged_pairs: int = 0

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)


# ---------------------------------------------------------------------------- options
def check_params(params: dict, prefix: str = "dataset.params") -> dict:
    """Check the options of ``dataset=graphs`` before anything is read (cheap: no graph is parsed): ``path`` given,
    existing, and a known file type or a folder of such files (:func:`input_files`); ``node_label`` / ``edge_label``
    attribute names or null; ``symmetrize`` a boolean; ``max_nodes`` null or an integer >= 1; ``split_seed`` an
    integer >= 0; ``split_fractions`` three fractions. Returns them normalised (``path`` absolute,
    ``split_fractions`` a tuple). Raises :class:`GraphFilesError` naming ``<prefix>.<option>``."""
    p = dict(params)
    path = p.get("path")
    if path is None or str(path) in ("", "???"):
        given = f"{prefix}.path=PATH" if "." in prefix else f"{prefix}={{path: PATH}}"  # evaluate.py: a mapping
        raise GraphFilesError(f"dataset=graphs needs {given}: an .npz of graphs, a folder of GraphML / GML / "
                              "edge-list files, or a CSV with columns graph_id,source,target")
    for key in ("node_label", "edge_label"):
        value = p.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip() or value == "split"):
            raise GraphFilesError(f"{prefix}.{key}={'null' if value is None else value} is not accepted: expected the "
                                  "name of a node / edge attribute (not 'split'), or null for one class")
    if not isinstance(p.get("symmetrize", False), bool):
        raise GraphFilesError(f"{prefix}.symmetrize={p['symmetrize']} is not accepted: expected true or false")
    value = p.get("max_nodes")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise GraphFilesError(f"{prefix}.max_nodes={value} is not accepted: expected an integer >= 1, or null for the "
                              "largest graph of the data")
    try:
        fractions = check_split_options(p, prefix)
    except ValueError as exc:
        raise GraphFilesError(str(exc)) from None
    path = os.path.abspath(os.path.expanduser(str(path)))
    input_files(path, f"{prefix}.path")  # exists, known file types, a folder not empty
    p.update(path=path, split_fractions=fractions)
    return p


# ---------------------------------------------------------------------------- inputs
def input_files(path: str | os.PathLike, option: str = "dataset.params.path") -> list[Path]:
    """The files to read for ``path`` (a folder: its graph files in name order; a file: itself), checked before any
    reading: the path exists, every file has a known type, a folder holds at least one. Raises
    :class:`GraphFilesError` naming ``option``."""
    p = Path(path)
    if not p.exists():
        raise GraphFilesError(f"{option}={path} does not exist; give an .npz of graphs, a folder of GraphML / GML / "
                              "edge-list files, or a CSV with columns graph_id,source,target")
    if p.is_file():
        if p.suffix.lower() != ".npz" and p.suffix.lower() not in FILE_TYPES:
            raise GraphFilesError(f"{option}={path}: unknown file type {p.suffix or '(no suffix)'!r}; expected .npz or "
                                  f"one of {', '.join(FILE_TYPES)} (or a folder of such files)")
        return [p]
    entries = sorted(e for e in p.iterdir() if not e.name.startswith("."))
    sub = [e.name for e in entries if e.is_dir()]
    if sub:
        raise GraphFilesError(f"{option}={path} holds the subfolder {sub[0]!r}: subfolders are not read; put every "
                              "graph file directly in the folder (or point path= at the subfolder)")
    unknown = [e.name for e in entries if e.suffix.lower() not in FILE_TYPES]
    if unknown:
        raise GraphFilesError(f"{option}={path} holds {len(unknown)} file(s) of unknown type (e.g. {unknown[0]!r}); a "
                              f"folder may hold only graph files ending in {', '.join(FILE_TYPES)}: move the others "
                              "out")
    if not entries:
        raise GraphFilesError(f"{option}={path} is an empty folder; put one graph file per graph in it "
                              f"({', '.join(FILE_TYPES)})")
    return entries


def read_graphs(path: str | os.PathLike, symmetrize: bool = False) -> list[RawGraph]:
    """Every graph of ``path`` (module docstring), in file order, as simple undirected :class:`RawGraph`."""
    p = Path(path)
    files = input_files(p)
    if len(files) == 1 and p.is_file() and p.suffix.lower() == ".npz":
        return _read_npz(p)
    out: list[RawGraph] = []
    for f in files:
        out.extend(_READERS[FILE_TYPES[f.suffix.lower()]](f, str(f), bool(symmetrize)))
    return out


# ---------------------------------------------------------------------------- the rules
def simple_graph(name: str, nodes: list, node_attrs: list[dict], arcs: list[tuple], directed: bool | None,
                 symmetrize: bool, split=None) -> RawGraph:
    """Apply the module's rules to one graph: ``nodes`` ids in order, ``arcs`` ``(u, v, attrs)`` by node id as
    listed, ``directed``: True / False as declared by the file, None for an edge list. Raises
    :class:`GraphFilesError` naming ``name``."""
    index = {v: i for i, v in enumerate(nodes)}
    loops = [u for u, v, _ in arcs if u == v]
    if loops:
        raise GraphFilesError(f"graph file {name}: self-loop at node {loops[0]!r} ({len(loops)} in all); only simple "
                              "graphs are accepted: remove the edges (i, i)")
    seen: dict[tuple, list] = {}
    for u, v, a in arcs:
        seen.setdefault((index[u], index[v]), []).append(a)
    twice = next(((u, v) for (u, v), lst in seen.items() if len(lst) > 1), None)
    if twice is None and directed is False:
        twice = next(((u, v) for (u, v) in seen if u > v and (v, u) in seen), None)
    if twice is not None:
        u, v = nodes[twice[0]], nodes[twice[1]]
        raise GraphFilesError(f"graph file {name}: the edge {u!r}-{v!r} is listed twice (a multi-edge); only simple "
                              "graphs are accepted: keep one edge per pair of nodes")
    pairs = sum(1 for (u, v) in seen if (v, u) in seen) // 2
    if directed and not symmetrize:
        raise GraphFilesError(f"graph file {name}: the graph is directed; pass dataset.params.symmetrize=true to read "
                              "every arc u->v as the undirected edge {u, v}, or write the graph as undirected")
    mixed = directed is None and 0 < pairs and 2 * pairs != len(seen)
    if mixed and not symmetrize:
        raise GraphFilesError(f"graph file {name}: {pairs} edge(s) are listed in both directions and "
                              f"{len(seen) - 2 * pairs} in one only, so the list looks directed; pass "
                              "dataset.params.symmetrize=true to read every row as an undirected edge, or list each "
                              "edge once (or every edge in both directions)")
    edges: dict[tuple[int, int], dict] = {}
    for (i, j), (a,) in seen.items():
        key = (min(i, j), max(i, j))
        if key in edges and edges[key] != a:
            raise GraphFilesError(f"graph file {name}: the two directions of edge {nodes[key[0]]!r}-{nodes[key[1]]!r} "
                                  f"carry different attributes ({edges[key]} and {a}); make them agree")
        edges[key] = a
    return RawGraph(name, list(node_attrs), [(i, j, a) for (i, j), a in sorted(edges.items())],
                    split=None if split is None else str(split), symmetrised=bool(directed or mixed),
                    merged_pairs=pairs)


def _from_networkx(g: nx.Graph, name: str, symmetrize: bool) -> RawGraph:
    """A graph read by networkx (GraphML, GML) through :func:`simple_graph`."""
    arcs = [(u, v, dict(a)) for u, v, a in g.edges(data=True)]
    return simple_graph(name, list(g.nodes), [dict(a) for _, a in g.nodes(data=True)], arcs, g.is_directed(),
                        symmetrize, g.graph.get("split"))


# ---------------------------------------------------------------------------- readers
def _read_graphml(path: Path, name: str, symmetrize: bool) -> list[RawGraph]:
    from networkx.readwrite.graphml import GraphMLReader

    try:
        graphs = list(GraphMLReader(node_type=str)(path=str(path)))
    except Exception as exc:  # noqa: BLE001 - XML / GraphML errors of many kinds
        raise GraphFilesError(f"graph file {name} is not readable GraphML ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); fix or remove it") from None
    if not graphs:
        raise GraphFilesError(f"graph file {name} holds no <graph> element; fix or remove it")
    if len(graphs) == 1:
        return [_from_networkx(graphs[0], name, symmetrize)]
    return [_from_networkx(g, f"{name} (graph {k})", symmetrize) for k, g in enumerate(graphs)]


def _read_gml(path: Path, name: str, symmetrize: bool) -> list[RawGraph]:
    try:
        g = nx.read_gml(str(path), label=None)
    except nx.NetworkXError as exc:
        text = str(exc)
        if "duplicated" in text:  # networkx: "edge #k (u--v) is duplicated" in a graph that is not a multigraph
            raise GraphFilesError(f"graph file {name}: {text} (a multi-edge); only simple graphs are accepted: keep "
                                  "one edge per pair of nodes") from None
        raise GraphFilesError(f"graph file {name} is not readable GML ({text}); fix or remove it") from None
    except Exception as exc:  # noqa: BLE001 - parse errors of many kinds
        raise GraphFilesError(f"graph file {name} is not readable GML ({type(exc).__name__}: {exc}); fix or remove "
                              "it") from None
    return [_from_networkx(g, name, symmetrize)]


def _read_edgelist(path: Path, name: str, symmetrize: bool) -> list[RawGraph]:
    try:  # a multi-digraph keeps every row as listed (duplicates, directions), in order
        g = nx.read_edgelist(str(path), create_using=nx.MultiDiGraph, nodetype=str, data=True)
    except Exception as exc:  # noqa: BLE001 - networkx raises TypeError / IndexError for malformed rows
        raise GraphFilesError(f"graph file {name} is not an edge list networkx can read ({exc}); expected one edge "
                              "per line: 'u v' or 'u v {\"attr\": value}'") from None
    arcs = [(u, v, dict(a)) for u, v, a in g.edges(data=True)]
    if not arcs:
        raise GraphFilesError(f"graph file {name} lists no edges; an edge list needs at least one 'u v' line")
    return [simple_graph(name, list(g.nodes), [{} for _ in g.nodes], arcs, None, symmetrize)]


def _read_csv(path: Path, name: str, symmetrize: bool) -> list[RawGraph]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise GraphFilesError(f"graph file {name} is not UTF-8 text ({exc.reason}); save it as UTF-8 (e.g. from a "
                              "spreadsheet: CSV UTF-8)") from None
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (131,072 characters), a NUL byte
        raise GraphFilesError(f"graph file {name}, line {reader.line_num}: not readable as "
                              f"{path.suffix.lower()[1:].upper()} ({exc}); "
                              "give one edge per row: source,target (graph_id, split, attributes)") from None
    header = [h.strip() for h in rows[0]] if rows else []
    cols = {h.lower(): k for k, h in enumerate(header)}
    if "source" not in cols or "target" not in cols:
        raise GraphFilesError(f"graph file {name}: header {header[:6]} lacks source / target; expected a header row "
                              "with columns source,target (and graph_id for several graphs, split optional)")
    src, dst, gid, spl = cols["source"], cols["target"], cols.get("graph_id"), cols.get("split")
    extra = [(k, h) for k, h in enumerate(header) if k not in (src, dst, gid, spl)]
    groups: dict[str, dict] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise GraphFilesError(f"graph file {name}, line {lineno}: {len(row)} fields for {len(header)} columns; "
                                  "give every row one value per column")
        key = row[gid].strip() if gid is not None else ""
        grp = groups.setdefault(key, {"nodes": {}, "arcs": [], "splits": set()})
        u, v = row[src].strip(), row[dst].strip()
        if not u or not v:
            raise GraphFilesError(f"graph file {name}, line {lineno}: an empty source or target; every row is an edge")
        grp["nodes"].setdefault(u, None)
        grp["nodes"].setdefault(v, None)
        grp["arcs"].append((u, v, {h: row[k].strip() for k, h in extra if row[k].strip()}))
        if spl is not None:
            grp["splits"].add(row[spl].strip())
    if not groups:
        raise GraphFilesError(f"graph file {name} holds a header and no edges; give one edge per row")
    out = []
    for key, grp in groups.items():
        where = name if gid is None else f"{name} (graph_id {key!r})"
        if len(grp["splits"]) > 1:
            raise GraphFilesError(f"graph file {where}: its rows name the splits {sorted(grp['splits'])}; the split "
                                  "column must be the same on every row of a graph")
        split = next(iter(grp["splits"])) if grp["splits"] else None
        nodes = list(grp["nodes"])
        out.append(simple_graph(where, nodes, [{} for _ in nodes], grp["arcs"], None, symmetrize, split))
    return out


def _read_npz(path: Path) -> list[RawGraph]:
    from sympe.datasets.samples.errors import SampleFileError
    from sympe.datasets.samples.readers import detect_format, read_npz_adjacency, read_npz_edges

    name = str(path)
    try:
        fmt = detect_format(path)
        if fmt not in ("npz_edges", "npz_adjacency"):
            raise GraphFilesError(f"graph file {name} is not an .npz of graphs; expected arrays num_nodes, edges, "
                                  "edge_ptr (sympe, SPECTRE) or arr_0, arr_1, ... (DiGress)")
        graphs = read_npz_edges(path) if fmt == "npz_edges" else read_npz_adjacency(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("node_classes", "edge_classes", "node_class_names", "edge_class_names",
                                        "split") if k in z.files}
    except SampleFileError as exc:
        raise GraphFilesError(str(exc).replace("samples file", "graph file", 1)) from None
    except (ValueError, zipfile.BadZipFile, OSError) as exc:  # e.g. an object array, which needs unpickling
        raise GraphFilesError(f"graph file {name} cannot be read without unpickling or is damaged ({exc}); save "
                              "plain numeric (and string) arrays") from None
    split = arrays.get("split")
    if split is not None and (split.dtype.kind not in "US" or split.shape != (len(graphs),)):
        raise GraphFilesError(f"graph file {name}: its split array has shape {split.shape} and dtype {split.dtype}; "
                              f"expected ({len(graphs)},) strings train / val / test")
    node_names, edge_names = arrays.get("node_class_names"), arrays.get("edge_class_names")
    out = []
    for g, (atoms, bonds) in enumerate(graphs):
        n = len(atoms)
        nodes = [{"class": _class_value(c, node_names)} for c in atoms.tolist()] if "node_classes" in arrays else \
            [{} for _ in range(n)]
        u, v = np.nonzero(np.triu(bonds, k=1))
        labelled = "edge_classes" in arrays
        edges = [(int(a), int(b), {"class": _class_value(int(bonds[a, b]), edge_names)} if labelled else {})
                 for a, b in zip(u, v)]
        out.append(RawGraph(f"{name} (graph {g})", nodes, edges, None if split is None else str(split[g])))
    return out


def _class_value(index: int, names) -> object:
    """A class index of an npz, or its name when the file carries the names (``*_class_names``)."""
    if names is None:
        return int(index)
    if not 0 <= index < len(names):
        raise GraphFilesError(f"class index {index} has no entry in the file's class names {list(names)[:8]}")
    return str(names[index])


_READERS = {"graphml": _read_graphml, "gml": _read_gml, "edgelist": _read_edgelist, "csv": _read_csv}
