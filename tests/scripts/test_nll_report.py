"""scripts/nll_report.py as a command (the library: tests/diffusion/runs/report): options checked against the
preset, and --aggregate-only on finished runs with the exact entropy of a symmetry-breaking family."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from support import REPO

SCRIPT = REPO / "scripts" / "nll_report.py"


def nll_report(args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_script_is_thin():
    assert len(SCRIPT.read_text().splitlines()) <= 150


def test_unknown_task_is_named_with_the_known_ones(tmp_path):
    proc = nll_report(["--preset", "cpu", "--tasks", "nope", "--out", str(tmp_path / "r")], tmp_path)
    assert proc.returncode != 0
    assert ("--tasks ['nope']: not in preset 'cpu' (it has ['marked_cycle_T10', 'matching_T10', 'marked_cycle_T500', "
            "'qm9_h_subset'])") in proc.stderr
    proc = nll_report(["--preset", "nope", "--out", str(tmp_path / "r")], tmp_path)
    assert proc.returncode != 0 and "known presets: ['breaking', 'cpu', 'paper']" in proc.stderr


def test_aggregate_only_reports_the_exact_entropy(tmp_path):
    """A finished run of the smoke grid (faked): the data entropy of marked cycles is exact, with the size the run's
    config leaves out read from configs/dataset/marked_cycle.yaml (n = 8: log(8!/2) = 9.9115 nats per graph)."""
    out = tmp_path / "report"
    rd = out / "runs" / "marked_cycle_T10" / "none" / "seed0"
    (rd / "eval_nll").mkdir(parents=True)
    (rd / "eval_nll" / "metrics.json").write_text(json.dumps({
        "nll_ours_plain_stratified": 12.5, "nll_ours_plain_stratified_sem": 0.5,
        "nll_ours_plain_mix16_stratified": 11.0, "exchangeable_nll_floor": 9.9, "exchangeable_nll_floor_sem": 0.0}))
    (rd / "config.yaml").write_text("dataset:\n  name: marked_cycle\n  params: {k: 1, seed: 0}\n"
                                    "model:\n  diffusion: {T: 10}\n")
    args = ["--preset", "cpu", "--smoke", "--tasks", "marked_cycle_T10", "--variants", "none", "--out", str(out),
            "--aggregate-only"]
    proc = nll_report(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"[report] 1/1 runs done, 0.0 CPU-minutes in all; written to {out / 'report.md'}" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    (task,) = report["tasks"]
    assert task["entropy"] == math.log(math.factorial(8) / 2) and task["floor"] == 9.9 and task["T"] == 10
    assert report["command"] == "python scripts/nll_report.py " + " ".join(args)
    md = (out / "report.md").read_text()
    assert "| marked cycle (n=8, k=1), T=10 | 9.911 | – | 9.90 ± 0.00 | 12.50 ± 0.50 |" in md  # one seed: s.e. over graphs
    assert (out / "nll_marked_cycle_T10.png").is_file() and not (out / "nll_bins_marked_cycle_T10.png").exists()
