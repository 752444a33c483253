"""Tests for sympe.symbreak.symmetrize: canonicalization, frame / Reynolds averaging and randomized
canonicalization turn non-equivariant functions into (distributionally) equivariant ones."""
import itertools

import pytest
import torch

from sympe.symbreak.permutation import all_permutations, invert_permutation, permute_graph
from sympe.symbreak.ranking import rank_with_ties
from sympe.symbreak.symmetrize import (
    canonicalized,
    frame_average,
    random_node_permutations,
    randomized_canonicalization,
    reynolds_average,
    unpermute_outputs,
)

N, DX, DE, K = 4, 3, 2, 5


class FlatMLP(torch.nn.Module):
    """Deliberately NOT equivariant: an MLP over the flattened node ordering.

    Returns (node (B, n, K), pair (B, n, n, 2), graph (B, 3)) outputs.
    """

    def __init__(self, n=N, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        d_in = n * DX + n * n * DE
        self.n = n
        self.net = torch.nn.Sequential(torch.nn.Linear(d_in, 32), torch.nn.Tanh(),
                                       torch.nn.Linear(32, n * K + n * n * 2 + 3))
        self.requires_grad_(False)

    def forward(self, X, E, node_mask):
        B, n = node_mask.shape
        h = self.net(torch.cat([X.reshape(B, -1), E.reshape(B, -1)], 1))
        node = h[:, : n * K].reshape(B, n, K)
        pair = h[:, n * K : n * K + n * n * 2].reshape(B, n, n, 2)
        graph = h[:, -3:]
        return node, pair, graph


def positional(X, E, node_mask):
    """f(x)[b, i] = one-hot(i): the positional index embedding (not equivariant)."""
    B, n = node_mask.shape
    return torch.eye(n).expand(B, n, n).clone()


def random_graph_batch(B=3, n=N, seed=0, p=0.5):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(B, n, DX, generator=gen)  # continuous features: no ties in X @ w
    A = torch.triu(torch.rand(B, n, n, generator=gen) < p, 1)
    A = (A | A.transpose(1, 2)).long()
    E = torch.nn.functional.one_hot(A, DE).float() * (1 - torch.eye(n)).unsqueeze(-1)
    return X, E, torch.ones(B, n, dtype=torch.bool)


def path_graph(B, n=N):
    """B copies of the path 0-1-2-...-(n-1), constant node features (many ties)."""
    A = torch.zeros(n, n, dtype=torch.long)
    for i in range(n - 1):
        A[i, i + 1] = A[i + 1, i] = 1
    E = torch.nn.functional.one_hot(A, DE).float() * (1 - torch.eye(n)).unsqueeze(-1)
    return torch.ones(B, n, DX), E.expand(B, n, n, DE).clone(), torch.ones(B, n, dtype=torch.bool)


def degree_score(X, E, node_mask):
    return E[..., 1:].sum(dim=(2, 3))


def feature_score(X, E, node_mask):
    return X @ torch.tensor([1.0, -0.5, 0.25]) + 0.1 * degree_score(X, E, node_mask)


def random_perm(B, n, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=gen) for _ in range(B)])


def assert_equivariant(F, X, E, mask, h, orders=(1, 2, 0), atol=1e-5):
    out = F(X, E, mask)
    out_h = F(*permute_graph(X, E, mask, h))
    b = torch.arange(X.shape[0]).unsqueeze(1)
    for y, yh, o in zip(out, out_h, orders):
        if o == 0:
            expected = y
        elif o == 1:
            expected = y[b, h]
        else:
            expected = y[b.unsqueeze(2), h.unsqueeze(2), h.unsqueeze(1)]
        torch.testing.assert_close(yh, expected, atol=atol, rtol=0)


def max_equivariance_error(F, X, E, mask, h):
    (node, _, _) = F(X, E, mask)
    (node_h, _, _) = F(*permute_graph(X, E, mask, h))
    b = torch.arange(X.shape[0]).unsqueeze(1)
    return float((node_h - node[b, h]).abs().max().detach())


# ------------------------------------------------------------------------------ helpers
def test_permute_and_unpermute_are_inverse():
    X, E, mask = random_graph_batch()
    h = random_perm(3, N, 1)
    Xp, Ep, mp = permute_graph(X, E, mask, h)
    assert torch.equal(Xp[1, 2], X[1, h[1, 2]])
    assert torch.equal(Ep[2, 0, 3], E[2, h[2, 0], h[2, 3]])
    back = unpermute_outputs((Xp, Ep, X.sum(1)), h, (1, 2, 0))
    assert torch.equal(back[0], X) and torch.equal(back[1], E)
    assert torch.equal(invert_permutation(h).gather(1, h), torch.arange(N).expand(3, N))
    assert all_permutations(4).shape == (24, 4)
    assert len({tuple(p) for p in all_permutations(4).tolist()}) == 24
    with pytest.raises(ValueError, match="output_orders"):
        unpermute_outputs((Xp, Ep), h, (1, 2, 0))
    with pytest.raises(ValueError, match="order 2"):
        unpermute_outputs(Xp, h, 2)


def test_random_node_permutations_uniform_and_padding_last():
    mask = torch.tensor([[True, False, True, True], [True, True, True, True]])
    gen = torch.Generator().manual_seed(0)
    perms = random_node_permutations(mask, 1800, gen)  # (2, 1800, 4)
    first = perms[0]
    assert bool((first[:, 3] == 1).all())  # the padded node goes last
    counts = {}
    for p in first[:, :3].tolist():
        counts[tuple(p)] = counts.get(tuple(p), 0) + 1
    assert set(counts) == set(itertools.permutations([0, 2, 3]))
    chi = sum((c - 300) ** 2 / 300 for c in counts.values())
    assert chi < 20.5  # chi-square(5), 0.999 quantile
    assert len({tuple(p) for p in perms[1].tolist()}) == 24


# ------------------------------------------------------------------------------ frame averaging
def test_full_frame_average_is_exactly_equivariant():
    f = FlatMLP()
    X, E, mask = random_graph_batch()
    h = random_perm(3, N, 2)
    assert max_equivariance_error(f, X, E, mask, h) > 1e-2  # f itself is not equivariant
    F = frame_average(f, all_permutations(N), output_orders=(1, 2, 0), frames_per_call=24)
    assert_equivariant(F, X, E, mask, h)
    # the same frame as a list (one frame element per call), and as a callable returning (B, K, n)
    F_list = frame_average(f, list(all_permutations(N)), output_orders=(1, 2, 0))
    F_call = frame_average(f, lambda X, E, m: all_permutations(N).expand(X.shape[0], -1, -1),
                           output_orders=(1, 2, 0), frames_per_call=24)
    # several frame elements per call of f (stacked on the batch axis; 24 = 5+5+5+5+4)
    F_chunk = frame_average(f, all_permutations(N), output_orders=(1, 2, 0), frames_per_call=5)
    for a, b, c, d in zip(F(X, E, mask), F_list(X, E, mask), F_call(X, E, mask), F_chunk(X, E, mask)):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(a, d)
    assert_equivariant(F_chunk, X, E, mask, h)


def test_frame_average_extra_args_and_bad_frames():
    f = lambda X, E, m, scale, shift=0.0: X * scale + shift  # noqa: E731
    X, E, mask = random_graph_batch()
    F = frame_average(f, all_permutations(N))
    torch.testing.assert_close(F(X, E, mask, 2.0, shift=1.0), X * 2 + 1)  # f equivariant: unchanged
    with pytest.raises(ValueError, match="permutation"):
        frame_average(f, torch.zeros(2, N, dtype=torch.long))(X, E, mask, 1.0)
    with pytest.raises(ValueError, match=r"\(K, n\)"):
        frame_average(f, torch.zeros(2, N + 1, dtype=torch.long))(X, E, mask, 1.0)


def test_reynolds_approaches_full_average():
    f = FlatMLP(seed=1)
    X, E, mask = random_graph_batch(B=2, seed=3)
    exact = frame_average(f, all_permutations(N), output_orders=(1, 2, 0), frames_per_call=24)(X, E, mask)
    gen = torch.Generator().manual_seed(0)
    few = reynolds_average(f, 3, gen, output_orders=(1, 2, 0))(X, E, mask)
    many = reynolds_average(f, 3000, gen, output_orders=(1, 2, 0), frames_per_call=1000)(X, E, mask)
    err_few = max(float((a - b).abs().max()) for a, b in zip(few, exact))
    err_many = max(float((a - b).abs().max()) for a, b in zip(many, exact))
    # the per-permutation outputs spread widely, so a 3-sample average is visibly off
    perms = all_permutations(N).repeat_interleave(2, 0)  # (48, n): every permutation for both graphs
    rep = lambda t: t.repeat((24,) + (1,) * (t.dim() - 1))  # noqa: E731
    spread = float(f(*permute_graph(rep(X), rep(E), rep(mask), perms))[0].reshape(24, 2, N, K).std(0).mean().detach())
    assert err_few > 0.01
    assert err_many < 0.02 < spread
    # equivariant in distribution: reynolds on h x approximates h (exact average)
    h = random_perm(2, N, 4)
    many_h = reynolds_average(f, 3000, gen, output_orders=(1, 2, 0), frames_per_call=1000)(*permute_graph(X, E, mask, h))
    b = torch.arange(2).unsqueeze(1)
    assert float((many_h[0] - exact[0][b, h]).abs().max()) < 0.02


# ------------------------------------------------------------------------------ canonicalization
def canon_by_features(X, E, mask):
    return rank_with_ties(feature_score(X, E, mask), mask, tol=1e-6)


def test_canonicalized_is_exactly_equivariant_without_ties():
    f = FlatMLP(seed=2)
    X, E, mask = random_graph_batch(B=4, seed=5)
    F = canonicalized(f, canon_by_features, output_orders=(1, 2, 0))
    for seed in range(3):
        h = random_perm(4, N, 10 + seed)
        assert max_equivariance_error(f, X, E, mask, h) > 1e-2
        assert_equivariant(F, X, E, mask, h, atol=0.0)  # bitwise: f sees the very same canonical input


def test_canonicalized_with_padding_equivariant_on_real_nodes():
    f = FlatMLP(seed=3)
    X, E, mask = random_graph_batch(B=2, seed=6)
    mask[1, 1] = False
    X, E = X * mask[..., None], E * (mask[:, :, None] & mask[:, None, :])[..., None]
    F = canonicalized(f, canon_by_features, output_orders=(1, 2, 0))
    h = random_perm(2, N, 7)
    node, _, graph = F(X, E, mask)
    node_h, _, graph_h = F(*permute_graph(X, E, mask, h))
    b = torch.arange(2).unsqueeze(1)
    real_h = mask[b, h]
    assert torch.equal(node_h[real_h], node[b, h][real_h])
    assert torch.equal(graph_h, graph)


def test_canonicalize_with_index_tie_break_is_not_equivariant():
    # sanity check that the equivariance test can fail: ties broken by node index
    def canon_index_ties(X, E, mask):
        s = degree_score(X, E, mask)
        return invert_permutation(torch.sort(s, dim=1, stable=True).indices)

    X, E, mask = path_graph(1)
    F = canonicalized(positional, canon_index_ties)
    h = torch.tensor([[3, 2, 1, 0]])  # an automorphism of the path
    Xh, Eh, mh = permute_graph(X, E, mask, h)
    assert torch.equal(Xh, X) and torch.equal(Eh, E)  # h·x = x ...
    out = F(X, E, mask)
    assert not torch.equal(out[:, h[0]], out)  # ... but F(h·x) = F(x) != h·F(x)
    with pytest.raises(ValueError, match="permutation"):
        canonicalized(positional, lambda X, E, m: torch.zeros_like(m, dtype=torch.long))(X, E, mask)


# ------------------------------------------------------------------------------ randomized canonicalization
def tie_frame(score_fn):
    """Exact inversion-kernel support: every permutation that sorts the scores (ties in any order)."""
    def frame(X, E, mask):
        s = score_fn(X, E, mask)
        perms = all_permutations(X.shape[1])
        out = []
        for b in range(X.shape[0]):
            sp = s[b][perms]
            keep = (sp[:, 1:] >= sp[:, :-1] - 1e-6).all(1)
            out.append(perms[keep])
        return torch.stack(out)
    return frame


def rank_counts(ranks):
    counts = {}
    for r in ranks.tolist():
        counts[tuple(r)] = counts.get(tuple(r), 0) + 1
    return counts


def test_randomized_canonicalization_exact_law_on_path():
    S = 2000
    X, E, mask = path_graph(S)
    gen = torch.Generator().manual_seed(0)
    F = randomized_canonicalization(positional, degree_score, tol=1e-6, generator=gen, return_ranks=True)
    out, ranks = F(X, E, mask)
    # output of node j is one-hot(rank of j)
    assert torch.equal(out.argmax(-1), ranks)
    # exact support: ends (degree 1) take positions {0, 1}, middle nodes {2, 3}; uniform on the 4 orders
    counts = rank_counts(ranks)
    assert set(counts) == {(0, 2, 3, 1), (1, 2, 3, 0), (0, 3, 2, 1), (1, 3, 2, 0)}
    chi = sum((c - S / 4) ** 2 / (S / 4) for c in counts.values())
    assert chi < 16.3  # chi-square(3), 0.999 quantile
    # symmetry is broken in every sample: the automorphic ends 0 and 3 get different outputs
    assert bool((out[:, 0] != out[:, 3]).any(-1).all())


def test_randomized_canonicalization_is_equivariant_in_distribution():
    S = 2000
    gen = torch.Generator().manual_seed(1)
    X1, E1, m1 = random_graph_batch(B=1, seed=8, p=0.6)
    X1 = torch.ones_like(X1)  # ties from structure only
    # a graph with nontrivial ties: the star K_{1,3} (centre 0)
    E1 = torch.zeros(1, N, N, DE)
    E1[..., 0] = 1 - torch.eye(N)
    for leaf in (1, 2, 3):
        E1[0, 0, leaf] = E1[0, leaf, 0] = torch.tensor([0.0, 1.0])
    h = torch.tensor([[2, 0, 3, 1]])  # moves the centre to position 1
    X, E, m = X1.expand(S, -1, -1), E1.expand(S, -1, -1, -1), m1.expand(S, -1)
    Xh, Eh, mh = permute_graph(X, E, m, h.expand(S, -1))
    F = randomized_canonicalization(positional, degree_score, tol=1e-6, generator=gen, return_ranks=True)
    _, r = F(X, E, m)
    _, rh = F(Xh, Eh, mh)
    # pull the ranks drawn on h·x back to the labels of x: old node h[i] had rank rh[i]
    rh_back = torch.empty_like(rh)
    rh_back[:, h[0]] = rh
    c, ch = rank_counts(r), rank_counts(rh_back)
    support = {(3,) + p for p in itertools.permutations((0, 1, 2))}  # leaves (degree 1) first, centre last
    assert set(c) == support and set(ch) == support
    # two-sample chi-square on the 6 orders
    chi = sum((c[k] - ch[k]) ** 2 / (c[k] + ch[k]) for k in support)
    assert chi < 20.5  # chi-square(5), 0.999 quantile


def test_randomized_canonicalization_mean_matches_exact_kernel_average():
    f = FlatMLP(seed=4)
    X1, E1, m1 = path_graph(1)
    X1[0, 2, 0] = 1.3  # score = degree + X[..., 0]
    X1[0, 3, 0] = 2.0
    score = lambda X, E, m: degree_score(X, E, m) + X[..., 0]  # noqa: E731
    # scores: node0 = 1 + 1, node1 = 2 + 1, node2 = 2 + 1.3, node3 = 1 + 2: one tie, {1, 3}
    exact = frame_average(f, tie_frame(score), output_orders=(1, 2, 0))(X1, E1, m1)
    assert tie_frame(score)(X1, E1, m1).shape[1] == 2  # exactly one tie of two nodes
    S = 3000
    gen = torch.Generator().manual_seed(2)
    F = randomized_canonicalization(f, score, tol=1e-6, generator=gen, output_orders=(1, 2, 0))
    out = F(X1.expand(S, -1, -1), E1.expand(S, -1, -1, -1), m1.expand(S, -1))
    for y, e in zip(out, exact):
        assert float((y.mean(0, keepdim=True) - e).abs().max()) < 0.03
    # the exact kernel average is exactly equivariant
    h = random_perm(1, N, 9)
    exact_h = frame_average(f, tie_frame(score), output_orders=(1, 2, 0))(*permute_graph(X1, E1, m1, h))
    torch.testing.assert_close(exact_h[0], exact[0][:, h[0]], atol=1e-5, rtol=0)
    torch.testing.assert_close(exact_h[2], exact[2], atol=1e-5, rtol=0)


def test_randomized_canonicalization_padding_and_errors():
    X, E, mask = random_graph_batch(B=2, seed=11)
    mask[0, 0] = False
    gen = torch.Generator().manual_seed(3)
    F = randomized_canonicalization(positional, feature_score, generator=gen, return_ranks=True)
    out, ranks = F(X, E, mask)
    assert int(ranks[0, 0]) == N - 1  # the padded node is ranked last
    assert sorted(ranks[0, 1:].tolist()) == [0, 1, 2]
    bad = randomized_canonicalization(positional, lambda X, E, m: X[..., 0, None])
    with pytest.raises(ValueError, match="score_fn"):
        bad(X, E, mask)
