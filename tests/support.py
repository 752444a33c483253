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
