"""sympe.symbreak.permutation (the one permutation convention) and sympe.symbreak.masks, on random inputs."""
import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

from sympe.symbreak.masks import pair_mask
from sympe.symbreak.permutation import (
    all_permutations,
    check_permutation,
    compose_permutations,
    invert_permutation,
    order_to_ranks,
    permutation_matrix,
    permute_graph,
    permute_nodes,
    random_permutation,
    ranks_to_order,
    unpermute_nodes,
)

B, N = 4, 7
SEEDS = range(5)


def perms(seed, B=B, n=N):
    return random_permutation(B, n, torch.Generator().manual_seed(seed))


def tensors(seed):
    g = torch.Generator().manual_seed(100 + seed)
    return torch.randn(B, N, 3, generator=g), torch.randn(B, N, N, 2, generator=g)


def explicit_matrix(p):
    """(n, n) permutation matrix built entry by entry: row i picks old node p[i]."""
    n = p.numel()
    P = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        P[i, int(p[i])] = 1.0
    return P


@pytest.mark.parametrize("seed", SEEDS)
def test_random_permutation_rows_are_permutations(seed):
    p = perms(seed)
    assert p.shape == (B, N) and p.dtype == torch.long
    for row in p.tolist():
        assert sorted(row) == list(range(N))
    check_permutation(p)


@pytest.mark.parametrize("seed", SEEDS)
def test_apply_then_invert_is_identity(seed):
    X, E = tensors(seed)
    p = perms(seed)
    inv = invert_permutation(p)
    ident = torch.arange(N).expand(B, N)
    assert torch.equal(compose_permutations(p, inv), ident)
    assert torch.equal(compose_permutations(inv, p), ident)
    assert torch.equal(invert_permutation(inv), p)
    for T, order in ((X, 1), (E, 2)):
        assert torch.equal(permute_nodes(permute_nodes(T, p, order), inv, order), T)
        assert torch.equal(unpermute_nodes(permute_nodes(T, p, order), p, order), T)
        assert torch.equal(permute_nodes(unpermute_nodes(T, p, order), p, order), T)
    assert torch.equal(permute_nodes(X.sum(1), p, 0), X.sum(1))  # graph-level: unchanged


@pytest.mark.parametrize("seed", SEEDS)
def test_ranks_and_order_are_inverse_and_match_sorting(seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, N, generator=g)  # distinct almost surely
    order = torch.argsort(s, dim=1)
    ranks = order_to_ranks(order)
    # brute force: rank of node j = number of scores smaller than s[j]
    brute = (s.unsqueeze(1) < s.unsqueeze(2)).sum(2)
    assert torch.equal(ranks, brute)
    assert torch.equal(ranks_to_order(ranks), order)
    assert torch.equal(order_to_ranks(ranks_to_order(ranks)), ranks)
    # the order sorts: relabelling by it puts scores in increasing order
    assert bool((permute_nodes(s.unsqueeze(-1), order, 1).squeeze(-1).diff(dim=1) > 0).all())


@pytest.mark.parametrize("seed", SEEDS)
def test_composition(seed):
    X, E = tensors(seed)
    p, q = perms(seed), perms(seed + 50)
    pq = compose_permutations(p, q)
    for T, order in ((X, 1), (E, 2)):
        assert torch.equal(permute_nodes(permute_nodes(T, p, order), q, order), permute_nodes(T, pq, order))
    # (p∘q)^{-1} = q^{-1}∘p^{-1} in the order of application
    assert torch.equal(invert_permutation(pq), compose_permutations(invert_permutation(q), invert_permutation(p)))
    # a (n,) permutation acts like the same row for every graph
    r = perms(seed + 7, B=1)[0]
    assert torch.equal(compose_permutations(p, r), compose_permutations(p, r.expand(B, N)))


@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_explicit_permutation_matrices(seed):
    X, E = tensors(seed)
    X, E = X.double(), E.double()
    p = perms(seed)
    Xp, Ep, _ = permute_graph(X, E, torch.ones(B, N, dtype=torch.bool), p)
    for b in range(B):
        P = explicit_matrix(p[b])
        assert torch.equal(permutation_matrix(p[b], torch.float64), P)
        assert torch.allclose(Xp[b], P @ X[b])
        for c in range(E.shape[-1]):
            assert torch.allclose(Ep[b, ..., c], P @ E[b, ..., c] @ P.T)
    # batched matrices agree too
    Pb = permutation_matrix(p, torch.float64)
    assert torch.allclose(Pb @ X, Xp)


def test_permute_graph_moves_mask_and_accepts_shared_perm():
    X, E = tensors(0)
    mask = torch.rand(B, N, generator=torch.Generator().manual_seed(3)) < 0.7
    p = perms(9, B=1)[0]
    Xp, Ep, mp = permute_graph(X, E, mask, p)
    Xq, Eq, mq = permute_graph(X, E, mask, p.expand(B, N))
    assert torch.equal(Xp, Xq) and torch.equal(Ep, Eq) and torch.equal(mp, mq)
    for b, i, j in itertools.product(range(B), range(N), range(N)):
        assert torch.equal(Ep[b, i, j], E[b, p[i], p[j]])
    assert torch.equal(mp, mask[:, p])
    assert permute_graph(X, None, mask, p)[1] is None


def test_all_permutations_is_the_symmetric_group():
    for n in range(5):
        P = all_permutations(n)
        assert P.shape == (math.factorial(n), n)
        assert {tuple(r) for r in P.tolist()} == set(itertools.permutations(range(n)))
    with pytest.raises(ValueError, match="0 .. 8"):
        all_permutations(9)


def test_random_permutation_is_uniform():
    n, draws = 3, 6000
    p = random_permutation(draws, n, torch.Generator().manual_seed(1))
    index = {perm: k for k, perm in enumerate(itertools.permutations(range(n)))}
    counts = torch.bincount(torch.tensor([index[tuple(r)] for r in p.tolist()]), minlength=6)
    assert chisquare(counts.numpy()).pvalue > 1e-4


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="repeated"):
        check_permutation(torch.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match="0 .. 2"):
        check_permutation(torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="long"):
        check_permutation(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="n = 4"):
        check_permutation(torch.tensor([0, 1, 2]), n=4)
    with pytest.raises(ValueError, match="order 2"):
        permute_nodes(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2]), 2)
    with pytest.raises(ValueError, match="order must be"):
        permute_nodes(torch.zeros(2, 3), torch.tensor([0, 1, 2]), 3)
    with pytest.raises(ValueError, match=r"\(B, n\)"):
        permute_nodes(torch.zeros(2, 3), torch.zeros(5, 3, dtype=torch.long), 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_pair_masks_against_brute_force(seed):
    mask = torch.rand(B, N, generator=torch.Generator().manual_seed(seed)) < 0.6
    full, offdiag, upper = pair_mask(mask), pair_mask(mask, diagonal=False), pair_mask(mask, upper=True)
    for b, i, j in itertools.product(range(B), range(N), range(N)):
        real = bool(mask[b, i] and mask[b, j])
        assert bool(full[b, i, j]) == real
        assert bool(offdiag[b, i, j]) == (real and i != j)
        assert bool(upper[b, i, j]) == (real and i < j)
    nb = mask.sum(1)
    assert torch.equal(upper.sum((1, 2)), nb * (nb - 1) // 2)
    # masks are equivariant: the mask of the relabelled node_mask is the relabelled mask
    p = perms(seed)
    assert torch.equal(pair_mask(permute_nodes(mask, p, 1), diagonal=False), permute_nodes(offdiag, p, 2))
