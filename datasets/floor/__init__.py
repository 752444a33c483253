"""sympe.datasets.floor: the exchangeable NLL floor E[-log p(N) + log N! - log |Aut(x)|] of a set of graphs
(``exchangeable``), with exact automorphism-group sizes by BLISS (``bliss``); and F(T), the best variational bound
any deterministic factorised denoiser reaches on the symmetry-breaking families (``factorised``, over the
enumerated supports of ``family_support``).
"""
from __future__ import annotations

from sympe.datasets.lazy_exports import lazy_exports

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # exchangeable
    "FloorSummary": "exchangeable", "dataset_log_aut": "exchangeable", "exchangeable_floor": "exchangeable",
    "floor_per_graph": "exchangeable", "split_floor": "exchangeable", "summarize": "exchangeable",
    # bliss
    "automorphism_group_size": "bliss", "log_automorphism_group_size": "bliss",
    # factorised
    "factorised_bound": "factorised", "factorised_terms": "factorised", "posterior_marginals": "factorised",
    # family_support
    "family_support": "family_support", "family_process": "family_support", "family_marginals": "family_support",
    "support_size": "family_support",
}
__all__ = [*_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
