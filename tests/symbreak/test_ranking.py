"""Tie-aware ranking (dense and sparse) and Plackett–Luce sampling / log-probabilities."""
import itertools
import math

import pytest
import torch
from scipy.stats import chi2, chisquare

from sympe.symbreak.permutation import ranks_to_order
from sympe.symbreak.ranking import (
    check_ranks,
    plackett_luce_log_prob,
    rank_with_ties,
    sample_plackett_luce,
    sparse_plackett_luce_log_prob,
    sparse_rank_with_ties,
    sparse_sample_plackett_luce,
    sparse_tie_groups,
    tie_groups,
)

ALPHA = 1e-4  # false-alarm rate of each statistical test below


def to_sparse(scores, node_mask):
    B = scores.shape[0]
    batch = torch.arange(B).unsqueeze(1).expand_as(node_mask)[node_mask]
    return scores[node_mask], batch


def test_tie_groups_chaining_and_padding():
    tol = 0.1
    scores = torch.tensor([[0.0, 0.06, 0.12, 1.0, 5.0, 9.0],  # 0, .06, .12 chain into one group
                           [3.0, 1.0, 3.05, 1.0, 7.0, 7.0]])  # last two are padding
    m = torch.tensor([[True] * 5 + [False], [True] * 4 + [False] * 2])
    g = tie_groups(scores, m, tol)
    assert g.tolist() == [[0, 0, 0, 1, 2, -1], [1, 0, 1, 0, -1, -1]]


def test_rank_with_ties_is_sorted_permutation_with_padding_last():
    torch.manual_seed(0)
    scores = torch.tensor([[0.3, 0.1, 0.3, 0.2, -4.0, 0.1],
                           [2.0, 1.0, 0.0, 9.0, 9.0, 9.0]])
    m = torch.tensor([[True, True, True, True, False, True], [True, True, True, False, False, False]])
    for _ in range(20):
        r = rank_with_ties(scores, m)
        check_ranks(r, m)
        # padded nodes after real ones, in index order
        assert r[0, 4].item() == 5
        assert r[1, 3:].tolist() == [3, 4, 5]
        assert r[1, :3].tolist() == [2, 1, 0]
        # scores non-decreasing along the ranking of the real nodes
        order = ranks_to_order(r)
        s_sorted = torch.gather(scores, 1, order)
        assert (s_sorted[0, 1:5] >= s_sorted[0, :4]).all()
        # tied nodes {1, 5} take ranks {0, 1}; {0, 2} take {3, 4}
        assert {r[0, 1].item(), r[0, 5].item()} == {0, 1}
        assert {r[0, 0].item(), r[0, 2].item()} == {3, 4}


def test_rank_with_ties_uniform_over_group_orders():
    """A group of 3 tied nodes: all 3! relative orders equally likely (chi-square)."""
    g = torch.Generator().manual_seed(1)
    N = 6000
    scores = torch.tensor([0.5, 0.5, 0.5, -1.0, 2.0]).expand(N, 5)
    m = torch.ones(N, 5, dtype=torch.bool)
    r = rank_with_ties(scores, m, generator=g)
    assert (r[:, 3] == 0).all() and (r[:, 4] == 4).all()
    perms = list(itertools.permutations([1, 2, 3]))
    code = {p: k for k, p in enumerate(perms)}
    counts = torch.zeros(len(perms))
    for row in r[:, :3].tolist():
        counts[code[tuple(row)]] += 1
    assert chisquare(counts.numpy()).pvalue > ALPHA


def test_generator_reproducible():
    scores = torch.zeros(4, 7)
    m = torch.ones(4, 7, dtype=torch.bool)
    a = rank_with_ties(scores, m, generator=torch.Generator().manual_seed(3))
    b = rank_with_ties(scores, m, generator=torch.Generator().manual_seed(3))
    c = rank_with_ties(scores, m, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sparse_tie_groups_match_dense_with_unsorted_batch():
    g = torch.Generator().manual_seed(2)
    B, n = 5, 8
    scores = torch.randint(0, 4, (B, n), generator=g).float() * 0.5  # many ties
    m = torch.arange(n).unsqueeze(0) < torch.tensor([8, 3, 1, 6, 5]).unsqueeze(1)
    dense = tie_groups(scores, m, tol=1e-3)
    s, batch = to_sparse(scores, m)
    perm = torch.randperm(s.numel(), generator=g)  # nodes of different graphs interleaved
    sparse = torch.empty_like(batch)
    sparse[perm] = sparse_tie_groups(s[perm], batch[perm], tol=1e-3)
    assert torch.equal(sparse, dense[m])


def test_sparse_ranks_valid_and_respect_scores():
    g = torch.Generator().manual_seed(5)
    scores = torch.randint(0, 3, (40,), generator=g).float()
    batch = torch.randint(0, 6, (40,), generator=g)
    r = sparse_rank_with_ties(scores, batch, generator=g)
    for b in range(6):
        sel = batch == b
        rb, sb = r[sel], scores[sel]
        assert sorted(rb.tolist()) == list(range(int(sel.sum())))
        i, j = torch.meshgrid(torch.arange(rb.numel()), torch.arange(rb.numel()), indexing="ij")
        assert ((sb[i] < sb[j]) <= (rb[i] < rb[j])).all()


def _two_sample_chi2(a, b, K):
    ca = torch.bincount(a, minlength=K).double()
    cb = torch.bincount(b, minlength=K).double()
    keep = (ca + cb) > 0
    ca, cb = ca[keep], cb[keep]
    tot = ca + cb
    ea, eb = tot * ca.sum() / tot.sum(), tot * cb.sum() / tot.sum()
    stat = ((ca - ea) ** 2 / ea).sum() + ((cb - eb) ** 2 / eb).sum()
    return chi2.sf(stat.item(), ca.numel() - 1)


def test_dense_and_sparse_rank_distributions_agree():
    N = 3000
    base = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 2.0])
    scores = base.expand(N, 6)
    m = torch.ones(N, 6, dtype=torch.bool)
    dense = rank_with_ties(scores, m, generator=torch.Generator().manual_seed(7))
    s, batch = to_sparse(scores, m)
    sparse = sparse_rank_with_ties(s, batch, generator=torch.Generator().manual_seed(8)).view(N, 6)
    pvals = [_two_sample_chi2(dense[:, i], sparse[:, i], 6) for i in range(6)]
    assert min(pvals) * 6 > ALPHA
    # and both are uniform on the tie groups: nodes 0, 2, 3 share ranks 2..4 with prob 1/3 each
    for i in (0, 2, 3):
        counts = torch.bincount(sparse[:, i], minlength=6)
        assert counts[:2].sum() == 0 and counts[5] == 0
        assert chisquare(counts[2:5].numpy()).pvalue > ALPHA / 3


def _all_orders_log_prob(scores, m, tau):
    """Log-probabilities of every order of the real nodes (padded nodes fixed after them)."""
    n = scores.shape[1]
    nb = int(m.sum())
    real = torch.nonzero(m[0]).view(-1).tolist()
    pad = torch.nonzero(~m[0]).view(-1).tolist()
    lps = []
    for perm in itertools.permutations(range(nb)):
        r = torch.empty(n, dtype=torch.long)
        for node, rank in zip(real, perm):
            r[node] = rank
        for k, node in enumerate(pad):
            r[node] = nb + k
        lps.append(plackett_luce_log_prob(scores, r.unsqueeze(0), m, tau))
    return torch.cat(lps)


@pytest.mark.parametrize("tau", [0.3, 1.0, 4.0])
def test_plackett_luce_probabilities_sum_to_one(tau):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(1, 6, generator=g, dtype=torch.float64)
    scores[0, 1] = scores[0, 4]  # a tie
    m = torch.tensor([[True, True, False, True, True, True]])
    lps = _all_orders_log_prob(scores, m, tau)
    assert lps.numel() == math.factorial(5)
    torch.testing.assert_close(torch.logsumexp(lps, 0), torch.zeros((), dtype=torch.float64), atol=1e-12, rtol=0)


def test_plackett_luce_sampling_matches_probabilities():
    g = torch.Generator().manual_seed(11)
    tau = 0.7
    scores1 = torch.tensor([[0.0, 0.4, -0.3, 1.0]], dtype=torch.float64)
    m1 = torch.ones(1, 4, dtype=torch.bool)
    perms = list(itertools.permutations(range(4)))
    probs = torch.stack([
        plackett_luce_log_prob(scores1, torch.tensor([p]), m1, tau).exp()[0] for p in perms
    ])
    N = 24000
    r = sample_plackett_luce(scores1.expand(N, 4), m1.expand(N, 4), tau, generator=g)
    code = {p: k for k, p in enumerate(perms)}
    counts = torch.zeros(len(perms), dtype=torch.float64)
    for row in r.tolist():
        counts[code[tuple(row)]] += 1
    assert chisquare(counts.numpy(), (probs * N).numpy()).pvalue > ALPHA
    # sparse sampler: same law
    s, batch = to_sparse(scores1.expand(N, 4), m1.expand(N, 4))
    rs = sparse_sample_plackett_luce(s, batch, tau, generator=g).view(N, 4)
    counts_s = torch.zeros(len(perms), dtype=torch.float64)
    for row in rs.tolist():
        counts_s[code[tuple(row)]] += 1
    assert chisquare(counts_s.numpy(), (probs * N).numpy()).pvalue > ALPHA


def test_plackett_luce_padding_and_sparse_log_prob_agree():
    g = torch.Generator().manual_seed(4)
    B, n = 4, 6
    m = torch.arange(n).unsqueeze(0) < torch.tensor([6, 2, 4, 1]).unsqueeze(1)
    scores = torch.randn(B, n, generator=g, dtype=torch.float64, requires_grad=True)
    r = sample_plackett_luce(scores.detach(), m, 1.3, generator=g)
    check_ranks(r, m)
    assert r[1, 2:].tolist() == [2, 3, 4, 5]
    lp = plackett_luce_log_prob(scores, r, m, 1.3)
    assert lp[3].item() == 0.0  # one node: probability 1
    s, batch = to_sparse(scores, m)
    lp_sparse = sparse_plackett_luce_log_prob(s, r[m], batch, 1.3)
    torch.testing.assert_close(lp_sparse, lp)
    lp.sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad[~m].abs().max() == 0


def test_plackett_luce_low_temperature_concentrates_on_sorted_order():
    scores = torch.tensor([[0.3, -1.0, 2.0, 0.9]])
    m = torch.ones(1, 4, dtype=torch.bool)
    r = sample_plackett_luce(scores.expand(200, 4), m.expand(200, 4), 1e-4)
    assert (r == torch.tensor([1, 0, 3, 2])).all()


def test_bad_input_raises():
    m = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="node_mask"):
        rank_with_ties(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        tie_groups(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="tol"):
        tie_groups(torch.zeros(2, 3), m, tol=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        sample_plackett_luce(torch.zeros(2, 3), m, temperature=0.0)
    with pytest.raises(ValueError, match="distinct"):
        check_ranks(torch.tensor([[0, 0, 1], [0, 1, 2]]), m)
    with pytest.raises(ValueError, match="0..n_b-1"):
        plackett_luce_log_prob(torch.zeros(2, 3), torch.tensor([[0, 1, 3], [0, 1, 2]]), m)
    with pytest.raises(ValueError, match="batch"):
        sparse_rank_with_ties(torch.zeros(3), torch.zeros(3))
