"""The report of a folder of runs: report.json, report.md and the plots, written atomically."""
from __future__ import annotations

import json

import pytest

from sympe.diffusion.runs.report import KEYS, SAMPLE_KEYS, build_report, markdown


def test_build_report_from_run_jsons(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    report = build_report(preset, tmp_path, "fake", "python scripts/nll_report.py --preset fake",
                          exact_numbers=fake.exact_numbers)
    assert report["runs_done"] == 17 and report["num_runs"] == 18
    assert report["total_cpu_s"] == pytest.approx(17 * 12.0) and report["total_wall_s"] == 0
    assert [t["T"] for t in report["tasks"]] == [10, None]        # from the runs' config.yaml (mol has none)
    assert report["failures"] == [] and report["last"] is None and report["preset"] == "fake"
    assert report["keys"] == {"estimator": "stratified", "mixture_draws": 16, "json_keys": KEYS,
                              "sample_keys": SAMPLE_KEYS}
    saved = (tmp_path / "report.json").read_text()
    assert saved == json.dumps(report, indent=1, default=str)     # indent 1, no final newline
    assert json.loads(saved)["keys"]["json_keys"]["nll"][0] == "nll_ours_plain_{est}"
    assert (tmp_path / "report.md").read_text() == markdown(report)
    for name in ("nll_cycle.png", "nll_mol.png", "nll_bins_mol.png", "validity_mol.png"):
        assert (tmp_path / name).exists(), name
        assert name in report["plots"]
    assert not (tmp_path / "validity_cycle.png").exists()      # no validity for non-molecules
    assert (tmp_path / "samples_mol_sympe.png").read_bytes() == b"fake png"
    assert not list(tmp_path.glob("*.tmp*"))


def test_aggregate_only_of_the_same_runs_writes_the_same_report(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    build_report(preset, tmp_path, "fake", "cmd", exact_numbers=fake.exact_numbers)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    build_report(preset, tmp_path, "fake", "cmd", exact_numbers=fake.exact_numbers)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == first
    report = build_report(preset, tmp_path, "fake", "cmd", make_plots=False)   # without the exact lookup
    assert report["tasks"][0]["entropy"] is None and "plots" not in report
