"""The K-draw mixture objective: K = 1 against the per-variable cross-entropy, Jensen, stability,
reproducible draws, and the 2-node "exactly one node is marked" toy (log 2 vs 2 log 2)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss
from sympe.diffusion.objectives.mixture import (digress_edge_weight, draw_logits, graph_log_likelihood, mixture_nll,
                                          mixture_nll_loss, tile_graph)

LOG2 = math.log(2.0)


def random_graph(B=4, n=6, dx=3, de=3, seed=0) -> DenseGraph:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, n + 1, (B,), generator=g)
    sizes[0] = n
    node_mask = torch.arange(n).unsqueeze(0) < sizes.unsqueeze(1)
    Xi = torch.randint(0, dx, (B, n), generator=g)
    Ei = torch.randint(0, de, (B, n, n), generator=g)
    Ei = torch.triu(Ei, diagonal=1)
    Ei = Ei + Ei.transpose(1, 2)
    X = F.one_hot(Xi, dx).float()
    E = F.one_hot(Ei, de).float()
    return DenseGraph(X, E, torch.zeros(B, 0), node_mask).mask()


def random_logits(x: DenseGraph, K=None, seed=1, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    B, n, dx = x.X.shape
    de = x.E.shape[-1]
    lead = () if K is None else (K,)
    lx = torch.randn(*lead, B, n, dx, generator=g) * scale
    le = torch.randn(*lead, B, n, n, de, generator=g) * scale
    return lx, (le + le.transpose(-2, -3)) / 2


def per_variable_ce_sum(lx, le, x: DenseGraph, edge_weight=1.0):
    """Independent reference: F.cross_entropy summed over each graph's nodes and pairs i < j."""
    Xi, Ei = x.collapse(fill=0)
    out = []
    for b in range(x.batch_size):
        N = int(x.node_mask[b].sum())
        iu = torch.triu_indices(N, N, offset=1)
        cx = F.cross_entropy(lx[b, :N].double(), Xi[b, :N], reduction="sum")
        ce = F.cross_entropy(le[b, iu[0], iu[1]].double(), Ei[b, iu[0], iu[1]], reduction="sum")
        out.append(cx + edge_weight * ce)
    return torch.stack(out)


# ---------------------------------------------------------------------------- K = 1
def test_k1_is_summed_per_variable_cross_entropy():
    x = random_graph()
    lx, le = random_logits(x)
    out = mixture_nll(lx[None], le[None], x)
    ref = per_variable_ce_sum(lx, le, x)
    torch.testing.assert_close(out["nll"], ref)
    torch.testing.assert_close(out["per_draw_nll"], ref)
    torch.testing.assert_close(out["ess"], torch.ones_like(ref, dtype=torch.float64))


@pytest.mark.parametrize("lambda_E", [1.0, 5.0])
def test_k1_digress_weighting_equals_existing_loss(lambda_E):
    x = random_graph(B=5, n=7, seed=3)
    lx, le = random_logits(x, seed=4)
    expected = diffusion_ce_loss(lx, le, x, lambda_E)["loss"]
    calls = []

    def model_fn(z, t, generator):
        calls.append(1)
        return lx, le

    got = mixture_nll_loss(model_fn, x, torch.ones(5), x, K=1, weighting="digress", lambda_E=lambda_E)
    assert len(calls) == 1
    torch.testing.assert_close(got["loss"], expected)
    # the relation of the docstring, spelled out: sum of per-graph CE with w_E = λ N_X / N_E, over N_X
    w = digress_edge_weight(x.node_mask, lambda_E)
    torch.testing.assert_close(per_variable_ce_sum(lx, le, x, w).sum() / x.node_mask.sum(), expected.double())


def test_likelihood_weighting_loss_is_mean_nats_per_graph():
    x = random_graph(seed=5)
    lx, le = random_logits(x, K=3, seed=6)
    draws = iter(range(3))

    def model_fn(z, t, generator):
        k = next(draws)
        return lx[k], le[k]

    got = mixture_nll_loss(model_fn, x, torch.ones(4), x, K=3, weighting="likelihood", lambda_E=5.0)
    per_draw = torch.stack([per_variable_ce_sum(lx[k], le[k], x) for k in range(3)])
    expected = -torch.logsumexp(-per_draw, 0) + math.log(3)
    torch.testing.assert_close(got["nll"], expected)
    torch.testing.assert_close(got["loss"].double(), expected.mean(), rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------------------- K > 1
@pytest.mark.parametrize("K", [2, 5, 16])
def test_jensen_mixture_below_mean_per_draw(K):
    x = random_graph(B=6, seed=K)
    lx, le = random_logits(x, K=K, seed=10 + K)
    out = mixture_nll(lx, le, x)
    per_draw = torch.stack([per_variable_ce_sum(lx[k], le[k], x) for k in range(K)])  # (K, B)
    torch.testing.assert_close(out["per_draw_nll"], per_draw.mean(0))
    assert (out["nll"] < out["per_draw_nll"] - 1e-6).all()  # strict: the draws differ
    assert (out["nll"] >= per_draw.min(0).values - 1e-9).all()  # a mean of probabilities <= their maximum
    assert (out["ess"] >= 1 - 1e-9).all() and (out["ess"] <= K + 1e-9).all()
    # reference: log-mean-exp computed independently
    ref = -torch.log(torch.exp(-per_draw).mean(0))
    torch.testing.assert_close(out["nll"], ref)


def test_identical_draws_give_the_per_draw_loss():
    x = random_graph(seed=7)
    lx, le = random_logits(x, seed=8)
    out = mixture_nll(lx.expand(4, *lx.shape), le.expand(4, *le.shape), x)
    torch.testing.assert_close(out["nll"], out["per_draw_nll"])
    torch.testing.assert_close(out["ess"], torch.full_like(out["ess"], 4.0))


def test_log_sum_exp_is_stable_for_huge_joint_log_likelihoods():
    x = random_graph(B=3, n=8, seed=9)
    lx, le = random_logits(x, K=4, seed=10, scale=1e4)  # per-graph log-likelihoods ~ -1e5: exp underflows
    out = mixture_nll(lx, le, x)
    assert torch.isfinite(out["nll"]).all() and (out["nll"] > 1e3).all()
    per_draw = torch.stack([per_variable_ce_sum(lx[k], le[k], x) for k in range(4)])
    # the best draw dominates: L_K = min_k CE_k + log K up to exp(-gap)
    torch.testing.assert_close(out["nll"], per_draw.min(0).values + math.log(4), rtol=0, atol=1e-6)
    lx.requires_grad_(True)
    mixture_nll(lx, le, x)["nll"].sum().backward()
    assert torch.isfinite(lx.grad).all()


def test_padding_and_diagonal_are_ignored():
    x = random_graph(seed=11)
    lx, le = random_logits(x, K=2, seed=12)
    a = graph_log_likelihood(lx, le, x)
    pad = ~x.node_mask
    lx2, le2 = lx.clone(), le.clone()
    lx2[:, pad] = 1e6 * torch.randn_like(lx2[:, pad])
    eye = torch.eye(x.max_nodes, dtype=torch.bool)
    le2[:, :, eye] = 123.0
    pair_pad = pad.unsqueeze(2) | pad.unsqueeze(1)
    le2[:, pair_pad] = -77.0
    torch.testing.assert_close(graph_log_likelihood(lx2, le2, x), a)


def test_bad_inputs():
    x = random_graph()
    lx, le = random_logits(x, K=2)
    with pytest.raises(ValueError, match="K, B, n, dx"):
        mixture_nll(lx[0], le[0], x)
    with pytest.raises(ValueError, match="draws"):
        mixture_nll(lx, le[:1], x)
    with pytest.raises(ValueError, match="classes"):
        mixture_nll(lx[..., :2], le, x)
    with pytest.raises(ValueError, match="weighting"):
        mixture_nll_loss(lambda z, t, g: (lx[0], le[0]), x, torch.ones(4), x, K=1, weighting="sum", lambda_E=5.0)
    with pytest.raises(ValueError, match="K"):
        draw_logits(lambda z, t, g: (lx[0], le[0]), x, torch.ones(4), K=0)


# ---------------------------------------------------------------------------- drawing the K logits
class NoisyModel(torch.nn.Module):
    """A toy denoiser whose output depends on a Gaussian draw from the generator (like a breaker)."""

    def __init__(self, dx, de):
        super().__init__()
        self.lin_x = torch.nn.Linear(dx + 1, dx)
        self.lin_e = torch.nn.Linear(de, de)

    def forward(self, z, t, generator):
        eps = torch.randn(*z.X.shape[:2], 1, generator=generator)
        return self.lin_x(torch.cat([z.X, eps], -1)), self.lin_e(z.E) + eps.unsqueeze(2)


def test_draw_logits_differ_and_are_reproducible():
    torch.manual_seed(0)
    x = random_graph()
    model = NoisyModel(x.X.shape[-1], x.E.shape[-1])
    t = torch.ones(4)
    a = draw_logits(model, x, t, 3, torch.Generator().manual_seed(5))
    b = draw_logits(model, x, t, 3, torch.Generator().manual_seed(5))
    assert a[0].shape == (3, 4, 6, 3) and a[1].shape == (3, 4, 6, 6, 3)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert not torch.allclose(a[0][0], a[0][1]) and not torch.allclose(a[0][1], a[0][2])
    tiled = draw_logits(model, x, t, 3, torch.Generator().manual_seed(5), tile=True)
    assert tiled[0].shape == a[0].shape and not torch.allclose(tiled[0][0], tiled[0][1])
    # one call on K*B tiled graphs: copy k of graph b must be draw k of graph b
    assert torch.equal(tile_graph(x, 3).X[2 * 4 + 1], x.X[1])
    loss = mixture_nll_loss(model, x, t, x, K=3, generator=torch.Generator().manual_seed(5), weighting="likelihood",
                            lambda_E=5.0)
    loss["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert (loss["nll"] < loss["per_draw_nll"]).all()


def test_tiled_equals_sequential_for_a_deterministic_model():
    x = random_graph(seed=13)
    lin = torch.nn.Linear(x.X.shape[-1], x.X.shape[-1])

    def model_fn(z, t, generator):
        return lin(z.X) * t.view(-1, 1, 1), z.E * 2.0

    t = torch.arange(1, 5).float()
    s = draw_logits(model_fn, x, t, 4)
    tl = draw_logits(model_fn, x, t, 4, tile=True)
    torch.testing.assert_close(s[0], tl[0])
    torch.testing.assert_close(s[1], tl[1])


# ---------------------------------------------------------------------------- the 2-node toy
# Data: two nodes, no edge, exactly one of them marked (class 1), each of the two labelled graphs with
# probability 1/2: entropy log 2 nats per graph. At a noisy graph that makes the two nodes
# interchangeable, an equivariant factorised prediction gives both nodes the same p(marked) = q, hence
# p(x) = q (1 - q) <= 1/4 for each data graph: NLL >= 2 log 2. A g̃-dependent one ("the node ranked first
# by g̃ is marked") is a mixture over the two orderings that puts 1/2 on each data graph: NLL = log 2.
def toy_data() -> DenseGraph:
    X = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])  # graph 0: node 0 marked; graph 1: node 1
    E = torch.zeros(2, 2, 2, 2)
    E[:, 0, 1, 0] = E[:, 1, 0, 0] = 1.0
    return DenseGraph(X, E, torch.zeros(2, 0), torch.ones(2, 2, dtype=torch.bool))


def rank_logits(theta: torch.Tensor, order: tuple[int, int]):
    """Logits for the toy given g̃ = ``order`` (node order[r] has rank r): node of rank r gets
    logit theta[r] for "marked"; the edge is predicted absent with certainty."""
    lx = torch.zeros(2, 2, 2, dtype=theta.dtype)  # (B=2, n=2, dx=2), the same for both data graphs
    for r, v in enumerate(order):
        lx[:, v, 1] = theta[r]
    le = torch.zeros(2, 2, 2, 2, dtype=theta.dtype)
    le[..., 1] = -float("inf")
    return lx, le


ORDERS = [(0, 1), (1, 0)]  # the two equally likely tie orders of two automorphic nodes


def exact_mixture_nll(theta):
    """-log E_g̃ Π_v p̂(x^v | g̃), averaged over the two data graphs (g̃ enumerated: K = 2, one per order)."""
    lx, le = zip(*(rank_logits(theta, o) for o in ORDERS))
    return mixture_nll(torch.stack(lx), torch.stack(le), toy_data())["nll"].mean()


def per_draw_nll(theta):
    """E_g̃ [-log Π_v p̂(x^v | g̃)] (the K = 1 / per-variable objective), averaged over the data."""
    return torch.stack([mixture_nll(*(t[None] for t in rank_logits(theta, o)), toy_data())["nll"].mean()
                        for o in ORDERS]).mean()


def test_toy_mixture_reaches_the_data_entropy():
    # g̃ = order: the node ranked first is marked with certainty (logits = log-probabilities)
    lx = torch.zeros(2, 2, 2, 2, dtype=torch.float64)  # (K, B, n, dx)
    for k, order in enumerate(ORDERS):
        lx[k, :, order[0]] = torch.tensor([-float("inf"), 0.0])
        lx[k, :, order[1]] = torch.tensor([0.0, -float("inf")])
    le = torch.zeros(2, 2, 2, 2, 2, dtype=torch.float64)
    le[..., 1] = -float("inf")
    out = mixture_nll(lx, le, toy_data())
    torch.testing.assert_close(out["nll"], torch.full((2,), LOG2, dtype=torch.float64))
    # the mixture's distribution over all four labelled outcomes is the data distribution
    probs = {}
    for a in (0, 1):
        for b in (0, 1):
            p = sum(0.5 * float(torch.exp(lx[k, 0, 0, a] + lx[k, 0, 1, b])) for k in range(2))
            probs[(a, b)] = p
    assert probs == {(0, 0): 0.0, (0, 1): 0.5, (1, 0): 0.5, (1, 1): 0.0}
    # and with finite logits the loss approaches log 2 from above
    for s in (2.0, 5.0, 10.0, 20.0):
        v = float(exact_mixture_nll(torch.tensor([s, -s], dtype=torch.float64)))
        assert LOG2 < v < LOG2 + 2 * math.exp(-s) + 1e-12


def test_toy_equivariant_factorised_cannot_beat_two_log_two():
    qs = torch.linspace(0.01, 0.99, 197, dtype=torch.float64)
    losses = []
    for q in qs:
        lx = torch.log(torch.stack([1 - q, q])).expand(1, 2, 2, 2)  # same p(marked) = q at both nodes
        le = torch.zeros(1, 2, 2, 2, 2, dtype=torch.float64)
        le[..., 1] = -float("inf")
        losses.append(float(mixture_nll(lx, le, toy_data())["nll"].mean()))
    losses = torch.tensor(losses)
    assert losses.min() >= 2 * LOG2 - 1e-12
    assert losses.min() == pytest.approx(2 * LOG2, abs=1e-5)
    assert float(qs[losses.argmin()]) == pytest.approx(0.5, abs=1e-6)
    # the same holds for any g̃-dependent prediction scored per draw: E_g̃ -log p(x | g̃) >= 2 log 2
    grid = torch.linspace(-6, 6, 25, dtype=torch.float64)
    pd = torch.tensor([[float(per_draw_nll(torch.stack([a, b]))) for b in grid] for a in grid])
    assert pd.min() >= 2 * LOG2 - 1e-12


def test_toy_training_per_draw_ignores_g_mixture_uses_it():
    """Gradient descent on θ (one logit per g̃-rank): the per-draw objective converges to 2 log 2 with
    θ_0 = θ_1 (g̃ ignored); the mixture objective to log 2 with θ_0 -> +∞, θ_1 -> -∞ (g̃ used)."""
    results = {}
    for name, objective in (("per_draw", per_draw_nll), ("mixture", exact_mixture_nll)):
        theta = torch.tensor([0.3, -0.1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([theta], lr=0.1)
        for _ in range(200):
            opt.zero_grad()
            loss = objective(theta)
            loss.backward()
            opt.step()
        results[name] = (float(objective(theta.detach())), theta.detach().clone())
    v, th = results["per_draw"]
    assert v == pytest.approx(2 * LOG2, abs=1e-4) and abs(float(th[0] - th[1])) < 0.05
    v, th = results["mixture"]
    assert v < LOG2 + 0.01 and float(th[0]) > 3 and float(th[1]) < -3
