"""Symmetry breakers: SymPE breaks the symmetry of vertex-transitive graphs, equivariantly in distribution."""
import pytest
import torch

from sympe.symbreak.ign import IGN2to1, IGN2to2
from sympe.symbreak.breakers import NoBreaking, NoiseInjection, SymPE, make_symmetry_breaker
from sympe.symbreak.testing import (
    assert_equivariant,
    assert_equivariant_in_distribution,
    graph_from_edges,
)


def cycle(n, pad_to=None):
    return graph_from_edges(n, [(i, (i + 1) % n) for i in range(n)], pad_to=pad_to)


def prism(pad_to=None):
    edges = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)]
    return graph_from_edges(6, edges, pad_to=pad_to)


GRAPHS = {"C6": lambda: cycle(6, pad_to=7), "prism": lambda: prism(pad_to=8)}


class TinyIGN(torch.nn.Module):
    """An equivariant node model: node channels on the diagonal, edge channels off it, 2→2, ReLU, 2→1."""

    def __init__(self, node_in, edge_in):
        super().__init__()
        self.l1 = IGN2to2(node_in + edge_in, 8).double()
        self.l2 = IGN2to1(8, 1).double()

    def forward(self, X, E, m):
        D = torch.diag_embed(X.double().transpose(1, 2), dim1=1, dim2=2)
        T = torch.cat([D, E.double()], dim=-1)
        return self.l2(torch.relu(self.l1(T, m)), m)  # (B, n, 1)


def with_breaker(net, breaker):
    """Node outputs of ``net`` on (X ⊕ node channels, E ⊕ edge channels): one fresh draw per call."""

    def f(X, E, m):
        node_ch, edge_ch = breaker(X, E, m)
        Xa = torch.cat([X.double(), node_ch.double()], dim=-1)
        Ea = E.double() if edge_ch is None else torch.cat([E.double(), edge_ch.double()], dim=-1)
        return net(Xa, Ea, m)

    return f


def argmax_node(out):
    """Statistic: which node has the largest output, (c, 1)."""
    return out[..., 0].masked_fill(out[..., 0] == 0, float("-inf")).argmax(dim=1, keepdim=True)


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_equivariant_net_cannot_break_symmetry_without_encodings(graph):
    X, E, m = GRAPHS[graph]()
    torch.manual_seed(0)
    net = TinyIGN(1, 2)
    out = with_breaker(net, NoBreaking())(X, E, m)[0, :, 0][m[0]]
    assert (out - out[0]).abs().max() < 1e-12


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("edges", [False, True])
def test_sympe_breaks_symmetry_equivariantly_in_distribution(graph, edges):
    X, E, m = GRAPHS[graph]()
    torch.manual_seed(1)
    breaker = SymPE(max_nodes=10, node_in=1, edge_in=2, k=4, edges=edges, hidden=4, n_layers=2)
    net = TinyIGN(1 + 4, 2 + breaker.edge_dim)
    f = with_breaker(net, breaker)
    with torch.no_grad():
        out = f(X, E, m)[0, :, 0][m[0]]
        assert out.std() > 1e-3  # nodes get different outputs
        assert len(set(out.round(decimals=8).tolist())) == 6  # all six distinct
        assert_equivariant_in_distribution(f, (X, E, m), argmax_node, n_samples=800, alpha=1e-3)


def test_sympe_deterministic_mode_is_detected_as_not_equivariant():
    X, E, m = cycle(6)
    torch.manual_seed(2)
    breaker = SymPE(max_nodes=6, node_in=1, edge_in=2, k=4, tie_mode="deterministic", hidden=8)
    net = TinyIGN(5, 2)
    with torch.no_grad(), pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant_in_distribution(with_breaker(net, breaker), (X, E, m), argmax_node, n_samples=300,
                                           perm=torch.tensor([2, 3, 4, 5, 0, 1]))


def test_sympe_node_encoding_is_table_row_of_rank():
    X, E, m = cycle(5, pad_to=7)
    torch.manual_seed(3)
    breaker = SymPE(max_nodes=7, node_in=1, edge_in=2, k=3, hidden=8)
    gen = torch.Generator().manual_seed(0)
    node_ch, edge_ch = breaker(X, E, m, generator=gen)
    ranks = breaker.canonicalizer.sample(X, E, m, generator=torch.Generator().manual_seed(0))
    assert edge_ch is None and node_ch.shape == (1, 7, 3)
    torch.testing.assert_close(node_ch[0, :5], breaker.V[ranks[0, :5]].detach())
    assert node_ch[0, 5:].abs().max() == 0
    # a fresh draw at every call
    draws = {tuple(breaker(X, E, m)[0][0, :5, 0].tolist()) for _ in range(10)}
    assert len(draws) > 1


@pytest.mark.parametrize("init", ["sinusoidal", "orthogonal"])
def test_tables_have_distinct_rows(init):
    torch.manual_seed(4)
    for k in (1, 2, 7, 40):
        b = SymPE(max_nodes=30, node_in=1, edge_in=2, k=k, edges=True, init=init, hidden=4)
        for T in (b.V, b.U):
            d = torch.cdist(T.detach().double(), T.detach().double()) + torch.eye(30, dtype=torch.float64)
            assert d.min() > 1e-4, (init, k)


def test_sympe_edge_channels_symmetric_masked_and_equal_to_factorised_form():
    X, E, m = prism(pad_to=8)
    torch.manual_seed(5)
    b = SymPE(max_nodes=8, node_in=1, edge_in=2, k=3, edges=True, edge_k=5, hidden=8)
    assert (b.node_dim, b.edge_dim) == (3, 5)
    gen = torch.Generator().manual_seed(1)
    node_ch, edge_ch = b(X, E, m, generator=gen)
    r = b.canonicalizer.sample(X, E, m, generator=torch.Generator().manual_seed(1))[0]
    assert edge_ch.shape == (1, 8, 8, 5)
    torch.testing.assert_close(edge_ch, edge_ch.transpose(1, 2))
    assert edge_ch[0].diagonal(dim1=0, dim2=1).abs().max() == 0
    assert edge_ch[0, 6:].abs().max() == 0 and edge_ch[0, :, 6:].abs().max() == 0
    U = b.U.detach()
    torch.testing.assert_close(edge_ch[0, 1, 4], U[r[1]] * U[r[4]])


def test_sympe_gradients_reach_the_tables_and_optionally_the_canonicalizer():
    X, E, m = cycle(6)
    b = SymPE(max_nodes=6, node_in=1, edge_in=2, k=3, edges=True, hidden=4)
    node_ch, edge_ch = b(X, E, m)
    (node_ch.pow(2).sum() + edge_ch.pow(2).sum()).backward()
    assert b.V.grad.abs().sum() > 0 and b.U.grad.abs().sum() > 0
    assert all(p.grad is None for p in b.canonicalizer.parameters())
    X, E, m = graph_from_edges(5, [(0, 1), (1, 2), (2, 3), (1, 4)])
    b = SymPE(max_nodes=6, node_in=1, edge_in=2, k=3, hidden=4, trainable=True, straight_through=True)
    node_ch, _ = b(X, E, m)
    (node_ch * torch.randn_like(node_ch)).sum().backward()
    assert sum(p.grad.abs().sum() for p in b.canonicalizer.parameters()) > 0


def test_noise_injection():
    X, E, m = cycle(5, pad_to=7)
    b = NoiseInjection(4, edge_k=2)
    assert (b.node_dim, b.edge_dim) == (4, 2)
    node_ch, edge_ch = b(X.expand(400, -1, -1), E.expand(400, -1, -1, -1), m.expand(400, -1))
    assert node_ch.shape == (400, 7, 4) and edge_ch.shape == (400, 7, 7, 2)
    assert node_ch[:, 5:].abs().max() == 0 and edge_ch[:, 5:].abs().max() == 0
    torch.testing.assert_close(edge_ch, edge_ch.transpose(1, 2))
    assert edge_ch.diagonal(dim1=1, dim2=2).abs().max() == 0
    # unit variance on real entries (400·5·4 = 8000 node samples; 4σ bounds)
    assert abs(node_ch[:, :5].var().item() - 1) < 4 * (2 / 8000) ** 0.5
    assert abs(edge_ch[:, 0, 1].var().item() - 1) < 4 * (2 / 800) ** 0.5
    assert b(X, E, m)[1] is not None and NoiseInjection(3)(X, E, m)[1] is None


def random_graph(n, dx, seed, pad_to=None, p=0.5):
    """A random graph whose nodes all carry distinct classes (dx >= n): no automorphism, no ties."""
    gen = torch.Generator().manual_seed(seed)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if torch.rand(1, generator=gen) < p]
    return graph_from_edges(n, edges, pad_to=pad_to, node_classes=torch.randperm(dx, generator=gen)[:n], dx=dx)


def test_no_breaking_adds_nothing_and_keeps_the_network_exactly_equivariant():
    X, E, m = graph_from_edges(6, [(0, 1), (1, 2), (2, 3), (1, 4), (4, 5)], pad_to=8,
                               node_classes=[0, 1, 0, 1, 1, 0], dx=2)
    b = NoBreaking()
    node_ch, edge_ch = b(X, E, m)
    assert node_ch.shape == (1, 8, 0) and edge_ch is None and (b.node_dim, b.edge_dim) == (0, 0)
    torch.manual_seed(6)
    f = with_breaker(TinyIGN(2, 2), b)
    out = f(X, E, m)[0, :, 0][m[0]]
    assert len(set(out.round(decimals=8).tolist())) > 2  # a non-trivial node function
    assert_equivariant(f, X, E, m, trials=5, atol=1e-9, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("edges", [False, True])
def test_sympe_is_exactly_equivariant_without_ties_and_not_with_them(edges):
    torch.manual_seed(7)
    b = SymPE(max_nodes=8, node_in=7, edge_in=2, k=4, edges=edges, hidden=8)
    X, E, m = random_graph(7, 7, seed=1, pad_to=8)
    # no automorphism and distinct node classes: the IGN scores have no ties, so the encoding is a
    # deterministic, equivariant function of the graph (γ(σ·x) = γ(x)∘σ⁻¹)
    ranks = b.canonicalizer.sample(X, E, m)
    for _ in range(3):
        assert torch.equal(b.canonicalizer.sample(X, E, m), ranks)
    f = (lambda X, E, m: b(X, E, m)) if edges else (lambda X, E, m: b(X, E, m)[0])
    with torch.no_grad():
        assert_equivariant(f, X, E, m, trials=5, generator=torch.Generator().manual_seed(1))
    node_ch = b(X, E, m)[0][0, :7]
    assert torch.cdist(node_ch, node_ch).add(torch.eye(7)).min() > 1e-4  # distinct rows: it breaks ties
    # on a vertex-transitive graph the draw is random, so exact equivariance must fail
    Xc, Ec, mc = graph_from_edges(6, [(i, (i + 1) % 6) for i in range(6)], pad_to=8, dx=7)
    with torch.no_grad(), pytest.raises(AssertionError, match="not permutation-equivariant"):
        assert_equivariant(f, Xc, Ec, mc, trials=3, generator=torch.Generator().manual_seed(2))


def test_make_symmetry_breaker():
    assert isinstance(make_symmetry_breaker("none", 10, 1, 2), NoBreaking)
    noise = make_symmetry_breaker("noise", 10, 1, 2, k=3, edge_k=1)
    assert isinstance(noise, NoiseInjection) and (noise.node_dim, noise.edge_dim) == (3, 1)
    nodes = make_symmetry_breaker("sympe_nodes", 10, 1, 2, k=5, hidden=4)
    assert isinstance(nodes, SymPE) and (nodes.node_dim, nodes.edge_dim) == (5, 0) and nodes.U is None
    full = make_symmetry_breaker("sympe", 10, 1, 2, k=5, edge_k=2, hidden=4, n_layers=2)
    assert (full.node_dim, full.edge_dim) == (5, 2) and full.canonicalizer.n_layers == 2
    with pytest.raises(ValueError, match="unknown symmetry breaker"):
        make_symmetry_breaker("sympe_edges", 10, 1, 2)
    with pytest.raises(ValueError, match="edges"):
        make_symmetry_breaker("sympe", 10, 1, 2, edges=False)


def test_too_many_nodes_and_bad_input_raise():
    X, E, m = cycle(6)
    b = SymPE(max_nodes=5, node_in=1, edge_in=2, k=2, hidden=4)
    with pytest.raises(ValueError, match="max_nodes=5"):
        b(X, E, m)
    with pytest.raises(ValueError, match="init"):
        SymPE(5, 1, 2, init="random")
    with pytest.raises(ValueError, match="inconsistent shapes"):
        NoiseInjection(2)(X, E[:, :5, :5], m)


def test_reset_parameters_restores_initial_tables():
    b = SymPE(max_nodes=6, node_in=1, edge_in=2, k=3, hidden=4)
    V0 = b.V.detach().clone()
    with torch.no_grad():
        b.V.add_(1.0)
    b.reset_parameters()
    torch.testing.assert_close(b.V.detach(), V0)  # sinusoidal init is deterministic
