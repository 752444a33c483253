"""Oracle denoisers for the symmetry-breaking families (tests only): exact answers the bounds must reproduce.

* :class:`PosteriorMarginalOracle`: a deterministic network predicting the exact posterior marginals
  ``q(x0^v | z_t)`` of the data distribution (enumerated support): the best factorised denoiser, whose bound is F(T).
* :class:`IdealBreakerOracle`: a rank-breaker network that predicts, with confidence ``1 - eps``, the completion
  ``x̂(g) = z_t ⊕ C(g)`` named by its ranks (:class:`sympe.symbreak.proposal.CanonicalProposal`) of some support
  graph containing ``z_t``; its tie groups are the exact automorphism orbits of ``z_t``. On families uniform on one
  isomorphism class per size (stars, matchings) its mixture over uniform ranks is the exact reverse model, so its
  mixture bound is the data entropy H (up to ``eps``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.symbreak.breakers import tie_log_prob
from sympe.symbreak.orbits.canonical_labelling import canonical_form
from sympe.symbreak.proposal import CanonicalProposal, uniform_tie_ranks


def family_support(family: str, size: int) -> list[np.ndarray]:
    """Adjacency matrices (N, N) of every labelled star (n = size) or perfect matching (m = size)."""
    if family == "star":
        out = []
        for hub in range(size):
            A = np.zeros((size, size), dtype=np.int64)
            A[hub, :] = A[:, hub] = 1
            A[hub, hub] = 0
            out.append(A)
        return out
    N = 2 * size
    out = []

    def rec(free, edges):
        if not free:
            A = np.zeros((N, N), dtype=np.int64)
            for a, b in edges:
                A[a, b] = A[b, a] = 1
            out.append(A)
            return
        a = free[0]
        for b in free[1:]:
            rec([v for v in free if v not in (a, b)], edges + [(a, b)])

    rec(list(range(N)), [])
    return out


def to_dense(As: list[np.ndarray]) -> DenseGraph:
    A = torch.as_tensor(np.stack(As))
    B, N, _ = A.shape
    X = torch.ones(B, N, 1)
    E = torch.nn.functional.one_hot(A, 2).double().float()
    eye = torch.eye(N, dtype=torch.bool)
    E[:, eye] = 0
    return DenseGraph(X, E, torch.zeros(B, 0), torch.ones(B, N, dtype=torch.bool))


def orbit_groups(A: np.ndarray) -> np.ndarray:
    """Exact automorphism orbits of a small uncoloured graph as tie-group ids, ordered by (degree, orbit size) so
    that the ids depend only on the isomorphism class (a canonicalizer's groups on stars and matchings)."""
    n = len(A)
    forms = [canonical_form(np.eye(n, dtype=np.int64)[i], A) for i in range(n)]  # mark node i
    reps: dict = {}
    groups = np.array([reps.setdefault(f, len(reps)) for f in forms])
    keys = [(int(A[np.flatnonzero(groups == g)[0]].sum()), int((groups == g).sum())) for g in range(len(reps))]
    order = sorted(range(len(keys)), key=lambda g: keys[g])
    remap = {g: r for r, g in enumerate(order)}
    return np.array([remap[g] for g in groups])


class _Base:
    def __init__(self, family: str, size: int, eps: float = 1e-6):
        self.support = family_support(family, size)
        self.eps = eps

    @staticmethod
    def _adj(z: DenseGraph, b: int) -> np.ndarray:
        A = z.E[b].argmax(-1).cpu().numpy().astype(np.int64)
        np.fill_diagonal(A, 0)
        return A

    def consistent(self, Z: np.ndarray) -> list[np.ndarray]:
        return [A for A in self.support if np.all(A >= Z)]


class PosteriorMarginalOracle(_Base):
    """Logits = log of the exact posterior marginals of every pair (nodes have one class)."""

    breaker_draw = "none"

    def __call__(self, z_t: DenseGraph, t, generator=None, ranks=None):
        B, n = z_t.node_mask.shape
        lE = torch.zeros(B, n, n, 2, dtype=torch.float64)
        for b in range(B):
            xs = self.consistent(self._adj(z_t, b))
            pi = np.mean(xs, axis=0).clip(self.eps, 1 - self.eps)
            lE[b, :, :, 1] = torch.as_tensor(np.log(pi))
            lE[b, :, :, 0] = torch.as_tensor(np.log1p(-pi))
        return torch.zeros(B, n, 1), lE.float()


class IdealBreakerOracle(_Base):
    """A rank breaker whose ranks name one completion each (module docstring)."""

    breaker_draw = "ranks"

    def tie_groups(self, z_t: DenseGraph, t):
        return torch.as_tensor(np.stack([orbit_groups(self._adj(z_t, b)) for b in range(z_t.batch_size)]))

    def rank_log_prob(self, z_t, t, ranks):
        return tie_log_prob(self.tie_groups(z_t, t), ranks, z_t.node_mask)

    def sample_ranks(self, z_t, t, generator=None):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        rng = np.random.default_rng(seed)
        return torch.as_tensor(np.stack([uniform_tie_ranks(g, rng) for g in self.tie_groups(z_t, t).numpy()]))

    def __call__(self, z_t: DenseGraph, t, generator=None, ranks=None):
        if ranks is None:
            ranks = self.sample_ranks(z_t, t, generator)
        B, n = z_t.node_mask.shape
        groups = self.tie_groups(z_t, t).numpy()
        lE = torch.zeros(B, n, n, 2, dtype=torch.float64)
        for b in range(B):
            Z = self._adj(z_t, b)
            x = self.consistent(Z)[0]
            prop = CanonicalProposal(np.zeros(n, np.int64), x, np.zeros(n, np.int64), Z, groups[b], 1, 2, 0)
            _, xhat = prop.completion(ranks[b].cpu().numpy())
            p = np.where(xhat == 1, 1 - self.eps, self.eps)
            lE[b, :, :, 1] = torch.as_tensor(np.log(p))
            lE[b, :, :, 0] = torch.as_tensor(np.log1p(-p))
        return torch.zeros(B, n, 1), lE.float()


def entropy(family: str, size: int) -> float:
    return math.log(size) if family == "star" else math.log(math.prod(range(1, 2 * size, 2)))


def draw(family: str, size: int, num: int, seed: int) -> DenseGraph:
    rng = np.random.default_rng(seed)
    sup = family_support(family, size)
    return to_dense([sup[i] for i in rng.integers(len(sup), size=num)])

