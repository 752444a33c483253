"""The DiscreteProcess interface against matrices built here from the definitions.

Independent references: ``Q(a) = a I + (1 - a) 1 mᵀ`` from the schedule's ``ᾱ_t`` and the transition's
limit ``m``; the posterior by Bayes' rule class by class; strided ``Q_{t|s}`` against the product of the
one-step matrices; draws against their probabilities; reproducibility of ``step`` from a generator.
"""
import pytest
import torch

from sympe.diffusion.process import discrete_process as process_module
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import REVERSE_KERNELS, DiscreteProcess, timestep_schedule
from sympe.diffusion.process.schedule import CosineSchedule, LinearBetaSchedule
from sympe.diffusion.process.transition import AbsorbingTransition, MarginalTransition, UniformTransition

DT = torch.float64
DX, DE = 3, 2


def _processes(T=8):
    mx, me = torch.tensor([0.5, 0.2, 0.3]), torch.tensor([0.8, 0.2])
    return {
        "marginal_cosine": DiscreteProcess(CosineSchedule(T), MarginalTransition(mx, me)).to(DT),
        "uniform_linear": DiscreteProcess(LinearBetaSchedule(T), UniformTransition(DX, DE)).to(DT),
        "absorbing_cosine": DiscreteProcess(CosineSchedule(T), AbsorbingTransition(DX, DE, absorbing_node_class=1)).to(DT),
    }


KINDS = list(_processes())


def _Q(a, m):
    return a * torch.eye(m.numel(), dtype=DT) + (1 - a) * m.to(DT).unsqueeze(0)


def _explicit(proc: DiscreteProcess, t: int):
    """Q̄_t for nodes and edges, from ᾱ_t and m."""
    ab = proc.schedule.alpha_bars.to(DT)
    mX, mE = (m.to(DT) / m.to(DT).sum() for m in proc.limit())
    return _Q(ab[t], mX), _Q(ab[t], mE)


def _explicit_ts(proc: DiscreteProcess, t: int, s: int):
    ab = proc.schedule.alpha_bars.to(DT)
    mX, mE = (m.to(DT) / m.to(DT).sum() for m in proc.limit())
    return _Q(ab[t] / ab[s], mX), _Q(ab[t] / ab[s], mE)


def _graph(B, n, seed, nodes=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, DX, (B, n), generator=g)
    E = torch.triu(torch.randint(0, DE, (B, n, n), generator=g), 1)
    E = E + E.transpose(1, 2)
    nodes = torch.full((B,), n) if nodes is None else nodes
    mask = torch.arange(n).unsqueeze(0) < nodes.unsqueeze(1)
    x = DenseGraph.from_indices(X, E, mask, DX, DE)
    return DenseGraph(x.X.to(DT), x.E.to(DT), x.y.to(DT), x.node_mask)


def _certain(target: DenseGraph):
    """A denoiser sure of ``target`` (logit 0 on its class, -1e4 elsewhere)."""

    def model_fn(z, t, generator=None):
        return (target.X - 1) * 1e4, (target.E - 1) * 1e4

    return model_fn


def _random_model(seed=0):
    g = torch.Generator().manual_seed(seed)
    Wx, We = torch.randn(DX + 1, DX, generator=g, dtype=DT), torch.randn(DE + 1, DE, generator=g, dtype=DT)

    def model_fn(z, t, generator=None):
        tt = t.to(DT).view(-1, 1, 1) / 10
        lX = torch.cat([z.X, tt.expand(*z.X.shape[:2], 1)], -1) @ Wx
        lE = torch.cat([z.E, tt.unsqueeze(-1).expand(*z.E.shape[:3], 1)], -1) @ We
        return lX + torch.randn(lX.shape, generator=generator, dtype=DT), lE  # a random "breaker"

    return model_fn


# ------------------------------------------------------------------------------------------------ time
def test_time_grid_and_training_times():
    proc = _processes(T=10)["marginal_cosine"]
    assert proc.T == 10 and proc.t_min == 0
    assert proc.timesteps() == list(range(10, -1, -1))
    assert proc.timesteps(4) == timestep_schedule(10, 4) == [10, 7, 5, 2, 0]
    with pytest.raises(ValueError, match="steps"):
        proc.timesteps(11)
    t = proc.sample_t(20000, generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.long and int(t.min()) == 0 and int(t.max()) == 10
    freq = torch.bincount(t, minlength=11).to(DT) / t.numel()
    torch.testing.assert_close(freq, torch.full((11,), 1 / 11, dtype=DT), atol=0.012, rtol=0)
    assert torch.equal(t, proc.sample_t(20000, generator=torch.Generator().manual_seed(0)))


# ------------------------------------------------------------------------------------------------ matrices
@pytest.mark.parametrize("kind", KINDS)
def test_forward_marginals_match_explicit_matrices(kind):
    proc = _processes()[kind]
    x = _graph(3, 4, 0, nodes=torch.tensor([4, 2, 3]))
    t = torch.tensor([0, 5, 8])
    pX, pE = proc.q_probs(x, t)
    for b in range(3):
        Qx, Qe = _explicit(proc, int(t[b]))
        torch.testing.assert_close(pX[b], x.X[b] @ Qx)
        torch.testing.assert_close(pE[b], x.E[b] @ Qe)
    assert (pX[1, 2:] == 0).all() and (pE[1, 2:] == 0).all()  # padding stays zero
    # at T every real row is (close to) the limit, the prior
    mX, mE = proc.limit()
    pX, _ = proc.q_probs(x, proc.T)
    torch.testing.assert_close(pX[0], mX.to(DT).expand(4, DX), atol=1e-3, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_strided_Q_ts_is_the_product_of_one_step_matrices(kind):
    proc = _processes()[kind]
    x = _graph(1, 3, 1)
    for t, s in [(8, 0), (8, 5), (6, 1), (3, 2)]:
        Qx, Qe = proc.Q_ts(t, s, dtype=DT)
        prod_x, prod_e = torch.eye(DX, dtype=DT), torch.eye(DE, dtype=DT)
        for tau in range(s + 1, t + 1):
            ox, oe = proc.Q_ts(tau, tau - 1, dtype=DT)
            prod_x, prod_e = prod_x @ ox[0], prod_e @ oe[0]
        torch.testing.assert_close(Qx[0], prod_x, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(Qe[0], prod_e, rtol=1e-6, atol=1e-9)
        ex, ee = _explicit_ts(proc, t, s)
        torch.testing.assert_close(Qx[0], ex)
        torch.testing.assert_close(Qe[0], ee)
        # Chapman–Kolmogorov through the interface: q(z_s | x) Q_{t|s} = q(z_t | x)
        torch.testing.assert_close(proc.q_probs(x, s)[0][0] @ Qx[0], proc.q_probs(x, t)[0][0])
    with pytest.raises(ValueError, match="s < t"):
        proc.Q_ts(3, 3)


# ------------------------------------------------------------------------------------------------ posteriors
@pytest.mark.parametrize("kind", KINDS)
def test_posterior_and_reverse_kernel_match_brute_force_bayes(kind):
    proc = _processes()[kind]
    B, n = 4, 3
    x = _graph(B, n, 2)
    t, s = torch.tensor([8, 4, 2, 7]), torch.tensor([0, 3, 1, 2])
    z = proc.q_sample(x, t, generator=torch.Generator().manual_seed(3))
    qX, qE = proc.posterior(x, z, t, s)
    g = torch.Generator().manual_seed(4)
    pX = torch.softmax(torch.randn(B, n, DX, generator=g, dtype=DT), -1)
    pE = torch.softmax(torch.randn(B, n, n, DE, generator=g, dtype=DT), -1)
    pE = (pE + pE.transpose(1, 2)) / 2
    rX, rE = proc.reverse_probs(pX, pE, z, t, s)

    def bayes(zt, x0, Qs, Qts):
        """q(z_s = a | z_t, x0) ∝ q(z_t | z_s = a) q(z_s = a | x0), normalised by explicit summation."""
        num = torch.stack([Qts[a, zt] * Qs[x0, a] for a in range(Qs.shape[0])])
        return num / num.sum()

    def mixture(zt, p, Qs, Qts, Qt):
        """Σ_k p_k q(z_s | z_t, x0 = k) over the classes k that can produce z_t, renormalised."""
        ok = [k for k in range(p.numel()) if Qt[k, zt] > 0]
        w = p[ok] / p[ok].sum()
        return sum(wk * bayes(zt, k, Qs, Qts) for wk, k in zip(w, ok))

    for b in range(B):
        Qs_x, Qs_e = _explicit(proc, int(s[b]))
        Qt_x, Qt_e = _explicit(proc, int(t[b]))
        Qts_x, Qts_e = _explicit_ts(proc, int(t[b]), int(s[b]))
        for i in range(n):
            zt, x0 = int(z.X[b, i].argmax()), int(x.X[b, i].argmax())
            torch.testing.assert_close(qX[b, i], bayes(zt, x0, Qs_x, Qts_x))
            torch.testing.assert_close(rX[b, i], mixture(zt, pX[b, i], Qs_x, Qts_x, Qt_x))
            for j in range(n):
                if i != j:
                    zt, x0 = int(z.E[b, i, j].argmax()), int(x.E[b, i, j].argmax())
                    torch.testing.assert_close(qE[b, i, j], bayes(zt, x0, Qs_e, Qts_e))
                    torch.testing.assert_close(rE[b, i, j], mixture(zt, pE[b, i, j], Qs_e, Qts_e, Qt_e))
    # a certain prediction of x0 turns the reverse kernel into the exact posterior
    cX, cE = proc.reverse_probs(x.X, x.E, z, t, s)
    torch.testing.assert_close(cX, qX)
    torch.testing.assert_close(cE * x.edge_mask.unsqueeze(-1), qE * x.edge_mask.unsqueeze(-1))


def test_reverse_kernel_is_a_seam(monkeypatch):
    """A kernel registered by name is what reverse_probs (and so step, the sampler, the NLL) applies."""
    proc = _processes()["marginal_cosine"]
    x = _graph(2, 3, 5)
    z = proc.q_sample(x, 6, generator=torch.Generator().manual_seed(0))
    seen = []

    def flat(p_x0, z_t, Q_ts, Qbar_s):
        seen.append(tuple(p_x0.shape))
        return torch.ones_like(z_t) / z_t.shape[-1]

    monkeypatch.setitem(REVERSE_KERNELS, "flat", flat)
    other = DiscreteProcess(proc.schedule, proc.transition, kernel="flat")
    rX, rE = other.reverse_probs(x.X, x.E, z, 6, 2)
    torch.testing.assert_close(rX, torch.full_like(rX, 1 / DX))
    assert seen == [(2, 3, DX), (2, 9, DE)]  # nodes, then the flattened pairs
    with pytest.raises(ValueError, match="unknown reverse kernel"):
        DiscreteProcess(proc.schedule, proc.transition, kernel="nope")
    assert process_module.REVERSE_KERNELS["plain"] is proc.kernel


# ------------------------------------------------------------------------------------------------ draws
@pytest.mark.parametrize("kind", KINDS)
def test_prior_and_q_sample_frequencies(kind):
    proc = _processes()[kind]
    B, n = 4000, 3
    mask = torch.ones(B, n, dtype=torch.bool)
    zT = proc.sample_prior(mask, generator=torch.Generator().manual_seed(0))
    zT.validate()
    mX, mE = (m.to(DT) for m in proc.limit())
    torch.testing.assert_close(zT.X.to(DT).mean((0, 1)), mX, atol=0.02, rtol=0)
    torch.testing.assert_close(zT.E[:, 0, 1].to(DT).mean(0), mE, atol=0.03, rtol=0)
    x = _graph(1, n, 6)
    xb = DenseGraph(x.X.expand(B, -1, -1), x.E.expand(B, -1, -1, -1), x.y.expand(B, -1), mask)
    z = proc.q_sample(xb, 3, generator=torch.Generator().manual_seed(1))
    Qx, Qe = _explicit(proc, 3)
    for i in range(n):
        torch.testing.assert_close(z.X[:, i].mean(0), x.X[0, i] @ Qx, atol=0.03, rtol=0)
    torch.testing.assert_close(z.E[:, 1, 2].mean(0), x.E[0, 1, 2] @ Qe, atol=0.03, rtol=0)


def test_step_follows_the_posterior_of_a_certain_model():
    """p̂ = δ_x0 makes p_θ(z_s | z_t) = q(z_s | z_t, x0): the strided step's frequencies must match it."""
    proc = _processes()["marginal_cosine"]
    B, n = 4000, 3
    x1 = _graph(1, n, 7)
    mask = torch.ones(B, n, dtype=torch.bool)
    x = DenseGraph(x1.X.expand(B, -1, -1), x1.E.expand(B, -1, -1, -1), x1.y.expand(B, -1), mask)
    z = DenseGraph(x.X.clone(), x.E.clone(), x.y, mask)
    z.X[:, 0] = torch.eye(DX, dtype=DT)[(int(x1.X[0, 0].argmax()) + 1) % DX]  # a noisy node at t
    zs = proc.step(_certain(x), z, 6, 2, generator=torch.Generator().manual_seed(0))
    zs.validate()
    qX, qE = proc.posterior(x, z, 6, 2)
    torch.testing.assert_close(zs.X[:, 0].mean(0), qX[0, 0], atol=0.03, rtol=0)
    torch.testing.assert_close(zs.E[:, 0, 1].mean(0), qE[0, 0, 1], atol=0.03, rtol=0)


def test_step_is_reproducible_from_a_generator():
    proc = _processes()["uniform_linear"]
    x = _graph(5, 4, 8, nodes=torch.tensor([4, 3, 4, 1, 2]))
    z = proc.q_sample(x, 7, generator=torch.Generator().manual_seed(0))
    model_fn = _random_model()
    torch.manual_seed(1)
    a = proc.step(model_fn, z, 7, 3, generator=torch.Generator().manual_seed(9), num_draws=2)
    torch.manual_seed(2)  # the global state must not matter
    b = proc.step(model_fn, z, 7, 3, generator=torch.Generator().manual_seed(9), num_draws=2)
    assert torch.equal(a.X, b.X) and torch.equal(a.E, b.E)
    others = [proc.step(model_fn, z, 7, 3, generator=torch.Generator().manual_seed(s)) for s in (10, 11, 12)]
    assert any(not torch.equal(a.X, o.X) or not torch.equal(a.E, o.E) for o in others)
    a.validate()
    assert torch.equal(a.node_mask, z.node_mask)


def test_bad_input_errors():
    proc = _processes()["marginal_cosine"]
    x = _graph(2, 3, 0)
    with pytest.raises(ValueError, match="expected 2 times"):
        proc.q_probs(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="integers"):
        proc.q_probs(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="0..T"):
        proc.q_probs(x, 9)
    other = DiscreteProcess(CosineSchedule(8), UniformTransition(DX + 1, DE))
    with pytest.raises(ValueError, match="dx=3"):
        other.q_sample(x, 1)
    with pytest.raises(ValueError, match="s < t"):
        proc.step(_random_model(), x, 2, 4)
