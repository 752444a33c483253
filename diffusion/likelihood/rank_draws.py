"""How the mixture bound and the proposal objective draw the symmetry breaker's g̃: prior, canonical, exact.

Shared by :mod:`~sympe.diffusion.likelihood.mixture_bound` and :mod:`~sympe.diffusion.objectives.mixture`. A draw
is a *row*: a graph index into the batch and, for rank breakers, a rank vector (B·K rows for K draws); each row
carries ``log p(g | z_t) - log r(g)`` (0 for the prior). The canonical proposal itself (BLISS, per graph, on the
CPU) is :class:`sympe.symbreak.proposal.CanonicalProposal`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.symbreak.proposal import CanonicalProposal, tie_consistent_ranks

__all__ = ["CHUNK", "absorbing_node_class", "draw_kind", "index_graph", "np_rng", "canonical_proposals",
           "proposal_draws", "exact_draws"]

#: Rows (graph copies) per network call when many draws are evaluated at once.
CHUNK = 512


def absorbing_node_class(process: DiscreteProcess) -> int | None:
    """The absorbing node class of an absorbing transition (one-hot limits), else None."""
    m_X, m_E = process.limit()
    if float(m_X.max()) == 1.0 and float(m_E.max()) == 1.0 and int(torch.argmax(m_E)) == 0:
        return int(torch.argmax(m_X))
    return None


def draw_kind(denoiser) -> str:
    """``denoiser.breaker_draw`` (``"ranks"``, ``"noise"``, ``"none"``); a plain function counts as ``"noise"``."""
    return getattr(denoiser, "breaker_draw", "noise")


def index_graph(z: DenseGraph, idx: Tensor) -> DenseGraph:
    """The graphs ``idx`` (R,) of a batch, in that order (repeats allowed)."""
    return DenseGraph(z.X[idx], z.E[idx], z.y[idx], z.node_mask[idx])


def np_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A numpy generator seeded from one draw of ``generator`` (the global torch RNG when None): the CPU-side
    draws of the canonical proposal stay reproducible from the caller's seed."""
    dev = generator.device if generator is not None else "cpu"
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator, device=dev).item()))


def _classes(z: DenseGraph, b: int) -> tuple[np.ndarray, np.ndarray]:
    nb = int(z.node_mask[b].sum())
    X, E = z.X[b, :nb].argmax(-1).cpu().numpy(), z.E[b, :nb, :nb].argmax(-1).cpu().numpy()
    np.fill_diagonal(E, 0)
    return X, E


def _padded(ranks: np.ndarray, n: int) -> np.ndarray:
    out = np.arange(n, dtype=np.int64)
    out[: len(ranks)] = ranks
    return out


def canonical_proposals(x: DenseGraph, z_t: DenseGraph, groups: Tensor, process: DiscreteProcess,
                        anchor: DenseGraph | None) -> list[CanonicalProposal]:
    """One :class:`CanonicalProposal` per graph: target ``x``, noisy ``z_t``, tie groups (B, n), optional anchor ``z_s``."""
    absorbing = absorbing_node_class(process)
    n = x.node_mask.shape[1]
    prefix = torch.arange(n, device=x.node_mask.device).unsqueeze(0) < x.node_mask.sum(1, keepdim=True)
    if not bool((prefix == x.node_mask).all()):
        raise ValueError("canonical proposal: every graph's real nodes must come first (padding last), as "
                         "DenseGraph.from_pyg builds batches")
    out = []
    for b in range(x.batch_size):
        nb = int(x.node_mask[b].sum())
        xn, xe = _classes(x, b)
        zn, ze = _classes(z_t, b)
        anc = _classes(anchor, b) if anchor is not None else None
        out.append(CanonicalProposal(xn, xe, zn, ze, groups[b, :nb].cpu().numpy(), process.dx, process.de,
                                     absorbing, anchor=anc))
    return out


def proposal_draws(denoiser, x, z_t, t, process, K, proposal, generator, anchor):
    """K draws per graph of the ``canonical`` or ``defensive`` proposal (:mod:`sympe.symbreak.proposal`).

    Args: the denoiser (a rank breaker), the target ``x`` and noisy ``z_t`` (B graphs, real nodes first), times
    ``t`` (B,), the process (its absorbing class defines the residual), K, the proposal, a generator, and the anchor
    ``z_s`` of a reverse-step term (or None). Returns rows ``(graph (K·B,), ranks (K·B, n), a (K·B,))``, copy-major
    (row ``k·B + b`` is draw k of graph b), with ``a = log p(g | z_t) - log r(g)`` in float64."""
    B, n = z_t.node_mask.shape
    device = z_t.X.device
    groups = denoiser.tie_groups(z_t, t)
    props = canonical_proposals(x, z_t, groups, process, anchor)
    rng = np_rng(generator)
    graph, ranks, log_ratio = [], [], []
    # defensive: K = 1 flips a fair coin per graph; K >= 2 alternates canonical / prior draws (stratified), and the
    # density is the mixture with the actual fractions (multiple importance sampling, balance heuristic)
    share = 0.5 if K == 1 else math.ceil(K / 2) / K
    for k in range(K):
        can = torch.as_tensor(np.stack([_padded(p.sample(rng), n) for p in props]), device=device)
        if proposal == "defensive":
            prior = denoiser.sample_ranks(z_t, t, generator)
            use_prior = rng.random(B) >= 0.5 if K == 1 else np.full(B, k % 2 == 1)
            g = torch.where(torch.as_tensor(use_prior, device=device).unsqueeze(1), prior, can)
        else:
            g = can
        log_p = denoiser.rank_log_prob(z_t, t, g)
        g_host = g.cpu().numpy()  # one transfer per draw, not one per graph
        log_can = torch.tensor([p.log_prob(g_host[b, : len(p.groups)]) for b, p in enumerate(props)],
                               dtype=torch.float64, device=device)
        if proposal == "canonical":
            log_r = log_can
        else:
            log_r = torch.logaddexp(log_p + math.log1p(-share), log_can + math.log(share))
        graph.append(torch.arange(B, device=device))
        ranks.append(g)
        log_ratio.append(log_p - log_r)
    return torch.cat(graph), torch.cat(ranks), torch.cat(log_ratio)


def exact_draws(denoiser, z_t: DenseGraph, t: Tensor, exact_max: int) -> tuple[Tensor, Tensor, Tensor]:
    """Every tie-consistent rank vector of every graph, under uniform tie-breaking.

    Returns rows ``(graph (R,), ranks (R, n), a (R,))`` with ``a = log p(g) + log M_b = 0``: each of graph b's
    ``M_b = Π|G_i|!`` orders has ``p(g | z_t) = 1/M_b``, so the mean over its rows of ``exp(a) p`` is ``Σ_g p(g) p``.
    The tie groups are computed once (the enumeration and the probabilities use the same groups). Raises
    ``ValueError`` (:func:`~sympe.symbreak.proposal.tie_consistent_ranks`) above ``exact_max`` orders per graph."""
    B, n = z_t.node_mask.shape
    device = z_t.X.device
    groups = denoiser.tie_groups(z_t, t)
    graph, ranks = [], []
    for b in range(B):
        nb = int(z_t.node_mask[b].sum())
        every = tie_consistent_ranks(groups[b, :nb].cpu().numpy(), exact_max)
        full = np.tile(np.arange(n, dtype=np.int64), (len(every), 1))
        full[:, :nb] = every
        graph.append(torch.full((len(every),), b, device=device, dtype=torch.long))
        ranks.append(torch.as_tensor(full, device=device))
    graph = torch.cat(graph)
    return graph, torch.cat(ranks), torch.zeros(graph.numel(), dtype=torch.float64, device=device)
