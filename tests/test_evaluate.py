"""scripts/evaluate.py in samples mode: scoring files of other systems, the real test graphs as a ceiling,
and errors that name the problem."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED_DATA
from sympe.datasets.outputs import save_graphs_npz
from sympe.datasets.spectre import SpectreDataset, load_npz_graphs

PLANAR = SHARED_DATA / "spectre" / "planar.npz"


def evaluate(args, cwd, data_root, check=True):
    env = {**os.environ, "SYMPE_DATA_ROOT": str(data_root), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"evaluate.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def test_real_planar_test_graphs_score_as_the_ceiling(tmp_path):
    root = tmp_path / "data"
    test = SpectreDataset(root, split="test", name="planar", source="npz", path=str(PLANAR))
    graphs = []
    for d in test:
        n = int(d.num_nodes)
        bonds = np.zeros((n, n), dtype=np.int64)
        bonds[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = 1
        graphs.append((np.zeros(n, dtype=np.int64), bonds))
    save_graphs_npz(tmp_path / "real_test.npz", graphs)
    proc = evaluate(["samples=real_test.npz", "dataset=planar",
                     f"dataset_params={{source: npz, path: {PLANAR}}}"], tmp_path, root)
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m == json.loads((tmp_path / "metrics.json").read_text())
    assert m["num_samples"] == 40
    for key in ("degree", "clustering", "orbit", "spectre"):
        assert abs(m[key]) < 1e-8, (key, m[key])  # the test set against itself
    assert m["validity"] == 1.0 and m["validity_test_ceiling"] == 1.0
    assert m["uniqueness"] == 1.0 and m["novelty"] == 1.0  # planar test graphs are not train graphs


def test_smiles_file_of_another_system(tmp_path, qm9_root):
    lines = ["CCO", "CCO", "None", "c1ccccc1", "not_a_smiles", "C1=CC=CN=C1", "CC(=O)O", "[CH3]"]
    (tmp_path / "samples.smi").write_text("\n".join(lines) + "\n\n")
    proc = evaluate(["samples=samples.smi", "dataset=qm9"], tmp_path, qm9_root)
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["num_samples"] == 8  # trailing blank lines are not samples
    # valid: CCO, CCO, benzene, pyridine, acetic acid; None, garbage and the methyl radical are invalid
    assert m["validity"] == pytest.approx(5 / 8)
    assert m["uniqueness"] == pytest.approx(4 / 5)
    # ethanol, acetic acid, pyridine and benzene are all QM9 molecules; only those outside the train split are novel
    assert 0.0 <= m["novelty"] <= 1.0 and m["atom_stability"] is None  # no stability without explicit H


@pytest.mark.parametrize("content, args, message", [
    ("", ["dataset=planar"], "is empty"),
    ("CCO\n", ["dataset=planar"], "not molecular"),
    ("CCO\n", [], "needs dataset=NAME"),
    ("CCO\n", ["dataset=qm10"], "dataset='qm10' is unknown"),
])
def test_errors_name_the_problem(tmp_path, content, args, message):
    (tmp_path / "s.smi").write_text(content)
    proc = evaluate(["samples=s.smi", *args, f"dataset_params={{source: npz, path: {PLANAR}}}"
                     if "dataset=planar" in args else "dataset_params=null"], tmp_path, tmp_path / "data", check=False)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout


def test_npz_round_trip_of_saved_samples(tmp_path):
    """save_graphs_npz writes the SPECTRE format that load_npz_graphs reads back."""
    g = [(np.zeros(3, dtype=np.int64), np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])),
         (np.zeros(2, dtype=np.int64), np.zeros((2, 2), dtype=np.int64))]
    save_graphs_npz(tmp_path / "g.npz", g)
    back = load_npz_graphs(str(tmp_path / "g.npz"))
    assert [int(d.num_nodes) for d in back] == [3, 2]
    assert back[0].edge_index.shape[1] == 4 and back[1].edge_index.shape[1] == 0
