"""scripts/benchmark.py end to end on a tiny setting (perfect matchings, a 1-layer model, T = 10): the JSON keys
of a row stay those the docs list (docs/benchmarks.md, "What the JSON holds"), with and without --nll."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from support import REPO

TINY = ["--experiment", "symmetric", "--batch-sizes", "4", "--warmup", "1", "--train-steps", "2", "--sample-steps", "1",
        "--sample-batch", "3", "--strided", "4", "--breakers", "none", "sympe", "--threads", "1", "--override",
        "dataset=matching", "model.n_layers=1", "model.diffusion.T=10"]
ROW = ["device", "batch_size", "params", "train_graphs_per_s", "peak_mem_mb", "sample_batch",
       "sample_s_per_1000_T10_at_batch3", "sample_s_per_1000_strided4_at_batch3", "sampling_extrapolated_from_steps"]


def benchmark(args, tmp_path) -> dict:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_json_keys_with_and_without_nll(tmp_path):
    out = benchmark([*TINY, "--device", "cpu", "--nll", "--nll-batch", "3", "--nll-mixture", "2"], tmp_path)
    assert list(out) == ["experiment", "torch", "threads", "T", "n_layers", "runs"]
    assert (out["T"], out["n_layers"], out["threads"]) == (10, 1, 1)
    (row,) = out["runs"]
    assert list(row) == ROW + ["nll_s_per_graph", "nll_s_per_graph_by_breaker", "step_s", "breaker_overhead"]
    assert list(row["nll_s_per_graph"]) == ["mc", "stratified", "exact", "mixture2_mc"]
    assert row["nll_s_per_graph_by_breaker"]["none"] == row["nll_s_per_graph"]
    assert list(row["nll_s_per_graph_by_breaker"]["sympe"]) == ["mc", "stratified", "exact", "mixture2_mc",
                                                                "mixture2_canonical_mc", "mixture2_defensive_mc"]
    assert list(row["step_s"]) == list(row["breaker_overhead"]) == ["none", "sympe"]
    assert row["breaker_overhead"]["none"] == 1.0 and row["sampling_extrapolated_from_steps"] == 1
    assert row["train_graphs_per_s"] == 4 / row["step_s"]["none"] and row["peak_mem_mb"] > 0
    plain = benchmark([*TINY, "--device", "cpu", "--full-sampling", "--breakers", "none"], tmp_path)["runs"][0]
    assert list(plain) == ROW + ["step_s", "breaker_overhead"] and plain["sampling_extrapolated_from_steps"] is None


def test_vs_digress_without_the_reference_is_a_clear_exit(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), "--vs-digress", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no digress_reference.py there" in proc.stderr
