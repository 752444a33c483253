"""The Markdown report of the fake grid: tables, cells, marks and links."""
from __future__ import annotations

from sympe.diffusion.runs.report import build_report, format_cell, markdown


def test_format_cell():
    assert format_cell(None) == "–" and format_cell({"mean": None, "sem": 1.0}) == "–"
    assert format_cell({"mean": 1.234}) == "1.23" and format_cell({"mean": 1.0, "sem": None}) == "1.00"
    assert format_cell({"mean": 0.6, "sem": 0.0577}, 1, 100) == "60.0 ± 5.8"


def test_markdown_of_the_fake_grid(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    report = build_report(preset, tmp_path, "fake", "python scripts/nll_report.py --preset fake",
                          exact_numbers=fake.exact_numbers)
    md = markdown(report)
    assert (tmp_path / "report.md").read_text() == md and md.endswith("\n")
    assert md.startswith("# Symmetry-breaking benchmark (fake preset)\n\nCommand: `python scripts/nll_report.py "
                         "--preset fake`\n")
    assert "| task | H | F(T) | floor | none | SymPE | index |" in md
    assert "DiGress's formula" not in md                  # no run reported it
    assert "13.00 ± 0.58" in md                     # cycle / none per-draw: mean 13, s.e. 1/sqrt(3)
    assert "9.911" in md and "36.25 ± 0.06" in md
    assert "*index (control)*" in md and "↓floor" in md
    assert "SymPE = `model.symbreak=sympe`" in md and "steps10 = `nll_estimator=none steps=10`" in md
    assert "validity @10 | validity @50 | validity @500" in md
    assert "| leak diff. (flagged) |\n" in md          # the cycle task: no validity / uniqueness columns
    assert "60.0 ± 5.8" in md                       # validity in % at 500 steps
    assert "[sympe](samples_mol_sympe.png)" in md
    assert "![NLL per t bin](nll_bins_mol.png) ![validity against sampling steps](validity_mol.png)" in md
    assert "Compute: 3.4 CPU-minutes over 18 runs (17 done)." in md
    assert "## Failed runs" not in md


def test_markdown_lists_failures_and_the_digress_column(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    report = build_report(preset, tmp_path, "fake", "cmd", failures=["mol / none / seed 0: boom"], make_plots=False)
    report["tasks"][1]["rows"][0]["nll_digress"] = {"mean": 70.0, "sem": 1.0, "n": 3}
    md = markdown(report)
    assert md.endswith("## Failed runs\n\n- mol / none / seed 0: boom\n\n")
    assert "## Test NLL, DiGress's formula" in md and "| NLL DiGress formula |" in md and "70.00 ± 1.00" in md
    assert "Samples (first seed" not in md                                # no plots were made
