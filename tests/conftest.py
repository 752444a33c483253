"""Shared test fixtures: where the reference data lies, and one processed QM9 for the whole session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The offline reference data (../shared/data beside the repository, as on CI); SYMPE_SHARED_DATA overrides.
SHARED_DATA = Path(os.environ.get("SYMPE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def qm9_root(tmp_path_factory) -> Path:
    """A data root in which QM9 (qm9pack source) is processed at most once per test session."""
    return tmp_path_factory.mktemp("qm9_shared")
