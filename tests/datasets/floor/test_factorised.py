"""F(T), the best factorised bound: the support against brute force, the exact posterior marginals against a
loop over the support, the exact absorbing values against closed forms and against a Monte Carlo of the project's
own ``nll_terms`` with the posterior-marginal oracle, the Monte-Carlo path against an exact enumeration of every
noisy state, monotonicity in T, and the errors."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from sympe.datasets.floor import factorised as fz
from sympe.datasets.floor.factorised import (factorised_bound, factorised_terms, family_marginals, family_process,
                                             family_support, posterior_marginals, support_size)
from sympe.datasets.graph_utils import EDGE_CLASSES
from sympe.datasets.sources.breaking import data_entropy, graph_to_data, node_classes, sample_structure
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.likelihood.bound import nll_terms
from sympe.diffusion.process.schedule import make_schedule

F64 = torch.float64


def graphs(X, E):
    B, N = X.shape[:2]
    return DenseGraph(X, E, X.new_zeros(B, 0), torch.ones(B, N, dtype=torch.bool))


def key(X, E):
    return (tuple(X.argmax(-1).tolist()), tuple(map(tuple, E.argmax(-1).tolist())))


# ---------------------------------------------------------------------------------------------- the support
@pytest.mark.parametrize("family,size,k,count", [("matching", 3, 1, 15), ("star", 5, 1, 5),
                                                 ("marked_cycle", 5, 2, 12 * 10), ("marked_cycle", 3, 1, 3)])
def test_support_is_every_labelled_graph_once_uniformly(family, size, k, count):
    X, E, p = family_support(family, size, k)
    N = 2 * size if family == "matching" else size
    assert support_size(family, size, k) == count and X.shape == (count, N, len(node_classes(family)))
    assert E.shape == (count, N, N, 2) and torch.allclose(p, torch.full((count,), 1 / count, dtype=F64))
    assert (X.sum(-1) == 1).all() and (E.sum(-1) == 1 - torch.eye(N)).all() and torch.equal(E, E.transpose(1, 2))
    assert len({key(x, e) for x, e in zip(X, E)}) == count
    deg = E[..., 1].sum(-1)
    if family == "matching":
        assert (deg == 1).all()
    elif family == "star":
        assert (deg.sort(-1).values == torch.tensor([1.0] * (N - 1) + [N - 1.0])).all()
    else:
        assert (deg == 2).all() and (X[..., 1].sum(-1) == k).all()
        for e in E[..., 1]:  # connected 2-regular = one Hamiltonian cycle
            seen, frontier = {0}, [0]
            while frontier:
                frontier = [j for i in frontier for j in e[i].nonzero().flatten().tolist() if j not in seen]
                seen.update(frontier)
            assert len(seen) == N
    # every graph the sampler draws lies in the support
    rng = np.random.default_rng(0)
    keys = {key(x, e) for x, e in zip(X, E)}
    for _ in range(20):
        edges, marks, _ = sample_structure(family, size, rng, k)
        A = torch.zeros(N, N, dtype=torch.long)
        A[edges[:, 0], edges[:, 1]] = A[edges[:, 1], edges[:, 0]] = 1
        cls = torch.from_numpy(marks.astype(np.int64)) if marks is not None else torch.zeros(N, dtype=torch.long)
        assert (tuple(cls.tolist()), tuple(map(tuple, A.tolist()))) in keys


def test_marginals_and_process_are_the_models():
    """The class marginals are DatasetInfo.from_graphs' on the family's graphs; absorbing ends in its limit."""
    rng = np.random.default_rng(1)
    data = []
    for _ in range(5):
        edges, marks, aut = sample_structure("marked_cycle", 7, rng, 2)
        data.append(graph_to_data("marked_cycle", edges, 7, marks, aut, 0.0))
    info = DatasetInfo.from_graphs(data, "mc", node_classes("marked_cycle"), EDGE_CLASSES)
    node, edge = family_marginals("marked_cycle", 7, k=2)
    assert np.allclose(info.node_marginals, node.numpy()) and np.allclose(info.edge_marginals, edge.numpy())
    node, edge = family_marginals("star", [4, 5])  # pooled over the sizes: 9 nodes, (3 + 4) of (6 + 10) pairs
    assert torch.allclose(node, torch.tensor([1.0], dtype=F64))
    assert torch.allclose(edge, torch.tensor([9 / 16, 7 / 16], dtype=F64))
    p = family_process("marked_cycle", 7, 4, "absorbing", k=5)
    assert float(p.schedule.alpha_bars[-1]) == 0.0 and p.transition.absorbing_node_class == 1  # marked: 5 of 7
    q = family_process("matching", 3, 4, "marginal")
    assert float(q.schedule.alpha_bars[-1]) > 0
    assert torch.allclose(q.limit()[1].double(), torch.tensor([0.8, 0.2], dtype=F64))
    assert torch.equal(q.schedule.alpha_bars, make_schedule("cosine", 4).alpha_bars)


@pytest.mark.parametrize("transition", ["marginal", "absorbing"])
def test_posterior_marginals_match_a_loop_over_the_support(transition):
    process = family_process("marked_cycle", 4, 6, transition, k=1)
    support = family_support("marked_cycle", 4, 1)
    Xs, Es, probs = support
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(Xs.shape[0], (12,), generator=g)
    t = torch.randint(0, 7, (12,), generator=g)
    t[0] = 6  # the absorbing chain's z_T is the empty graph
    z = process.q_sample(graphs(Xs[idx], Es[idx]), t, generator=g)
    pX, pE = posterior_marginals(process, support, z, t)
    N = Xs.shape[1]
    for b in range(12):
        QX, QE = (Q[0] for Q in process.Q_bar(t[b : b + 1], dtype=F64))
        zx, ze = z.X[b].argmax(-1), z.E[b].argmax(-1)
        w = torch.tensor([float(probs[s]) * math.prod(float(QX[Xs[s, v].argmax(), zx[v]]) for v in range(N))
                          * math.prod(float(QE[Es[s, i, j].argmax(), ze[i, j]])
                                      for i in range(N) for j in range(i + 1, N))
                          for s in range(Xs.shape[0])], dtype=F64)
        w = w / w.sum()
        assert torch.allclose(pX[b], torch.einsum("s,svk->vk", w, Xs), atol=1e-12)
        assert torch.allclose(pE[b], torch.einsum("s,sijk->ijk", w, Es), atol=1e-12)


# ---------------------------------------------------------------------------------------------- exact values
#: Exact F(T) (nats per graph), cosine schedule, absorbing chain with beta_T = 1; fixed size (-log p(N) = 0).
TABLE = [("matching", 4, 1, 8.4775), ("matching", 4, 10, 5.4011), ("matching", 4, 500, 4.6699),
         ("star", 8, 1, 6.2314), ("star", 8, 10, 2.7122), ("star", 8, 500, 2.0920)]


@pytest.mark.parametrize("family,size,T,expected", TABLE)
def test_exact_absorbing_table(family, size, T, expected):
    value, se = factorised_bound(family, size, T, "absorbing")
    assert se == 0.0 and value == pytest.approx(expected, abs=5e-5)
    assert value > data_entropy(family, size)


def closed_form(family: str, size: int, T: int) -> float:
    """F(T) of stars / matchings under the absorbing chain, by hand. z_t keeps j of x's V non-absorbing edges
    (binomial, ᾱ_t); the posterior is uniform on the graphs containing them: stars with j >= 2 kept edges are
    determined, with j = 1 the hub is one of 2 nodes, with j = 0 every pair is an edge w.p. 2/n; a matching with
    d = m - j dropped edges leaves 2d nodes, every pair of them an edge w.p. 1/(2d - 1). A variable absorbed in
    z_t with π(edge) = p costs r log(1/p) + (1 - r) log((1 - r)/(1 - p r)) if it is an edge of x and
    -log(1 - p r) otherwise, r = (ᾱ_{t-1} - ᾱ_t)/(1 - ᾱ_t); L_0 is the cross-entropy of π at z_0."""
    ab = [float(a) for a in make_schedule("cosine", T, exact_limit=True).alpha_bars.double()]

    def e(p, r):
        return r * math.log(1 / p) + ((1 - r) * math.log((1 - r) / (1 - p * r)) if r < 1 else 0.0)

    def o(p, r):
        return -math.log(1 - p * r)

    if family == "star":
        n, V = size, size - 1
        pairs = n * (n - 1) // 2

        def cost(j, r):  # r = None: the L_0 cross-entropy
            if j == 0:
                p = 2 / n
                if r is None:
                    return -V * math.log(p) - (pairs - V) * math.log(1 - p)
                return V * e(p, r) + (pairs - V) * o(p, r)
            if j == 1:
                return 2 * (n - 2) * math.log(2) if r is None else (n - 2) * (e(0.5, r) + o(0.5, r))
            return 0.0
    else:
        V = size

        def cost(j, r):
            d = size - j
            if d <= 1:
                return 0.0
            p, others = 1 / (2 * d - 1), math.comb(2 * d, 2) - d
            return (-d * math.log(p) - others * math.log(1 - p)) if r is None else d * e(p, r) + others * o(p, r)

    def prob(a, j):
        return math.comb(V, j) * a**j * (1 - a) ** (V - j)

    total = sum(prob(ab[0], j) * cost(j, None) for j in range(V + 1))
    for t in range(1, T + 1):
        r = (ab[t - 1] - ab[t]) / (1 - ab[t])
        total += sum(prob(ab[t], j) * cost(j, r) for j in range(V + 1))
    return total


@pytest.mark.parametrize("family,size", [("star", 8), ("star", 5), ("matching", 4), ("matching", 5)])
@pytest.mark.parametrize("T", [1, 3, 10, 50])
def test_exact_absorbing_matches_closed_form(family, size, T):
    assert factorised_bound(family, size, T, "absorbing")[0] == pytest.approx(closed_form(family, size, T), abs=1e-8)


@pytest.mark.parametrize("family,size,k", [("star", 6, 1), ("matching", 3, 1), ("marked_cycle", 5, 2)])
def test_F_is_above_H_and_decreases_toward_it(family, size, k):
    H = data_entropy(family, size, k)
    values = [factorised_bound(family, size, T, "absorbing", k=k)[0] for T in (1, 2, 5, 20, 100, 300)]
    assert all(v > H for v in values)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] - H < 0.05 * (values[0] - H)


def test_t_dependent_path_agrees_with_the_t_independent_one(monkeypatch):
    expected = factorised_bound("marked_cycle", 5, 6, "absorbing", k=2)[0]
    monkeypatch.setattr(fz, "_t_independent", lambda process, support: False)
    assert factorised_bound("marked_cycle", 5, 6, "absorbing", k=2)[0] == pytest.approx(expected, abs=1e-10)


def test_size_range_adds_log_sizes_to_the_mean():
    terms = factorised_terms("star", [4, 6], 5, "absorbing")
    singles = [factorised_bound("star", n, 5, "absorbing")[0] for n in (4, 5, 6)]
    assert terms["value"] == pytest.approx(math.log(3) + sum(singles) / 3, abs=1e-10)
    assert terms["value"] > data_entropy("star", [4, 6]) and terms["log_num_sizes"] == pytest.approx(math.log(3))


# ---------------------------------------------------------------------------------------------- the oracle
def oracle_nll(family, size, T, transition, num_graphs, seed=0):
    """Mean and s.e. of ``nll_terms`` (estimator "exact": one z_t per t) with the posterior-marginal oracle."""
    process = family_process(family, size, T, transition)
    support = family_support(family, size)
    Xs, Es, _ = support

    def model_fn(z_t, t, generator=None):
        pX, pE = posterior_marginals(process, support, z_t, t)
        return pX.log(), pE.log()

    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(Xs.shape[0], (num_graphs,), generator=g)
    n_nodes_dist = torch.zeros(Xs.shape[1] + 1)
    n_nodes_dist[-1] = 1.0
    nll = nll_terms(model_fn, graphs(Xs[idx], Es[idx]), process, n_nodes_dist, estimator="exact", generator=g)["nll"]
    return float(nll.mean()), float(nll.std() / math.sqrt(num_graphs))


@pytest.mark.parametrize("family,size,T,num_graphs", [("star", 8, 1, 20000), ("matching", 4, 10, 1500)])
def test_posterior_marginal_oracle_reproduces_F(family, size, T, num_graphs):
    mean, se = oracle_nll(family, size, T, "absorbing", num_graphs)
    value, _ = factorised_bound(family, size, T, "absorbing")
    assert abs(mean - value) < 3 * se, (mean, se, value)


# ---------------------------------------------------------------------------------------------- Monte Carlo
def enumerated_bound(family, size, T, transition):
    """The bound of one x, summed over every noisy state (all 2^6 edge states of matching m = 2), with the
    posterior marginals from a loop over the support and the project's posterior / reverse kernel / KL."""
    from sympe.diffusion.likelihood.bound import _graph_kl, _weights

    process = family_process(family, size, T, transition)
    Xs, Es, probs = family_support(family, size)
    N = Xs.shape[1]
    iu, ju = torch.triu_indices(N, N, 1)
    states = torch.tensor(list(itertools.product([0, 1], repeat=len(iu))))
    Z = states.shape[0]
    Ez = torch.zeros(Z, N, N, dtype=torch.long)
    Ez[:, iu, ju] = states
    Ez = torch.nn.functional.one_hot(Ez + Ez.transpose(1, 2), 2).to(F64) * (1 - torch.eye(N, dtype=F64))[..., None]
    z = graphs(torch.ones(Z, N, 1, dtype=F64), Ez)
    x = graphs(Xs[:1].repeat(Z, 1, 1), Es[:1].repeat(Z, 1, 1, 1))
    sup_e = Es[:, iu, ju].argmax(-1)  # (S, P)
    total = 0.0
    for t in range(T + 1):
        tt = torch.full((Z,), t)
        QE = process.Q_bar(tt[:1], dtype=F64)[1][0]
        qz = QE[sup_e[0]][torch.arange(len(iu)), states].prod(-1)  # q(z_t | x), (Z,)
        lik = torch.stack([QE[sup_e[s]][torch.arange(len(iu)), states].prod(-1) for s in range(len(probs))], 1)
        w = lik * probs
        w = w / w.sum(1, keepdim=True)
        piX, piE = torch.ones(Z, N, 1, dtype=F64), torch.einsum("bs,sijk->bijk", w, Es)
        wX, wE = _weights(x)
        if t == 0:
            per = -(x.E * piE.clamp_min(1e-300).log()).sum(-1).mul(wE).sum((1, 2))
        else:
            qX, qE = process.posterior(x, z, tt, tt - 1)
            pX, pE = process.reverse_probs(piX, piE, z, tt, tt - 1)
            per = _graph_kl(qX, qE, pX, pE, wX, wE)
        total += float((qz * per).sum())
    x1 = graphs(x.X[:1], x.E[:1])
    qX, qE = process.q_probs(x1, torch.tensor([T]))
    m_X, m_E = (m.double() for m in process.limit())
    return total + float(_graph_kl(qX, qE, m_X.expand_as(qX), m_E.expand_as(qE), *_weights(x1))[0])


@pytest.mark.parametrize("transition", ["marginal", "uniform"])
def test_monte_carlo_matches_an_enumeration_of_every_noisy_state(transition):
    exact = enumerated_bound("matching", 2, 6, transition)
    assert factorised_bound("matching", 2, 6, transition, method="exact") == pytest.approx((exact, 0.0), abs=1e-9)
    value, se = factorised_bound("matching", 2, 6, transition, num_samples=3000, seed=1)
    assert 0 < se < 0.05 and abs(value - exact) < 3 * se, (value, se, exact)
    assert exact > data_entropy("matching", 2)


def test_monte_carlo_is_seeded():
    a = factorised_bound("star", 4, 3, "marginal", num_samples=50, seed=5)
    assert a == factorised_bound("star", 4, 3, "marginal", num_samples=50, seed=5)
    assert a != factorised_bound("star", 4, 3, "marginal", num_samples=50, seed=6)
    terms = factorised_terms("star", [3, 4], 3, "uniform", num_samples=40)
    assert terms["method"] == "mc" and sum(v["num_samples"] for v in terms["per_size"].values()) == 40


def test_reexported_from_breaking():
    import sympe.datasets.floor as floor
    from sympe.datasets.sources import breaking

    assert breaking.factorised_bound is factorised_bound is floor.factorised_bound
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        breaking.nope


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,match", [
    ({"family": "cycle"}, "unknown symmetry-breaking family 'cycle'"),
    ({"transition": "gaussian"}, "transition must be one of"),
    ({"T": 0}, r"T \(number of noising steps"),
    ({"T": 2.5}, r"T \(number of noising steps"),
    ({"size": 0}, "m must be >= 1"),
    ({"size": [3, 2]}, "min > max"),
    ({"family": "marked_cycle", "size": 5, "k": 5}, "k \\(number of marked nodes\\)"),
    ({"method": "guess"}, "method must be one of"),
    ({"transition": "marginal", "num_samples": 0}, "num_samples"),
    ({"schedule": "sigmoid"}, "unknown noise schedule"),
    ({"size": 8}, "MAX_SUPPORT"),
    ({"family": "star", "size": 8, "transition": "marginal", "method": "exact"}, "MAX_STATES"),
])
def test_errors_name_the_argument(kwargs, match):
    args = {"family": "matching", "size": 2, "T": 3, "transition": "absorbing", **kwargs}
    family, size, T, transition = (args.pop(a) for a in ("family", "size", "T", "transition"))
    with pytest.raises(ValueError, match=match):
        factorised_bound(family, size, T, transition, **args)


def test_support_and_posterior_errors():
    with pytest.raises(ValueError, match="MAX_SUPPORT"):
        family_support("marked_cycle", 10, 1)
    with pytest.raises(ValueError, match="one int"):
        family_support("star", [3, 4])
    process = family_process("star", 4, 3, "absorbing")
    support = family_support("star", 4)
    X, E, _ = support
    path = E[:1].clone()
    path[0, :, :, :] = torch.nn.functional.one_hot(torch.zeros(4, 4, dtype=torch.long), 2).to(F64)
    for i, j in [(0, 1), (1, 2), (2, 3)]:  # a path is no noisy star under absorption (3 edges, no hub)
        path[0, i, j] = path[0, j, i] = torch.tensor([0.0, 1.0], dtype=F64)
    path[0, range(4), range(4)] = 0
    with pytest.raises(ValueError, match="probability 0 under every support graph"):
        posterior_marginals(process, support, graphs(X[:1], path), 1)
    with pytest.raises(ValueError, match="support has N=4"):
        posterior_marginals(process, support, graphs(X[:1, :3], E[:1, :3, :3]), 1)


@pytest.mark.parametrize("family,size,T", [("star", 5, 1), ("star", 5, 3), ("matching", 3, 2)])
def test_no_factorised_denoiser_goes_below_F(monkeypatch, family, size, T):
    """Any deterministic factorised prediction (here the posterior marginals perturbed towards 1/2, and perturbed
    by a node-index-dependent amount, as an index-reading network could) has an exact expected bound >= F(T): the
    same exact enumeration with the prediction replaced."""
    import sympe.datasets.floor.factorised as fz

    proc = fz.family_process(family, size, T, "absorbing")
    support = fz.family_support(family, size)
    F = fz._exact_size(proc, support)["bound"]
    exact_marginals = fz.posterior_marginals
    N = support[0].shape[1]
    tilt = torch.linspace(-0.2, 0.2, N * N, dtype=torch.float64).view(N, N)
    tilt = 0.5 * (tilt + tilt.T)
    for perturb in (lambda p: 0.8 * p + 0.1, lambda p: (p + tilt * p * (1 - p)).clamp(1e-6, 1 - 1e-6)):
        def perturbed(process, sup, z, t, perturb=perturb):
            pX, pE = exact_marginals(process, sup, z, t)
            e = perturb(pE[..., 1])
            return pX, torch.stack([1 - e, e], -1)

        monkeypatch.setattr(fz, "posterior_marginals", perturbed)
        assert fz._exact_size(proc, support)["bound"] > F + 1e-6
        monkeypatch.setattr(fz, "posterior_marginals", exact_marginals)
