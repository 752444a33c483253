"""dataset=graphs (sympe.datasets.sources.graph_files / graph_readers): every input form reads to the same graphs,
labels become classes, each refusal is one line naming the file / option, splits by attribute or at random, the
cache follows the content, the metrics of the test split against itself vanish with their references beside them,
and a folder of GraphML files trains, samples and scores end to end."""
from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import yaml

from support import REPO
from sympe.datasets.config import DatasetConfigError, check_dataset_params, dataset_config, summary_text
from sympe.datasets.evaluation import sample_metrics, score_sample_file
from sympe.datasets.registry import build_splits
from sympe.datasets.samples.writers import save_graphs_npz, write_samples
from sympe.datasets.sources.graph_files import GraphFilesDataset
from sympe.datasets.sources.graph_readers import GraphFilesError, read_graphs


# ---------------------------------------------------------------------------- the graphs, in every form
def molecules_like(count: int = 10) -> list[nx.Graph]:
    """Small connected graphs on nodes 0..n-1, node attribute ``type`` (C / N) and edge attribute ``bond`` (1 / 2);
    sizes repeat (4..7 nodes) so that a random split's val / test graphs have sizes train has."""
    out = []
    for k in range(count):
        g = [nx.path_graph, nx.cycle_graph, nx.star_graph][k % 3](4 + k % 4)
        g = nx.convert_node_labels_to_integers(g)
        for v in g.nodes:
            g.nodes[v]["type"] = "N" if (v + k) % 3 == 0 else "C"
        for u, v in g.edges:
            g.edges[u, v]["bond"] = 2 if (u + v + k) % 4 == 0 else 1
        out.append(g)
    return out


def write_forms(folder: Path, graphs: list[nx.Graph]) -> dict[str, Path]:
    """The same graphs as GraphML, GML, edge-list and CSV folders, one CSV with graph ids, and an npz."""
    forms = {k: folder / k for k in ("graphml", "gml", "edgelist", "csv_folder")}
    for p in forms.values():
        p.mkdir(parents=True)
    rows = ["graph_id,source,target,bond"]
    for k, g in enumerate(graphs):
        nx.write_graphml(g, forms["graphml"] / f"g{k:02d}.graphml")
        nx.write_gml(g, forms["gml"] / f"g{k:02d}.gml")
        (forms["edgelist"] / f"g{k:02d}.edgelist").write_text(
            "".join(f"{u} {v} {{'bond': {a['bond']}}}\n" for u, v, a in g.edges(data=True)))
        (forms["csv_folder"] / f"g{k:02d}.csv").write_text(
            "source,target,bond\n" + "".join(f"{u},{v},{a['bond']}\n" for u, v, a in g.edges(data=True)))
        rows += [f"graph{k},{u},{v},{a['bond']}" for u, v, a in g.edges(data=True)]
    forms["csv_ids"] = folder / "all.csv"
    forms["csv_ids"].write_text("\n".join(rows) + "\n")
    forms["npz"] = folder / "all.npz"
    types, bonds = ["C", "N"], ["none", "1", "2"]
    pairs = []
    for g in graphs:
        n = g.number_of_nodes()
        b = np.zeros((n, n), np.int64)
        for u, v, a in g.edges(data=True):
            b[u, v] = b[v, u] = a["bond"]
        pairs.append((np.array([types.index(g.nodes[v]["type"]) for v in range(n)]), b))
    save_graphs_npz(forms["npz"], pairs, node_class_names=types, edge_class_names=bonds)
    return forms


def as_networkx(raw) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from((i, {k: str(v) for k, v in a.items()}) for i, a in enumerate(raw.nodes))
    g.add_edges_from((u, v, {k: str(x) for k, x in a.items()}) for u, v, a in raw.edges)
    return g


@pytest.fixture()
def forms(tmp_path):
    graphs = molecules_like()
    return graphs, write_forms(tmp_path / "in", graphs)


def test_every_input_form_reads_the_same_graphs(forms):
    graphs, paths = forms
    edge_attr = {"graphml": "bond", "gml": "bond", "edgelist": "bond", "csv_folder": "bond", "csv_ids": "bond",
                 "npz": "class"}
    for form, path in paths.items():
        read = read_graphs(path)
        assert len(read) == len(graphs), form
        for raw, g in zip(read, graphs):
            h = as_networkx(raw)
            assert (h.number_of_nodes(), h.number_of_edges()) == (g.number_of_nodes(), g.number_of_edges()), form
            ref = nx.Graph(g)
            for u, v, a in ref.edges(data=True):
                a[edge_attr[form]] = str(a["bond"])
            node_match = None
            if form in ("graphml", "gml", "npz"):  # edge lists hold no node attributes
                key = "class" if form == "npz" else "type"
                for v, a in ref.nodes(data=True):
                    a[key] = a["type"]
                node_match = nx.algorithms.isomorphism.categorical_node_match(key, None)
            edge_match = nx.algorithms.isomorphism.categorical_edge_match(edge_attr[form], None)
            assert nx.is_isomorphic(h, ref, node_match=node_match, edge_match=edge_match), (form, raw.name)
    # node order: the file's (GraphML keeps 0..n-1), and every graph is named by its file
    first = read_graphs(paths["graphml"])[0]
    assert first.name.endswith("g00.graphml") and [a["type"] for a in first.nodes] == \
        [graphs[0].nodes[v]["type"] for v in range(graphs[0].number_of_nodes())]
    assert read_graphs(paths["csv_ids"])[2].name.endswith("all.csv (graph_id 'graph2')")


def test_labels_become_classes_inferred_from_the_data(forms, tmp_path):
    graphs, paths = forms
    splits = build_splits("graphs", str(tmp_path / "root"), path=str(paths["graphml"]), node_label="type",
                          edge_label="bond")
    info = splits["train"].info
    assert info.node_classes == ["C", "N"] and info.edge_classes == ["none", "1", "2"]
    assert info.extra == {"node_label": "type", "edge_label": "bond"}
    match = {"node_match": nx.algorithms.isomorphism.categorical_node_match("type", None),
             "edge_match": nx.algorithms.isomorphism.categorical_edge_match("bond", None)}
    for d in (d for ds in splits.values() for d in ds):  # every graph is one of the sources, classes included
        h = nx.Graph()
        h.add_nodes_from((i, {"type": info.node_classes[c]}) for i, c in enumerate(d.x.argmax(1).tolist()))
        ei, cls = d.edge_index.tolist(), d.edge_attr.argmax(1).tolist()
        h.add_edges_from((u, v, {"bond": int(info.edge_classes[c])}) for u, v, c in zip(*ei, cls) if u < v)
        assert sum(nx.is_isomorphic(h, g, **match) for g in graphs) == 1
    # without labels: one node class, one edge class; numbers sort as numbers
    plain = GraphFilesDataset(str(tmp_path / "root"), path=str(paths["csv_ids"]))
    assert plain.info.node_classes == ["node"] and plain.info.edge_classes == ["none", "edge"]
    (paths["csv_ids"]).write_text(paths["csv_ids"].read_text().replace(",2\n", ",10\n"))
    ten = GraphFilesDataset(str(tmp_path / "root"), path=str(paths["csv_ids"]), edge_label="bond")
    assert ten.info.edge_classes == ["none", "1", "10"]


def write_graphml(folder: Path, graphs, **per_graph) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, g in enumerate(graphs):
        for key, values in per_graph.items():
            if values[k] is not None:
                g.graph[key] = values[k]
        nx.write_graphml(g, folder / f"g{k:03d}.graphml")
    return folder


def refusal(tmp_path, **params) -> str:
    with pytest.raises(GraphFilesError) as err:
        build_splits("graphs", str(tmp_path / "root"), **params)
    message = str(err.value)
    assert "\n" not in message and getattr(err.value, "user_error", False)
    return message


def test_bad_input_is_refused_in_one_line_naming_the_file_and_the_graph(tmp_path):
    ok = write_graphml(tmp_path / "ok", molecules_like())
    assert "needs dataset.params.path=PATH" in refusal(tmp_path)
    assert "does not exist" in refusal(tmp_path, path=str(tmp_path / "nowhere"))
    assert not (tmp_path / "root").exists()  # checked before anything is processed
    (ok / "README.md").write_text("my graphs")
    assert "file(s) of unknown type (e.g. 'README.md')" in refusal(tmp_path, path=str(ok))
    (ok / "README.md").unlink()
    assert not (tmp_path / "root").exists()
    msg = refusal(tmp_path, path=str(ok), node_label="colour")
    assert "node_label=colour: no node of any graph" in msg and "node attributes found: type" in msg
    assert "edge attributes found: bond" in refusal(tmp_path, path=str(ok), edge_label="weight")
    assert "split_fractions=[0.5, 0.5] is not accepted" in refusal(tmp_path, path=str(ok), split_fractions=[0.5, 0.5])
    assert "max_nodes=0 is not accepted" in refusal(tmp_path, path=str(ok), max_nodes=0)

    partial = molecules_like()
    del partial[3].nodes[0]["type"]
    msg = refusal(tmp_path, path=str(write_graphml(tmp_path / "partial", partial)), node_label="type")
    assert "g003.graphml: 1 node(s) lack the attribute 'type'" in msg

    directed = write_graphml(tmp_path / "directed", [nx.DiGraph([(0, 1), (1, 2)])] + molecules_like(4))
    msg = refusal(tmp_path, path=str(directed))
    assert "g000.graphml: the graph is directed; pass dataset.params.symmetrize=true" in msg

    loops = molecules_like()
    loops[2].add_edge(1, 1)
    assert "g002.graphml: self-loop at node '1'" in refusal(tmp_path, path=str(write_graphml(tmp_path / "loop", loops)))

    multi = [nx.MultiGraph(g) for g in molecules_like()]
    multi[4].add_edge(0, 1)
    msg = refusal(tmp_path, path=str(write_graphml(tmp_path / "multi", multi)))
    assert "g004.graphml: the edge '0'-'1' is listed twice (a multi-edge)" in msg
    gml = tmp_path / "gml"
    gml.mkdir()
    (gml / "dup.gml").write_text("graph [\n node [ id 0 ]\n node [ id 1 ]\n edge [ source 0 target 1 ]\n"
                                 " edge [ source 1 target 0 ]\n]\n")
    assert "dup.gml: edge #1 (1--0) is duplicated (a multi-edge)" in refusal(tmp_path, path=str(gml))

    csv = tmp_path / "e.csv"
    csv.write_text("graph_id,source,target\na,0,1\na,1,2\na,0,1\nb,0,1\n")
    assert "e.csv (graph_id 'a'): the edge '0'-'1' is listed twice" in refusal(tmp_path, path=str(csv))
    csv.write_text("graph_id,source,target\na,0,1\na,1,0\na,1,2\nb,0,1\n")
    assert "looks directed; pass dataset.params.symmetrize=true" in refusal(tmp_path, path=str(csv))
    csv.write_text("graph_id,from,to\na,0,1\n")
    assert "lacks source / target" in refusal(tmp_path, path=str(csv))

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, num_nodes=np.array([2]), edges=np.array([[0, 1]]), edge_ptr=np.array([0, 1]),
             split=np.array(["train"], dtype=object))
    assert "cannot be read without unpickling" in refusal(tmp_path, path=str(pickled))
    loop_npz = tmp_path / "loop.npz"
    np.savez(loop_npz, num_nodes=np.array([3]), edges=np.array([[0, 1], [2, 2]]), edge_ptr=np.array([0, 2]))
    assert "graph file" in (m := refusal(tmp_path, path=str(loop_npz))) and "graph 0 has a self-loop at node 2" in m
    assert "symmetrize=yes is not accepted: expected true or false" in \
        refusal(tmp_path, path=str(csv), symmetrize="yes")


def test_directed_graphs_are_symmetrised_on_request_and_the_summary_says_so(tmp_path):
    graphs = [nx.DiGraph([(0, 1), (1, 0), (1, 2), (2, 3)])] + [nx.path_graph(4 + k % 3, create_using=nx.DiGraph)
                                                                for k in range(9)]
    folder = write_graphml(tmp_path / "directed", graphs)
    splits = build_splits("graphs", str(tmp_path / "root"), path=str(folder), symmetrize=True)
    assert sorted(int(d.edge_index.shape[1]) // 2 for s in splits.values() for d in s) == [3] * 4 + [4] * 3 + [5] * 3
    text = summary_text("graphs", {"path": str(folder)}, splits, floor=False)
    assert "symmetrised: 10 directed graph(s) read as undirected (symmetrize=true); 1 pairs of opposite arcs merged" \
        in text


def test_empty_and_large_graphs_are_skipped_with_counts(tmp_path):
    graphs = molecules_like(10) + [nx.Graph(), nx.Graph()]
    folder = write_graphml(tmp_path / "g", graphs)
    ds = GraphFilesDataset(str(tmp_path / "root"), path=str(folder), max_nodes=6, split_fractions=[0.6, 0.2, 0.2])
    report = ds.read_report()
    assert report["graphs_read"] == 12 and report["skipped_empty"] == 2
    assert report["skipped_over_max_nodes"] == 3 and report["kept"] == 7 and ds.info.max_nodes <= 6
    lines = ds.summary_lines()
    assert "12 read from 12 file(s)" in lines[0] and "7 kept (2 with 0 nodes, 3 over max_nodes=6 skipped)" in lines[0]
    assert "max nodes 6" in lines[1]


def test_a_split_attribute_decides_otherwise_a_seeded_random_split(tmp_path):
    graphs = molecules_like(10)
    labels = ["train"] * 6 + ["val", "valid", "test", "TEST"]
    by_attr = write_graphml(tmp_path / "attr", graphs, split=labels)
    splits = build_splits("graphs", str(tmp_path / "root"), path=str(by_attr))
    sizes = {s: sorted(int(d.num_nodes) for d in ds) for s, ds in splits.items()}
    assert sizes == {"train": [4, 4, 5, 6, 7, 7], "val": [6, 7], "test": [5, 5]}
    assert "split 6 / 2 / 2 (by each graph's split attribute / column)" in splits["train"].summary_lines()[0]
    # csv split column, constant per graph
    csv = tmp_path / "s.csv"
    csv.write_text("graph_id,source,target,split\n" + "".join(
        f"{k},0,1,{s}\n{k},1,2,{s}\n" for k, s in enumerate(["train", "train", "val", "test"])))
    assert [len(d) for d in build_splits("graphs", str(tmp_path / "root"), path=str(csv)).values()] == [2, 1, 1]

    random_folder = write_graphml(tmp_path / "random", molecules_like(10))
    a = build_splits("graphs", str(tmp_path / "root"), path=str(random_folder), split_seed=1)
    b = build_splits("graphs", str(tmp_path / "root2"), path=str(random_folder), split_seed=1)
    c = build_splits("graphs", str(tmp_path / "root"), path=str(random_folder), split_seed=2)
    order = lambda sp: [int(d.num_nodes) for s in ("train", "val", "test") for d in sp[s]]  # noqa: E731
    assert order(a) == order(b) != order(c) and [len(a[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert "split 8 / 1 / 1 (random, fractions 0.8 / 0.1 / 0.1, seed 1)" in a["train"].summary_lines()[0]

    partial = write_graphml(tmp_path / "partial", molecules_like(5), split=["train", None, "val", "test", "test"])
    assert "g001.graphml names no split while 4 other graphs do" in refusal(tmp_path, path=str(partial))
    bad = write_graphml(tmp_path / "bad", molecules_like(4), split=["train", "tset", "val", "test"])
    assert "1 split labels are not train / val / test (item 1: 'tset')" in refusal(tmp_path, path=str(bad))


def test_the_cache_is_keyed_by_the_content_and_every_option(tmp_path):
    folder = write_graphml(tmp_path / "g", molecules_like())
    root = str(tmp_path / "root")
    first = GraphFilesDataset(root, path=str(folder))
    again = GraphFilesDataset(root, path=str(folder))
    assert again.processed_dir == first.processed_dir
    assert GraphFilesDataset(root, path=str(folder), split_seed=3).processed_dir != first.processed_dir
    assert GraphFilesDataset(root, path=str(folder), node_label="type").processed_dir != first.processed_dir
    g = nx.read_graphml(folder / "g002.graphml")
    g.add_edge("1", "2")  # two leaves of a star
    nx.write_graphml(g, folder / "g002.graphml")
    changed = GraphFilesDataset(root, path=str(folder))
    assert changed.processed_dir != first.processed_dir
    assert changed.read_report()["num_edges"] == first.read_report()["num_edges"] + 1
    (folder / "g002.graphml").rename(folder / "h002.graphml")  # a file's name is part of the content
    assert GraphFilesDataset(root, path=str(folder)).processed_dir != changed.processed_dir


def test_metrics_of_the_test_split_against_itself_vanish_with_the_references_beside(forms, tmp_path):
    _, paths = forms
    for labels in ({}, {"node_label": "type", "edge_label": "bond"}):
        splits = build_splits("graphs", str(tmp_path / "root"), path=str(paths["gml"]), split_fractions=[0.5, 0.2, 0.3],
                              **labels)
        generated = []
        for d in splits["test"]:
            n = int(d.num_nodes)
            b = np.zeros((n, n), np.int64)
            b[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = d.edge_attr.argmax(1).numpy()
            generated.append((d.x.argmax(1).numpy(), b))
        m = sample_metrics(splits, generated=generated)
        for key in ("degree", "clustering", "orbit", "spectre"):
            assert abs(m[key]) < 1e-12 and key in m["train_test_mmd"] and f"{key}_ratio" in m
        assert m["train_test_mmd"]["degree"] > 0  # paths, cycles and stars: train and test differ
        assert m["connected"] == 1.0 and m["connected_reference"] == {"train": 1.0, "test": 1.0}
        assert m["uniqueness"] == 1.0 and m["novelty"] == 1.0 and m["validity"] is None
        if labels:
            assert m["isomorphism"].startswith("class-preserving") and m["node_class_tv"] == 0 == m["edge_class_tv"]
            assert set(m["class_tv_reference"]) == {"node_class_tv", "edge_class_tv"}
            # a train graph with its classes changed is novel up to class-preserving isomorphism only
            d = splits["train"][0]
            n = int(d.num_nodes)
            b = np.zeros((n, n), np.int64)
            b[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = 1
            m2 = sample_metrics(splits, generated=[(np.ones(n, np.int64), b)])
            assert m2["novelty"] == 1.0 and m2["structure_novelty"] == 0.0 and m2["node_class_tv"] > 0
        else:
            assert m["isomorphism"].startswith("structure")
    disconnected = (np.zeros(4, np.int64), np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]))
    assert sample_metrics(splits, generated=[disconnected, generated[0]])["connected"] == 0.5
    # evaluate.py samples=FILE dataset=graphs dataset_params={...}: the same numbers from a file
    save_graphs_npz(tmp_path / "test.npz", generated)
    given = {"path": str(paths["gml"]), "node_label": "type", "edge_label": "bond", "split_fractions": [0.5, 0.2, 0.3]}
    name, params = dataset_config(REPO / "configs", "graphs", given)
    scored = score_sample_file(tmp_path / "test.npz", name, params, str(tmp_path / "root"))
    assert scored["num_samples"] == len(generated) and scored["degree"] == m["degree"]
    assert scored["uniqueness"] == 1.0 and scored["node_class_tv"] == 0.0


def test_samples_of_labelled_graphs_keep_their_classes_and_read_back(forms, tmp_path):
    _, paths = forms
    ds = GraphFilesDataset(str(tmp_path / "root"), path=str(paths["npz"]), node_label="class", edge_label="class")
    assert ds.info.node_classes == ["C", "N"] and ds.info.edge_classes == ["none", "1", "2"]  # the names, read back
    graph = (np.array([0, 1, 1]), np.array([[0, 2, 0], [2, 0, 1], [0, 1, 0]]))
    write_samples(tmp_path / "out", [graph] * 3, ds.info, max_items=1)
    z = np.load(tmp_path / "out" / "samples.npz", allow_pickle=False)
    assert z["node_class_names"].tolist() == ["C", "N"] and z["edge_class_names"].tolist() == ["none", "1", "2"]
    raw = read_graphs(tmp_path / "out" / "samples.npz")[0]
    assert [a["class"] for a in raw.nodes] == ["C", "N", "N"] and [a["class"] for *_, a in raw.edges] == ["2", "1"]


def test_a_missing_path_is_named_by_the_config_check():
    with pytest.raises(DatasetConfigError, match=r"dataset.params.path is required and was not given: add "
                                                 r"dataset.params.path=<value> to the command \(an .npz of graphs"):
        check_dataset_params({"path": "???", "symmetrize": False}, "dataset.params", "graphs")
    with pytest.raises(DatasetConfigError, match=r"add dataset_params=\{path: <value>\}"):
        check_dataset_params({"path": "???"}, "dataset_params")


# ---------------------------------------------------------------------------- end to end
TINY = ["model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
        "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
        "model.diffusion.T=20", "model.features=cycles"]


def run_script(script: str, args: list[str], cwd: Path, code: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == code, f"{script} ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_a_folder_of_graphml_files_trains_samples_and_scores(tmp_path):
    rng = np.random.default_rng(0)
    graphs = []
    for k in range(60):
        n = int(rng.integers(4, 9))
        g = [nx.path_graph, nx.cycle_graph, nx.star_graph][k % 3](n if k % 3 != 2 else n - 1)
        for v in g.nodes:
            g.nodes[v]["kind"] = "hub" if g.degree(v) > 2 else "plain"
        graphs.append(g)
    write_graphml(tmp_path / "my_graphs", graphs)
    proc = run_script("train_diffusion.py", ["dataset=graphs"], tmp_path, code=2)
    assert proc.stderr.strip().splitlines()[-1].startswith("error: dataset.params.path is required")
    data = ["dataset=graphs", "dataset.params.path=my_graphs", "dataset.params.node_label=kind"]
    proc = run_script("train_diffusion.py", data + ["train.summary_only=true"], tmp_path)
    assert "split 48 / 6 / 6 (random, fractions 0.8 / 0.1 / 0.1, seed 0)" in proc.stdout
    assert "node classes (from attribute 'kind'): hub, plain" in proc.stdout
    train = ["train.max_steps=20", "train.batch_size=8", "train.progress_bar=false", "paths.out_dir=run"]
    run_script("train_diffusion.py", data + TINY + train, tmp_path)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    out = run_script("sample.py", [f"checkpoint={ckpt}", "num_samples=6", "out_dir=samples"], tmp_path)
    z = np.load(tmp_path / "samples" / "samples.npz", allow_pickle=False)
    assert len(z["num_nodes"]) == 6 and z["node_class_names"].tolist() == ["hub", "plain"]
    assert json.loads(out.stdout.strip().splitlines()[-1])["num_samples"] == 6
    out = run_script("evaluate.py", [f"checkpoint={ckpt}", "num_samples=6", "out_dir=eval"], tmp_path)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["dataset"] == "graphs" and m["num_samples"] == 6 and m["reference_test_graphs"] == 6
    for key in ("degree", "clustering", "orbit", "spectre"):
        assert np.isfinite(m[key]) and np.isfinite(m["train_test_mmd"][key])
    assert 0 <= m["connected"] <= 1 and m["connected_reference"]["test"] == 1.0
    assert 0 <= m["uniqueness"] <= 1 and m["isomorphism"].startswith("class-preserving")


# ---------------------------------------------------------------------------- review fixes
def test_val_test_graphs_the_train_split_cannot_model_are_left_out_and_counted(tmp_path):
    sizes = [5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 14, 4, 6]
    labels = ["train"] * 8 + ["val"] * 2 + ["test"] * 3
    folder = write_graphml(tmp_path / "cycles", [nx.cycle_graph(n) for n in sizes], split=labels)
    splits = build_splits("graphs", str(tmp_path / "root"), path=str(folder))
    assert [sorted(int(d.num_nodes) for d in splits[s]) for s in ("val", "test")] == [[8, 9], [6]]
    report = splits["train"].read_report()
    assert report["left_out"] == {"larger than train": 1, "size not in train": 1} and report["kept"] == 11
    text = summary_text("graphs", {"path": str(folder)}, splits)
    assert "1 val / test larger than train, 1 val / test size not in train skipped" in text
    floors = [float(x) for x in re.findall(r"floor[^0-9\n]*(-?[0-9.]+) ±", text)]
    assert floors and all(0 < f < 20 for f in floors), text  # -log p(N) + log N! - log|Aut|: finite, no log(tiny)
    # every size once (cycles of 5..14 nodes): no val / test graph can be modelled, one line says so
    unique = write_graphml(tmp_path / "unique", [nx.cycle_graph(n) for n in range(5, 15)])
    assert "no graph of the val / test split can be modelled from the train split" in \
        refusal(tmp_path, path=str(unique), split_seed=7)
    # node classes come from the train split: a class only a test graph has leaves that graph out
    graphs = [nx.path_graph(4) for _ in range(10)]
    for g in graphs:
        nx.set_node_attributes(g, "C", "type")
    graphs[9].nodes[0]["type"] = "Zz"
    labelled = write_graphml(tmp_path / "labelled", graphs, split=["train"] * 8 + ["val", "test"])
    with pytest.raises(GraphFilesError, match="no graph of the test split can be modelled .*1 node class not in"):
        build_splits("graphs", str(tmp_path / "root"), path=str(labelled), node_label="type")


def test_unreadable_csv_files_are_one_line_errors_naming_the_file(tmp_path):
    bad = tmp_path / "latin.csv"
    bad.write_bytes("graph_id,source,target,name\na,0,1,caf\xe9\n".encode("latin-1"))
    assert "latin.csv is not UTF-8 text" in refusal(tmp_path, path=str(bad))
    huge = tmp_path / "huge.tsv"
    huge.write_text("source\ttarget\tnote\n0\t1\t" + "x" * 140_000 + "\n")
    msg = refusal(tmp_path, path=str(huge))
    assert "huge.tsv, line 2: not readable as TSV (field larger than field limit" in msg


def test_options_are_checked_by_the_config_check_before_loading(tmp_path):
    ok = write_graphml(tmp_path / "ok", molecules_like())
    cases = [({"node_label": 3}, "dataset.params.node_label=3 is not accepted"),
             ({"edge_label": "split"}, "dataset.params.edge_label=split is not accepted"),
             ({"max_nodes": 0}, "dataset.params.max_nodes=0 is not accepted"),
             ({"split_fractions": [0.5, 0.5]}, "dataset.params.split_fractions=[0.5, 0.5] is not accepted"),
             ({"symmetrize": "yes"}, "dataset.params.symmetrize=yes is not accepted")]
    for extra, expected in cases:
        with pytest.raises(GraphFilesError, match=re.escape(expected)):
            check_dataset_params({"path": str(ok), **extra}, "dataset.params", "graphs")
    (ok / "notes.txt").write_text("x")
    with pytest.raises(GraphFilesError, match=r"holds 1 file\(s\) of unknown type \(e.g. 'notes.txt'\)"):
        check_dataset_params({"path": str(ok)}, "dataset.params", "graphs")
    assert not (tmp_path / "root").exists()


def test_the_config_lists_the_constructor_defaults():
    cfg = yaml.safe_load((REPO / "configs" / "dataset" / "graphs.yaml").read_text())
    defaults = {k: p.default for k, p in inspect.signature(GraphFilesDataset.__init__).parameters.items()
                if k not in ("self", "root", "split", "transform", "force_reload")}
    assert cfg["name"] == "graphs" and cfg["params"].pop("path") == "???" and defaults.pop("path") is None
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()} == cfg["params"]
