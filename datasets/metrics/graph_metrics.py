"""Sample quality of generated generic graphs: MMD² of graph descriptors, validity and V.U.N.

The numbers follow the definitions of GraphRNN (You et al., 2018), GRAN (Liao et al., 2019),
SPECTRE (Martinkus et al., 2022) and DiGress (Vignac et al., 2023), so that they can be compared
with the published tables. One module per concept, each stating its conventions:

* :mod:`sympe.datasets.metrics.graph_mmd`: descriptors (degree, clustering, orbit, spectre), kernels, MMD²,
  presets (``digress`` Gaussian-TV for planar / SBM, ``graphrnn`` Gaussian-EMD for community-20), ratios;
* :mod:`sympe.datasets.metrics.graph_validity`: planar and SBM validity (graph-tool block model or the Louvain
  approximation);
* :mod:`sympe.datasets.metrics.graph_isomorphism`: uniqueness, novelty and V.U.N. up to isomorphism;
* :func:`sympe.datasets.graph_utils.to_adjacency` / ``to_networkx``: the accepted graph inputs.

:class:`GraphMetrics` puts them together against a dataset's train and test graphs. The names of the
modules above are re-exported here.

Reference graphs: for planar, SBM and community-20 published numbers are computed against the SPECTRE
benchmark graphs (DiGress's split), which :func:`sympe.datasets.sources.spectre.benchmark_splits` provides;
scoring against regenerated graphs gives different numbers (``scripts/evaluate.py`` uses the benchmark
graphs unless told otherwise, and says so in its output).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from sympe.datasets.metrics.graph_isomorphism import IsomorphismIndex, uniqueness_novelty  # noqa: F401
from sympe.datasets.metrics.graph_mmd import (  # noqa: F401
    CLUSTERING_BINS,
    DESCRIPTORS,
    KERNELS,
    PRESETS,
    SPECTRE_BINS,
    SPECTRE_RANGE,
    GraphDescriptors,
    MMDSpec,
    clustering_coefficients,
    clustering_histogram,
    default_preset,
    degree_histogram,
    describe,
    gaussian_emd_kernel,
    gaussian_l2_kernel,
    gaussian_tv_kernel,
    mmd_metrics,
    mmd_ratio,
    mmd_squared,
    negative_mmd_warnings,
    normalise_rows,
    normalized_laplacian_eigenvalues,
    orbit_descriptor,
    pad_stack,
    ratio_metrics,
    spectral_histogram,
)
from sympe.datasets.graph_utils import to_adjacency, to_networkx  # noqa: F401
from sympe.datasets.metrics.graph_validity import (  # noqa: F401
    SBMTest,
    ValidityTest,
    is_planar_valid,
    is_sbm_valid,
    sbm_partition,
    sbm_validity,
    sbm_wald_pvalue,
    validity_fn,
    validity_test,
)


def ratio_mean(ratios: dict[str, float]) -> float | None:
    """Mean of the MMD² ratios, or None when one of them is negative or not finite (it is not averaged)."""
    vals = list(ratios.values())
    if not vals or any(not math.isfinite(v) or v < 0 for v in vals):
        return None
    return float(np.mean(vals))


class GraphMetrics:
    """All sample-quality numbers of generated graphs against a dataset's train and test graphs.

    ``__call__(generated)`` returns: ``degree``, ``clustering``, ``orbit``, ``spectre`` (MMD² to the
    test set, as computed, possibly negative: see :mod:`sympe.datasets.metrics.graph_mmd`), ``<name>_ratio``
    (divided by MMD²(train, test)) and ``ratio_mean`` (their mean; None when a ratio is negative or not
    finite), ``validity``, ``validity_definition`` (what the validity test computes, e.g. graph-tool or the
    Louvain approximation for SBM), ``uniqueness``, ``novelty`` (against train), ``unique_novel``, ``vun``,
    ``validity_test_ceiling`` (validity of the real test graphs; None with no validity test),
    ``train_test_mmd`` (the ratio denominators), ``mmd_kernel`` (the preset), ``num_generated``,
    ``num_empty_generated`` (0-node graphs, left out of the MMDs) and ``warnings`` (negative MMD² values,
    ratios left out of the mean). Train/test descriptors, the train-vs-test MMD² and the test validity are
    computed once here.

    ``sbm``: the SBM test parameters (``SBMTest(method="louvain")`` forces the approximation).
    """

    def __init__(self, dataset_name: str, train_graphs: Sequence, test_graphs: Sequence, preset: str | None = None,
                 sbm: SBMTest = SBMTest()):
        self.dataset_name = dataset_name
        self.preset = default_preset(dataset_name) if preset is None else preset
        if self.preset not in PRESETS:
            raise ValueError(f"unknown MMD preset {self.preset!r}; choose one of {list(PRESETS)}")
        if len(train_graphs) == 0 or len(test_graphs) == 0:
            raise ValueError("GraphMetrics needs non-empty train and test graph lists")
        self.validity = validity_test(dataset_name, sbm)
        train_nx = [to_networkx(g) for g in train_graphs]
        test_nx = [to_networkx(g) for g in test_graphs]
        self.train_index = IsomorphismIndex(train_nx)
        self.test_descriptors = describe(test_nx)
        self.train_test_mmd = mmd_metrics(describe(train_nx), self.test_descriptors, self.preset)
        self.validity_test_ceiling = (None if self.validity is None else float(np.mean(self.validity(test_nx))))

    def __call__(self, generated: Sequence) -> dict:
        gens = [to_networkx(g) for g in generated]
        if not gens:
            raise ValueError("GraphMetrics: no generated graphs")
        gen_d = describe(gens)
        mmd = mmd_metrics(gen_d, self.test_descriptors, self.preset)
        out: dict = dict(mmd)
        ratios = {f"{k}_ratio": mmd_ratio(mmd[k], self.train_test_mmd[k]) for k in DESCRIPTORS}
        out.update(ratios)
        out["ratio_mean"] = ratio_mean(ratios)
        warnings = negative_mmd_warnings(mmd, "generated vs test") + \
            negative_mmd_warnings(self.train_test_mmd, "train vs test (a ratio denominator)")
        bad = [k for k, v in ratios.items() if not math.isfinite(v) or v < 0]
        if bad:
            warnings.append(f"ratio_mean is None: {bad} negative or not finite, and a mean over them means nothing")
        flags = self.validity(gens) if self.validity is not None else None
        out.update(uniqueness_novelty(gens, self.train_index, flags))
        out["validity_definition"] = None if self.validity is None else self.validity.definition
        out["validity_test_ceiling"] = self.validity_test_ceiling
        out["train_test_mmd"] = dict(self.train_test_mmd)
        out["mmd_kernel"] = self.preset
        out["num_generated"] = len(gens)
        out["num_empty_generated"] = gen_d.num_dropped
        out["warnings"] = warnings
        return out
