"""sympe.datasets and its subpackages name their public API (``__all__``); every name resolves, and importing the
packages loads neither torch nor RDKit (each name is imported with its module on first use)."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["sympe.datasets", "sympe.datasets.sources", "sympe.datasets.metrics", "sympe.datasets.samples",
            "sympe.datasets.floor"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves_to_its_defining_module(name):
    pkg = importlib.import_module(name)
    assert pkg.__all__ and len(set(pkg.__all__)) == len(pkg.__all__)
    for attr in pkg.__all__:
        value = getattr(pkg, attr)
        assert getattr(value, "__module__", name).startswith(name), (attr, value)
        assert attr in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr(pkg, "nope")


def test_a_function_named_like_its_module_does_not_hide_the_module():
    from sympe.datasets.metrics import fcd

    assert fcd.__name__ == "sympe.datasets.metrics.fcd"


def test_importing_the_packages_is_light():
    code = ("import sys; " + "; ".join(f"import {p}" for p in PACKAGES) +
            "; print(sorted(m for m in ('torch', 'rdkit', 'torch_geometric', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
