"""The mixture bound with proposals over g̃, against exact enumeration and against oracles with known answers.

* A deterministic network (the posterior-marginal oracle) gets exactly its per-draw bound under every proposal.
* An ideal rank breaker (ranks name one completion each) reaches the data entropy H under ``exact``,
  ``canonical`` and ``defensive``, while its per-draw bound is far above F(T): the per-draw bound never credits it.
* On a star small enough to enumerate every z_0 and every order, the library's L_0 estimate with the canonical
  and defensive proposals has the enumerated expectation, which is >= the exact mixture term (an upper bound).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from breaking_oracles import IdealBreakerOracle, PosteriorMarginalOracle, draw, entropy, family_support, orbit_groups
from sympe.diffusion.likelihood.bound import _per_draw_term, nll_summary, nll_terms
from sympe.diffusion.likelihood.mixture_bound import mixture_diffusion_term, mixture_reconstruction_term
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.schedule import make_schedule
from sympe.diffusion.process.transition import AbsorbingTransition
from sympe.symbreak.proposal import CanonicalProposal, tie_consistent_ranks


def _process(T):
    return DiscreteProcess(make_schedule("cosine", T, exact_limit=True), AbsorbingTransition(1, 2, absorbing_node_class=0))


def _n_dist(N):
    d = torch.zeros(N + 1)
    d[N] = 1
    return d


@pytest.mark.parametrize("proposal,K", [("prior", 4), ("canonical", 2), ("defensive", 3), ("exact", 1)])
def test_a_deterministic_network_gets_its_per_draw_bound_under_every_proposal(proposal, K):
    proc = _process(3)
    x = draw("star", 5, 8, 0)
    net = PosteriorMarginalOracle("star", 5)
    t = torch.tensor([1, 2, 3, 2, 1, 3, 3, 1])
    per_draw = _per_draw_term(net, x, t, proc, torch.Generator().manual_seed(3), 1)
    mix = mixture_diffusion_term(net, x, t, proc, K, torch.Generator().manual_seed(3), proposal=proposal)
    torch.testing.assert_close(mix.float(), per_draw.float(), rtol=1e-5, atol=1e-5)  # same z_t: exactly equal
    rec = mixture_reconstruction_term(net, x, proc, K, torch.Generator().manual_seed(4), proposal=proposal)
    assert torch.isfinite(rec).all()


@pytest.mark.parametrize("family,size,proposal,K", [("star", 5, "exact", 1), ("star", 5, "canonical", 1),
                                                    ("star", 5, "defensive", 2), ("matching", 2, "exact", 1),
                                                    ("matching", 2, "canonical", 1)])
def test_an_ideal_breaker_reaches_the_data_entropy(family, size, proposal, K):
    proc = _process(1)
    x = draw(family, size, 48, 1)
    net = IdealBreakerOracle(family, size)
    out = nll_terms(net, x, proc, _n_dist(x.node_mask.shape[1]), estimator="exact",
                    generator=torch.Generator().manual_seed(5), mixture_draws=K, mixture_proposal=proposal, denoiser=net)
    mean, sem = nll_summary(out["nll"])
    H = entropy(family, size)
    assert abs(mean - H) < 4 * sem + 0.05, (mean, sem, H)
    # the per-draw bound of the same network is far above even the best factorised bound
    per = nll_terms(net, x, proc, _n_dist(x.node_mask.shape[1]), estimator="exact",
                    generator=torch.Generator().manual_seed(5))
    pm = nll_terms(PosteriorMarginalOracle(family, size), x, proc, _n_dist(x.node_mask.shape[1]), estimator="exact",
                   generator=torch.Generator().manual_seed(5))
    assert nll_summary(per["nll"])[0] > nll_summary(pm["nll"])[0] + 3


class NoisyBreaker(IdealBreakerOracle):
    """An imperfect rank breaker: the ideal completion with a confidence that depends on the ranks (a fixed hash)."""

    def __call__(self, z_t, t, generator=None, ranks=None):
        lX, lE = super().__call__(z_t, t, generator, ranks)
        if ranks is None:
            return lX, lE
        h = torch.tensor([(hash(tuple(r.tolist())) % 97) / 97.0 for r in ranks])
        return lX, lE * (0.05 + 0.2 * h).view(-1, 1, 1, 1)


def _exact_L0(net, x, proc, proposal):
    """Exact E over z_0 of: the mixture L_0 = -log Σ_g p(g) p(x | z_0, g), and the K = 1 estimate's expectation
    E_r[-log p(g) p(x | z_0, g) / r(g)] (enumerating every z_0, every order and the proposal's density)."""
    A = x.E[0].argmax(-1).numpy()
    n = len(A)
    edges = [tuple(e) for e in np.argwhere(np.triu(A, 1))]
    a0 = float(proc.schedule.alpha_bars[0])
    mix = est = 0.0
    t0 = torch.zeros(1, dtype=torch.long)
    for keep in itertools.product([0, 1], repeat=len(edges)):
        Z = np.zeros_like(A)
        for (u, v), k in zip(edges, keep):
            if k:
                Z[u, v] = Z[v, u] = 1
        prob = a0 ** sum(keep) * (1 - a0) ** (len(edges) - sum(keep))
        z = _graph(Z)
        groups = orbit_groups(Z)
        orders = tie_consistent_ranks(groups, 10**6)
        lp = []
        for r in orders:
            lX, lE = net(z, t0, ranks=torch.as_tensor(r).unsqueeze(0))
            pE = torch.softmax(lE.double(), -1)
            lp.append(sum(math.log(pE[0, i, j, A[i, j]]) for i in range(n) for j in range(i + 1, n)))
        lp = np.array(lp)
        log_prior = -math.log(len(orders))
        mix += prob * -(np.logaddexp.reduce(lp + log_prior))
        P = CanonicalProposal(np.zeros(n, np.int64), A, np.zeros(n, np.int64), Z, groups, 1, 2, 0)
        logr_can = np.array([P.log_prob(r) for r in orders])
        logr = logr_can if proposal == "canonical" else np.logaddexp(log_prior + math.log(0.5), logr_can + math.log(0.5))
        on = logr > -np.inf
        est += prob * float(np.sum(np.exp(logr[on]) * -(log_prior + lp[on] - logr[on])))
    return mix, est


def _graph(A):
    from breaking_oracles import to_dense
    return to_dense([A])


@pytest.mark.parametrize("proposal", ["canonical", "defensive"])
def test_reconstruction_estimate_matches_enumeration_and_bounds_the_mixture(proposal):
    proc = _process(1)
    net = NoisyBreaker("star", 4)
    x1 = _graph(family_support("star", 4)[0])
    mix, expected = _exact_L0(net, x1, proc, proposal)
    assert expected >= mix - 1e-9  # an upper bound on the mixture's L_0, for this proposal
    B = 600
    x = _graph(family_support("star", 4)[0])
    x = type(x)(x.X.repeat(B, 1, 1), x.E.repeat(B, 1, 1, 1), x.y.repeat(B, 1), x.node_mask.repeat(B, 1))
    vals = mixture_reconstruction_term(net, x, proc, 1, torch.Generator().manual_seed(0), proposal=proposal)
    mean, sem = nll_summary(vals)
    assert abs(mean - expected) < 4 * sem + 1e-6, (mean, sem, expected, mix)


def test_noise_breakers_and_bad_options_are_refused():
    proc = _process(2)
    x = draw("star", 4, 2, 0)

    def noise_fn(z, t, generator=None):
        return torch.zeros(*z.X.shape), torch.randn(*z.E.shape, generator=generator)

    t = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="rank-based symmetry breaker"):
        mixture_diffusion_term(noise_fn, x, t, proc, 2, proposal="canonical")
    with pytest.raises(ValueError, match="mixture_proposal"):
        mixture_diffusion_term(noise_fn, x, t, proc, 2, proposal="best")
    net = IdealBreakerOracle("star", 4)
    with pytest.raises(ValueError, match="mixture_exact_max=3"):
        mixture_reconstruction_term(net, x, proc, 1, proposal="exact", exact_max=3)


def _real_net(symbreak="sympe", **kw):
    from sympe.diffusion.info import DatasetInfo
    from sympe.diffusion.nn.denoiser import DenoisingNetwork

    info = DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "single", "double"], max_nodes=5,
                       n_nodes_dist=[0, 0, 0, 0, 0.5, 0.5], node_marginals=[0.7, 0.3], edge_marginals=[0.6, 0.3, 0.1])
    torch.manual_seed(0)
    return DenoisingNetwork(info, T=3, n_layers=1, hidden_mlp_dims={"X": 8, "E": 8, "y": 8},
                            hidden_dims={"dx": 8, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 8, "dim_ffE": 8, "dim_ffy": 8},
                            dropout=0.0, recompute_attention=False, features="none", feature_kwargs={},
                            molecular_features=False, symbreak=symbreak, symbreak_kwargs=kw)


def _padded_batch():
    """Two graphs of 4 and 5 real nodes (padding last), 2 node and 3 edge classes."""
    from sympe.diffusion.graph import DenseGraph

    g = torch.Generator().manual_seed(3)
    Xi = torch.randint(0, 2, (2, 5), generator=g)
    Ei = torch.randint(0, 3, (2, 5, 5), generator=g)
    Ei = torch.triu(Ei, 1)
    Ei = Ei + Ei.transpose(1, 2)
    mask = torch.tensor([[True] * 4 + [False], [True] * 5])
    return DenseGraph.from_indices(Xi, Ei, mask, 2, 3)


@pytest.mark.parametrize("transition", ["absorbing", "marginal"])
def test_a_real_sympe_network_on_a_padded_batch(transition):
    """SymPE (uniform ties) on graphs of two sizes with node and edge classes: every proposal gives finite
    per-graph values, deterministic and straight-through SymPE fall back to what they can do, and a
    Plackett–Luce breaker refuses the exact sum (its draws are not uniform on the tie-consistent orders)."""
    from sympe.diffusion.process.transition import make_transition

    tr = make_transition(transition, 2, 3, node_marginals=torch.tensor([0.7, 0.3]),
                         edge_marginals=torch.tensor([0.6, 0.3, 0.1]))
    proc = DiscreteProcess(make_schedule("cosine", 3, exact_limit=transition == "absorbing"), tr)
    x = _padded_batch()
    net = _real_net().eval()
    assert net.breaker_draw == "ranks" and net.rank_distribution == "uniform_ties"
    dist = torch.tensor([0, 0, 0, 0, 0.5, 0.5])
    with torch.no_grad():
        for proposal, K in [("prior", 3), ("canonical", 2), ("defensive", 2), ("exact", 1)]:
            out = nll_terms(net, x, proc, dist, estimator="exact", generator=torch.Generator().manual_seed(0),
                            mixture_draws=K, mixture_proposal=proposal, denoiser=net, mixture_exact_max=200)
            assert out["nll"].shape == (2,) and torch.isfinite(out["nll"]).all(), proposal
    assert _real_net(tie_mode="deterministic").breaker_draw == "none"
    assert _real_net(trainable=True, straight_through=True).breaker_draw == "noise"
    pl = _real_net(tie_mode="plackett_luce").eval()
    with pytest.raises(ValueError, match="plackett_luce"), torch.no_grad():
        mixture_reconstruction_term(pl, x, proc, 1, proposal="exact")


def _exact_L1(net, x_adj, proc):
    """T = 1, absorbing: z_1 is empty (ᾱ_1 = 0), z_0 keeps each edge with ᾱ_0. Enumerates z_0, every order and the
    anchored canonical proposal: returns (the mixture's L_1 = E_{z_0}[log q - log p̄], E[the K = 1 estimate])."""
    n = len(x_adj)
    edges = [tuple(e) for e in np.argwhere(np.triu(x_adj, 1))]
    a0 = float(proc.schedule.alpha_bars[0])
    z1 = _graph(np.zeros_like(x_adj))
    t1 = torch.ones(1, dtype=torch.long)
    groups = orbit_groups(np.zeros_like(x_adj))
    orders = tie_consistent_ranks(groups, 10**6)
    log_prior = -math.log(len(orders))
    kernels = []
    for r in orders:
        lX, lE = net(z1, t1, ranks=torch.as_tensor(r).unsqueeze(0))
        pX, pE = torch.softmax(lX.double(), -1), torch.softmax(lE.double(), -1)
        pE = 0.5 * (pE + pE.transpose(1, 2))
        rX, rE = proc.reverse_probs(pX.float(), pE.float(), z1, t1, t1 - 1)
        kernels.append(rE[0, :, :, 1].double().numpy())
    mix = est = 0.0
    for keep in itertools.product([0, 1], repeat=len(edges)):
        Z = np.zeros_like(x_adj)
        for (u, v), k in zip(edges, keep):
            if k:
                Z[u, v] = Z[v, u] = 1
        q = a0 ** sum(keep) * (1 - a0) ** (len(edges) - sum(keep))
        lp = np.array([sum(math.log(K[i, j] if Z[i, j] else 1 - K[i, j]) for i in range(n) for j in range(i + 1, n))
                       for K in kernels])
        mix += q * (math.log(q) - np.logaddexp.reduce(lp + log_prior))
        P = CanonicalProposal(np.zeros(n, np.int64), x_adj, np.zeros(n, np.int64), np.zeros_like(x_adj), groups, 1, 2,
                              0, anchor=(np.zeros(n, np.int64), Z))
        logr = np.array([P.log_prob(r) for r in orders])
        on = logr > -np.inf
        est += q * float(np.sum(np.exp(logr[on]) * (math.log(q) - (log_prior + lp[on] - logr[on]))))
    return mix, est


def test_reverse_step_estimate_with_the_anchored_proposal_matches_enumeration():
    """The L_t path (anchored canonical proposal, control variate with an unanchored reference draw): its mean over
    many draws is the enumerated expectation of log q - log w, which is >= the mixture's exact L_1."""
    proc = _process(1)
    net = NoisyBreaker("star", 4)
    A = family_support("star", 4)[0]
    mix, expected = _exact_L1(net, A, proc)
    assert expected >= mix - 1e-9
    B = 600
    x = _graph(A)
    x = type(x)(x.X.repeat(B, 1, 1), x.E.repeat(B, 1, 1, 1), x.y.repeat(B, 1), x.node_mask.repeat(B, 1))
    vals = mixture_diffusion_term(net, x, torch.ones(B, dtype=torch.long), proc, 1,
                                  torch.Generator().manual_seed(0), proposal="canonical")
    mean, sem = nll_summary(vals)
    assert abs(mean - expected) < 4 * sem + 1e-6, (mean, sem, expected, mix)
