"""sympe.diffusion.benchmarking is plain torch: importing it loads no Lightning, Hydra or dataset code."""
from __future__ import annotations

import json
import subprocess
import sys

import sympe.diffusion.benchmarking as bench


def test_import_loads_no_lightning_hydra_or_datasets():
    code = ("import json, sys, sympe.diffusion.benchmarking; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pytorch_lightning', 'lightning', 'hydra', 'omegaconf') or m.startswith('sympe.datasets'))))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_public_api_is_named_and_documented():
    assert len(bench.__all__) == len(set(bench.__all__))
    for name in bench.__all__:
        obj = getattr(bench, name)
        assert isinstance(obj, tuple) or (obj.__doc__ or "").strip(), name
