"""Names of a package imported with their module on first use (PEP 562), so that importing the package stays light.

    _EXPORTS = {"QM9Dataset": "qm9", ...}          # public name -> module of the package that defines it
    __all__ = [*_EXPORTS]
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

``import sympe.datasets`` (and each subpackage) then loads neither torch nor RDKit; ``sympe.datasets.QM9Dataset``
imports ``sympe.datasets.sources.qm9`` the first time it is used and keeps the name in the package's namespace.
"""
from __future__ import annotations

from importlib import import_module

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for package ``package`` whose public names are the keys of ``exports`` (name ->
    submodule). ``namespace`` is the package's ``globals()``: a resolved name is stored there. An unknown name raises
    ``AttributeError`` as Python does for a missing attribute."""
    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
