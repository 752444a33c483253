"""The training objective with ranks from a proposal (``model.train.proposal``), on a real SymPE network."""
from __future__ import annotations

import math

import pytest
import torch

from breaking_oracles import IdealBreakerOracle, draw
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.denoiser import DenoisingNetwork
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss
from sympe.diffusion.objectives.mixture import graph_log_likelihood, proposal_nll_loss
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.schedule import make_schedule
from sympe.diffusion.process.transition import AbsorbingTransition


def _net(symbreak="sympe", n=6):
    info = DatasetInfo(name="star", node_classes=["node"], edge_classes=["none", "edge"], max_nodes=n,
                       n_nodes_dist=[0.0] * n + [1.0], node_marginals=[1.0], edge_marginals=[0.6, 0.4])
    torch.manual_seed(0)
    return DenoisingNetwork(info, T=3, n_layers=1, hidden_mlp_dims={"X": 8, "E": 8, "y": 8},
                            hidden_dims={"dx": 8, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 8, "dim_ffE": 8,
                                         "dim_ffy": 8},
                            dropout=0.0, recompute_attention=False, features="none", feature_kwargs={},
                            molecular_features=False, symbreak=symbreak, symbreak_kwargs={})


def _process():
    return DiscreteProcess(make_schedule("cosine", 3, exact_limit=True), AbsorbingTransition(1, 2, absorbing_node_class=0))


def test_k1_canonical_is_the_cross_entropy_with_teacher_forced_ranks():
    """K = 1: nll = -(a + ℓ) with ℓ the network's log-likelihood of x0 given the proposal's ranks and a = log p(g) -
    log r(g) a constant; with the digress weighting the loss is DiGress's per-variable loss on the same call."""
    from sympe.diffusion.likelihood.rank_draws import proposal_draws

    net, proc = _net(), _process()
    x = draw("star", 6, 5, 0)
    t = torch.tensor([0, 1, 2, 3, 1])
    z = proc.q_sample(x, t, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)
    out = proposal_nll_loss(net, z, t, x, 1, proposal="canonical", process=proc, weighting="likelihood", lambda_E=5.0)
    torch.manual_seed(7)
    dig = proposal_nll_loss(net, z, t, x, 1, proposal="canonical", process=proc, weighting="digress", lambda_E=5.0)
    torch.manual_seed(7)
    _, ranks, a = proposal_draws(net, x, z, t, proc, 1, "canonical", None, anchor=None)
    lX, lE = net(z, t, ranks=ranks)
    ll = graph_log_likelihood(lX, lE, x, 1.0)
    torch.testing.assert_close(out["nll"], -(a + ll).detach().double())
    torch.testing.assert_close(out["loss"], (-(a + ll)).mean().float())
    torch.testing.assert_close(dig["loss"], diffusion_ce_loss(lX, lE, x, 5.0)["loss"])
    torch.testing.assert_close(out["nll"], dig["nll"])
    assert bool((a <= 1e-9).all())  # log p(g) <= log r(g) on the canonical support: p spreads over more orders


def test_the_weights_make_it_a_bound_of_the_mixture():
    """For an ideal breaker, L^r with the canonical proposal equals -log p̂_mix(x0 | z_t) (= log of the number of
    completions of z_t), and the objective is an upper bound for the defensive proposal too."""
    proc = _process()
    oracle = IdealBreakerOracle("star", 5, eps=1e-9)
    x = draw("star", 5, 4, 2)
    t = torch.zeros(4, dtype=torch.long)
    empty = type(x)(x.X, torch.nn.functional.one_hot(torch.zeros(4, 5, 5, dtype=torch.long), 2).float()
                    * (1 - torch.eye(5)).view(1, 5, 5, 1), x.y, x.node_mask)

    def net(z, tt, generator=None, ranks=None):
        return oracle(z, tt, generator, ranks)

    net.breaker_draw = "ranks"
    net.tie_groups, net.rank_log_prob, net.sample_ranks = oracle.tie_groups, oracle.rank_log_prob, oracle.sample_ranks
    out = proposal_nll_loss(net, empty, t, x, 1, proposal="canonical", process=proc, weighting="likelihood", lambda_E=1)
    torch.testing.assert_close(out["nll"], torch.full((4,), math.log(5), dtype=torch.float64), atol=1e-5, rtol=0)
    torch.manual_seed(0)
    vals = torch.stack([proposal_nll_loss(net, empty, t, x, 2, proposal="defensive", process=proc,
                                          weighting="likelihood", lambda_E=1)["nll"] for _ in range(40)])
    assert float(vals.mean()) >= math.log(5) - 1e-6  # an upper bound on -log p_mix = log 5


def test_training_step_uses_the_proposal_and_refusals():
    net, proc = _net(), _process()
    x = draw("star", 6, 3, 0)
    t = torch.tensor([1, 2, 3])
    z = proc.q_sample(x, t)
    with pytest.raises(ValueError, match="no likelihood bound"):
        proposal_nll_loss(net, z, t, x, 2, proposal="canonical", process=proc, weighting="digress", lambda_E=5.0)
    with pytest.raises(ValueError, match="proposal="):
        proposal_nll_loss(net, z, t, x, 1, proposal="prior", process=proc, weighting="likelihood", lambda_E=5.0)
    with pytest.raises(ValueError, match="rank-based"):
        proposal_nll_loss(_net("noise"), z, t, x, 1, proposal="canonical", process=proc, weighting="likelihood",
                          lambda_E=5.0)
    out = proposal_nll_loss(net, z, t, x, 3, proposal="defensive", process=proc, weighting="likelihood", lambda_E=5.0)
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_given_ranks_reach_the_encoding_and_bad_ranks_are_refused():
    net = _net()
    x = draw("star", 6, 2, 0)
    t = torch.tensor([1, 1])
    a = torch.arange(6).repeat(2, 1)
    b = torch.arange(6).flip(0).repeat(2, 1)
    la, _ = net(x, t, ranks=a)
    lb, _ = net(x, t, ranks=b)
    assert not torch.allclose(la, lb)
    la2, _ = net(x, t, ranks=a)
    torch.testing.assert_close(la, la2)  # given ranks: no random draw
    with pytest.raises(ValueError, match="distinct"):
        net(x, t, ranks=torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="rank-based"):
        _net("none")(x, t, ranks=a)
