"""The node-order leak test flags a model that reads node indices and passes equivariant ones.

Data whose stored order carries information: the fixed ring 0-1-...-5-0 with one uniformly random marked
node (``marked_cycle`` with ``permute_nodes=false``). Tiny denoisers are trained briefly on it with each
breaker; the index encoding (node i gets row i of a learned table) can learn the ring from the indices,
the others (none, noise, sympe) are equivariant in distribution and cannot.
"""
from __future__ import annotations

import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.likelihood.leak_test import LeakTestResult, leak_test, random_node_permutation
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss
from sympe.diffusion.runs.model import DiscreteDiffusion
from sympe.diffusion.runs.schema import model_arguments

N, T = 6, 8


def ring_batch(B: int, generator: torch.Generator) -> DenseGraph:
    """B copies of the stored ring 0-1-..-(N-1)-0, each with one random marked node (class 1)."""
    X = torch.zeros(B, N, dtype=torch.long)
    X[torch.arange(B), torch.randint(0, N, (B,), generator=generator)] = 1
    E = torch.zeros(B, N, N, dtype=torch.long)
    i = torch.arange(N)
    E[:, i, (i + 1) % N] = 1
    E[:, (i + 1) % N, i] = 1
    return DenseGraph.from_indices(X, E, torch.ones(B, N, dtype=torch.bool), 2, 2)


def trained_model(symbreak: str, steps: int = 40) -> DiscreteDiffusion:
    info = DatasetInfo(name="ring", node_classes=["unmarked", "marked"], edge_classes=["none", "edge"],
                       node_marginals=[5 / 6, 1 / 6], edge_marginals=[0.6, 0.4],
                       n_nodes_dist=[0.0] * N + [1.0], max_nodes=N, num_train_graphs=64)
    network = {"n_layers": 2, "hidden_mlp_dims": {"X": 32, "E": 16, "y": 16},
               "hidden_dims": {"dx": 32, "de": 16, "dy": 16, "n_head": 2, "dim_ffX": 32, "dim_ffE": 16, "dim_ffy": 16},
               "features": "none", "symbreak": symbreak, "symbreak_kwargs": {"k": 8} if symbreak != "none" else {}}
    torch.manual_seed(0)
    model = DiscreteDiffusion(info.to_dict(), **model_arguments({**network, "diffusion": {"T": T}}))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = ring_batch(32, g)
        t = model.process.sample_t(x.batch_size, generator=g)
        z = model.process.q_sample(x, t, generator=g)
        lX, lE = model.model_fn(z, t, generator=g)
        loss = diffusion_ce_loss(lX, lE, x, 5.0)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def run_leak_test(model, K: int = 2) -> LeakTestResult:
    g = torch.Generator().manual_seed(7)
    batches = [ring_batch(24, g) for _ in range(2)]
    return leak_test(lambda x, gen: model.nll(x, estimator="exact", generator=gen)["nll"], batches,
                     num_permutations=K, generator=g)


@pytest.fixture(scope="module")
def results():
    return {name: run_leak_test(trained_model(name)) for name in ("index", "none", "noise", "sympe")}


def test_index_encoding_is_flagged(results):
    r = results["index"]
    assert r.flagged and r.difference < 0 and r.z < -3, str(r)
    assert r.num_graphs == 48 and r.num_permutations == 2


@pytest.mark.parametrize("name", ["none", "noise", "sympe"])
def test_equivariant_breakers_pass(results, name):
    r = results[name]
    assert not r.flagged, str(r)
    # and the test has the power to see the index model's gap at this noise level
    assert abs(results["index"].difference) > 5 * r.difference_sem


def test_random_node_permutation_keeps_padding_last():
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    seen = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        p = random_node_permutation(mask, g)
        assert p[0, 3] == 3 and sorted(p[0, :3].tolist()) == [0, 1, 2] and sorted(p[1].tolist()) == [0, 1, 2, 3]
        seen.add(tuple(p[0, :3].tolist()))
    assert len(seen) == 6  # every order of the 3 real nodes occurs


def test_leak_test_of_an_exactly_invariant_function_is_zero_and_errors():
    def nll_fn(x, gen):  # number of edges: invariant under relabelling
        return x.E[..., 1:].sum((1, 2, 3)) / 2

    g = torch.Generator().manual_seed(0)
    r = leak_test(nll_fn, [ring_batch(5, g)], num_permutations=3, generator=g)
    assert r.difference == 0 and r.stored == pytest.approx(N) and not r.flagged
    with pytest.raises(ValueError, match="num_permutations"):
        leak_test(nll_fn, [ring_batch(5, g)], num_permutations=0)
    with pytest.raises(ValueError, match="no graphs"):
        leak_test(nll_fn, [])
    with pytest.raises(ValueError, match="values for a batch"):
        leak_test(lambda x, gen: torch.zeros(1), [ring_batch(5, g)])


def test_index_encoding_reads_positions_and_is_labelled():
    from sympe.symbreak import NON_EQUIVARIANT_BREAKERS, make_symmetry_breaker

    br = make_symmetry_breaker("index", max_nodes=5, node_in=2, edge_in=2, k=4)
    assert "index" in NON_EQUIVARIANT_BREAKERS and "NOT equivariant" in repr(br)
    x = ring_batch(2, torch.Generator().manual_seed(0))
    mask = torch.tensor([[True] * 4 + [False], [True] * 5])
    X, E = x.X[:, :5], x.E[:, :5, :5]
    node, edge = br(X, E, mask)
    assert edge is None and torch.equal(node[1], br.V.detach()) and torch.equal(node[0, :4], br.V.detach()[:4])
    assert (node[0, 4] == 0).all()
    perm = torch.tensor([4, 3, 2, 1, 0])
    node_p, _ = br(X[:, perm], E[:, perm][:, :, perm], mask[:, perm].clone().fill_(True))
    assert not torch.allclose(node_p[1], node[1][perm])  # position, not the node, decides the encoding
