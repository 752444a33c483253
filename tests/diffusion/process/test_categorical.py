"""Categorical sampling, noising, exact posteriors (vs brute-force Bayes) and the reverse step.

(The DiscreteProcess interface itself, against explicit matrices, is tested in test_discrete_process.py.)
"""
import itertools

import pytest
import torch
import torch.nn.functional as F

from sympe.diffusion.process.categorical import model_posterior, posterior, posterior_all_x0, sample_categorical
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import DiscreteProcess, predict_x0
from sympe.diffusion.process.schedule import CosineSchedule, NoiseSchedule
from sympe.diffusion.process.transition import AbsorbingTransition, MarginalTransition, UniformTransition


def _random_stochastic(d_from, d_to, g, dtype=torch.float64):
    m = torch.rand(d_from, d_to, generator=g, dtype=dtype) + 0.05
    return m / m.sum(-1, keepdim=True)


# ------------------------------------------------------------------------------------------- sample_categorical
def test_sample_categorical_structure_and_frequencies():
    g = torch.Generator().manual_seed(0)
    B, n, dx, de = 4000, 4, 3, 3
    node_mask = torch.ones(B, n, dtype=torch.bool)
    node_mask[: B // 2, 3] = False  # half the graphs have 3 real nodes
    pX1 = torch.softmax(torch.randn(n, dx, generator=g), -1)
    pE1 = torch.softmax(torch.randn(n, n, de, generator=g), -1)  # deliberately not symmetric
    probX = pX1.expand(B, n, dx).clone()
    probE = pE1.expand(B, n, n, de).clone()
    probX[~node_mask] = 0.0  # padding rows sum to zero: must be tolerated
    probE[~node_mask] = 0.0
    probE.transpose(1, 2)[~node_mask] = 0.0
    z = sample_categorical(probX, probE, node_mask, generator=g)
    z.validate()  # one-hot, symmetric, zero diagonal, zero padding
    assert torch.equal(z.node_mask, node_mask)
    assert (torch.diagonal(z.E, dim1=1, dim2=2) == 0).all()
    assert (z.X[~node_mask] == 0).all()
    # frequencies: nodes over the graphs where they are real; pairs i<j follow the upper triangle
    for i in range(n):
        rows = z.X[node_mask[:, i], i]
        torch.testing.assert_close(rows.mean(0), pX1[i], atol=0.035, rtol=0)
    for i, j in itertools.combinations(range(n), 2):
        real = node_mask[:, i] & node_mask[:, j]
        freq = z.E[real, i, j].mean(0)
        torch.testing.assert_close(freq, pE1[i, j], atol=0.035, rtol=0)
    # fixed seed: same draws
    z2 = sample_categorical(probX, probE, node_mask, generator=torch.Generator().manual_seed(0))
    z3 = sample_categorical(probX, probE, node_mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z2.X, z3.X) and torch.equal(z2.E, z3.E)


def test_sample_categorical_rejects_bad_real_rows():
    node_mask = torch.tensor([[True, True, False]])
    probX = torch.full((1, 3, 2), 0.5)
    probE = torch.full((1, 3, 3, 2), 0.5)
    bad = probX.clone()
    bad[0, 1] = 0.0
    with pytest.raises(ValueError, match="probX"):
        sample_categorical(bad, probE, node_mask)
    badE = probE.clone()
    badE[0, 0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="probE"):
        sample_categorical(probX, badE, node_mask)
    # NaN in padding only is fine
    ok = probE.clone()
    ok[0, 0, 2] = float("nan")
    sample_categorical(probX, ok, node_mask).validate()


def test_apply_noise_distribution():
    g = torch.Generator().manual_seed(1)
    B, n, dx, de = 3000, 3, 3, 2
    Xi = torch.tensor([0, 2, 1]).expand(B, n)
    Ei = torch.zeros(n, n, dtype=torch.long)
    Ei[0, 1] = Ei[1, 0] = 1
    x = DenseGraph.from_indices(Xi, Ei.expand(B, n, n), torch.ones(B, n, dtype=torch.bool), dx, de)
    tr = MarginalTransition(torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.7, 0.3]))
    # a one-step schedule with ᾱ_1 = 0.4: q_sample at t = 1 noises with Q(0.4)
    proc = DiscreteProcess(NoiseSchedule(torch.tensor([0.0, 0.6])), tr)
    Qx, Qe = tr.cumulative(torch.full((B,), 0.4))
    z = proc.q_sample(x, torch.ones(B, dtype=torch.long), generator=g)
    z.validate()
    for i in range(n):
        torch.testing.assert_close(z.X[:, i].mean(0), x.X[0, i] @ Qx[0], atol=0.035, rtol=0)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        torch.testing.assert_close(z.E[:, i, j].mean(0), x.E[0, i, j] @ Qe[0], atol=0.035, rtol=0)
    with pytest.raises(ValueError, match="q_probs"):
        DiscreteProcess(NoiseSchedule(torch.tensor([0.0, 0.6])), UniformTransition(2, 2)).q_sample(x, 1)


# ------------------------------------------------------------------------------------------- posteriors
def _brute_posterior(zt: int, x0: int, Q_ts, Qbar_s):
    """q(z_s = a | z_t, x0) = q(z_t | z_s=a) q(z_s=a | x0) / q(z_t | x0), with q(z_t|x0) by explicit summation."""
    d = Q_ts.shape[0]
    Qbar_t = torch.zeros(Qbar_s.shape[0], d, dtype=Q_ts.dtype)
    for k in range(Qbar_s.shape[0]):
        for b in range(d):
            Qbar_t[k, b] = sum(Qbar_s[k, a] * Q_ts[a, b] for a in range(d))
    return torch.stack([Q_ts[a, zt] * Qbar_s[x0, a] / Qbar_t[x0, zt] for a in range(d)])


@pytest.mark.parametrize("kind", ["random", "uniform", "marginal", "absorbing"])
def test_posterior_matches_brute_force_bayes(kind):
    g = torch.Generator().manual_seed(2)
    B, M, d = 3, 5, 4
    if kind == "random":  # the formula holds for any pair of stochastic matrices
        Q_ts = torch.stack([_random_stochastic(d, d, g) for _ in range(B)])
        Qbar_s = torch.stack([_random_stochastic(d, d, g) for _ in range(B)])
    else:
        m = torch.rand(d, generator=g) + 0.1
        tr = {"uniform": UniformTransition(d, 2), "marginal": MarginalTransition(m, torch.ones(2)),
              "absorbing": AbsorbingTransition(d, 2, absorbing_node_class=1)}[kind].double()
        ab_s = torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64)
        ab_t = ab_s * torch.tensor([0.95, 0.3, 0.01], dtype=torch.float64)
        Q_ts, _ = tr.Q_ts(ab_t, ab_s)
        Qbar_s, _ = tr.cumulative(ab_s)
    x0i = torch.randint(0, d, (B, M), generator=g)
    Qbar_t = Qbar_s @ Q_ts
    # z_t drawn from q(z_t | x0) so that every case is possible
    zti = torch.multinomial(Qbar_t[torch.arange(B).unsqueeze(1), x0i].reshape(B * M, d), 1, generator=g).view(B, M)
    zt, x0 = F.one_hot(zti, d).double(), F.one_hot(x0i, d).double()
    post = posterior(zt, x0, Q_ts, Qbar_s, Qbar_t)
    assert post.shape == (B, M, d)
    allx0 = posterior_all_x0(zt, Q_ts, Qbar_s)
    assert allx0.shape == (B, M, d, d)
    for b in range(B):
        for m in range(M):
            ref = _brute_posterior(int(zti[b, m]), int(x0i[b, m]), Q_ts[b], Qbar_s[b])
            torch.testing.assert_close(post[b, m], ref)
            for k in range(d):
                if Qbar_t[b, k, zti[b, m]] > 0:
                    torch.testing.assert_close(allx0[b, m, k], _brute_posterior(int(zti[b, m]), k, Q_ts[b], Qbar_s[b]))
                else:
                    assert (allx0[b, m, k] == 0).all()
    # model posterior = explicit Σ_k p̂_k q(z_s | z_t, x0 = k) (valid p̂ on consistent classes only)
    p = torch.softmax(torch.randn(B, M, d, generator=g, dtype=torch.float64), -1)
    consistent = (Qbar_t.unsqueeze(1) * zt.unsqueeze(2)).sum(-1) > 0  # (B, M, d0)
    p = p * consistent
    p = p / p.sum(-1, keepdim=True)
    explicit = torch.zeros(B, M, d, dtype=torch.float64)
    for b in range(B):
        for m in range(M):
            for k in range(d):
                if consistent[b, m, k]:
                    explicit[b, m] += p[b, m, k] * _brute_posterior(int(zti[b, m]), k, Q_ts[b], Qbar_s[b])
    torch.testing.assert_close(model_posterior(p, zt, Q_ts, Qbar_s), explicit)
    torch.testing.assert_close((p.unsqueeze(-1) * allx0).sum(-2), explicit)


def test_posterior_with_probabilistic_x0_is_bayes_under_mixture_prior():
    g = torch.Generator().manual_seed(3)
    d = 3
    Q_ts = _random_stochastic(d, d, g).unsqueeze(0)
    Qbar_s = _random_stochastic(d, d, g).unsqueeze(0)
    px0 = torch.tensor([[[0.2, 0.5, 0.3]]], dtype=torch.float64)
    zt = F.one_hot(torch.tensor([[2]]), d).double()
    prior = px0[0, 0] @ Qbar_s[0]
    ref = Q_ts[0, :, 2] * prior
    torch.testing.assert_close(posterior(zt, px0, Q_ts, Qbar_s)[0, 0], ref / ref.sum())


@pytest.mark.parametrize("beta", [0.0, 1e-9, 0.9999, 1.0])
@pytest.mark.parametrize("ab_s", [1.0, 0.5, 1e-12, 0.0])
@pytest.mark.parametrize("kind", ["uniform", "marginal", "absorbing"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_at_extremes(beta, ab_s, kind, dtype):
    d = 3
    tr = {"uniform": UniformTransition(d, d),
          "marginal": MarginalTransition(torch.tensor([0.0, 0.3, 0.7]), torch.tensor([0.9, 0.1, 0.0])),
          "absorbing": AbsorbingTransition(d, d, absorbing_node_class=2)}[kind].to(dtype)
    ab_s_t = torch.tensor([ab_s], dtype=dtype)
    ab_t = ab_s_t * (1 - beta)
    Q_ts = tr.Q_ts(ab_t, ab_s_t)[0]
    Qbar_s = tr.cumulative(ab_s_t)[0]
    # every (z_t, x0) pair, including impossible ones, one-hot and degenerate p̂, plus a padding row
    zt = torch.cat([F.one_hot(torch.arange(d).repeat_interleave(d), d), torch.zeros(1, d, dtype=torch.long)])
    x0 = torch.cat([F.one_hot(torch.arange(d).repeat(d), d), torch.zeros(1, d, dtype=torch.long)])
    zt, x0 = zt.to(dtype).unsqueeze(0), x0.to(dtype).unsqueeze(0)
    for out in (posterior(zt, x0, Q_ts, Qbar_s), model_posterior(x0, zt, Q_ts, Qbar_s),
                posterior_all_x0(zt, Q_ts, Qbar_s)):
        assert torch.isfinite(out).all()
        assert (out >= 0).all()
    for out in (posterior(zt, x0, Q_ts, Qbar_s), model_posterior(x0, zt, Q_ts, Qbar_s)):
        torch.testing.assert_close(out[0, :-1].sum(-1), torch.ones(d * d, dtype=dtype))
        assert (out[0, -1] == 0).all()  # padding stays zero


# ------------------------------------------------------------------------------------------- reverse step
def _toy_model(dx, de, seed=0, stochastic=False):
    """A fixed random function of (z_t, t): per-node and per-pair logits from a tiny seeded linear map."""
    g = torch.Generator().manual_seed(seed)
    Wx = torch.randn(dx + 1, dx, generator=g)
    We = torch.randn(de + 1, de, generator=g)
    calls = {"n": 0}

    def model_fn(z, t, generator=None):
        calls["n"] += 1
        tt = t.to(z.X.dtype).view(-1, 1, 1) / 10
        lX = torch.cat([z.X, tt.expand(*z.X.shape[:2], 1)], -1) @ Wx.to(z.X.dtype)
        Et = tt.unsqueeze(-1).expand(*z.E.shape[:3], 1)
        lE = torch.cat([z.E, Et], -1) @ We.to(z.E.dtype)
        if stochastic:
            lX = lX + torch.randn(lX.shape, generator=generator, dtype=lX.dtype)
        return lX, lE

    return model_fn, calls


def test_reverse_step_valid_and_matches_explicit_posterior():
    g = torch.Generator().manual_seed(4)
    B, n, dx, de = 5, 4, 3, 2
    sch = CosineSchedule(20)
    tr = MarginalTransition(torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.6, 0.4]))
    proc = DiscreteProcess(sch, tr)
    nodes = torch.tensor([4, 2, 3, 1, 4])
    mask = torch.arange(n).unsqueeze(0) < nodes.unsqueeze(1)
    z = sample_categorical(torch.ones(B, n, dx), torch.ones(B, n, n, de), mask, generator=g)
    model_fn, calls = _toy_model(dx, de)
    t = torch.tensor([20, 7, 5, 1, 12])
    s = torch.tensor([0, 6, 2, 0, 11])  # strided and one-step mixed
    zs = proc.step(model_fn, z, t, s, generator=g)
    zs.validate()
    assert torch.equal(zs.node_mask, mask)
    # reverse_probs = model posterior built from explicit matrices
    probX, probE = proc.model_reverse_probs(model_fn, z, t, s)
    pX, pE = predict_x0(model_fn, z, t)
    for b in range(B):
        Qts_x, Qts_e = tr.Q_ts(sch.alpha_bar(t[b : b + 1]), sch.alpha_bar(s[b : b + 1]))
        Qs_x, Qs_e = tr.cumulative(sch.alpha_bar(s[b : b + 1]))
        for i in range(int(nodes[b])):
            zt = int(z.X[b, i].argmax())
            ref = sum(pX[b, i, k] * _brute_posterior(zt, k, Qts_x[0].double(), Qs_x[0].double()) for k in range(dx))
            torch.testing.assert_close(probX[b, i].double(), ref, atol=1e-5, rtol=1e-5)
            for j in range(int(nodes[b])):
                if i != j:
                    zt = int(z.E[b, i, j].argmax())
                    ref = sum(pE[b, i, j, k] * _brute_posterior(zt, k, Qts_e[0].double(), Qs_e[0].double())
                              for k in range(de))
                    torch.testing.assert_close(probE[b, i, j].double(), ref, atol=1e-5, rtol=1e-5)
        assert (probX[b, int(nodes[b]):] == 0).all()
    with pytest.raises(ValueError, match="s < t"):
        proc.step(model_fn, z, t, t)


def test_predict_x0_averages_draws_and_symmetrises():
    B, n, dx, de = 2, 3, 2, 3
    mask = torch.ones(B, n, dtype=torch.bool)
    z = sample_categorical(torch.ones(B, n, dx), torch.ones(B, n, n, de), mask, generator=torch.Generator().manual_seed(0))
    model_fn, calls = _toy_model(dx, de, stochastic=True)
    pX, pE = predict_x0(model_fn, z, torch.tensor([3, 4]), num_draws=4, generator=torch.Generator().manual_seed(0))
    assert calls["n"] == 4
    torch.testing.assert_close(pE, pE.transpose(1, 2))
    torch.testing.assert_close(pX.sum(-1), torch.ones(B, n))
    g = torch.Generator().manual_seed(0)
    ref = sum(torch.softmax(model_fn(z, torch.tensor([3, 4]), generator=g)[0], -1) for _ in range(4)) / 4
    torch.testing.assert_close(pX, ref)
    with pytest.raises(ValueError, match="shapes"):
        predict_x0(lambda z, t, generator=None: (torch.zeros(B, n, dx + 1), torch.zeros(B, n, n, de)), z, torch.tensor([1, 1]))


def test_reverse_step_equivariant_in_distribution_for_equivariant_model():
    """A permutation-equivariant model gives permutation-equivariant reverse probabilities."""
    g = torch.Generator().manual_seed(5)
    B, n, dx, de = 3, 5, 3, 2
    sch = CosineSchedule(10)
    proc = DiscreteProcess(sch, UniformTransition(dx, de))
    mask = torch.ones(B, n, dtype=torch.bool)
    z = sample_categorical(torch.ones(B, n, dx), torch.ones(B, n, n, de), mask, generator=g)
    model_fn, _ = _toy_model(dx, de)  # per-variable map: equivariant
    perm = torch.stack([torch.randperm(n, generator=g) for _ in range(B)])
    t, s = torch.tensor([9, 5, 2]), torch.tensor([3, 4, 0])
    pX, pE = proc.model_reverse_probs(model_fn, z, t, s)
    qX, qE = proc.model_reverse_probs(model_fn, z.permute(perm), t, s)
    b = torch.arange(B).unsqueeze(1)
    torch.testing.assert_close(qX, pX[b, perm])
    torch.testing.assert_close(qE, pE[b.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)])
