"""scripts/device_check.sh on a machine without a GPU: the dry run and the real run write one JSON report of the
expected shape, and every step is recorded as dry / skipped instead of stopping the script."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from support import REPO

STEPS = ["cuda_tests", "prepare_data", "benchmark", "train"]
STEP_KEYS = {"command", "status", "reason", "exit_code", "wall_s", "log_tail"}


def run_check(tmp_path, **env) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), **env}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads((tmp_path / "device_check.json").read_text())


def check_shape(report: dict) -> None:
    assert report["script"] == "scripts/device_check.sh"
    env = report["environment"]
    assert {"python", "torch", "cuda_available", "device", "sympe", "missing", "hints"} <= set(env)
    assert env["sympe"] and env["torch"] == torch.__version__
    assert list(report["steps"]) == STEPS
    for name, step in report["steps"].items():
        assert STEP_KEYS <= set(step), name
    assert {"summary"} <= set(report["steps"]["cuda_tests"])
    assert {"result"} <= set(report["steps"]["benchmark"])
    assert {"final_lines", "final_metrics"} <= set(report["steps"]["train"])
    assert isinstance(report["wall_s"], int) and report["budget_s"] == 470 and report["ok"] is False


def test_dry_run_lists_every_step_and_runs_none(tmp_path):
    proc, report = run_check(tmp_path, SYMPE_DEVICE_CHECK_DRY="1")
    check_shape(report)
    assert report["dry_run"] is True and report["install"] == []
    assert {s["status"] for s in report["steps"].values()} == {"dry"}
    assert all(s["exit_code"] is None and s["log_tail"] == [] for s in report["steps"].values())
    cmd = {k: s["command"] for k, s in report["steps"].items()}
    assert "-m pytest -q -m cuda" in cmd["cuda_tests"]
    assert "scripts/benchmark.py --device cuda --bf16" in cmd["benchmark"]
    assert "experiment=qm9_h" in cmd["train"] and "train.max_steps=200" in cmd["train"]
    assert "CUDA available" in proc.stdout  # the checks are printed first, whatever the mode


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_without_cuda_every_step_is_skipped_cleanly(tmp_path):
    proc, report = run_check(tmp_path, SYMPE_DEVICE_CHECK_INSTALL="0")
    check_shape(report)
    assert report["dry_run"] is False and report["environment"]["cuda_available"] is False
    assert any("CUDA" in h for h in report["environment"]["hints"])
    for step in report["steps"].values():
        assert (step["status"], step["reason"], step["exit_code"]) == ("skipped", "CUDA unavailable", None)
    assert "cuda_tests: skipped (CUDA unavailable)" in proc.stdout
