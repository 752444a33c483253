"""Paths shared by the tests (imported as ``from support import REPO``; ``tests/`` is on the path, pyproject.toml)."""
from __future__ import annotations

import os
from pathlib import Path

from sympe.datasets.sources.spectre import BENCHMARK_DIR

REPO = Path(__file__).resolve().parents[1]
# The project's offline reference data, when present (never required); SYMPE_SHARED_DATA overrides,
# SYMPE_SHARED_DATA=none ignores it (CI runs the suite once that way).
_shared = os.environ.get("SYMPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
SHARED_DATA = None if _shared.lower() == "none" or not Path(_shared).is_dir() else Path(_shared)
# The SPECTRE benchmark graphs shipped with the package (planar.npz, sbm.npz, community20.npz).
SPECTRE_DIR = Path(BENCHMARK_DIR)
# Small artefacts written by earlier versions of the project (old checkpoints), kept to test that they still load.
FIXTURES = REPO / "tests" / "fixtures"

# Small drug-like molecules shared by the MOSES metric tests (tests/datasets/metrics/test_moses_*.py).
ANISOLE, BENZENE, TOLUENE = "COc1ccccc1", "c1ccccc1", "Cc1ccccc1"
NAPHTHALENE, BIPHENYL = "c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1"
DRUGS = ["CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "CN1CCC[C@H]1c1cccnc1", "O=C(O)c1ccccc1O",
         "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "CCOC(=O)c1ccccc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "OCC1OC(O)C(O)C(O)C1O"]


def installed(dist: str) -> bool:
    """Whether the distribution ``dist`` (e.g. ``molsets``, ``fcd-torch``) is installed."""
    import importlib.metadata

    try:
        importlib.metadata.distribution(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False
