"""DenoisingNetwork (features + symmetry breaker + graph transformer), tested as a whole.

* ``none``: the whole network is exactly permutation equivariant (random graphs, random permutations,
  padding moved anywhere), so it gives automorphic nodes identical logits.
* ``noise``, ``sympe_nodes``, ``sympe``: the network gives automorphic nodes different logits (the
  symmetry is broken) and is equivariant in distribution: the law of f(σ·x) is σ applied to the law of
  f(x) (chi-square on which node / which pair gets the largest logit, ``assert_equivariant_in_distribution``).
* a control: SymPE with index tie-breaking (``tie_mode="deterministic"``) through the same network is
  detected as NOT equivariant, so the distributional test has power.
"""
from __future__ import annotations

import inspect

import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.denoiser import DenoisingNetwork
from sympe.symbreak.masks import pair_mask
from sympe.symbreak.testing import assert_equivariant, assert_equivariant_in_distribution, graph_from_edges

DX, DE, T = 2, 3, 10
ALPHA = 1e-3
BREAKERS = ["noise", "sympe_nodes", "sympe"]


def info(max_nodes=8, molecular=False) -> DatasetInfo:
    dist = [0.0] * (max_nodes + 1)
    dist[max_nodes] = 1.0
    kw = {}
    if molecular:
        kw = {"is_molecular": True, "atom_valencies": [4, 2], "atom_weights": [12.0, 16.0],
              "bond_orders": [0.0, 1.0, 2.0], "max_weight": 150.0}
    return DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "single", "double"],
                       node_marginals=[0.5, 0.5], edge_marginals=[0.6, 0.3, 0.1], n_nodes_dist=dist,
                       max_nodes=max_nodes, num_train_graphs=1, **kw)


def network(symbreak="none", features="cycles", seed=0, molecular=False, **symbreak_kwargs) -> DenoisingNetwork:
    torch.manual_seed(seed)
    kw = dict(symbreak_kwargs)
    if symbreak != "none":
        kw.setdefault("k", 4)
        if symbreak.startswith("sympe"):
            kw.setdefault("hidden", 8)
            kw.setdefault("n_layers", 2)
    net = DenoisingNetwork(
        info(molecular=molecular), T, n_layers=2, hidden_mlp_dims={"X": 16, "E": 16, "y": 16},
        hidden_dims={"dx": 16, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 16, "dim_ffE": 16, "dim_ffy": 16},
        features=features, symbreak=symbreak, symbreak_kwargs=kw, dropout=0.0, molecular_features=True,
        recompute_attention=True,
    )
    return net.eval()


def call(net, g: DenseGraph, t: torch.Tensor, generator=None):
    """``net(g, t)``; the generator is passed only where the network's forward accepts one."""
    if generator is not None and "generator" in inspect.signature(net.forward).parameters:
        return net(g, t, generator=generator)
    return net(g, t)


def as_function(net, t_value=4):
    """(X, E, node_mask) -> (logits_X, logits_E) at time ``t_value`` for every graph of the batch."""

    def f(X, E, m):
        g = DenseGraph(X, E, torch.zeros(X.shape[0], 0), m)
        with torch.no_grad():
            return call(net, g, torch.full((X.shape[0],), t_value, dtype=torch.long))

    return f


def random_batch(seed, B=3, n=8):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(0, DX, (B, n), generator=gen)
    E = torch.randint(0, DE, (B, n, n), generator=gen) * (torch.rand(B, n, n, generator=gen) < 0.5)
    mask = torch.rand(B, n, generator=gen) < 0.8
    mask[:, 0] = True
    # padding is NOT at the end: real nodes are scattered among padded ones
    g = DenseGraph.from_indices(X, E, mask, DX, DE).validate()
    return g.X, g.E, g.node_mask


def cycle(n=6, pad_to=7):
    """C_n with one-hot classes of width (DX, DE): every node automorphic to every other."""
    X, E, m = graph_from_edges(n, [(i, (i + 1) % n) for i in range(n)], pad_to=pad_to, dx=DX, de=DE)
    return X, E, m


def argmax_node_and_pair(out):
    """Per draw: the real node with the largest class-0 logit, and the real pair i<j with the largest
    class-1 edge logit (flattened i * n + j): (c, 2) integers."""
    lx, le = out
    c, n = lx.shape[:2]
    node = lx[..., 0].masked_fill(lx[..., 0] == 0, float("-inf")).argmax(dim=1)
    upper = pair_mask(torch.ones(c, n, dtype=torch.bool), upper=True)
    pair = le[..., 1].masked_fill(~upper | (le[..., 1] == 0), float("-inf")).reshape(c, -1).argmax(dim=1)
    return torch.stack([node, pair], dim=1)


# ------------------------------------------------------------------------------------ none: exact
# "all" adds Laplacian eigenvectors, equivariant only up to the sign / basis that eigh returns
# (sympe.diffusion.nn.features); every other kind is exactly equivariant.
@pytest.mark.parametrize("features,molecular", [("cycles", False), ("cycles", True), ("eigenvalues", False),
                                                ("rrwp", False), ("none", False)])
def test_without_breaker_the_network_is_exactly_equivariant(features, molecular):
    net = network("none", features=features, molecular=molecular)
    X, E, m = random_batch(1)
    f = as_function(net)
    assert_equivariant(f, X, E, m, trials=3, kinds=("node", "edge"), atol=1e-4,
                       generator=torch.Generator().manual_seed(2))


def test_without_breaker_automorphic_nodes_get_identical_logits():
    X, E, m = cycle()
    lx, le = as_function(network("none"))(X, E, m)
    real = lx[0, m[0]]
    assert (real - real[0]).abs().max() < 1e-5
    up = pair_mask(m, upper=True)[0]
    adjacent = torch.tensor([[i, (i + 1) % 6] for i in range(6)])
    edge_logits = le[0, adjacent[:, 0], adjacent[:, 1]]
    assert (edge_logits - edge_logits[0]).abs().max() < 1e-5
    assert up.sum() == 15


# ------------------------------------------------------------------------------------ breakers: in distribution
@pytest.mark.parametrize("symbreak", BREAKERS)
def test_breaker_breaks_the_symmetry_of_automorphic_nodes(symbreak):
    X, E, m = cycle()
    f = as_function(network(symbreak))
    lx, _ = f(X, E, m)
    real = lx[0, m[0], 0]
    assert (real - real[0]).abs().max() > 1e-4
    # a fresh draw at every call: two calls differ
    lx2, _ = f(X, E, m)
    assert not torch.allclose(lx, lx2)


@pytest.mark.parametrize("symbreak", BREAKERS)
def test_breaker_makes_the_whole_network_equivariant_in_distribution(symbreak):
    X, E, m = cycle()
    torch.manual_seed(10)
    f = as_function(network(symbreak))
    # one random relabelling of the padded graph (padding moves too), and one that is an automorphism
    # of C6 (a rotation): then σ·x = x, and equivariance means the law is invariant under the rotation.
    for perm in (None, torch.tensor([1, 2, 3, 4, 5, 0, 6])):
        assert_equivariant_in_distribution(f, (X, E, m), argmax_node_and_pair, n_samples=600, alpha=ALPHA,
                                           perm=perm, kinds=("node", "edge"), chunk=300,
                                           generator=torch.Generator().manual_seed(3))


def test_index_tie_breaking_through_the_network_is_detected_as_not_equivariant():
    X, E, m = cycle()
    f = as_function(network("sympe_nodes", tie_mode="deterministic"))
    with pytest.raises(AssertionError, match="not equivariant in distribution"):
        assert_equivariant_in_distribution(f, (X, E, m), argmax_node_and_pair, n_samples=200, alpha=ALPHA,
                                           perm=torch.tensor([1, 2, 3, 4, 5, 0, 6]), kinds=("node", "edge"))


# ------------------------------------------------------------------------------------ the rest of the contract
@pytest.mark.parametrize("symbreak", ["none"] + BREAKERS)
def test_logits_shapes_symmetry_and_masking(symbreak):
    X, E, m = random_batch(4)
    lx, le = as_function(network(symbreak))(X, E, m)
    B, n = m.shape
    assert lx.shape == (B, n, DX) and le.shape == (B, n, n, DE)
    assert torch.isfinite(lx).all() and torch.isfinite(le).all()
    torch.testing.assert_close(le, le.transpose(1, 2))
    assert (lx[~m] == 0).all()
    assert (le[~pair_mask(m, diagonal=False)] == 0).all()


def test_time_enters_the_network():
    X, E, m = random_batch(5)
    net = network("none")
    a, _ = as_function(net, t_value=1)(X, E, m)
    b, _ = as_function(net, t_value=9)(X, E, m)
    assert not torch.allclose(a, b)


def test_breaker_options_reach_the_breaker():
    for name, kw, (bx, be) in (("noise", {"k": 3, "edge_k": 2}, (3, 2)), ("sympe_nodes", {"k": 5}, (5, 0)),
                               ("sympe", {"k": 5, "edge_k": 2}, (5, 2))):
        net = network(name, **kw)
        assert (net.breaker.node_dim, net.breaker.edge_dim) == (bx, be)
        lx, le = as_function(net)(*random_batch(6))
        assert lx.shape[-1] == DX and le.shape[-1] == DE
    with pytest.raises(ValueError, match="unknown symmetry breaker"):
        network("sympe_edges")


def test_too_many_nodes_is_a_clear_error():
    net = network("none")
    X, E, m = graph_from_edges(9, [(0, 1)], dx=DX, de=DE)
    with pytest.raises(ValueError, match="9 nodes exceed the 8 nodes"):
        as_function(net)(X, E, m)
