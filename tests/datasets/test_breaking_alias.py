"""``sympe.datasets.breaking`` (the issue's name) is the module ``sympe.datasets.sources.breaking``, loaded on use."""
from __future__ import annotations

import subprocess
import sys


def test_the_alias_imports_lazily_and_is_the_same_module():
    code = ("import sys, sympe.datasets; light = 'torch' not in sys.modules; "
            "import sympe.datasets.breaking as a; from sympe.datasets.breaking import factorised_bound; "
            "import sympe.datasets.sources.breaking as b; "
            "print(light, a is b, a.__spec__.name, round(factorised_bound('star', 8, 10, 'absorbing')[0], 4))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["True", "True", "sympe.datasets.sources.breaking", "2.7122"]
