"""The test suite needs nothing beside the repository (CI runs it with SYMPE_SHARED_DATA=none)."""
from __future__ import annotations


def test_tests_read_no_folder_outside_the_repository():
    """Only support.py may look beside the repository (the optional ../shared/data), and only through
    SHARED_DATA, which SYMPE_SHARED_DATA=none switches off; every other test module reads packaged data."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    offenders = [str(p.relative_to(here)) for p in here.rglob("*.py") if p.name not in ("support.py", Path(__file__).name)
                 and any(s in p.read_text() for s in ("../shared", '"shared"', "shared/data", "parents[2]"))]
    assert offenders == []
