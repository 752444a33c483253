"""``dataset=graphs``: a user's own graphs, from an ``.npz``, a folder of GraphML / GML / edge-list files, or one
edge-list file with a ``graph_id`` column (what is read and the rules: :mod:`sympe.datasets.sources.graph_readers`).

Classes
-------
Without ``node_label`` every node has the one class ``"node"``; without ``edge_label`` every edge the one class
``"edge"`` (edge classes ``["none", "edge"]``, class 0 = no edge). ``node_label=NAME`` makes the values of the node
attribute ``NAME`` categorical classes, inferred from the train split (after ``max_nodes``; values compared as strings; sorted
numerically when every value is a number, else alphabetically); every node must carry it. ``edge_label`` does the
same for edges, after the class ``"none"``. At most :data:`MAX_CLASSES` classes each: a label is categorical.

What is kept, and the split
---------------------------
Graphs with 0 nodes are skipped, and with ``max_nodes`` set graphs of more nodes are left out; both are counted in
the summary. The split is the graphs' own (a ``split`` graph attribute, column or array; when any graph names one,
every graph must) or else random with ``split_fractions`` and ``split_seed``
(:func:`sympe.datasets.sources.user_splits.assign_splits`, over the graphs kept). As for ``dataset=smiles``, a val /
test graph the train split cannot model is then left out and counted by reason: more nodes than the largest train
graph, a node count no train graph has (p(N) = 0: its NLL and floor would be infinite), a node / edge class no train
graph has. A val or test split left empty by that is an error.

Cache
-----
The processed folder is keyed (:func:`~sympe.datasets.sources.base.params_key`) by the SHA-256 of the input (the
file, or every file of the folder with its name) and every option, so a changed file or option builds a new folder;
``read_report.json`` beside the splits records what was read, skipped and symmetrised (:meth:`describe`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sympe.datasets.graph_utils import EDGE_CLASSES, NODE_CLASSES, classes_to_data
from sympe.datasets.sources.base import GraphDataset
from sympe.datasets.sources.graph_readers import GraphFilesError, RawGraph, check_params, input_files, read_graphs
from sympe.datasets.sources.user_splits import DEFAULT_FRACTIONS, SPLITS, assign_splits, describe_splits
from sympe.diffusion.info import DatasetInfo

__all__ = ["GraphFilesDataset", "MAX_CLASSES", "content_hash", "infer_classes"]

MAX_CLASSES = 100
READ_REPORT = "read_report.json"
FORMAT_VERSION = 2  # bump when reading changes what a file gives


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a folder's graph files (their names and contents, in name order), hex."""
    p = Path(path)
    files = input_files(p)
    stat = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if stat in _HASHES:
        return _HASHES[stat]
    h = hashlib.sha256()
    for f in files:
        if p.is_dir():
            h.update(f.name.encode() + b"\0")
        d = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                d.update(chunk)
        h.update(d.digest())
    _HASHES[stat] = h.hexdigest()
    return _HASHES[stat]


_HASHES: dict[tuple, str] = {}  # (file, size, mtime) of the files -> hash: the three splits hash once per process


def infer_classes(values, what: str) -> list[str]:
    """Sorted class names of the label values (as strings): numerically when all are numbers, else alphabetically.
    Raises :class:`GraphFilesError` (``what`` names the option) for more than :data:`MAX_CLASSES`."""
    names = {str(v) for v in values}
    if len(names) > MAX_CLASSES:
        shown = ", ".join(sorted(names)[:5])
        raise GraphFilesError(f"{what} has {len(names)} distinct values (e.g. {shown}); a label must be categorical "
                              f"(at most {MAX_CLASSES} classes): bin a continuous attribute first, or drop the option")
    try:
        return sorted(names, key=lambda s: (float(s), s))
    except ValueError:
        return sorted(names)


class GraphFilesDataset(GraphDataset):
    """One split of a user's graphs (module docstring).

    Args:
        root: data root; processed data go to ``root/processed/graphs-<key>/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        path: an ``.npz``, a folder of graph files, or one graph file (required).
        node_label, edge_label: attribute names whose values become node / edge classes (None: one class).
        symmetrize: read directed graphs as undirected (default False: they are refused).
        max_nodes: leave out graphs with more nodes (None: keep all; the model's size is the largest kept).
        split_fractions: (train, val, test) fractions of the random split (used when no graph names its split).
        split_seed: seed of the random split.

    Every option and the input's presence and file types are checked here, before anything is read; reading
    refuses (one :class:`~sympe.datasets.sources.graph_readers.GraphFilesError` line naming the file and the
    graph) self-loops, multi-edges, directed graphs without ``symmetrize``, labels missing on some nodes or on all,
    and split labels that are not train / val / test.
    """

    name = "graphs"
    extra_file_names = (READ_REPORT,)

    def __init__(self, root: str, split: str = "train", path: str | None = None, node_label: str | None = None,
                 edge_label: str | None = None, symmetrize: bool = False, max_nodes: int | None = None,
                 split_fractions=DEFAULT_FRACTIONS, split_seed: int = 0, transform=None, force_reload: bool = False):
        opts = check_params(dict(path=path, node_label=node_label, edge_label=edge_label, symmetrize=symmetrize,
                                 max_nodes=max_nodes, split_fractions=split_fractions, split_seed=split_seed))
        self.path, self.split_fractions = opts["path"], opts["split_fractions"]
        self.node_label, self.edge_label = node_label, edge_label
        self.symmetrize, self.max_nodes, self.split_seed = symmetrize, max_nodes, int(split_seed)
        self._hash = content_hash(self.path)
        super().__init__(root, split=split, transform=transform, force_reload=force_reload)

    # ---------------------------------------------------------------- GraphDataset hooks
    def cache_params(self) -> dict:
        return {"version": FORMAT_VERSION, "content_sha256": self._hash, "node_label": self.node_label,
                "edge_label": self.edge_label, "symmetrize": self.symmetrize, "max_nodes": self.max_nodes,
                "split_fractions": list(self.split_fractions), "split_seed": self.split_seed}

    def raw_source_problem(self) -> str | None:
        return None if os.path.exists(self.path) else f"its input {self.path!r} is gone"

    def build_splits(self) -> dict[str, list]:
        graphs = read_graphs(self.path, self.symmetrize)
        report = {"path": self.path, "graphs_read": len(graphs), "files": len(input_files(self.path))}
        kept = [g for g in graphs if g.num_nodes > 0]
        report["skipped_empty"] = len(graphs) - len(kept)
        for kind in ("node", "edge"):
            self._check_label(kept, kind)
        if self.max_nodes is not None:
            small = [g for g in kept if g.num_nodes <= self.max_nodes]
            report["skipped_over_max_nodes"] = len(kept) - len(small)
            kept = small
        if not kept:
            raise GraphFilesError(f"dataset.params.path={self.path}: no graph is left to train on "
                                  f"({report['graphs_read']} read, {report['skipped_empty']} with 0 nodes, "
                                  f"{report.get('skipped_over_max_nodes', 0)} over max_nodes={self.max_nodes})")
        labels = [g.split for g in kept]
        named = [g.split is not None for g in kept]
        if any(named) and not all(named):
            first = kept[named.index(False)].name
            raise GraphFilesError(f"graph file {first} names no split while {sum(named)} other graphs do; give every "
                                  "graph a split (train / val / test) or none of them")
        try:
            idx = assign_splits(len(kept), labels if all(named) else None, self.split_fractions, self.split_seed,
                                where=f"dataset.params.path={self.path}")
        except ValueError as exc:
            raise GraphFilesError(str(exc)) from None
        train = [kept[i] for i in idx["train"]]
        node_classes, edge_classes = self._classes(train, "node"), self._classes(train, "edge")
        sizes = {g.num_nodes for g in train}
        left_out: dict[str, int] = {}
        for s in ("val", "test"):
            modelled = []
            for i in idx[s]:
                why = self._unmodelled(kept[i], node_classes, edge_classes, sizes)
                if why is None:
                    modelled.append(i)
                else:
                    left_out[why] = left_out.get(why, 0) + 1
            idx[s] = modelled
        empty = [s for s in SPLITS if not idx[s]]
        if empty:
            why = ", ".join(f"{c} {r}" for r, c in left_out.items())
            raise GraphFilesError(f"dataset.params.path={self.path}: no graph of the {' / '.join(empty)} split can be "
                                  f"modelled from the train split ({why}); give more graphs, or other split_fractions "
                                  "/ split_seed / split labels so that train holds every size and class")
        parts = {s: [kept[i] for i in idx[s]] for s in SPLITS}
        kept = [g for s in SPLITS for g in parts[s]]
        sizes_out = {s: len(parts[s]) for s in SPLITS}
        report.update({
            "kept": len(kept), "split_sizes": sizes_out, "split_by_graphs": all(named), "left_out": left_out,
            "split": describe_splits(sizes_out, all(named), self.split_fractions, self.split_seed).replace(
                "by the split column", "by each graph's split attribute / column"),
            "node_classes": node_classes, "edge_classes": edge_classes, "node_label": self.node_label,
            "edge_label": self.edge_label, "max_nodes": max(sizes),
            "symmetrised": sum(g.symmetrised for g in kept), "merged_pairs": sum(g.merged_pairs for g in kept),
            "node_attributes": sorted({k for g in graphs for a in g.nodes for k in a}),
            "edge_attributes": sorted({k for g in graphs for _, _, a in g.edges for k in a}),
            "num_edges": sum(len(g.edges) for g in kept)})
        self._report, self._classes_found = report, (node_classes, edge_classes)
        return {s: [self._to_data(g, node_classes, edge_classes) for g in parts[s]] for s in SPLITS}

    def extra_files(self, splits: dict[str, list]) -> dict[str, str]:
        return {READ_REPORT: json.dumps(self._report, indent=1)}

    def make_info(self, train_graphs: list) -> DatasetInfo:
        node_classes, edge_classes = self._classes_found
        return DatasetInfo.from_graphs(train_graphs, name=self.name, node_classes=node_classes,
                                       edge_classes=edge_classes,
                                       extra={"node_label": self.node_label, "edge_label": self.edge_label})

    # ---------------------------------------------------------------- reading helpers
    def _check_label(self, graphs: list[RawGraph], kind: str) -> None:
        """Every ``kind`` (``"node"`` / ``"edge"``) of every graph carries the label attribute, when one is named."""
        label = self.node_label if kind == "node" else self.edge_label
        if label is None:
            return
        items = [(g, a) for g in graphs for a in (g.nodes if kind == "node" else [e[2] for e in g.edges])]
        have = [label in a for _, a in items]
        if not any(have):
            found = sorted({k for _, a in items for k in a})
            raise GraphFilesError(f"dataset.params.{kind}_label={label}: no {kind} of any graph in {self.path} has an "
                                  f"attribute {label!r}; {kind} attributes found: {', '.join(found) or 'none'}")
        if not all(have):
            g = items[have.index(False)][0]
            raise GraphFilesError(f"graph file {g.name}: {have.count(False)} {kind}(s) lack the attribute {label!r} "
                                  f"that dataset.params.{kind}_label names (other {kind}s have it); give every {kind} "
                                  "a value")

    def _classes(self, train: list[RawGraph], kind: str) -> list[str]:
        """The class names of ``kind`` (``"node"`` / ``"edge"``): one class without a label, else those of the
        train split."""
        label = self.node_label if kind == "node" else self.edge_label
        if label is None:
            return list(NODE_CLASSES) if kind == "node" else list(EDGE_CLASSES)
        values = (a[label] for g in train for a in (g.nodes if kind == "node" else [e[2] for e in g.edges]))
        classes = infer_classes(values, f"dataset.params.{kind}_label={label}")
        return classes if kind == "node" else ["none", *classes]

    def _unmodelled(self, g: RawGraph, node_classes: list[str], edge_classes: list[str], sizes: set[int]) -> str | None:
        """Why the train split cannot model the val / test graph ``g`` (p(N) = 0 or a class it lacks), or None."""
        if g.num_nodes > max(sizes):
            return "larger than train"
        if g.num_nodes not in sizes:
            return "size not in train"
        if self.node_label is not None and any(str(a[self.node_label]) not in node_classes for a in g.nodes):
            return "node class not in train"
        if self.edge_label is not None and any(str(a[self.edge_label]) not in edge_classes[1:] for *_, a in g.edges):
            return "edge class not in train"
        return None

    def _to_data(self, g: RawGraph, node_classes: list[str], edge_classes: list[str]):
        node_index = {c: k for k, c in enumerate(node_classes)}
        edge_index = {c: k for k, c in enumerate(edge_classes)}
        nl, el = self.node_label, self.edge_label
        nodes = [0 if nl is None else node_index[str(a[nl])] for a in g.nodes]
        edges = [(u, v) for u, v, _ in g.edges]
        ecls = [1 if el is None else edge_index[str(a[el])] for _, _, a in g.edges]
        return classes_to_data(nodes, edges, ecls, len(node_classes), len(edge_classes))

    # ---------------------------------------------------------------- summary
    def read_report(self) -> dict:
        """What the build read (``read_report.json``): counts, split, classes, skipped and symmetrised graphs."""
        return json.loads(self.processed_text(READ_REPORT))

    def summary_lines(self) -> list[str]:
        """The summary's lines (``train_diffusion.py train.summary_only=true``)."""
        r = self.read_report()
        skipped = [f"{r['skipped_empty']} with 0 nodes"]
        if "skipped_over_max_nodes" in r:
            skipped.append(f"{r['skipped_over_max_nodes']} over max_nodes={self.max_nodes}")
        skipped += [f"{c} val / test {why}" for why, c in r["left_out"].items()]
        lines = [f"[sympe] graphs: {r['graphs_read']:,} read from {r['files']:,} file(s) in {r['path']}; "
                 f"{r['kept']:,} kept ({', '.join(skipped)} skipped); {r['split']}",
                 f"[sympe] node classes ({_label_text(r['node_label'])}): {', '.join(r['node_classes'])}; "
                 f"edge classes ({_label_text(r['edge_label'])}): {', '.join(r['edge_classes'])}; "
                 f"max nodes {r['max_nodes']}, {r['num_edges']:,} edges",
                 f"[sympe] attributes in the files: nodes {', '.join(r['node_attributes']) or 'none'}; edges "
                 f"{', '.join(r['edge_attributes']) or 'none'} (node_label= / edge_label= make one of them classes)"]
        if r["symmetrised"]:
            lines.append(f"[sympe] symmetrised: {r['symmetrised']:,} directed graph(s) read as undirected "
                         f"(symmetrize=true); {r['merged_pairs']:,} pairs of opposite arcs merged into one edge each")
        elif r["merged_pairs"]:
            lines.append(f"[sympe] {r['merged_pairs']:,} edges listed in both directions were read once each")
        return lines


def _label_text(label) -> str:
    return "one class: no label" if label is None else f"from attribute {label!r}"

