"""IGN canonicalizer: equivariant scores, exact ties on automorphic nodes, the three sampling modes."""
import pytest
import torch
from scipy.stats import chisquare

from sympe.symbreak.canonicalize import IGNCanonicalizer, neural_sort, ranks_to_permutation_matrix
from sympe.symbreak.ranking import check_ranks, plackett_luce_log_prob, tie_groups
from sympe.symbreak.testing import (
    assert_equivariant,
    assert_equivariant_in_distribution,
    graph_from_edges,
)
from sympe.symbreak.permutation import permute_graph

ALPHA = 1e-4


def cycle(n, pad_to=None):
    return graph_from_edges(n, [(i, (i + 1) % n) for i in range(n)], pad_to=pad_to)


def prism(pad_to=None):  # triangular prism C_3 × K_2: vertex-transitive, not a cycle
    edges = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)]
    return graph_from_edges(6, edges, pad_to=pad_to)


def path(n, pad_to=None):
    return graph_from_edges(n, [(i, i + 1) for i in range(n - 1)], pad_to=pad_to)


def random_batch(seed=0, n=7, sizes=(7, 5, 2), dx=3, de=2):
    g = torch.Generator().manual_seed(seed)
    B = len(sizes)
    m = torch.arange(n).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
    X = torch.nn.functional.one_hot(torch.randint(0, dx, (B, n), generator=g), dx).float()
    up = torch.randint(0, de, (B, n, n), generator=g).triu(1)
    E = torch.nn.functional.one_hot(up + up.transpose(1, 2), de).float()
    pm = (m.unsqueeze(2) & m.unsqueeze(1) & ~torch.eye(n, dtype=torch.bool)).unsqueeze(-1)
    return X * m.unsqueeze(-1), E * pm, m


def make(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    kw.setdefault("hidden", 8)
    kw.setdefault("n_layers", 2)
    return IGNCanonicalizer(kw.pop("node_in", 1), kw.pop("edge_in", 2), **kw)


def test_scores_equivariant_on_padded_batches():
    can = make(node_in=3, n_layers=3)
    X, E, m = random_batch()
    t = torch.tensor([[0.1], [0.5], [0.9]])
    assert_equivariant(lambda X, E, m: can.scores(X, E, m, t), X, E, m, trials=4, atol=1e-12, rtol=1e-10)
    s = can.scores(X, E, m, t)
    assert s.shape == (3, 7) and s.dtype == torch.float64
    assert s[~m].abs().max() == 0


@pytest.mark.parametrize("graph", ["C6", "prism"])
def test_vertex_transitive_graphs_all_scores_tie(graph):
    X, E, m = cycle(6, pad_to=8) if graph == "C6" else prism(pad_to=7)
    for normalize in (True, False):
        can = make(n_layers=3, normalize=normalize)
        s = can.scores(X, E, m, torch.tensor([[0.7]]))[m]
        assert (s - s[0]).abs().max() < 1e-10
        assert (tie_groups(can.scores(X, E, m), m, can.tol)[m] == 0).all()


def test_distinct_orbits_get_distinct_scores():
    """Path P_5 has orbits {0,4}, {1,3}, {2}; a star with a tail has 4 orbits."""
    X, E, m = path(5, pad_to=6)
    can = make(n_layers=3)
    s = can.scores(X, E, m)[0]
    assert abs(s[0] - s[4]) < 1e-10 and abs(s[1] - s[3]) < 1e-10
    orbit_vals = torch.stack([s[0], s[1], s[2]])
    gaps = (orbit_vals.unsqueeze(0) - orbit_vals.unsqueeze(1)).abs() + torch.eye(3)
    assert gaps.min() > 1e3 * can.tol
    g = tie_groups(s.unsqueeze(0), m, can.tol)[0]
    assert g[0] == g[4] and g[1] == g[3] and len({g[0].item(), g[1].item(), g[2].item()}) == 3
    # star K_{1,3} with the tail 3-4: orbits {0}, {1,2}, {3}, {4}
    X, E, m = graph_from_edges(5, [(0, 1), (0, 2), (0, 3), (3, 4)])
    s = can.scores(X, E, m)[0]
    assert abs(s[1] - s[2]) < 1e-10
    assert tie_groups(s.unsqueeze(0), m, can.tol).max() == 3


def test_uniform_ties_on_c5_each_node_each_rank_with_prob_one_fifth():
    X, E, m = cycle(5)
    can = make()
    N = 3000
    gen = torch.Generator().manual_seed(0)
    r = can.sample(X.expand(N, -1, -1), E.expand(N, -1, -1, -1), m.expand(N, -1), generator=gen)
    check_ranks(r, m.expand(N, -1))
    pvals = [chisquare(torch.bincount(r[:, i], minlength=5).numpy()).pvalue for i in range(5)]
    assert min(pvals) * 5 > ALPHA


def test_uniform_ties_equivariant_in_distribution():
    X, E, m = path(5, pad_to=7)
    can = make()
    assert_equivariant_in_distribution(
        lambda X, E, m: can.sample(X, E, m), (X, E, m), statistic=lambda r: r[:, :5],
        n_samples=1500, alpha=1e-3, perm=torch.tensor([6, 4, 2, 0, 3, 5, 1]),
    )


def test_plackett_luce_mode_returns_log_prob_and_is_equivariant_in_distribution():
    X, E, m = random_batch(seed=2, dx=1)
    can = make(tie_mode="plackett_luce", temperature=0.05)
    draw = can.sample_full(X, E, m, torch.full((3, 1), 0.3))
    check_ranks(draw.ranks, m)
    expected = plackett_luce_log_prob(draw.scores, draw.ranks, m, 0.05)
    torch.testing.assert_close(draw.log_prob, expected)
    assert (draw.log_prob <= 0).all()
    Xc, Ec, mc = cycle(4)
    assert_equivariant_in_distribution(
        lambda X, E, m: can.sample(X, E, m), (Xc, Ec, mc), statistic=lambda r: r,
        n_samples=1500, perm=torch.tensor([2, 0, 3, 1]),
    )


def test_deterministic_mode_is_not_equivariant_in_distribution():
    X, E, m = cycle(6)
    can = make(tie_mode="deterministic")
    r = can.sample(X, E, m)
    assert r.tolist() == [[0, 1, 2, 3, 4, 5]]  # index tie-breaking
    with pytest.raises(AssertionError, match="not equivariant in distribution"):
        assert_equivariant_in_distribution(
            lambda X, E, m: can.sample(X, E, m), (X, E, m), statistic=lambda r: r,
            n_samples=200, perm=torch.tensor([3, 4, 5, 0, 1, 2]),
        )
    # while uniform_ties on the same graph and relabelling passes
    can_u = make()
    assert_equivariant_in_distribution(
        lambda X, E, m: can_u.sample(X, E, m), (X, E, m), statistic=lambda r: r,
        n_samples=1500, perm=torch.tensor([3, 4, 5, 0, 1, 2]),
    )


def test_fresh_draw_every_call():
    X, E, m = cycle(8)
    can = make()
    draws = {tuple(can.sample(X, E, m)[0].tolist()) for _ in range(10)}
    assert len(draws) > 1


def test_time_channel_changes_scores():
    X, E, m = path(5)
    can = make()
    s0 = can.scores(X, E, m, torch.tensor([[0.0]]))
    s1 = can.scores(X, E, m, torch.tensor([[1.0]]))
    assert not torch.allclose(s0, s1)
    torch.testing.assert_close(can.scores(X, E, m), s0)  # t=None means t=0


def test_frozen_by_default_and_keeps_float64():
    can = make()
    assert all(not p.requires_grad for p in can.parameters())
    X, E, m = path(4)
    assert not can.scores(X, E, m).requires_grad
    can.float()
    assert all(p.dtype == torch.float64 for p in can.parameters())
    assert make(compute_dtype=torch.float32).tol == 1e-4


def test_straight_through_gradient_reaches_the_ign():
    X, E, m = random_batch(seed=3, dx=1)
    can = make(trainable=True, straight_through=True, st_temperature=0.1)
    draw = can.sample_full(X, E, m)
    hard = ranks_to_permutation_matrix(draw.ranks, m, torch.float64)
    torch.testing.assert_close(draw.perm.detach(), hard)  # forward value is the hard permutation
    target = torch.randn(7, 4, dtype=torch.float64)
    (draw.perm.transpose(1, 2) @ target).pow(2).sum().backward()
    grads = [p.grad for p in can.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_neural_sort_relaxation():
    s = torch.tensor([[0.5, -2.0, 3.0, 0.0, 9.0]], dtype=torch.float64)
    m = torch.tensor([[True, True, True, True, False]])
    P = neural_sort(s, m, temperature=1e-3)
    torch.testing.assert_close(P[0, :4].sum(-1), torch.ones(4, dtype=torch.float64))
    assert P[0, 4].abs().sum() == 0 and P[0, :, 4].abs().sum() == 0
    assert P[0, :4].argmax(-1).tolist() == [1, 3, 0, 2]  # ascending order of the real scores


def test_scores_agree_between_padded_sizes_and_relabelings():
    X, E, m = prism()
    Xp, Ep, mp = prism(pad_to=9)
    can = make(n_layers=3)
    torch.testing.assert_close(can.scores(Xp, Ep, mp)[:, :6], can.scores(X, E, m))
    X2, E2, m2 = permute_graph(Xp, Ep, mp, torch.tensor([8, 0, 7, 1, 6, 2, 5, 3, 4]))
    s = can.scores(X2, E2, m2)
    assert s[~m2].abs().max() == 0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="straight_through"):
        make(straight_through=True)
    with pytest.raises(ValueError, match="tie_mode"):
        make(tie_mode="random")
    can = make()
    X, E, m = path(4)
    with pytest.raises(ValueError, match="node_in=1"):
        can.scores(torch.zeros(1, 4, 2), E, m)
    with pytest.raises(ValueError, match="t must be"):
        can.scores(X, E, m, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="mode"):
        can.sample(X, E, m, mode="nope")
    with pytest.raises(ValueError, match="extra"):
        can.scores(X, E, m, extra=torch.zeros(1, 1))
