"""The package's public API and its place in the dependency graph (diffusion never imports datasets)."""
from __future__ import annotations

import subprocess
import sys

import sympe.diffusion.runs.report as report
from support import REPO


def test_public_api_is_named_and_exists():
    assert len(set(report.__all__)) == len(report.__all__)
    assert all(hasattr(report, name) for name in report.__all__)
    for name in ("load_preset", "run_grid", "command_for", "build_report", "plot_panels", "KEYS", "markdown"):
        assert name in report.__all__


def test_modules_are_small_and_import_no_dataset_code():
    folder = REPO / "diffusion" / "runs" / "report"
    for path in folder.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 450, path.name
        assert "sympe.datasets" not in text and "import *" not in text, path.name
    code = ("import sys, sympe.diffusion.runs.report; "
            "print(sorted(m for m in sys.modules if m.startswith('sympe.datasets')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.strip() == "[]"
