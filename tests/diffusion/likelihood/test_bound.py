"""The NLL bound on a toy chain small enough to enumerate every joint state of a graph.

Toy: graphs with N = 3 real nodes (padded to 4), dx node classes, de edge classes, T = 3, float64.
The model is a fixed random lookup table: (t, joint state of z_t) -> logits of every node and pair.
Independently of the library's per-variable code, the test builds the joint (dx³·de³ states) forward
matrices as Kronecker products and the model's joint reverse matrices as products of per-variable
Bayes posteriors, then computes
  * the exact -log p_θ(x) by chaining p(z_T) P_T ... P_1 D (plus -log p(N)),
  * the exact variational bound by enumerating every z_t,
and checks: bound >= exact NLL, the library's deterministic terms equal the enumerated ones, and both
estimators' means over many draws converge to the enumerated bound.
"""
import itertools
import math

import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.likelihood.bound import nll_summary, nll_terms
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.sampling import sample_graphs
from sympe.diffusion.process.schedule import CosineSchedule
from sympe.diffusion.process.transition import MarginalTransition

N_REAL, N_PAD, T = 3, 4, 3
PAIRS = list(itertools.combinations(range(N_REAL), 2))
DT = torch.float64


class ToyChain:
    """Joint-state bookkeeping and a lookup-table model for graphs of N_REAL nodes."""

    def __init__(self, dx, de, seed=0, scale=1.5, n_tables=1, kernel="plain"):
        self.dx, self.de, self.kernel = dx, de, kernel
        self.cards = [dx] * N_REAL + [de] * len(PAIRS)  # variables: nodes, then pairs i<j
        self.S = math.prod(self.cards)
        g = torch.Generator().manual_seed(seed)
        width = N_REAL * dx + len(PAIRS) * de
        self.tables = [scale * torch.randn(T + 1, self.S, width, generator=g, dtype=DT) for _ in range(n_tables)]
        node_m = torch.softmax(torch.randn(dx, generator=g, dtype=DT), 0)
        edge_m = torch.softmax(torch.randn(de, generator=g, dtype=DT), 0)
        self.schedule = CosineSchedule(T).double()
        self.transition = MarginalTransition(node_m, edge_m).double()
        self.process = DiscreteProcess(self.schedule, self.transition, kernel=kernel)
        # the exact computations use the transition's own (float32-stored) limit, renormalised in float64
        self.node_m = self.transition.m_X / self.transition.m_X.sum()
        self.edge_m = self.transition.m_E / self.transition.m_E.sum()
        self.ab = self.schedule.alpha_bars.double()
        self.n_nodes_dist = torch.tensor([0.0, 0.2, 0.3, 0.4, 0.1], dtype=DT)
        self.rng = torch.Generator().manual_seed(seed + 100)

    # ---------------------------------------------------------------- states
    def state_values(self, s):
        vals = []
        for c in reversed(self.cards):
            vals.append(s % c)
            s //= c
        return list(reversed(vals))

    def state_index(self, vals):
        s = 0
        for v, c in zip(vals, self.cards):
            s = s * c + v
        return s

    def graph_state(self, z: DenseGraph) -> torch.Tensor:
        Xi, Ei = z.collapse(fill=0)
        idx = torch.zeros(z.batch_size, dtype=torch.long)
        for v in range(N_REAL):
            idx = idx * self.dx + Xi[:, v]
        for i, j in PAIRS:
            idx = idx * self.de + Ei[:, i, j]
        return idx

    def dense(self, vals, B, n=N_PAD):
        Xi = torch.zeros(B, n, dtype=torch.long)
        Ei = torch.zeros(B, n, n, dtype=torch.long)
        for v in range(N_REAL):
            Xi[:, v] = vals[v]
        for (i, j), v in zip(PAIRS, vals[N_REAL:]):
            Ei[:, i, j] = Ei[:, j, i] = v
        mask = torch.arange(n).unsqueeze(0) < N_REAL
        g = DenseGraph.from_indices(Xi, Ei, mask.expand(B, n), self.dx, self.de)
        return DenseGraph(g.X.to(DT), g.E.to(DT), g.y.to(DT), g.node_mask)

    # ---------------------------------------------------------------- the model
    def logits(self, table, t, s):
        """Per-variable logits rows for (t, state s): list of tensors, one per variable."""
        row = table[t, s]
        out, k = [], 0
        for c in self.cards:
            out.append(row[k : k + c])
            k += c
        return out

    def model_fn(self, z: DenseGraph, t_int, generator=None):
        B, n = z.X.shape[:2]
        s = self.graph_state(z)
        gen = generator if generator is not None else self.rng
        table_idx = torch.randint(len(self.tables), (B,), generator=gen)  # a fresh "g" per call and graph
        rows = torch.stack(self.tables)[table_idx, t_int.long(), s]
        lX = torch.zeros(B, n, self.dx, dtype=DT)
        lE = torch.zeros(B, n, n, self.de, dtype=DT)
        k = 0
        for v in range(N_REAL):
            lX[:, v] = rows[:, k : k + self.dx]
            k += self.dx
        for i, j in PAIRS:
            lE[:, i, j] = lE[:, j, i] = rows[:, k : k + self.de]
            k += self.de
        return lX, lE

    # ---------------------------------------------------------------- explicit matrices
    def Qfam(self, a, m):
        return a * torch.eye(m.numel(), dtype=DT) + (1 - a) * m.unsqueeze(0)

    def var_Q(self, a):
        return [self.Qfam(a, self.node_m if v < N_REAL else self.edge_m) for v in range(len(self.cards))]

    def joint(self, mats):
        J = torch.ones(1, 1, dtype=DT)
        for M in mats:
            J = torch.kron(J, M)
        return J

    def reverse_joint(self, table, t):
        """P_t[z_t, z_{t-1}] = Π_v Σ_k w_v(k) Q̄_{t-1}[k,a] Q_{t|t-1}[a, z_t,v] / Q̄_t[k, z_t,v] with
        w = p̂ (plain kernel) or w_k ∝ p̂_k Q̄_t[k, z_t,v] (reweighted kernel)."""
        Qs, Qts = self.var_Q(self.ab[t - 1]), self.var_Q(self.ab[t] / self.ab[t - 1])
        Qt = self.var_Q(self.ab[t])
        P = torch.zeros(self.S, self.S, dtype=DT)
        for s in range(self.S):
            vals = self.state_values(s)
            per_var = []
            for v, (c, lg) in enumerate(zip(self.cards, self.logits(table, t, s))):
                p_hat = torch.softmax(lg, 0)
                zt = vals[v]
                if self.kernel == "reweighted":
                    p_hat = torch.stack([p_hat[k] * Qt[v][k, zt] for k in range(c)])
                    p_hat = p_hat / p_hat.sum()
                post = torch.stack([
                    sum(p_hat[k] * Qs[v][k, a] * Qts[v][a, zt] / Qt[v][k, zt] for k in range(c)) for a in range(c)
                ])
                per_var.append(post)
            P[s] = self.joint([p.unsqueeze(0) for p in per_var])[0]
        return P

    def decoder_joint(self, table):
        D = torch.zeros(self.S, self.S, dtype=DT)
        for s in range(self.S):
            D[s] = self.joint([torch.softmax(lg, 0).unsqueeze(0) for lg in self.logits(table, 0, s)])[0]
        return D

    def prior(self):
        return self.joint([(self.node_m if v < N_REAL else self.edge_m).unsqueeze(0) for v in range(len(self.cards))])[0]

    def exact_marginal_p(self):
        """p(x = every joint state) under the g-marginal model (tables averaged per call)."""
        vec = self.prior()
        for t in range(T, 0, -1):
            vec = vec @ (sum(self.reverse_joint(tb, t) for tb in self.tables) / len(self.tables))
        return vec @ (sum(self.decoder_joint(tb) for tb in self.tables) / len(self.tables))

    def exact_bound(self, x_state, table):
        """Enumerated bound terms for one deterministic table."""
        x = torch.zeros(self.S, dtype=DT)
        x[x_state] = 1.0
        q = lambda t: x @ self.joint(self.var_Q(self.ab[t]))  # noqa: E731
        kl = lambda a, b: float((a * (torch.log(a) - torch.log(b))).sum())  # noqa: E731
        prior_kl = kl(q(T), self.prior())
        L = []
        for t in range(1, T + 1):
            qt, qs = q(t), q(t - 1)
            J = self.joint(self.var_Q(self.ab[t] / self.ab[t - 1]))
            P = self.reverse_joint(table, t)
            Lt = 0.0
            for zt in range(self.S):
                post = J[:, zt] * qs / qt[zt]
                Lt += float(qt[zt]) * kl(post, P[zt])
            L.append(Lt)
        D = self.decoder_joint(table)
        L0 = float((q(0) * -torch.log(D[:, x_state])).sum())
        return {"log_pN": math.log(float(self.n_nodes_dist[N_REAL])), "kl_prior": prior_kl,
                "diffusion": sum(L), "reconstruction": L0, "L": L}


X_VALS = [0, 1, 1, 1, 0, 1]  # node classes (3), then pairs (0,1), (0,2), (1,2)


@pytest.fixture(scope="module")
def toy():
    return ToyChain(dx=2, de=2, seed=0)


@pytest.fixture(scope="module")
def exact(toy):
    x_state = toy.state_index(X_VALS)
    p_all = toy.exact_marginal_p()
    terms = toy.exact_bound(x_state, toy.tables[0])
    bound = -terms["log_pN"] + terms["kl_prior"] + terms["diffusion"] + terms["reconstruction"]
    nll = -terms["log_pN"] - math.log(float(p_all[x_state]))
    return {"p_all": p_all, "terms": terms, "bound": bound, "nll": nll}


def test_exact_chain_is_a_distribution_and_bound_holds(toy, exact):
    assert float(exact["p_all"].sum()) == pytest.approx(1.0, abs=1e-10)
    assert exact["bound"] >= exact["nll"] - 1e-9
    assert exact["bound"] - exact["nll"] < 20  # sanity: a toy model is not absurdly far off


def _check_mean(values, target, what):
    mean, se = nll_summary(values)
    assert abs(mean - target) < 4.5 * se + 1e-6, f"{what}: mean {mean:.4f} ± {se:.4f} vs exact {target:.4f}"


@pytest.mark.parametrize("estimator", ["exact", "stratified", "mc"])
def test_estimators_converge_to_enumerated_bound(toy, exact, estimator):
    B = 2000
    x = toy.dense(X_VALS, B)
    out = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator=estimator,
                    generator=torch.Generator().manual_seed(7), num_bins=2)
    keys = {"log_pN", "kl_prior", "diffusion", "reconstruction", "nll"}
    assert set(out) == (keys if estimator == "mc" else keys | {"diffusion_bins"})
    for k in keys:
        assert out[k].shape == (B,) and torch.isfinite(out[k]).all()
    if estimator != "mc":
        # bins [1, 1] and [2, 3] of time_bins(3, 2); they add up to the diffusion term
        assert out["diffusion_bins"].shape == (B, 2)
        torch.testing.assert_close(out["diffusion_bins"].sum(1), out["diffusion"])
        Ls = exact["terms"]["L"]
        _check_mean(out["diffusion_bins"][:, 0], Ls[0], f"{estimator} bin 1")
        _check_mean(out["diffusion_bins"][:, 1], Ls[1] + Ls[2], f"{estimator} bin 2-3")
    terms = exact["terms"]
    torch.testing.assert_close(out["log_pN"], torch.full((B,), terms["log_pN"], dtype=DT))
    torch.testing.assert_close(out["kl_prior"], torch.full((B,), terms["kl_prior"], dtype=DT), rtol=1e-9, atol=1e-13)
    torch.testing.assert_close(out["nll"], -out["log_pN"] + out["kl_prior"] + out["diffusion"] + out["reconstruction"])
    _check_mean(out["diffusion"], terms["diffusion"], f"{estimator} diffusion")
    _check_mean(out["reconstruction"], terms["reconstruction"], "reconstruction")
    _check_mean(out["nll"], exact["bound"], f"{estimator} nll")
    assert float(out["nll"].mean()) > exact["nll"] - 4.5 * nll_summary(out["nll"])[1]


def test_exact_estimator_has_lower_variance(toy):
    B = 1500
    x = toy.dense(X_VALS, B)
    g = torch.Generator().manual_seed(3)
    ex = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="exact", generator=g)
    mc = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="mc", generator=g)
    assert ex["diffusion"].var() < mc["diffusion"].var()


def test_time_bins_cover_1_to_T():
    from sympe.diffusion.likelihood.bound import time_bins

    for T_, nb in [(3, 2), (500, 10), (7, 7), (10, 3), (1, 1)]:
        bins = time_bins(T_, nb)
        assert len(bins) == nb and bins[0][0] == 1 and bins[-1][1] == T_
        assert all(b[1] + 1 == c[0] for b, c in zip(bins, bins[1:]))
        sizes = [hi - lo + 1 for lo, hi in bins]
        assert max(sizes) - min(sizes) <= 1
    assert time_bins(4) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    for bad in (0, 5):
        with pytest.raises(ValueError, match="num_bins"):
            time_bins(4, bad)


def test_stratified_has_lower_variance_than_mc(toy):
    B = 1500
    x = toy.dense(X_VALS, B)
    g = torch.Generator().manual_seed(13)
    st = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="stratified", generator=g)
    mc = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="mc", generator=g)
    assert st["diffusion"].var() < mc["diffusion"].var()


def test_reweighted_kernel_is_the_explicit_mixture():
    """Σ_k w_k q(z_s | z_t, x0 = k), w_k ∝ p̂_k Q̄_t[k, z_t], written out against the library kernel."""
    from sympe.diffusion.process.categorical import reweighted_posterior

    g = torch.Generator().manual_seed(0)
    d, M = 4, 7
    m = torch.softmax(torch.randn(d, generator=g, dtype=DT), 0)
    Q = lambda a: a * torch.eye(d, dtype=DT) + (1 - a) * m.unsqueeze(0)  # noqa: E731
    ab_s, ab_t = 0.7, 0.4
    Qs, Qt, Qts = Q(ab_s), Q(ab_t), Q(ab_t / ab_s)
    p = torch.softmax(torch.randn(1, M, d, generator=g, dtype=DT), -1)
    zt = torch.randint(0, d, (M,), generator=g)
    z = torch.nn.functional.one_hot(zt, d).to(DT).unsqueeze(0)
    got = reweighted_posterior(p, z, Qts.unsqueeze(0), Qs.unsqueeze(0))[0]
    for v in range(M):
        c = int(zt[v])
        w = torch.stack([p[0, v, k] * Qt[k, c] for k in range(d)])
        w = w / w.sum()
        want = sum(w[k] * torch.stack([Qs[k, a] * Qts[a, c] / Qt[k, c] for a in range(d)]) for k in range(d))
        torch.testing.assert_close(got[v], want)


def test_reweighted_kernel_bound_sampler_and_exact_nll_agree():
    """x0_kernel=reweighted: the bound is >= the enumerated NLL of the reweighted model, the estimators
    converge to its enumerated bound, and the sampler draws from its enumerated distribution."""
    toy_rw = ToyChain(dx=2, de=2, seed=0, kernel="reweighted")
    x_state = toy_rw.state_index(X_VALS)
    p_all = toy_rw.exact_marginal_p()
    terms = toy_rw.exact_bound(x_state, toy_rw.tables[0])
    bound = -terms["log_pN"] + terms["kl_prior"] + terms["diffusion"] + terms["reconstruction"]
    nll = -terms["log_pN"] - math.log(float(p_all[x_state]))
    assert bound >= nll - 1e-9
    plain = ToyChain(dx=2, de=2, seed=0)
    assert abs(float(plain.exact_marginal_p()[x_state]) - float(p_all[x_state])) > 1e-3  # another model
    out = nll_terms(toy_rw.model_fn, toy_rw.dense(X_VALS, 2000), toy_rw.process, toy_rw.n_nodes_dist,
                    estimator="exact", generator=torch.Generator().manual_seed(1))
    _check_mean(out["nll"], bound, "reweighted exact nll")
    _check_sampler(toy_rw, p_all, seed=5)


def test_stochastic_model_single_draw_upper_bounds_marginal_nll():
    """A model drawing one of two tables per call: the 1-draw bound >= -log p of the g-marginal model."""
    toy = ToyChain(dx=2, de=2, seed=3, n_tables=2)
    x_state = toy.state_index(X_VALS)
    p_all = toy.exact_marginal_p()
    nll_marg = -math.log(float(toy.n_nodes_dist[N_REAL])) - math.log(float(p_all[x_state]))
    B = 1500
    x = toy.dense(X_VALS, B)
    one = nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="exact",
                    generator=torch.Generator().manual_seed(9))
    mean, se = nll_summary(one["nll"])
    assert mean > nll_marg + 4 * se
    # with a fresh draw per call the estimator's expectation is the average of the per-table bounds
    per_table = []
    for table in toy.tables:
        t = toy.exact_bound(x_state, table)
        per_table.append(-t["log_pN"] + t["kl_prior"] + t["diffusion"] + t["reconstruction"])
    assert abs(per_table[0] - per_table[1]) > 10 * se  # the two tables really differ
    assert abs(mean - sum(per_table) / 2) < 4.5 * se


def test_sampler_draws_from_the_exact_model_distribution(toy, exact):
    """Ancestral samples of 3-node graphs follow the enumerated p_θ(x) over all joint states."""
    _check_sampler(toy, exact["p_all"], seed=11)


def _check_sampler(toy, p, seed):
    B = 3000
    n_nodes = torch.full((B,), N_REAL, dtype=torch.long)
    x = sample_graphs(toy.model_fn, n_nodes, toy.process,
                      generator=torch.Generator().manual_seed(seed))
    x.validate()
    x = DenseGraph(x.X, x.E, x.y, x.node_mask)
    counts = torch.bincount(toy.graph_state(x), minlength=toy.S).to(DT)
    # chi-square over the joint states with expected count >= 5 (the others pooled into one cell)
    expected = B * p
    big = expected >= 5
    obs, exp = counts[big], expected[big]
    if not bool(big.all()):
        obs = torch.cat([obs, counts[~big].sum().view(1)])
        exp = torch.cat([exp, expected[~big].sum().view(1)])
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    dof = obs.numel() - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof), f"chi2 {chi2:.1f} with {dof} dof"


def test_nll_summary_and_errors(toy):
    mean, se = nll_summary(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == pytest.approx(2.5)
    assert se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert math.isnan(nll_summary(torch.tensor([1.0]))[1])
    with pytest.raises(ValueError, match="no per-graph"):
        nll_summary(torch.tensor([]))
    x = toy.dense(X_VALS, 2)
    with pytest.raises(ValueError, match="estimator"):
        nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist, estimator="full")
    with pytest.raises(ValueError, match="n_nodes_dist"):
        nll_terms(toy.model_fn, x, toy.process, toy.n_nodes_dist[:3])


def test_evaluate_nll_concatenates_batches_in_order_with_one_generator():
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    from sympe.diffusion.likelihood.bound import evaluate_nll

    class Fake:
        """nll = number of nodes + the first draw of the generator it is handed (one stream across batches)."""

        device = torch.device("cpu")

        def __init__(self):
            self.generators = []

        def nll(self, x, estimator, generator):
            self.generators.append(generator)
            u = torch.rand(x.batch_size, generator=generator)
            return {"nll": x.num_nodes.float() + u, "u": u}

    sizes = [3, 1, 4, 1, 5, 2, 6]
    data = [Data(x=torch.eye(2)[torch.zeros(k, dtype=torch.long)], edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_attr=torch.zeros(0, 2), num_nodes=k) for k in sizes]
    model, gen = Fake(), torch.Generator().manual_seed(0)
    out = evaluate_nll(model, DataLoader(data, batch_size=3), estimator="exact", generator=gen)
    ref_u = torch.rand(len(sizes), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["u"], ref_u)  # one stream, consumed batch after batch
    torch.testing.assert_close(out["nll"], torch.tensor(sizes, dtype=torch.float) + ref_u)
    assert len(model.generators) == 3 and all(g is gen for g in model.generators)
    with pytest.raises(ValueError, match="no graphs"):
        evaluate_nll(model, [], generator=gen)
    with pytest.raises(ValueError, match="estimator"):
        evaluate_nll(model, [], estimator="full")
