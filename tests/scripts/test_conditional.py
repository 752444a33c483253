"""Conditional generation end to end through the commands users run: train on a CSV with a property column, sample
with targets (a mapping and a CSV) and guidance, score the samples against their targets, evaluate the conditional
NLL, sweep guidance weights; bad conditions end each command with one line before anything long."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from support import REPO

TINY = ["model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
        "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
        "model.diffusion.T=20", "train.batch_size=16", "train.progress_bar=false", "train.max_steps=20",
        "train.lr=0.1", "train.test_after_fit=false"]
MOLS = ["CCO", "CC(=O)O", "CCN", "C1CC1", "CCCl", "OCCO", "CC#N", "CCC(C)O", "NCC(=O)O", "C1CCCCC1", "CC(C)C", "COC",
        "CCOC", "ClCCCl", "CCCCO", "OC1CC1", "CC=CC", "CN(C)C", "CCS", "CCCC", "OCC(O)CO", "CC(N)C", "CCCN", "NCCN"]


def run(name: str, args: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def one_line_error(proc, pattern: str) -> None:
    import re

    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and re.search(pattern, lines[0]), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cond")
    rows = ["smiles,potency"] + [f"{s},{0.5 * k:.1f}" for k, s in enumerate(MOLS * 4)]
    (tmp / "mols.csv").write_text("\n".join(rows) + "\n")
    out = run("train_diffusion.py", ["dataset=smiles", "dataset.params.path=mols.csv", *TINY,
                                     "model.condition=[logp,potency]", "paths.out_dir=run"], tmp)
    assert "conditioned on ConditionSpec(logp (continuous" in out.stdout
    return tmp, tmp / "run" / "checkpoints" / "last.ckpt"


def test_sample_with_targets_and_score_them(trained):
    tmp, ckpt = trained
    # all T = 20 steps: the tiny model then samples some molecules (as in test_smiles' end-to-end test)
    s = json.loads(run("sample.py", [f"checkpoint={ckpt}", "num_samples=24", "condition={logp: 0.5}",
                                     "guidance=1.5", "out_dir=s1"], tmp).stdout.strip().splitlines()[-1])
    assert s["guidance"] == 1.5 and s["condition"] == {"logp": 0.5}
    targets = (tmp / "s1" / "targets.csv").read_text().splitlines()
    assert targets[0] == "logp,potency" and targets[1:] == ["0.5,"] * 24
    smiles = (tmp / "s1" / "samples.smi").read_text().splitlines()
    achieved = [Crippen.MolLogP(Chem.MolFromSmiles(x)) for x in smiles if x != "None"]
    m = s["condition_metrics"]["properties"]["logp"]
    assert m["num_scored"] == len(achieved) > 0 and list(s["condition_metrics"]["properties"]) == ["logp"]
    assert m["mae"] == pytest.approx(sum(abs(a - 0.5) for a in achieved) / len(achieved), rel=1e-6)
    # samples mode scores the same file against the same targets
    e = json.loads(run("evaluate.py", ["samples=s1/samples.smi", "dataset=smiles", "dataset_params={path: mols.csv}",
                                       "targets=s1/targets.csv", "fcd=false"], tmp).stdout.strip().splitlines()[-1])
    assert e["condition"]["properties"]["logp"]["num_scored"] == m["num_scored"]
    assert e["condition"]["properties"]["logp"]["mae"] == pytest.approx(m["mae"], rel=1e-6)
    # a CSV of targets: one graph per row, both properties
    (tmp / "t.csv").write_text("logp,potency\n0.0,1.0\n1.0,\n,20.0\n")
    s2 = json.loads(run("sample.py", [f"checkpoint={ckpt}", "steps=3", "condition=t.csv", "out_dir=s2"],
                        tmp).stdout.strip().splitlines()[-1])
    assert s2["num_samples"] == 3
    got = sorted((tmp / "s2" / "targets.csv").read_text().splitlines()[1:])
    assert got == sorted(["0.0,1.0", "1.0,", ",20.0"])


def test_the_conditional_nll_says_so(trained):
    tmp, ckpt = trained
    m = json.loads(run("evaluate.py", [f"checkpoint={ckpt}", "num_samples=0", "out_dir=ev", "limit_test_graphs=8"],
                       tmp).stdout.strip().splitlines()[-1])
    assert m["nll_given"] == ["logp", "potency"] and m["nll_given_y_ours_plain_mc"] > 0
    assert not any(k.startswith("nll_ours") for k in m)


def test_bad_conditions_are_one_line(trained):
    tmp, ckpt = trained
    one_line_error(run("sample.py", [f"checkpoint={ckpt}", "condition={logp: 40}"], tmp, ok=False),
                   r"condition: logp=40 is outside the range this model can be asked for")
    one_line_error(run("sample.py", [f"checkpoint={ckpt}", "condition={qed: 0.5}"], tmp, ok=False),
                   r"'qed' is not a property this model was trained on; it knows \['logp', 'potency'\]")
    one_line_error(run("sample.py", [f"checkpoint={ckpt}", "guidance=2"], tmp, ok=False), r"guidance=2.0 needs condition")
    one_line_error(run("sample.py", ["checkpoint=pretrained:qm9", "condition={logp: 1}"], tmp, ok=False),
                   "this checkpoint is unconditional")
    proc = run("train_diffusion.py", ["dataset=smiles", "dataset.params.path=mols.csv", *TINY,
                                      "model.condition=[mu]", "paths.out_dir=bad"], tmp, ok=False)
    one_line_error(proc, r"model.condition: 'mu' cannot be computed for dataset=smiles")
    assert not (tmp / "bad").exists()
    one_line_error(run("train_diffusion.py", ["model.condition=logp"], tmp, ok=False),
                   r"model.condition=logp is not accepted: expected a list of distinct names in brackets")


def test_the_guidance_sweep_writes_its_table_and_plot(trained):
    tmp, ckpt = trained
    proc = run("guidance_sweep.py", ["--checkpoint", str(ckpt), "--property", "logp", "--weights", "0", "2",
                                     "--num-samples", "6", "--steps", "3", "--out", "sweep", "--data-root",
                                     str(tmp / "data")], tmp)
    result = json.loads((tmp / "sweep" / "sweep.json").read_text())
    assert [r["guidance"] for r in result["rows"]] == [None, 0.0, 2.0]
    assert all(r["num_samples"] == 6 for r in result["rows"])
    assert (tmp / "sweep" / "sweep.png").stat().st_size > 0 and "| conditional | 2 |" in proc.stdout
