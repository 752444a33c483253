"""The mixture bound on a toy small enough to enumerate: 3-node graphs, 2 node and 2 edge classes, T = 2.

The denoiser is a random lookup table read through a symmetry breaker with tie orders: nodes are sorted by
(class, degree) in the noisy graph, ties broken uniformly at random (g̃ = one of the 1..6 orders consistent
with the sort), the noisy graph is relabelled by g̃, the table gives logits of the relabelled variables, and
they are mapped back. The model sampled is the g̃-mixture E_g̃ Π_v p(z_s^v | z_t, g̃). By enumerating every
joint state (64) and every order, the test computes

* the exact NLL of the mixture model (chaining the joint reverse matrices),
* its exact ELBO (the mixture bound at K = ∞),
* the exact expectation of the K-draw estimator, over the multisets of K orders, for K = 1, 2, 4, 8,
* the per-draw bound (today's, one g̃ per call),

and checks NLL <= ELBO <= E[estimator_K] for every K, non-increasing in K and approaching the ELBO,
E[estimator_1] = the per-draw bound, and that the library's estimator has those expectations.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.bound import nll_summary, nll_terms
from sympe.diffusion.likelihood.mixture_bound import log_mean_exp
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.schedule import CosineSchedule
from sympe.diffusion.process.transition import MarginalTransition

N, N_PAD, T, DX, DE = 3, 4, 2, 2, 2
PAIRS = list(itertools.combinations(range(N), 2))
CARDS = [DX] * N + [DE] * len(PAIRS)
S = math.prod(CARDS)
ORDERS = list(itertools.permutations(range(N)))
DT = torch.float64
X_VALS = [0, 0, 0, 1, 0, 1]  # three nodes of one class, the path 0-1-2 (|Aut| = 2)


def values(s):
    out = []
    for c in reversed(CARDS):
        out.append(s % c)
        s //= c
    return list(reversed(out))


def index(vals):
    s = 0
    for v, c in zip(vals, CARDS):
        s = s * c + v
    return s


def pair_val(vals, i, j):
    return vals[N + PAIRS.index((min(i, j), max(i, j)))]


def keys_of(vals):
    deg = [sum(1 for j in range(N) if j != i and pair_val(vals, i, j) != 0) for i in range(N)]
    return [10 * vals[i] + deg[i] for i in range(N)]


def relabel(vals, order):
    """New node a is old node order[a]."""
    return [vals[order[a]] for a in range(N)] + [pair_val(vals, order[a], order[b]) for a, b in PAIRS]


class Toy:
    def __init__(self, seed=0, scale=2.0):
        g = torch.Generator().manual_seed(seed)
        width = N * DX + len(PAIRS) * DE
        self.table = scale * torch.randn(T + 1, S, width, generator=g, dtype=DT)
        node_m = torch.softmax(torch.randn(DX, generator=g, dtype=DT), 0)
        edge_m = torch.softmax(torch.randn(DE, generator=g, dtype=DT), 0)
        self.process = DiscreteProcess(CosineSchedule(T).double(), MarginalTransition(node_m, edge_m).double())
        self.m = [(self.process.transition.m_X / self.process.transition.m_X.sum()).double(),
                  (self.process.transition.m_E / self.process.transition.m_E.sum()).double()]
        self.ab = self.process.schedule.alpha_bars.double()
        self.n_nodes_dist = torch.tensor([0.0, 0.1, 0.2, 0.7, 0.0], dtype=DT)
        # a lookup of (state -> values) and of the valid orders of every state
        self.vals = [values(s) for s in range(S)]
        self.valid = [[o for o in ORDERS if all(keys_of(v)[o[a]] <= keys_of(v)[o[a + 1]] for a in range(N - 1))]
                      for v in self.vals]
        # batched model: table rows of the relabelled states, per (state, order)
        perm_state = torch.zeros(S, len(ORDERS), dtype=torch.long)
        for s, v in enumerate(self.vals):
            for k, o in enumerate(ORDERS):
                perm_state[s, k] = index(relabel(v, o))
        self.perm_state = perm_state

    # -------------------------------------------------------------- the model (library side)
    def model_fn(self, z: DenseGraph, t, generator=None):
        B = z.batch_size
        Xi, Ei = z.collapse(fill=0)
        s = torch.zeros(B, dtype=torch.long)
        for v in range(N):
            s = s * DX + Xi[:, v]
        for i, j in PAIRS:
            s = s * DE + Ei[:, i, j]
        deg = torch.stack([sum((Ei[:, i, j] != 0).long() for j in range(N) if j != i) for i in range(N)], 1)
        keys = 10 * Xi[:, :N] + deg
        u = torch.rand(B, N, generator=generator, dtype=DT) * 0.5  # uniform tie-breaking
        order = torch.argsort(keys.to(DT) + u, dim=1)  # new node a = old node order[:, a]
        k = torch.tensor([ORDERS.index(tuple(o)) for o in order.tolist()])
        rows = self.table[t.long(), self.perm_state[s, k]]
        lX = torch.zeros(B, N_PAD, DX, dtype=DT)
        lE = torch.zeros(B, N_PAD, N_PAD, DE, dtype=DT)
        b = torch.arange(B)
        for a in range(N):
            lX[b, order[:, a]] = rows[:, a * DX:(a + 1) * DX]
        off = N * DX
        for p, (a1, a2) in enumerate(PAIRS):
            blk = rows[:, off + p * DE: off + (p + 1) * DE]
            lE[b, order[:, a1], order[:, a2]] = blk
            lE[b, order[:, a2], order[:, a1]] = blk
        return lX, lE

    def dense(self, vals, B):
        Xi = torch.zeros(B, N_PAD, dtype=torch.long)
        Ei = torch.zeros(B, N_PAD, N_PAD, dtype=torch.long)
        for v in range(N):
            Xi[:, v] = vals[v]
        for (i, j), v in zip(PAIRS, vals[N:]):
            Ei[:, i, j] = Ei[:, j, i] = v
        mask = (torch.arange(N_PAD) < N).unsqueeze(0).expand(B, N_PAD)
        g = DenseGraph.from_indices(Xi, Ei, mask, DX, DE)
        return DenseGraph(g.X.to(DT), g.E.to(DT), g.y.to(DT), g.node_mask)

    # -------------------------------------------------------------- enumeration (independent of the library)
    def Q(self, a, v):
        m = self.m[0] if v < N else self.m[1]
        return a * torch.eye(m.numel(), dtype=DT) + (1 - a) * m.unsqueeze(0)

    def joint(self, rows):
        J = torch.ones(1, dtype=DT)
        for r in rows:
            J = torch.outer(J, r).flatten()
        return J

    def per_var_probs(self, t, s, o):
        """p̂ per variable (original coordinates) for state s and order o at time t."""
        row = self.table[t, index(relabel(self.vals[s], o))]
        out = [None] * len(CARDS)
        for a in range(N):
            out[o[a]] = torch.softmax(row[a * DX:(a + 1) * DX], 0)
        off = N * DX
        for p, (a1, a2) in enumerate(PAIRS):
            i, j = sorted((o[a1], o[a2]))
            out[N + PAIRS.index((i, j))] = torch.softmax(row[off + p * DE: off + (p + 1) * DE], 0)
        return out

    def reverse(self, t):
        """P[s_t, o, s_s] for every order (rows of invalid orders are left 0)."""
        P = torch.zeros(S, len(ORDERS), S, dtype=DT)
        Qs = [self.Q(self.ab[t - 1], v) for v in range(len(CARDS))]
        Qts = [self.Q(self.ab[t] / self.ab[t - 1], v) for v in range(len(CARDS))]
        Qt = [self.Q(self.ab[t], v) for v in range(len(CARDS))]
        for s in range(S):
            for o in self.valid[s]:
                rows = []
                for v, ph in enumerate(self.per_var_probs(t, s, o)):
                    c = self.vals[s][v]
                    rows.append(torch.stack([sum(ph[k] * Qs[v][k, a] * Qts[v][a, c] / Qt[v][k, c]
                                                 for k in range(CARDS[v])) for a in range(CARDS[v])]))
                P[s, ORDERS.index(o)] = self.joint(rows)
        return P

    def decoder(self):
        D = torch.zeros(S, len(ORDERS), S, dtype=DT)
        for s in range(S):
            for o in self.valid[s]:
                D[s, ORDERS.index(o)] = self.joint(self.per_var_probs(0, s, o))
        return D

    def mixture(self, P):
        """E_g̃ P[s, g̃, :]: the mixture over the valid orders of each state."""
        out = torch.zeros(S, S, dtype=DT)
        for s in range(S):
            out[s] = torch.stack([P[s, ORDERS.index(o)] for o in self.valid[s]]).mean(0)
        return out

    def expected_log_mean(self, P, K):
        """E over K i.i.d. uniform valid orders of log (1/K) Σ_k P[s, o_k, :], per state s: (S, S)."""
        out = torch.zeros(S, S, dtype=DT)
        for s in range(S):
            V = [ORDERS.index(o) for o in self.valid[s]]
            G = len(V)
            acc = torch.zeros(S, dtype=DT)
            for combo in itertools.combinations_with_replacement(range(G), K):
                counts = [combo.count(i) for i in range(G)]
                w = math.factorial(K) / math.prod(math.factorial(c) for c in counts) / G ** K
                mean = sum(c * P[s, V[i]] for i, c in enumerate(counts)) / K
                acc = acc + w * torch.log(mean)
            out[s] = acc
        return out


@pytest.fixture(scope="module")
def toy():
    return Toy(seed=0)


@pytest.fixture(scope="module")
def enum(toy):
    x_state = index(X_VALS)
    xvec = torch.zeros(S, dtype=DT)
    xvec[x_state] = 1.0

    def q(t):  # q(z_t | x) over the joint states
        return xvec @ _kron([toy.Q(toy.ab[t], v) for v in range(len(CARDS))])

    prior = toy.joint([toy.m[0]] * N + [toy.m[1]] * len(PAIRS))
    P = {t: toy.reverse(t) for t in range(1, T + 1)}
    D = toy.decoder()
    Pbar = {t: toy.mixture(P[t]) for t in P}
    Dbar = toy.mixture(D)
    log_pN = math.log(float(toy.n_nodes_dist[N]))
    # exact NLL of the mixture model
    vec = prior
    for t in range(T, 0, -1):
        vec = vec @ Pbar[t]
    p_x = float((vec @ Dbar)[x_state])
    nll = -log_pN - math.log(p_x)
    kl_prior = float((q(T) * (torch.log(q(T)) - torch.log(prior))).sum())

    def posts(t):
        qt, qs = q(t), q(t - 1)
        J = _kron([toy.Q(toy.ab[t] / toy.ab[t - 1], v) for v in range(len(CARDS))])
        post = J.T * qs.unsqueeze(0) / qt.unsqueeze(1)  # post[z_t, z_s]
        return qt, post

    def bound(log_model_t, log_model_0):
        total = -log_pN + kl_prior
        for t in range(1, T + 1):
            qt, post = posts(t)
            lp = torch.where(post > 0, torch.log(post.clamp_min(1e-300)) - log_model_t[t], torch.zeros_like(post))
            total += float((qt.unsqueeze(1) * post * lp).sum())
        total += float(-(q(0) * log_model_0[:, x_state]).sum())
        return total

    elbo = bound({t: torch.log(Pbar[t]) for t in P}, torch.log(Dbar))
    est = {K: bound({t: toy.expected_log_mean(P[t], K) for t in P}, toy.expected_log_mean(D, K))
           for K in (1, 2, 4, 8)}
    return {"nll": nll, "elbo": elbo, "est": est, "p_x": p_x}


def _kron(mats):
    J = torch.ones(1, 1, dtype=DT)
    for M in mats:
        J = torch.kron(J, M)
    return J


def test_enumeration_is_consistent(toy, enum):
    assert 0 < enum["p_x"] < 1
    assert any(len(v) > 1 for v in toy.valid) and any(len(v) == 1 for v in toy.valid)  # ties and no ties


def test_nll_le_elbo_le_estimator_for_every_K_tightening(enum):
    nll, elbo, est = enum["nll"], enum["elbo"], enum["est"]
    assert nll <= elbo + 1e-10
    Ks = sorted(est)
    for K in Ks:
        assert elbo <= est[K] + 1e-10, (K, elbo, est[K])
    for a, b in zip(Ks, Ks[1:]):
        assert est[b] <= est[a] + 1e-10
    gap1, gap8 = est[1] - elbo, est[8] - elbo
    assert gap1 > 1e-2  # the mixture bound is really tighter than one draw here
    assert gap8 < 0.25 * gap1  # and approaches the ELBO as K grows (gap ~ 1/K)


@pytest.mark.parametrize("K", [1, 4])
def test_library_estimator_has_the_enumerated_expectation(toy, enum, K):
    B = 4000
    x = toy.dense(X_VALS, B)
    out = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="exact", mixture_draws=K,
                    generator=torch.Generator().manual_seed(17 + K))
    mean, se = nll_summary(out["nll"])
    assert abs(mean - enum["est"][K]) < 4.5 * se, (K, mean, se, enum["est"][K])
    assert torch.isfinite(out["nll"]).all()


def test_K1_equals_the_per_draw_bound_in_expectation(toy, enum):
    B = 4000
    x = toy.dense(X_VALS, B)
    per_draw = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="exact",
                         generator=torch.Generator().manual_seed(3))
    mean, se = nll_summary(per_draw["nll"])
    assert abs(mean - enum["est"][1]) < 4.5 * se


def test_log_mean_exp_and_errors(toy):
    v = torch.tensor([[0.0, -1.0], [math.log(3.0), -1.0]], dtype=DT)
    torch.testing.assert_close(log_mean_exp(v), torch.tensor([math.log(2.0), -1.0], dtype=DT))
    x = toy.dense(X_VALS, 2)
    with pytest.raises(ValueError, match="mixture_draws"):
        nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, mixture_draws=2, digress_compat=True)
    with pytest.raises(ValueError, match="mixture_draws"):
        nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, mixture_draws=2, num_draws=2)
