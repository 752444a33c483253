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
