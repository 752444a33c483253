"""The per-graph scatter utilities of ``sympe.symbreak.sparse`` / ``.ranking`` on the device, against torch-scatter
(skipped where ``torch_scatter`` is not importable) and against the same calls on the CPU."""
from __future__ import annotations

import pytest
import torch

from sympe.symbreak.ranking import sparse_rank_with_ties, sparse_tie_groups
from sympe.symbreak.sparse import (graph_argsort, graph_softmax, local_index, perm_to_ranks, ptr_from_batch, ranks_to_perm,
                                  to_dense_with_order)

pytestmark = pytest.mark.cuda
torch_scatter = pytest.importorskip("torch_scatter")


def sparse_batch(device, sizes=(5, 1, 7, 3), seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    N = batch.numel()
    scores = torch.randn(N, 3, generator=gen)
    # edges inside each graph, both directions
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.tensor(sizes).cumsum(0)])
    pairs = [(int(ptr[g]) + i, int(ptr[g]) + (i + 1) % s) for g, s in enumerate(sizes) if s > 1 for i in range(s)]
    ei = torch.tensor(pairs).t()
    ei = torch.cat([ei, ei.flip(0)], 1)
    attr = torch.randn(ei.shape[1], 2, generator=gen)
    return batch.to(device), scores.to(device), ei.to(device), attr.to(device)


def test_graph_softmax_matches_torch_scatter(device):
    batch, scores, _, _ = sparse_batch(device)
    got = graph_softmax(scores, batch, temperature=0.7)
    want = torch_scatter.composite.scatter_softmax(scores / 0.7, batch, dim=0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    sums = torch_scatter.scatter_add(got, batch, dim=0)
    torch.testing.assert_close(sums, torch.ones_like(sums))


def test_ptr_and_local_index_match_torch_scatter(device):
    batch, _, _, _ = sparse_batch(device)
    ptr = ptr_from_batch(batch)
    counts = torch_scatter.scatter_add(torch.ones_like(batch), batch, dim=0)
    assert torch.equal(ptr[1:] - ptr[:-1], counts)
    first = torch_scatter.scatter_min(torch.arange(batch.numel(), device=device), batch, dim=0)[0]
    assert torch.equal(local_index(batch), torch.arange(batch.numel(), device=device) - first[batch])


def test_argsort_and_ranks_sort_each_graph(device):
    batch, scores, _, _ = sparse_batch(device)
    s = scores[:, 0]
    perm = graph_argsort(s, batch)
    ranks = perm_to_ranks(perm, batch)
    # the smallest score of each graph gets rank 0, the largest rank n_g - 1
    arg_min = torch_scatter.scatter_min(s, batch, dim=0)[1]
    arg_max = torch_scatter.scatter_max(s, batch, dim=0)[1]
    counts = torch_scatter.scatter_add(torch.ones_like(batch), batch, dim=0)
    assert (ranks[arg_min] == 0).all() and torch.equal(ranks[arg_max], counts - 1)
    # within each graph the sorted scores increase
    sorted_s = s[perm]
    same = batch[perm][1:] == batch[perm][:-1]
    assert (sorted_s[1:][same] >= sorted_s[:-1][same]).all()


def test_dense_scatter_matches_torch_scatter_and_cpu(device):
    batch, scores, ei, attr = sparse_batch(device)
    X, E, mask = to_dense_with_order(scores, ei, attr, batch)
    # every edge attribute lands once: the dense sum per graph equals torch-scatter's sum over that graph's edges
    per_graph = torch_scatter.scatter_add(attr, batch[ei[0]], dim=0, dim_size=int(batch.max()) + 1)
    torch.testing.assert_close(E.sum(dim=(1, 2)), per_graph, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(X.sum(1), torch_scatter.scatter_add(scores, batch, dim=0), rtol=1e-5, atol=1e-5)
    Xc, Ec, mc = to_dense_with_order(scores.cpu(), ei.cpu(), attr.cpu(), batch.cpu())
    torch.testing.assert_close(X.cpu(), Xc)
    torch.testing.assert_close(E.cpu(), Ec)
    assert torch.equal(mask.cpu(), mc)


def test_tie_groups_and_ranks_agree_with_cpu(device):
    batch, _, _, _ = sparse_batch(device)
    s = torch.tensor([0.0, 1.0, 0.0, 2.0, 1.0, 5.0, 3.0, 3.0, 3.0, 0.5, 0.5, 4.0, 9.0, 1.0, 1.0, 2.0], device=device)
    assert torch.equal(sparse_tie_groups(s, batch).cpu(), sparse_tie_groups(s.cpu(), batch.cpu()))
    ranks = sparse_rank_with_ties(s, batch)
    # ranks are a permutation of 0..n_g-1 in every graph, ordered by score
    counts = torch_scatter.scatter_add(torch.ones_like(batch), batch, dim=0)
    assert torch.equal(torch_scatter.scatter_max(ranks, batch, dim=0)[0], counts - 1)
    assert ranks_to_perm(ranks, batch).numel() == batch.numel()  # raises unless a permutation in every graph
    groups = sparse_tie_groups(s, batch)
    same = batch[:, None] == batch[None, :]
    before = same & (groups[:, None] < groups[None, :])
    assert (ranks[:, None] < ranks[None, :])[before].all()
