"""Shared test fixtures: the benchmark data the tests read, and one processed QM9 for the whole session.

The tests need nothing beside the repository: the SPECTRE graphs ship inside the package
(``sympe/datasets/data/spectre``) and QM9's ``gdb_index,smiles`` table is written from the installed
``qm9pack`` package. Where the project's offline reference folder exists (``support.SHARED_DATA``; switched off
with ``SYMPE_SHARED_DATA=none``), its QM9 table is used instead (it holds the same rows; reading it is faster),
and the tests that compare the shipped files with it run against it.
"""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from support import REPO, SHARED_DATA, SPECTRE_DIR  # noqa: F401  (re-exported for older imports)


@pytest.fixture(scope="session")
def qm9_root(tmp_path_factory) -> Path:
    """A data root in which QM9 (qm9pack source) is processed at most once per test session."""
    return tmp_path_factory.mktemp("qm9_session")


@pytest.fixture(scope="session")
def qm9_index_csv(tmp_path_factory) -> Path:
    """A ``gdb_index,smiles`` CSV (gzipped) of the 130,831 characterized QM9 molecules: the reference copy in
    offline reference folder (``support.SHARED_DATA``) when present, else written once per session from the installed ``qm9pack``."""
    if SHARED_DATA is not None and (SHARED_DATA / "qm9_index_smiles.csv.gz").is_file():
        return SHARED_DATA / "qm9_index_smiles.csv.gz"
    from sympe.datasets.sources.qm9 import read_qm9pack

    path = tmp_path_factory.mktemp("qm9_index") / "qm9_index_smiles.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["gdb_index", "smiles"])
        writer.writerows(read_qm9pack())
    return path
