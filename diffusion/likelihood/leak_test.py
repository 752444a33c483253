"""The node-order leak test: does a model's NLL depend on the order in which the test graphs are stored?

For an exchangeable model (every model whose denoiser is equivariant, or equivariant in distribution: no
breaker, i.i.d. noise, SymPE with uniform tie-breaking), the NLL bound of a graph ``x`` and of any
relabelling ``π·x`` have the same distribution: ``E[NLL(π·x)] = E[NLL(x)]``. A model that reads node
indices (index encodings, index tie-breaking) can learn the order in which a dataset stores its nodes
(QM9 lists heavy atoms first, hydrogens last) and score the stored order better than a random one; such a
model can go below the exchangeable floor (:mod:`sympe.datasets.floor.exchangeable`).

The test, per graph ``g`` of a test set: ``a_g`` = the NLL estimate in the stored order, ``b_g`` = the mean
of the NLL estimates of K uniformly random relabellings of its real nodes (padding stays last), and
``d_g = a_g - b_g``. It reports ``mean(a)``, ``mean(b)``, the difference ``D = mean(d)``, its standard
error ``se = std(d) / sqrt(G)`` over the G graphs, and ``z = D / se``. Under exchangeability ``E[d_g] = 0``
for every graph, so ``|z| > z_threshold`` (default 3; two-sided) flags a leak; a leaking model has
``D < 0`` (the stored order is cheaper). Units: nats per graph, in the convention of the NLL used.
Cost: ``K + 1`` NLL evaluations per graph.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
from torch import Tensor

from sympe.diffusion.bars import progress_bar
from sympe.diffusion.graph import DenseGraph

#: ``nll_fn(x: DenseGraph, generator) -> (B,)`` per-graph NLL estimates (nats).
NLLFn = Callable[[DenseGraph, "torch.Generator | None"], Tensor]


@dataclass
class LeakTestResult:
    """Result of :func:`leak_test` (module docstring); nats per graph."""

    stored: float
    permuted: float
    difference: float
    difference_sem: float
    z: float
    num_graphs: int
    num_permutations: int
    z_threshold: float

    @property
    def flagged(self) -> bool:
        """True when ``|z| > z_threshold``: the NLL depends on the stored node order."""
        return bool(math.isfinite(self.z) and abs(self.z) > self.z_threshold)

    def as_dict(self) -> dict:
        return {**asdict(self), "flagged": self.flagged}

    def __str__(self) -> str:
        verdict = "LEAK: the NLL depends on the stored node order" if self.flagged else "no significant difference"
        return (f"node-order leak test: stored {self.stored:.3f}, permuted {self.permuted:.3f}, difference "
                f"{self.difference:+.3f} ± {self.difference_sem:.3f} nats per graph (z = {self.z:+.2f}, "
                f"{self.num_graphs} graphs x {self.num_permutations} permutations): {verdict}")


def random_node_permutation(node_mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(B, n) long: per graph a uniformly random order of its real nodes, followed by its padding in place.

    For ``DenseGraph.permute`` (new node i = old node ``perm[b, i]``). Real nodes are assumed to come first
    (the layout of :meth:`DenseGraph.from_pyg`); padding positions keep their order.
    """
    B, n = node_mask.shape
    gdev = generator.device if generator is not None else node_mask.device
    keys = torch.rand(B, n, generator=generator, device=gdev).to(node_mask.device)
    keys = torch.where(node_mask, keys, 2.0 + torch.arange(n, device=node_mask.device, dtype=keys.dtype))
    return torch.argsort(keys, dim=1)


def leak_test(nll_fn: NLLFn, batches: Iterable[DenseGraph], num_permutations: int = 4,
              generator: torch.Generator | None = None, z_threshold: float = 3.0,
              progress: bool | str = False) -> LeakTestResult:
    """Run the leak test (module docstring) over ``batches`` of clean graphs.

    Args:
        nll_fn: ``nll_fn(x, generator) -> (B,)`` per-graph NLL estimates, e.g.
            ``lambda x, g: model.nll(x, estimator="exact", generator=g)["nll"]``.
        batches: an iterable of DenseGraph batches (real nodes first in every graph).
        num_permutations: K >= 1 random relabellings per graph.
        generator: one ``torch.Generator`` for the permutations and (through ``nll_fn``) every other draw.
        z_threshold: the |z| above which the result is flagged.
        progress: show a tqdm bar over batches (``True`` or its label).

    Returns:
        :class:`LeakTestResult`. Raises ``ValueError`` for ``num_permutations < 1``, no graphs, or an
        ``nll_fn`` that does not return one value per graph.
    """
    K = int(num_permutations)
    if K < 1:
        raise ValueError(f"leak_test: num_permutations (random relabellings per graph) must be >= 1, got {num_permutations}")
    if progress:

        batches = progress_bar(batches, desc=progress if isinstance(progress, str) else "leak test", unit="batch")
    stored, permuted = [], []
    with torch.no_grad():
        for x in batches:
            a = _check(nll_fn(x, generator), x)
            b = torch.zeros_like(a)
            for _ in range(K):
                b = b + _check(nll_fn(x.permute(random_node_permutation(x.node_mask, generator)), generator), x)
            stored.append(a.double().cpu())
            permuted.append((b / K).double().cpu())
    if not stored:
        raise ValueError("leak_test: no graphs were given")
    a, b = torch.cat(stored), torch.cat(permuted)
    d = a - b
    G = d.numel()
    sem = float(d.std(unbiased=True) / math.sqrt(G)) if G > 1 else math.nan
    D = float(d.mean())
    if not math.isfinite(sem):
        z = math.nan
    else:
        z = D / sem if sem > 0 else (0.0 if D == 0 else math.copysign(math.inf, D))
    return LeakTestResult(float(a.mean()), float(b.mean()), D, sem, z, G, K, float(z_threshold))


def _check(v: Tensor, x: DenseGraph) -> Tensor:
    v = torch.as_tensor(v).flatten()
    if v.numel() != x.batch_size:
        raise ValueError(f"leak_test: nll_fn returned {v.numel()} values for a batch of {x.batch_size} graphs")
    return v
