"""The test suite needs nothing beside the repository (CI runs it with SYMPE_SHARED_DATA=none)."""
from __future__ import annotations


def test_tests_read_no_folder_outside_the_repository():
    """Only conftest.py may look beside the repository (the optional ../shared/data), and only through
    SHARED_DATA, which SYMPE_SHARED_DATA=none switches off; every other test module reads packaged data."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    offenders = [p.name for p in here.glob("*.py") if p.name not in ("conftest.py", Path(__file__).name)
                 and any(s in p.read_text() for s in ("../shared", '"shared"', "shared/data", "parents[2]"))]
    assert offenders == []
