"""sympe.datasets.evaluation: a sample file is scored as sample_metrics scores its graphs, with how it was read;
MOSES refuses graphs; the floor of the test graphs is the floor module's; a checkpoint without a dataset record
fails with a message."""
from __future__ import annotations

import json

import pytest

from sympe.datasets.evaluation import checkpoint_splits, floor_of_test_split, sample_metrics, score_sample_file
from sympe.datasets.floor.exchangeable import split_floor
from sympe.datasets.registry import build_splits
from sympe.datasets.samples.errors import SampleFileError
from sympe.datasets.samples.readers import read_samples
from sympe.datasets.samples.writers import save_graphs_npz

PARAMS = {"m": [2, 3], "num_graphs": 8}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return build_splits("matching", tmp_path_factory.mktemp("data"), **PARAMS)


def test_score_sample_file_is_sample_metrics_of_its_graphs(tmp_path, splits):
    root = splits["train"].root
    path = tmp_path / "s.npz"
    save_graphs_npz(path, read_samples_of(splits["test"]))
    out = score_sample_file(path, "matching", PARAMS, root, label="matching_small", sbm_workers=1)
    assert list(out)[:5] == ["samples", "dataset", "num_samples", "samples_format", "samples_notes"]
    assert out["dataset"] == "matching_small" and out["samples_format"] == "npz_edges" and out["num_samples"] == 8
    direct = sample_metrics(splits, generated=read_samples(path, molecular=False).graphs)
    assert json.dumps({k: out[k] for k in direct}) == json.dumps(direct)
    with pytest.raises(SampleFileError, match="dataset=moses is scored on SMILES"):
        score_sample_file(path, "moses", {"source": "local", "data_dir": str(tmp_path)}, root)


def test_floor_of_the_test_split_and_checkpoint_records(splits):
    per, summary = floor_of_test_split(splits, 3)
    ref_per, ref_summary = split_floor(splits["test"], splits["train"].info.n_nodes_tensor(), 3)
    assert per.tolist() == ref_per.tolist() and summary == ref_summary and summary.num_graphs == 3
    again = checkpoint_splits({"name": "matching", "params": PARAMS}, splits["train"].root, "run.ckpt")
    assert [len(again[s]) for s in ("train", "val", "test")] == [8, 8, 8]
    with pytest.raises(ValueError, match="run.ckpt does not record its dataset config"):
        checkpoint_splits(None, splits["train"].root, "run.ckpt")


def read_samples_of(dataset) -> list:
    """(node classes, edge classes) pairs of the graphs of a split, as a sampler would produce them."""
    import numpy as np

    out = []
    for g in dataset:
        n = int(g.num_nodes)
        bonds = np.zeros((n, n), np.int64)
        u, v = g.edge_index.numpy()
        bonds[u, v] = g.edge_attr.argmax(1).numpy()
        out.append((g.x.argmax(1).numpy(), bonds))
    return out


@pytest.fixture(scope="module")
def molecule_splits(tmp_path_factory):
    """QM9 built from a CSV of 40 small molecules (gdb indices 1..40 fall in all three splits)."""
    folder = tmp_path_factory.mktemp("qm9_small")
    smiles = ["C", "N", "O", "C#C", "C#N", "C=O", "CC", "CO", "CCO", "CC#N", "CC=O", "NC=O", "CCC", "CC(C)O", "OCCO",
              "CN", "CCN", "COC", "FC", "C1CC1", "C1CO1", "CC(=O)O", "NCC", "CNC", "OC=O", "CCCC", "CC(C)C", "CCOC",
              "N#CCO", "CC(N)=O", "FCF", "OCC#N", "C1CN1", "CCCO", "CCCN", "CC(O)C", "OCCN", "NCCN", "C=CC", "CC=CC"]
    csv = folder / "qm9.csv"
    csv.write_text("gdb_index,smiles\n" + "".join(f"{i + 1},{s}\n" for i, s in enumerate(smiles)))
    params = {"source": "csv", "csv_path": str(csv)}
    return build_splits("qm9", folder / "data", **params), params


def test_a_smiles_file_is_scored_as_its_lines_with_the_readers_warnings_first(tmp_path, molecule_splits):
    splits, params = molecule_splits
    root = splits["train"].root
    normal = tmp_path / "normal.smi"
    normal.write_text("CCO\nCO\nC\nC1CC1\n")
    out = score_sample_file(normal, "qm9", params, root, fcd=False)
    direct = sample_metrics(splits, smiles_lines=["CCO", "CO", "C", "C1CC1"], fcd=False)
    assert json.dumps({k: out[k] for k in direct}) == json.dumps(direct)  # a normal file: the numbers of its lines
    odd = tmp_path / "odd.smi"
    odd.write_text("molecule\nCCO\nC1CC(\nCO\nNone\n")
    out = score_sample_file(odd, "qm9", params, root, fcd=False)
    direct = sample_metrics(splits, smiles_lines=["CCO", "C1CC(", "CO", "None"], fcd=False)
    assert out["num_samples"] == 4 and out["validity"] == direct["validity"] == 0.5
    assert out["warnings"] == [
        "line 1 'molecule' was read as a header (it is not a SMILES and looks like a column name); pass header=false "
        "to score it as a sample",
        "1 of 4 samples do not parse as SMILES and are scored as invalid molecules: line 3 'C1CC('",
        *direct["warnings"]]
    junk = tmp_path / "names.smi"
    junk.write_text("ethanol\nmethanol\n")
    with pytest.raises(SampleFileError, match="names.smi.*has no sample that parses as SMILES"):
        score_sample_file(junk, "qm9", params, root, fcd=False)


def test_an_npz_without_node_classes_is_refused_for_qm9(tmp_path, molecule_splits):
    import numpy as np

    splits, params = molecule_splits
    path = tmp_path / "graphs.npz"
    np.savez(path, num_nodes=np.array([3]), edges=np.array([[0, 1], [1, 2]]), edge_ptr=np.array([0, 2]))
    with pytest.raises(SampleFileError, match=r"graphs.npz.*without node_classes.*expected node_classes"):
        score_sample_file(path, "qm9", params, splits["train"].root, fcd=False)
    np.savez(path, num_nodes=np.array([3]), edges=np.array([[0, 1], [1, 2]]), edge_ptr=np.array([0, 2]),
             node_classes=np.array([0, 0, 2]), edge_classes=np.array([1, 1]))
    assert score_sample_file(path, "qm9", params, splits["train"].root, fcd=False)["validity"] == 1.0  # C-C-O
