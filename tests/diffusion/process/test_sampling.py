"""Ancestral sampler: time grids, validity, node counts, chains, and exact recovery of a certain model.

(That the sampler draws from the enumerated model distribution is tested in test_likelihood.py.)
"""
import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import DiscreteProcess, timestep_schedule
from sympe.diffusion.process.sampling import sample_graphs, sample_n_nodes
from sympe.diffusion.process.schedule import make_schedule
from sympe.diffusion.process.transition import AbsorbingTransition, MarginalTransition, UniformTransition


def _transitions(dx, de):
    return {
        "uniform": UniformTransition(dx, de),
        "marginal": MarginalTransition(torch.linspace(1, 2, dx), torch.linspace(3, 1, de)),
        "absorbing": AbsorbingTransition(dx, de, absorbing_node_class=dx - 1),
    }


def _random_model(dx, de, seed=0, breaker=False):
    """A fixed random per-variable map of (z_t, t). ``breaker=True`` adds i.i.d. noise to the node logits,
    drawn from the generator the caller hands in, like the noise symmetry breaker."""
    g = torch.Generator().manual_seed(seed)
    Wx, We = torch.randn(dx + 1, dx, generator=g), torch.randn(de + 1, de, generator=g)
    calls = {"n": 0, "t": [], "generators": []}

    def model_fn(z, t, generator=None):
        calls["n"] += 1
        calls["t"].append(int(t[0]))
        calls["generators"].append(generator)
        tt = t.float().view(-1, 1, 1) / 10
        lX = torch.cat([z.X, tt.expand(*z.X.shape[:2], 1)], -1) @ Wx
        lE = torch.cat([z.E, tt.unsqueeze(-1).expand(*z.E.shape[:3], 1)], -1) @ We
        if breaker:
            lX = lX + 3.0 * torch.randn(lX.shape, generator=generator)
        return lX, lE

    return model_fn, calls


def _proc(T, tr, schedule="cosine"):
    return DiscreteProcess(make_schedule(schedule, T), tr)


@pytest.mark.parametrize("T", [1, 2, 7, 100, 500])
def test_timestep_schedule(T):
    assert timestep_schedule(T) == list(range(T, -1, -1))
    for k in sorted({1, 2, 3, max(1, T // 3), T}):
        if k > T:
            continue
        ts = timestep_schedule(T, k)
        assert len(ts) == k + 1 and ts[0] == T and ts[-1] == 0
        gaps = [a - b for a, b in zip(ts[:-1], ts[1:])]
        assert all(gap >= 1 for gap in gaps)
        assert max(gaps) - min(gaps) <= 1, "evenly spaced up to rounding"
    with pytest.raises(ValueError, match="steps"):
        timestep_schedule(T, T + 1)
    with pytest.raises(ValueError, match="steps"):
        timestep_schedule(T, 0)


@pytest.mark.parametrize("kind", ["uniform", "marginal", "absorbing"])
@pytest.mark.parametrize("steps", [None, 3])
def test_sampler_output_valid_with_right_sizes(kind, steps):
    dx, de, T = 3, 2, 12
    tr = _transitions(dx, de)[kind]
    proc = _proc(T, tr)
    model_fn, calls = _random_model(dx, de, breaker=True)
    n_nodes = torch.tensor([3, 5, 1, 4])
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(123)
    x = sample_graphs(model_fn, n_nodes, proc, steps=steps, generator=gen)
    assert isinstance(x, DenseGraph)
    x.validate()
    assert x.X.shape == (4, 5, dx) and x.E.shape == (4, 5, 5, de)
    assert torch.equal(x.num_nodes, n_nodes)
    for b, nb in enumerate(n_nodes.tolist()):
        assert x.node_mask[b, :nb].all() and not x.node_mask[b, nb:].any()
    # model calls: one per reverse step, at the visited times, then one at t = 0
    visited = timestep_schedule(T, steps)
    assert calls["t"] == visited[:-1] + [0]
    # the denoiser's own draws (a random "breaker") come from the caller's generator: every call got it,
    # the same seed reproduces the samples bit for bit whatever the global random state, another seed not
    assert all(g is gen for g in calls["generators"])
    torch.manual_seed(456)
    y = sample_graphs(model_fn, n_nodes, proc, steps=steps, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x.X, y.X) and torch.equal(x.E, y.E)
    others = [sample_graphs(model_fn, n_nodes, proc, steps=steps, generator=torch.Generator().manual_seed(s))
              for s in (1, 2, 3)]
    assert any(not torch.equal(x.X, o.X) for o in others)


def _fixed_graph_model(target: DenseGraph):
    """Predicts ``target`` with probability 1 (logits 0 on the target class, -inf elsewhere)."""

    def model_fn(z, t, generator=None):
        assert z.X.shape == target.X.shape
        lX = torch.where(target.X > 0, 0.0, float("-inf"))
        lX = torch.where(target.node_mask.unsqueeze(-1), lX, torch.zeros_like(lX))
        lE = torch.where(target.E > 0, 0.0, float("-inf"))
        lE = torch.where(target.edge_mask.unsqueeze(-1), lE, torch.zeros_like(lE))
        return lX, lE

    return model_fn


@pytest.mark.parametrize("kind", ["uniform", "marginal", "absorbing"])
@pytest.mark.parametrize("steps", [None, 1, 4])
@pytest.mark.parametrize("final", ["sample", "argmax"])
def test_certain_model_returns_its_graph(kind, steps, final):
    dx, de, T = 4, 3, 20
    g = torch.Generator().manual_seed(1)
    n_nodes = torch.tensor([6, 2, 5])
    n = 6
    Xi = torch.randint(0, dx, (3, n), generator=g)
    Ei = torch.randint(0, de, (3, n, n), generator=g)
    mask = torch.arange(n).unsqueeze(0) < n_nodes.unsqueeze(1)
    target = DenseGraph.from_indices(Xi, Ei, mask, dx, de).validate()
    x = sample_graphs(_fixed_graph_model(target), n_nodes, _proc(T, _transitions(dx, de)[kind]),
                      steps=steps, generator=g, final=final)
    assert torch.equal(x.X, target.X) and torch.equal(x.E, target.E) and torch.equal(x.node_mask, target.node_mask)


def test_keep_chain_and_num_draws():
    dx, de, T = 3, 2, 10
    model_fn, calls = _random_model(dx, de)
    n_nodes = torch.tensor([4, 2])
    proc = _proc(T, _transitions(dx, de)["marginal"])
    x, chain = sample_graphs(model_fn, n_nodes, proc, steps=5, keep_chain=3, num_draws=2,
                             generator=torch.Generator().manual_seed(0))
    assert calls["n"] == 2 * (5 + 1)
    assert len(chain) == 3
    for z in chain:
        z.validate()
        assert torch.equal(z.node_mask, x.node_mask)
    assert torch.equal(chain[-1].X, x.X) and torch.equal(chain[-1].E, x.E)
    # z_T is the first snapshot: with the absorbing transition it is all absorbing states
    x, chain = sample_graphs(model_fn, n_nodes, _proc(T, _transitions(dx, de)["absorbing"]), keep_chain=100)
    assert len(chain) == T + 2  # capped: z_T, ..., z_0, x
    z_T = chain[0]
    Xi, Ei = z_T.collapse()
    assert (Xi[z_T.node_mask] == dx - 1).all() and (Ei[z_T.edge_mask] == 0).all()
    x, chain = sample_graphs(model_fn, n_nodes, proc, keep_chain=1)
    assert len(chain) == 1 and torch.equal(chain[0].X, x.X)


def test_sampler_errors():
    model_fn, _ = _random_model(3, 2)
    proc = _proc(5, UniformTransition(3, 2))
    with pytest.raises(ValueError, match="at least 1 node"):
        sample_graphs(model_fn, torch.tensor([2, 0]), proc)
    with pytest.raises(ValueError, match="final"):
        sample_graphs(model_fn, torch.tensor([2]), proc, final="mode")
    with pytest.raises(ValueError, match="steps"):
        sample_graphs(model_fn, torch.tensor([2]), proc, steps=6)


def test_sample_n_nodes():
    dist = torch.tensor([0.0, 0.1, 0.0, 0.6, 0.3])
    n = sample_n_nodes(dist, 5000, generator=torch.Generator().manual_seed(0))
    assert n.shape == (5000,) and n.dtype == torch.long
    freq = torch.bincount(n, minlength=5).float() / 5000
    assert freq[0] == 0 and freq[2] == 0
    torch.testing.assert_close(freq, dist, atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="p\\(N = 0\\)"):
        sample_n_nodes(torch.tensor([0.1, 0.9]), 3)
    with pytest.raises(ValueError, match="non-negative"):
        sample_n_nodes(torch.tensor([0.0, -1.0, 2.0]), 3)


@pytest.mark.parametrize("kind", ["marginal", "absorbing"])
def test_certain_model_chain_follows_forward_marginals(kind):
    """With p̂ = δ_{x0}, p_θ(z_s | z_t) = q(z_s | z_t, x0), so the strided chain's marginal at every visited
    time s is q(z_s | x0) = x0 Q̄_s (up to ᾱ_T ≈ 0, since z_T starts from the limit)."""
    dx, de, T, B, n = 3, 2, 20, 2000, 3
    g = torch.Generator().manual_seed(2)
    Xi = torch.tensor([0, 2, 1]).expand(B, n)
    Ei = torch.zeros(B, n, n, dtype=torch.long)
    Ei[:, 0, 1] = 1
    mask = torch.ones(B, n, dtype=torch.bool)
    target = DenseGraph.from_indices(Xi, Ei, mask, dx, de)
    sch, tr = make_schedule("cosine", T), _transitions(dx, de)[kind]
    steps = 4
    x, chain = sample_graphs(_fixed_graph_model(target), torch.full((B,), n), DiscreteProcess(sch, tr), steps=steps,
                             generator=g, keep_chain=steps + 2)
    times = timestep_schedule(T, steps)
    assert len(chain) == len(times) + 1
    for z, s in zip(chain[1:-1], times[1:]):
        Qx, Qe = tr.cumulative(sch.alpha_bar(torch.tensor([s])))
        for i in range(n):
            torch.testing.assert_close(z.X[:, i].mean(0), target.X[0, i] @ Qx[0], atol=0.04, rtol=0)
        torch.testing.assert_close(z.E[:, 0, 1].mean(0), target.E[0, 0, 1] @ Qe[0], atol=0.04, rtol=0)
        torch.testing.assert_close(z.E[:, 1, 2].mean(0), target.E[0, 1, 2] @ Qe[0], atol=0.04, rtol=0)


@pytest.mark.parametrize("distortion", ["polydec", "polyinc", "cos", "revcos"])
@pytest.mark.parametrize("T,K", [(500, 50), (20, 20), (7, 3), (100, 1), (10, 9)])
def test_time_distortion_grids(distortion, T, K):
    """DeFoG's distortions: always K strictly decreasing steps from T to 0, and each grid puts its short steps
    where its map is flat (polydec near the data t = 0, polyinc near the noise t = T, cos at both ends)."""
    ts = timestep_schedule(T, K, distortion)
    assert len(ts) == K + 1 and ts[0] == T and ts[-1] == 0
    assert all(a > b for a, b in zip(ts, ts[1:]))
    if (T, K) == (500, 50):
        gaps = [a - b for a, b in zip(ts, ts[1:])]
        first, last = sum(gaps[:10]), sum(gaps[-10:])
        if distortion == "polydec":
            assert last < 0.25 * first
        elif distortion == "polyinc":
            assert first < 0.25 * last
        elif distortion == "cos":
            assert max(first, last) < 0.5 * max(gaps) * 10
            assert max(first, last) < 0.5 * sum(gaps[20:30])  # both ends shorter than the middle
        # the unrounded map: t_k = T (1 - f(k / K)), off by at most the unit pushes near the flat end
        from sympe.diffusion.process.discrete_process import TIME_DISTORTIONS

        f = TIME_DISTORTIONS[distortion]
        assert abs(ts[25] - T * (1 - f(0.5))) <= 1


def test_time_distortion_errors_and_identity_is_the_even_grid():
    assert timestep_schedule(10, 4, "identity") == timestep_schedule(10, 4) == [10, 7, 5, 2, 0]
    with pytest.raises(ValueError, match="time_distortion must be one of"):
        timestep_schedule(10, 4, "sqrt")
    with pytest.raises(ValueError, match="needs strided sampling"):
        timestep_schedule(10, None, "polydec")


def test_certain_model_returns_its_graph_on_a_distorted_grid():
    dx, de, T = 4, 3, 30
    g = torch.Generator().manual_seed(2)
    n_nodes = torch.tensor([5, 3])
    Xi, Ei = torch.randint(0, dx, (2, 5), generator=g), torch.randint(0, de, (2, 5, 5), generator=g)
    mask = torch.arange(5).unsqueeze(0) < n_nodes.unsqueeze(1)
    target = DenseGraph.from_indices(Xi, Ei, mask, dx, de).validate()
    x = sample_graphs(_fixed_graph_model(target), n_nodes, _proc(T, _transitions(dx, de)["marginal"]), steps=6,
                      generator=g, time_distortion="polydec")
    assert torch.equal(x.X, target.X) and torch.equal(x.E, target.E)
