"""Tests for sympe.symbreak.sparse: per-graph softmax/argsort, rank<->perm, permuting PyG batches,
dense <-> sparse conversion (dense and sparse versions of the same permutation agree)."""
import itertools
import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_adj, to_dense_batch

from sympe.symbreak.sparse import (
    graph_argsort,
    graph_softmax,
    local_index,
    perm_to_ranks,
    permute_batch,
    ptr_from_batch,
    random_perm_of_batch_vector,
    random_permutation_of_batch,
    ranks_to_perm,
    to_dense_with_order,
    to_sparse,
)


def random_graph(n, p, dx, de, gen):
    """Undirected random graph with one-hot node classes and one-hot edge classes 1..de-1 (width de)."""
    a = torch.rand(n, n, generator=gen) < p
    a = torch.triu(a, diagonal=1)
    src, dst = torch.nonzero(a, as_tuple=True)
    cls = torch.randint(1, de, (src.numel(),), generator=gen)
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    ea = torch.nn.functional.one_hot(torch.cat([cls, cls]), de).float()
    x = torch.nn.functional.one_hot(torch.randint(0, dx, (n,), generator=gen), dx).float()
    return Data(x=x, edge_index=ei, edge_attr=ea, pos=torch.randn(n, 3, generator=gen), y=torch.randn(1, 2, generator=gen))


def make_batch(sizes=(5, 1, 7, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([random_graph(n, 0.5, 3, 4, gen) for n in sizes])


def edge_set(x, edge_index, edge_attr):
    """Multiset of (x[src], x[dst], attr) rows, as sorted tuples: invariant under node relabelling."""
    rows = torch.cat([x[edge_index[0]], x[edge_index[1]], edge_attr], 1)
    return sorted(map(tuple, rows.tolist()))


# ------------------------------------------------------------------------------ softmax / argsort
def test_graph_softmax_matches_per_graph_softmax():
    gen = torch.Generator().manual_seed(1)
    batch = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2])
    s = torch.randn(8, 2, generator=gen) * 5
    p = graph_softmax(s, batch, temperature=0.5)
    ptr = ptr_from_batch(batch)
    for g in range(3):
        sl = slice(int(ptr[g]), int(ptr[g + 1]))
        torch.testing.assert_close(p[sl], torch.softmax(s[sl] / 0.5, dim=0))
    with pytest.raises(ValueError, match="temperature"):
        graph_softmax(s, batch, temperature=0.0)


def test_graph_argsort_brute_force_and_ties_stable():
    gen = torch.Generator().manual_seed(2)
    batch = torch.tensor([0] * 6 + [1] * 3 + [2] * 5)
    s = torch.randint(0, 3, (14,), generator=gen).float()  # many ties
    perm = graph_argsort(s, batch)
    ptr = ptr_from_batch(batch)
    for g in range(3):
        idx = list(range(int(ptr[g]), int(ptr[g + 1])))
        expected = sorted(idx, key=lambda i: (float(s[i]), i))  # stable
        assert perm[idx].tolist() == expected
    desc = graph_argsort(s, batch, descending=True)
    for g in range(3):
        idx = list(range(int(ptr[g]), int(ptr[g + 1])))
        assert s[desc[idx]].tolist() == sorted(s[idx].tolist(), reverse=True)
    ranks = perm_to_ranks(perm, batch)
    # rank 0 is the smallest score of each graph
    for g in range(3):
        idx = torch.arange(int(ptr[g]), int(ptr[g + 1]))
        assert float(s[idx][ranks[idx] == 0]) == float(s[idx].min())


def test_graph_argsort_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        graph_argsort(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="non-decreasing"):
        graph_argsort(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="long"):
        graph_argsort(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0]))


# ------------------------------------------------------------------------------ ranks <-> perm
def test_ranks_perm_roundtrip_and_definitions():
    gen = torch.Generator().manual_seed(3)
    batch = torch.tensor([0] * 4 + [1] * 1 + [2] * 6)
    ptr = ptr_from_batch(batch)
    perm = random_perm_of_batch_vector(batch, gen)
    assert torch.equal(batch[perm], batch)
    ranks = perm_to_ranks(perm, batch)
    loc = local_index(batch)
    # definition: ranks[perm[i]] = local index of i
    assert torch.equal(ranks[perm], loc)
    # definition: perm[ptr[batch[j]] + ranks[j]] = j
    assert torch.equal(perm[ptr[batch] + ranks], torch.arange(11))
    assert torch.equal(ranks_to_perm(ranks, batch), perm)
    assert torch.equal(perm_to_ranks(ranks_to_perm(ranks, batch), batch), ranks)


def test_ranks_perm_bad_input():
    batch = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="share a rank"):
        ranks_to_perm(torch.tensor([0, 0, 1, 0]), batch)
    with pytest.raises(ValueError, match="0 .. n_g - 1"):
        ranks_to_perm(torch.tensor([0, 2, 1, 0]), batch)
    with pytest.raises(ValueError, match="another graph"):
        perm_to_ranks(torch.tensor([2, 1, 0, 3]), batch)
    with pytest.raises(ValueError, match="repeated"):
        perm_to_ranks(torch.tensor([0, 0, 2, 3]), batch)
    with pytest.raises(ValueError, match=r"\(N,\)"):
        perm_to_ranks(torch.tensor([0, 1, 2]), batch)


def test_random_perm_is_uniform_chi_square():
    # one graph of 3 nodes and one of 2: counts of the 6 (resp. 2) orders are uniform
    gen = torch.Generator().manual_seed(4)
    batch = torch.tensor([0, 0, 0, 1, 1])
    counts3, counts2 = {}, {}
    trials = 3000
    for _ in range(trials):
        p = random_perm_of_batch_vector(batch, gen).tolist()
        counts3[tuple(p[:3])] = counts3.get(tuple(p[:3]), 0) + 1
        counts2[tuple(p[3:])] = counts2.get(tuple(p[3:]), 0) + 1
    assert set(counts3) == set(itertools.permutations(range(3)))
    assert set(counts2) == {(3, 4), (4, 3)}
    chi3 = sum((c - trials / 6) ** 2 / (trials / 6) for c in counts3.values())
    chi2 = sum((c - trials / 2) ** 2 / (trials / 2) for c in counts2.values())
    assert chi3 < 20.5  # chi-square(5) 0.999 quantile
    assert chi2 < 10.8  # chi-square(1) 0.999 quantile


# ------------------------------------------------------------------------------ permute_batch
def test_permute_batch_relabels_consistently():
    data = make_batch()
    gen = torch.Generator().manual_seed(5)
    out, perm = random_permutation_of_batch(data, gen)
    assert not torch.equal(perm, torch.arange(data.num_nodes))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    torch.testing.assert_close(out.x, data.x[perm])
    torch.testing.assert_close(out.pos, data.pos[perm])
    assert torch.equal(out.batch, data.batch)
    assert torch.equal(out.ptr, data.ptr)
    torch.testing.assert_close(out.y, data.y)
    torch.testing.assert_close(out.edge_attr, data.edge_attr)  # edges keep their order
    assert torch.equal(out.edge_index, inv[data.edge_index])
    # an isomorphic copy: same labelled edge multiset
    assert edge_set(out.x, out.edge_index, out.edge_attr) == edge_set(data.x, data.edge_index, data.edge_attr)
    # edge (u, v) of the input is edge (inv u, inv v) of the output, whose endpoints carry the old features
    torch.testing.assert_close(out.x[out.edge_index[0]], data.x[data.edge_index[0]])
    # the input is untouched; the inverse permutation undoes the relabelling
    back = permute_batch(out, inv)
    torch.testing.assert_close(back.x, data.x)
    assert torch.equal(back.edge_index, data.edge_index)


def test_permute_single_data_and_errors():
    gen = torch.Generator().manual_seed(6)
    d = random_graph(6, 0.5, 3, 4, gen)
    out, perm = random_permutation_of_batch(d, gen)
    torch.testing.assert_close(out.x, d.x[perm])
    with pytest.raises(ValueError, match="repeated"):
        permute_batch(d, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="another graph"):
        b = make_batch((2, 2))
        permute_batch(b, torch.tensor([2, 1, 0, 3]))


# ------------------------------------------------------------------------------ dense <-> sparse
def test_to_dense_original_order_matches_pyg():
    data = make_batch()
    X, E, mask = to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch)
    Xr, maskr = to_dense_batch(data.x, data.batch)
    Er = to_dense_adj(data.edge_index, data.batch, data.edge_attr)
    torch.testing.assert_close(X, Xr)
    assert torch.equal(mask, maskr)
    torch.testing.assert_close(E, Er)
    _, A, _ = to_dense_with_order(None, data.edge_index, None, data.batch)
    torch.testing.assert_close(A, to_dense_adj(data.edge_index, data.batch))


def test_dense_and_sparse_permutations_agree():
    data = make_batch()
    gen = torch.Generator().manual_seed(7)
    perm = random_perm_of_batch_vector(data.batch, gen)
    ranks = perm_to_ranks(perm, data.batch)
    # (1) dense with ranks
    Xr, Er, mr = to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch, ranks=ranks)
    # (2) sparse permutation, then dense in the new original order
    pb = permute_batch(data, perm)
    Xs, Es, ms = to_dense_with_order(pb.x, pb.edge_index, pb.edge_attr, pb.batch)
    # (3) dense in the original order, then dense permutation (new i = old perm_local[b, i])
    X0, E0, m0 = to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch)
    B, n = m0.shape
    ptr = ptr_from_batch(data.batch)
    perm_local = torch.arange(n).repeat(B, 1)
    for g in range(B):
        ng = int(ptr[g + 1] - ptr[g])
        perm_local[g, :ng] = perm[ptr[g] : ptr[g + 1]] - ptr[g]
    b = torch.arange(B).unsqueeze(1)
    Xd, Ed = X0[b, perm_local], E0[b.unsqueeze(2), perm_local.unsqueeze(2), perm_local.unsqueeze(1)]
    for A_, B_ in [(Xr, Xs), (Xr, Xd), (Er, Es), (Er, Ed)]:
        torch.testing.assert_close(A_, B_)
    assert torch.equal(mr, ms) and torch.equal(mr, m0)
    # the node at position ranks[j] is node j
    torch.testing.assert_close(Xr[data.batch, ranks], data.x)


def test_to_sparse_roundtrip_and_no_edge_class():
    data = make_batch()
    X, E, mask = to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch, max_num_nodes=9)
    assert X.shape == (4, 9, 3) and E.shape == (4, 9, 9, 4) and mask.shape == (4, 9)
    x, ei, ea, batch = to_sparse(X, E, mask)
    torch.testing.assert_close(x, data.x)
    assert torch.equal(batch, data.batch)
    assert ei.shape[1] == data.edge_index.shape[1]
    key = lambda e, a: sorted(zip(e[0].tolist(), e[1].tolist(), a.argmax(1).tolist()))  # noqa: E731
    assert key(ei, ea) == key(data.edge_index, data.edge_attr)
    # DenseGraph-style one-hot: class 0 = no edge on every real non-adjacent pair
    pair = mask.unsqueeze(1) & mask.unsqueeze(2) & ~torch.eye(9, dtype=torch.bool)
    E1 = E.clone()
    E1[..., 0] = (pair & (E.sum(-1) == 0)).float()
    x1, ei1, ea1, b1 = to_sparse(X, E1, mask, no_edge_class=0)
    assert key(ei1, ea1) == key(data.edge_index, data.edge_attr)
    assert ea1.shape[1] == 4 and float(ea1[:, 0].abs().sum()) == 0.0
    # without no_edge_class, every real pair with a non-zero entry counts as an edge
    _, ei_all, _, _ = to_sparse(X, E1, mask)
    assert ei_all.shape[1] == int(pair.sum())


def test_to_sparse_noncontiguous_mask():
    mask = torch.tensor([[True, False, True], [False, True, True]])
    X = torch.arange(6.0).reshape(2, 3, 1)
    A = torch.zeros(2, 3, 3)
    A[0, 0, 2] = A[0, 2, 0] = 1
    A[1, 1, 2] = A[1, 2, 1] = 2
    A[0, 1, 0] = 5  # touches a padded node: dropped
    x, ei, ea, batch = to_sparse(X, A, mask)
    assert x.flatten().tolist() == [0.0, 2.0, 4.0, 5.0]
    assert batch.tolist() == [0, 0, 1, 1]
    assert ei.tolist() == [[0, 1, 2, 3], [1, 0, 3, 2]]
    assert ea.tolist() == [1.0, 1.0, 2.0, 2.0]


def test_dense_bad_input():
    data = make_batch((3, 4))
    with pytest.raises(ValueError, match="max_num_nodes"):
        to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch, max_num_nodes=3)
    with pytest.raises(ValueError, match="share a rank"):
        to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch,
                            ranks=torch.tensor([0, 0, 1, 0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\(2, M\)"):
        to_dense_with_order(data.x, data.edge_index.t(), None, data.batch)
    X, E, mask = to_dense_with_order(data.x, data.edge_index, data.edge_attr, data.batch)
    with pytest.raises(ValueError, match="no_edge_class"):
        to_sparse(X, E, mask, no_edge_class=7)
    with pytest.raises(ValueError, match="bool"):
        to_sparse(X, E, mask.float())
    assert math.isclose(float(graph_softmax(torch.zeros(3)).sum()), 1.0)
