"""The device of the CUDA tests (``pytest -m cuda``): skipped where ``torch.cuda.is_available()`` is false.

``SYMPE_GPU_TESTS_ON_CPU=1`` runs them on the CPU instead, a dry run of the tests' own code on a machine without
a GPU (CPU against CPU: it proves nothing about CUDA).
"""
from __future__ import annotations

import os

import pytest
import torch

ON_CPU = os.environ.get("SYMPE_GPU_TESTS_ON_CPU") == "1"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available() or ON_CPU:
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is false); scripts/device_check.sh runs "
                                   "them on a GPU; SYMPE_GPU_TESTS_ON_CPU=1 dry-runs them on the CPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
