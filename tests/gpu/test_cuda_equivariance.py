"""The denoiser on the device under random node relabellings (e3nn-style: random group elements, random inputs):
exactly equivariant without a breaker, equivariant in distribution with SymPE, and a non-equivariant control
(index tie-breaking) that the same test must flag."""
from __future__ import annotations

import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.denoiser import DenoisingNetwork
from sympe.symbreak.masks import pair_mask
from sympe.symbreak.testing import assert_equivariant, assert_equivariant_in_distribution, graph_from_edges

pytestmark = pytest.mark.cuda
DX, DE, T = 2, 3, 10
ROTATION = torch.tensor([1, 2, 3, 4, 5, 0, 6])  # an automorphism of the 6-cycle (node 6 is padding)


def network(device, symbreak="none", features="cycles", **kw) -> DenoisingNetwork:
    torch.manual_seed(0)
    dist = [0.0] * 9
    dist[8] = 1.0
    info = DatasetInfo(name="toy", node_classes=["a", "b"], edge_classes=["none", "single", "double"],
                       node_marginals=[0.5, 0.5], edge_marginals=[0.6, 0.3, 0.1], n_nodes_dist=dist, max_nodes=8,
                       num_train_graphs=1)
    if symbreak != "none":
        kw = {"k": 4, "hidden": 8, "n_layers": 2, **kw}
    net = DenoisingNetwork(info, T, n_layers=2, hidden_mlp_dims={"X": 16, "E": 16, "y": 16},
                           hidden_dims={"dx": 16, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 16, "dim_ffE": 16,
                                        "dim_ffy": 16}, features=features, symbreak=symbreak, symbreak_kwargs=kw)
    return net.to(device).eval()


def as_function(net):
    def f(X, E, m):
        g = DenseGraph(X, E, torch.zeros(X.shape[0], 0, device=X.device), m)
        with torch.no_grad():
            return net(g, torch.full((X.shape[0],), 4, dtype=torch.long, device=X.device))
    return f


def random_batch(device, seed=1, B=3, n=8):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(0, DX, (B, n), generator=gen)
    E = torch.randint(0, DE, (B, n, n), generator=gen) * (torch.rand(B, n, n, generator=gen) < 0.5)
    mask = torch.rand(B, n, generator=gen) < 0.8
    mask[:, 0] = True  # padding scattered among real nodes, not only at the end
    g = DenseGraph.from_indices(X, E, mask, DX, DE).validate()
    return g.X.to(device), g.E.to(device), g.node_mask.to(device)


def cycle(device):
    X, E, m = graph_from_edges(6, [(i, (i + 1) % 6) for i in range(6)], pad_to=7, dx=DX, de=DE)
    return X.to(device), E.to(device), m.to(device)


def argmax_node_and_pair(out):
    lx, le = out
    c, n = lx.shape[:2]
    node = lx[..., 0].masked_fill(lx[..., 0] == 0, float("-inf")).argmax(dim=1)
    upper = pair_mask(torch.ones(c, n, dtype=torch.bool, device=lx.device), upper=True)
    pair = le[..., 1].masked_fill(~upper | (le[..., 1] == 0), float("-inf")).reshape(c, -1).argmax(dim=1)
    return torch.stack([node, pair], dim=1)


@pytest.mark.parametrize("features", ["cycles", "rrwp", "eigenvalues"])
def test_without_breaker_the_denoiser_is_exactly_equivariant_on_the_device(device, features):
    X, E, m = random_batch(device)
    f = as_function(network(device, features=features))
    lx, le = f(X, E, m)
    assert lx.device.type == device.type and torch.isfinite(lx).all() and torch.isfinite(le).all()
    assert_equivariant(f, X, E, m, trials=5, kinds=("node", "edge"), atol=1e-4,
                       generator=torch.Generator().manual_seed(2))


def test_a_non_equivariant_function_is_flagged_on_the_device(device):
    """The exact test has power: adding the node index to the logits breaks equivariance and must be caught."""
    X, E, m = random_batch(device)
    f = as_function(network(device))

    def g(X, E, m):
        lx, le = f(X, E, m)
        return lx + torch.arange(X.shape[1], device=X.device)[None, :, None] * 1e-2 * m[..., None], le

    with pytest.raises(AssertionError, match="not permutation-equivariant"):
        assert_equivariant(g, X, E, m, trials=5, kinds=("node", "edge"), atol=1e-4,
                           generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("symbreak", ["sympe_nodes", "sympe"])
def test_sympe_is_equivariant_in_distribution_on_the_device(device, symbreak):
    X, E, m = cycle(device)
    f = as_function(network(device, symbreak))
    lx, _ = f(X, E, m)
    real = lx[0, m[0], 0]
    assert (real - real[0]).abs().max() > 1e-4  # the symmetry of the cycle is broken
    for perm in (None, ROTATION):
        assert_equivariant_in_distribution(f, (X, E, m), argmax_node_and_pair, n_samples=600, alpha=1e-3, perm=perm,
                                           kinds=("node", "edge"), chunk=300, generator=torch.Generator().manual_seed(3))


def test_index_tie_breaking_is_flagged_on_the_device(device):
    X, E, m = cycle(device)
    f = as_function(network(device, "sympe_nodes", tie_mode="deterministic"))
    with pytest.raises(AssertionError, match="not equivariant in distribution"):
        assert_equivariant_in_distribution(f, (X, E, m), argmax_node_and_pair, n_samples=300, alpha=1e-3,
                                           perm=ROTATION, kinds=("node", "edge"))
