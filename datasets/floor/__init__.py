"""sympe.datasets.floor: the exchangeable NLL floor E[-log p(N) + log N! - log |Aut(x)|] of a set of graphs
(``exchangeable``), with exact automorphism-group sizes by BLISS (``bliss``).
"""
from __future__ import annotations

from importlib import import_module

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # exchangeable
    "FloorSummary": "exchangeable", "dataset_log_aut": "exchangeable", "exchangeable_floor": "exchangeable",
    "floor_per_graph": "exchangeable", "split_floor": "exchangeable", "summarize": "exchangeable",
    # bliss
    "automorphism_group_size": "bliss", "log_automorphism_group_size": "bliss",
}
__all__ = [*_EXPORTS]


def __getattr__(name: str):
    """Import the module that defines ``name`` on first use (PEP 562), so that importing this package stays light."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
