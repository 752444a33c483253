"""scripts/evaluate.py in samples mode: scoring files of other systems, the real test graphs as a ceiling,
and errors that name the problem."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support import REPO, SPECTRE_DIR
from sympe.datasets.samples.writers import save_graphs_npz
from sympe.datasets.sources import spectre
from sympe.datasets.sources.spectre import SpectreDataset, load_npz_graphs

PLANAR = SPECTRE_DIR / "planar.npz"


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
    assert m == json.loads((tmp_path / "real_test.metrics.json").read_text())  # beside the file, named after it
    assert not (tmp_path / "metrics.json").exists()
    assert m["num_samples"] == 40 and m["samples_format"] == "npz_edges" and m["warnings"] == []
    assert m["reference"].startswith("SPECTRE planar benchmark graphs") and m["reference_test_graphs"] == 40
    for key in ("degree", "clustering", "orbit", "spectre"):
        assert abs(m[key]) < 1e-8, (key, m[key])  # the test set against itself
    assert m["validity"] == 1.0 and m["validity_test_ceiling"] == 1.0
    assert m["uniqueness"] == 1.0 and m["novelty"] == 1.0  # planar test graphs are not train graphs


def test_smiles_file_of_another_system(tmp_path, qm9_root):
    lines = ["CCO", "CCO", "None", "c1ccccc1", "not_a_smiles", "C1=CC=CN=C1", "CC(=O)O", "[CH3]"]
    (tmp_path / "samples.smi").write_text("SMILES\n" + "\n".join(lines) + "\n\n")
    proc = evaluate(["samples=samples.smi", "dataset=qm9", "fcd=false"], tmp_path, qm9_root)  # FCD: test_evaluate_fcd.py
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["num_samples"] == 8  # the header line and trailing blank lines are not samples
    assert m["samples_format"] == "smiles" and m["samples_notes"] == ["header line 'SMILES' skipped"]
    # valid: CCO, CCO, benzene, pyridine, acetic acid; None, garbage and the methyl radical are invalid
    assert m["validity"] == pytest.approx(5 / 8)
    assert m["uniqueness"] == pytest.approx(4 / 5)
    # ethanol, acetic acid, pyridine and benzene are all QM9 molecules; only those outside the train split are novel
    assert 0.0 <= m["novelty"] <= 1.0 and m["atom_stability"] is None  # no stability without explicit H
    assert m["fcd"] is None and m["fcd_reference"] is None  # fcd=false: skipped silently
    assert not any("fcd" in w for w in m["warnings"])


@pytest.mark.parametrize("content, args, message", [
    ("", ["dataset=planar"], "is empty"),
    ("CCO\n", ["dataset=planar"], "not molecular"),
    ("CCO\n", [], "needs dataset=NAME"),
    ("CCO\n", ["dataset=qm10"], "dataset='qm10' is unknown"),
    ("CCO\n", ["dataset=planar", "format=xml"], "format=xml is not accepted: expected one of auto, npz_edges"),
    (None, ["dataset=planar"], "samples=s.smi is not a file"),
    ("CCO\n", ["dataset=planar", "fcd=maybe"], "fcd=maybe is not accepted: expected one of auto, true, false"),
])
def test_errors_name_the_problem(tmp_path, content, args, message):
    """A bad file or option ends the command with one line ``error: ...`` (status 2), never a traceback."""
    if content is not None:
        (tmp_path / "s.smi").write_text(content)
    proc = evaluate(["samples=s.smi", *args, f"dataset_params={{source: npz, path: {PLANAR}}}"
                     if "dataset=planar" in args else "dataset_params=null"], tmp_path, tmp_path / "data", check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_npz_round_trip_of_saved_samples(tmp_path):
    """save_graphs_npz writes the SPECTRE format that load_npz_graphs reads back."""
    star = np.zeros((5, 5), dtype=np.int64)
    star[3, [0, 1, 4]] = star[[0, 1, 4], 3] = 1  # hub 3: a node order that is not the identity's
    g = [(np.zeros(3, dtype=np.int64), np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])),
         (np.zeros(2, dtype=np.int64), np.zeros((2, 2), dtype=np.int64)),
         (np.zeros(5, dtype=np.int64), star)]
    save_graphs_npz(tmp_path / "g.npz", g)
    back = load_npz_graphs(str(tmp_path / "g.npz"))
    assert [int(d.num_nodes) for d in back] == [3, 2, 5]
    for (_, adj), d in zip(g, back):
        # the same endpoints (both directions, no self-loop) and the edge class 1 of every edge
        got = np.zeros_like(adj)
        got[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = 1
        assert np.array_equal(got, adj)
        if d.edge_index.shape[1]:
            assert d.edge_attr.argmax(-1).eq(1).all()


def test_project_csv_with_foreign_elements(tmp_path, qm9_root):
    """The project's own gdb_index,smiles CSV; elements QM9 has not make a sample invalid, named in a warning."""
    (tmp_path / "samples.csv").write_text("gdb_index,smiles\n1,C\n2,N\n3,O\n4,CC[Si]C\n5,CCCl\n6,CCO\n")
    m = json.loads(evaluate(["samples=samples.csv", "dataset=qm9", "fcd=false"], tmp_path,
                         qm9_root).stdout.splitlines()[-1])
    assert m["samples_format"] == "csv" and m["num_samples"] == 6
    assert m["num_valid"] == 4 and m["validity"] == pytest.approx(4 / 6)
    assert m["num_outside_spec"] == 2 and m["outside_spec_elements"] == {"Cl": 1, "Si": 1}
    assert len(m["warnings"]) == 1 and "Cl (1), Si (1)" in m["warnings"][0]


def test_digress_text_dump_of_molecules(tmp_path, qm9_root):
    """DiGress's N= / X: / E: dump for QM9 (classes C, N, O, F; bond classes 1..4) is read as molecules."""
    def block(atoms, bonds):
        return (f"N={len(atoms)}\nX: \n" + " ".join(map(str, atoms)) + " \nE: \n"
                + "".join(" ".join(map(str, row)) + " \n" for row in bonds) + "\n")
    ethanol = block([0, 0, 2], [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    co2 = block([2, 0, 2], [[0, 2, 0], [2, 0, 2], [0, 2, 0]])
    pentavalent = block([0, 0, 0, 0, 0, 0], [[0, 1, 1, 1, 1, 1]] + [[1, 0, 0, 0, 0, 0]] * 5)
    (tmp_path / "generated_samples1.txt").write_text(ethanol + co2 + pentavalent)
    m = json.loads(evaluate(["samples=generated_samples1.txt", "dataset=qm9", "fcd=false"], tmp_path,
                         qm9_root).stdout.splitlines()[-1])
    assert m["samples_format"] == "digress_txt" and m["num_samples"] == 3
    assert m["num_valid"] == 2 and m["num_unique"] == 2


def test_spectre_scoring_uses_the_benchmark_graphs_by_default(tmp_path):
    """Trained on regenerated planar graphs, scored against the SPECTRE benchmark graphs unless told otherwise."""
    root = tmp_path / "data"
    bench_test = spectre.benchmark_splits("planar")["test"]
    graphs = []
    for d in bench_test:
        n = int(d.num_nodes)
        adj = np.zeros((n, n), dtype=bool)
        adj[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = True
        graphs.append(adj)
    np.savez(tmp_path / "generated_adjs.npz", *graphs)  # DiGress's own sample format
    args = ["samples=generated_adjs.npz", "dataset=planar", "dataset_params={source: generate, num_graphs: 20}"]
    m = json.loads(evaluate(args, tmp_path, root).stdout.splitlines()[-1])
    assert m["samples_format"] == "npz_adjacency" and m["num_samples"] == 40
    assert m["reference"] == "SPECTRE planar benchmark graphs shipped with sympe, DiGress's split (the dataset " \
                             "itself was built with source=generate)"
    assert all(abs(m[k]) < 1e-12 for k in ("degree", "clustering", "orbit", "spectre"))  # the test set itself
    d = json.loads(evaluate(args + ["reference=dataset"], tmp_path, root).stdout.splitlines()[-1])
    assert d["reference_test_graphs"] == 4 and d["degree"] > 1e-4
    assert any("not the SPECTRE benchmark graphs" in w for w in d["warnings"])


def test_bad_graph_file_fails_naming_the_graph(tmp_path):
    adj = np.array([[1, 1], [1, 0]])
    np.savez(tmp_path / "loops.npz", np.zeros((2, 2)), adj)
    proc = evaluate(["samples=loops.npz", "dataset=planar"], tmp_path, tmp_path / "data", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "loops.npz': graph 1 has a self-loop at node 0" in proc.stderr.strip().splitlines()[-1]


def test_grid_titles_follow_the_written_smiles(tmp_path, monkeypatch):
    """samples.png titles a molecule 'valid' exactly when its SMILES line is not None (strict validity)."""
    import matplotlib.axes

    from sympe.datasets.molecules import QM9_SPEC
    from sympe.datasets.samples.writers import draw_grid, graphs_to_smiles

    titles = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, t, **kw: titles.append(t))
    ammonium_like = (np.array([1, 0, 0, 0, 0]), np.array([[0, 1, 1, 1, 1]] + [[1, 0, 0, 0, 0]] * 4))  # N with 4 bonds
    ethanol = (np.array([0, 0, 2]), np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    graphs = [ammonium_like, ethanol]
    smiles = graphs_to_smiles(graphs, QM9_SPEC)
    assert smiles[0] is None and smiles[1] is not None  # strict: N+ needs a charge; relaxed validity would accept it
    draw_grid(tmp_path / "g.png", graphs, spec=QM9_SPEC, valid=[s is not None for s in smiles])
    assert titles == ["invalid", "valid"]
    titles.clear()
    draw_grid(tmp_path / "h.png", graphs, spec=QM9_SPEC)  # default: strict validity too
    assert titles == ["invalid", "valid"] and (tmp_path / "h.png").is_file()
