"""Noise schedules and transition matrices: ranges, closed forms, Chapman–Kolmogorov, stationarity."""
import math

import pytest
import torch

from sympe.diffusion.process.schedule import (
    MAX_BETA,
    CosineSchedule,
    LinearAlphaBarSchedule,
    LinearBetaSchedule,
    NoiseSchedule,
    make_schedule,
    schedule_needs_exact_limit,
)
from sympe.diffusion.process.transition import (
    AbsorbingTransition,
    MarginalTransition,
    UniformTransition,
    make_transition,
)

SCHEDULES = ["cosine", "linear_alpha_bar", "linear_beta"]


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [1, 3, 50, 500])
def test_schedule_ranges_and_monotone(name, T):
    sch = make_schedule(name, T)
    assert sch.T == T
    assert sch.betas.shape == (T + 1,) and sch.alpha_bars.shape == (T + 1,)
    assert (sch.betas >= 0).all() and (sch.betas < 1).all()
    ab = sch.alpha_bars
    assert (ab > 0).all() and (ab <= 1).all()
    assert (ab[1:] < ab[:-1]).all(), "alpha_bar must strictly decrease"
    assert sch.betas[0] > 0, "beta_0 must be non-zero (x is noised by Q_0)"
    # ᾱ_t = Π_{τ<=t}(1 - β_τ)
    torch.testing.assert_close(ab, torch.cumprod(1 - sch.betas.double(), 0).float(), rtol=1e-5, atol=1e-7)
    if name != "linear_beta":
        assert ab[-1] < 1e-3, "the chain should end close to the limit"


@pytest.mark.parametrize("T", [1, 4, 500, 1000])
def test_cosine_matches_closed_form(T):
    s = 0.008
    sch = CosineSchedule(T, s=s)
    f = lambda u: math.cos(0.5 * math.pi * (u + s) / (1 + s)) ** 2  # noqa: E731
    for t in range(T):  # ᾱ_t = f((t+1)/(T+1)) / f(0) wherever β was not clamped (all t < T)
        expected = f((t + 1) / (T + 1)) / f(0)
        assert sch.alpha_bars[t].item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
        beta = 1 - f((t + 1) / (T + 1)) / f(t / (T + 1))
        assert sch.betas[t].item() == pytest.approx(beta, rel=1e-5, abs=1e-8)
    assert sch.betas[T].item() == pytest.approx(MAX_BETA)  # f(1) = 0 -> β_T clamped
    assert sch.alpha_bars[T].item() == pytest.approx((1 - MAX_BETA) * sch.alpha_bars[T - 1].item(), rel=1e-4)


def test_linear_alpha_bar_is_linear():
    T = 10
    sch = LinearAlphaBarSchedule(T, alpha_bar_min=1e-3)
    d = sch.alpha_bars[1:] - sch.alpha_bars[:-1]
    torch.testing.assert_close(d, torch.full_like(d, -(1 - 1e-3) / (T + 1)))
    assert sch.alpha_bars[-1].item() == pytest.approx(1e-3, rel=1e-4)


def test_linear_beta_is_linear():
    sch = LinearBetaSchedule(20, beta_start=0.01, beta_end=0.2)
    d = sch.betas[1:] - sch.betas[:-1]
    torch.testing.assert_close(d, torch.full_like(d, 0.19 / 20))


def test_gather_any_shape_and_errors():
    sch = CosineSchedule(10)
    t = torch.tensor([[0, 3], [10, 5]])
    assert sch.alpha_bar(t).shape == (2, 2)
    assert sch.beta(t)[1, 0] == sch.betas[10]
    with pytest.raises(ValueError, match="0..T"):
        sch.alpha_bar(torch.tensor([11]))
    with pytest.raises(ValueError, match="integer"):
        sch.beta(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="\\[0, 1\\)"):
        NoiseSchedule(torch.tensor([0.1, 1.0, 0.5]))  # β = 1 before the last step
    with pytest.raises(ValueError, match="\\[0, 1\\)"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))
    assert NoiseSchedule(torch.tensor([0.1, 1.0])).exact_limit  # β_T = 1: the exact limit


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [1, 10, 500])
def test_exact_limit_ends_in_the_limit_and_keeps_earlier_steps(name, T):
    capped, exact = make_schedule(name, T), make_schedule(name, T, exact_limit=True)
    assert exact.exact_limit and not capped.exact_limit
    assert exact.alpha_bars[T].item() == 0.0 and exact.betas[T].item() == 1.0
    torch.testing.assert_close(exact.alpha_bars[:T], capped.alpha_bars[:T], rtol=0, atol=0)
    assert schedule_needs_exact_limit("absorbing") and not schedule_needs_exact_limit("marginal")


def test_absorbing_prior_term_is_exact_zero_and_capped_absorbing_is_refused():
    """β_T = 1 makes q(z_T | x) the one-hot limit: prior term exactly 0; the capped schedule gives KL = +∞,
    which the bound refuses instead of clamping."""
    from sympe.diffusion.graph import DenseGraph
    from sympe.diffusion.likelihood.bound import nll_terms
    from sympe.diffusion.process.discrete_process import DiscreteProcess

    tr = AbsorbingTransition(2, 2, absorbing_node_class=0)
    X = torch.nn.functional.one_hot(torch.tensor([[0, 1, 1]]), 2).float()
    E = torch.zeros(1, 3, 3, 2)
    E[..., 0] = 1
    E[0, 0, 1] = E[0, 1, 0] = torch.tensor([0.0, 1.0])
    x = DenseGraph(X, E, torch.zeros(1, 0), torch.ones(1, 3, dtype=torch.bool))

    def model_fn(z, t, generator=None):
        return torch.zeros(1, 3, 2), torch.zeros(1, 3, 3, 2)

    dist = torch.tensor([0.0, 0.0, 0.0, 1.0])
    exact = DiscreteProcess(make_schedule("cosine", 5, exact_limit=True), tr)
    out = nll_terms(model_fn, x, exact, dist, estimator="exact")
    assert out["kl_prior"].item() == 0.0 and torch.isfinite(out["nll"]).all()
    capped = DiscreteProcess(make_schedule("cosine", 5), tr)
    with pytest.raises(ValueError, match="prior term .* infinite"):
        nll_terms(model_fn, x, capped, dist, estimator="exact")


# ------------------------------------------------------------------------------------------------ transitions
def _transitions(dx=4, de=3):
    g = torch.Generator().manual_seed(0)
    mx = torch.rand(dx, generator=g) + 0.1
    me = torch.rand(de, generator=g) + 0.1
    return [
        UniformTransition(dx, de),
        MarginalTransition(mx / mx.sum(), me / me.sum()),
        AbsorbingTransition(dx, de, node_marginals=mx),
        make_transition("absorbing", dx, de, absorbing_node_class=2),
    ]


@pytest.mark.parametrize("tr", _transitions(), ids=["uniform", "marginal", "absorbing", "absorbing2"])
def test_rows_sum_to_one_and_nonnegative(tr):
    a = torch.tensor([0.0, 1e-9, 0.3, 0.9999, 1.0], dtype=torch.float64)
    for Qx, Qe in (tr.Q(a), tr.cumulative(a), tr.Q_ts(a * 0.5, a)):
        for Q, d in ((Qx, tr.dx), (Qe, tr.de)):
            assert Q.shape == (5, d, d) and Q.dtype == torch.float64
            assert (Q >= 0).all()
            torch.testing.assert_close(Q.sum(-1), torch.ones(5, d, dtype=torch.float64))


@pytest.mark.parametrize("tr", _transitions(), ids=["uniform", "marginal", "absorbing", "absorbing2"])
def test_chapman_kolmogorov_and_products(tr):
    sch = CosineSchedule(30)
    tr = tr.double()
    ab = sch.alpha_bars.double()
    be = sch.betas.double()
    for s, t in [(0, 1), (0, 30), (3, 17), (29, 30), (12, 13)]:
        Qs = tr.cumulative(ab[s : s + 1])
        Qt = tr.cumulative(ab[t : t + 1])
        Qts = tr.Q_ts(ab[t : t + 1], ab[s : s + 1])
        for i in range(2):
            torch.testing.assert_close(Qs[i] @ Qts[i], Qt[i], rtol=1e-10, atol=1e-12)
        # Q_{t|s} = Q_{s+1} ... Q_t
        prod = [torch.eye(tr.dx, dtype=torch.float64), torch.eye(tr.de, dtype=torch.float64)]
        for tau in range(s + 1, t + 1):
            Q = tr.Q(be[tau : tau + 1])
            prod = [prod[i] @ Q[i][0] for i in range(2)]
        for i in range(2):
            torch.testing.assert_close(prod[i], Qts[i][0], rtol=1e-5, atol=1e-6)  # betas and ᾱ are float32-rounded separately
    # Q̄_t = Q_0 Q_1 ... Q_t
    for t in [0, 5, 30]:
        prod = [torch.eye(tr.dx, dtype=torch.float64), torch.eye(tr.de, dtype=torch.float64)]
        for tau in range(t + 1):
            Q = tr.Q(be[tau : tau + 1])
            prod = [prod[i] @ Q[i][0] for i in range(2)]
        Qbar = tr.cumulative(ab[t : t + 1])
        for i in range(2):
            torch.testing.assert_close(prod[i], Qbar[i][0], rtol=1e-5, atol=1e-6)  # betas and ᾱ are float32-rounded separately


@pytest.mark.parametrize("tr", _transitions(), ids=["uniform", "marginal", "absorbing", "absorbing2"])
def test_limit_is_stationary(tr):
    m_X, m_E = tr.limit()
    torch.testing.assert_close(m_X.sum(), torch.tensor(1.0))
    a = torch.tensor([0.0, 0.2, 0.7, 1.0])
    Qx, Qe = tr.Q(a)
    for b in range(4):
        torch.testing.assert_close(m_X @ Qx[b], m_X)
        torch.testing.assert_close(m_E @ Qe[b], m_E)
    # every row of Q̄ at ᾱ = 0 is the limit
    Qx, Qe = tr.cumulative(torch.zeros(1))
    torch.testing.assert_close(Qx[0], m_X.expand(tr.dx, -1))
    torch.testing.assert_close(Qe[0], m_E.expand(tr.de, -1))


def test_specific_limits_and_errors():
    mx = torch.tensor([0.1, 0.6, 0.3])
    me = torch.tensor([0.8, 0.15, 0.05])
    tr = make_transition("marginal", 3, 3, node_marginals=mx, edge_marginals=me)
    torch.testing.assert_close(tr.m_X, mx)
    torch.testing.assert_close(tr.m_E, me)
    ab = AbsorbingTransition(3, 3, node_marginals=mx)
    assert ab.absorbing_node_class == 1
    torch.testing.assert_close(ab.m_X, torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(ab.m_E, torch.tensor([1.0, 0.0, 0.0]))
    un = make_transition("uniform", 3, 2)
    torch.testing.assert_close(un.m_E, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="needs node_marginals"):
        make_transition("marginal", 3, 3)
    with pytest.raises(ValueError, match="expected 3 entries"):
        make_transition("marginal", 3, 3, node_marginals=torch.ones(4), edge_marginals=me)
    with pytest.raises(ValueError, match="non-negative"):
        make_transition("marginal", 3, 3, node_marginals=torch.tensor([-0.1, 0.6, 0.5]), edge_marginals=me)
    with pytest.raises(ValueError, match="absorbing_node_class"):
        AbsorbingTransition(3, 3)
    with pytest.raises(ValueError, match="unknown transition"):
        make_transition("gaussian", 3, 3)


def test_q_ts_guard_at_zero_alpha_bar():
    tr = UniformTransition(3, 2)
    Qx, Qe = tr.Q_ts(torch.zeros(2), torch.tensor([0.0, 1e-300], dtype=torch.float64).float())
    assert torch.isfinite(Qx).all() and torch.isfinite(Qe).all()
    torch.testing.assert_close(Qx.sum(-1), torch.ones(2, 3))
