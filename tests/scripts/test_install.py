"""A regular (non-editable) install has the `sympe` command, its configs and scripts, outside the checkout."""
from __future__ import annotations

import os
import subprocess
import sys

from support import REPO


def test_installed_package_runs_its_commands_outside_the_checkout(tmp_path):
    target = tmp_path / "site"
    # build with the installed setuptools when it is recent enough (pyproject's build-system), else in pip's own
    # isolated build environment (which fetches setuptools from the package index)
    try:
        import setuptools

        isolation = [] if int(setuptools.__version__.split(".")[0]) >= 68 else None
    except ImportError:
        isolation = None
    flags = ["--no-build-isolation"] if isolation is not None else []
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *flags, "--no-compile",
                          "--target", str(target), str(REPO)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    for shipped in ("configs/config.yaml", "configs/train/digress.yaml", "configs/sample/sample.yaml",
                    "configs/experiment/qm9_h.yaml", "cli/train_diffusion.py", "cli/sympe_cli.py",
                    "diffusion/nn/csrc/edge_attention_cpu.c", "datasets/data/spectre/planar.npz"):
        assert (target / "sympe" / shipped).is_file(), shipped
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "SYMPE_DATA_ROOT": str(work / "data"), "PYTHONWARNINGS": "ignore",
           "SYMPE_PROGRESS": "0"}

    def sympe(*args):
        return subprocess.run([sys.executable, "-m", "sympe.cli.sympe_cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import sympe.diffusion.runs.schema as s; print(s.CONFIG_DIR)"],
                           cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.strip() == str(target / "sympe" / "configs"), where.stdout + where.stderr
    out = sympe("train", "dataset=star", "train.summary_only=true")
    assert out.returncode == 0 and "exchangeable NLL floor 2.079" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    bad = sympe("sample", "checkpoint=x.ckpt", "num_samples=0")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("num_samples=0 is not accepted: expected an integer >= 1 "
                                                               "(graphs to sample)"), bad.stderr
    unknown = sympe("fly")
    assert unknown.returncode == 2 and "unknown command 'fly'" in unknown.stderr
    assert sympe("report", "--help").returncode == 0
