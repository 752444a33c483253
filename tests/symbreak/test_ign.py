"""IGN layers: equivariance, basis size and independence, agreement with the basis, padding invariance."""
import pytest
import torch

from sympe.symbreak.ign import (
    IGN1to1,
    IGN1to2,
    IGN2to0,
    IGN2to1,
    IGN2to2,
    basis_1to1,
    basis_1to2,
    basis_2to0,
    basis_2to1,
    basis_2to2,
    pair_standardize,
)
from sympe.symbreak.testing import assert_equivariant

SIZES = [6, 4, 1, 5]  # real node counts of the batch; padded to n = 7


def random_batch(seed=0, d=3, n=7, sizes=SIZES, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    B = len(sizes)
    node_mask = torch.arange(n).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
    X = torch.randn(B, n, d, generator=g, dtype=dtype)
    A = torch.randn(B, n, n, d, generator=g, dtype=dtype)  # not symmetric on purpose
    return X, A, node_mask


LAYERS = {
    "2to2": (IGN2to2, 2, basis_2to2, 15),
    "2to1": (IGN2to1, 2, basis_2to1, 5),
    "1to2": (IGN1to2, 1, basis_1to2, 5),
    "1to1": (IGN1to1, 1, basis_1to1, 2),
    "2to0": (IGN2to0, 2, basis_2to0, 2),
}


def _layer_fn(layer, in_order):
    if in_order == 2:
        return lambda X, A, m: layer(A, m)
    return lambda X, A, m: layer(X, m)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_equivariant_on_padded_batches(name):
    cls, in_order, _, _ = LAYERS[name]
    torch.manual_seed(1)
    layer = cls(3, 4).double()
    X, A, m = random_batch()
    assert_equivariant(_layer_fn(layer, in_order), X, A, m, trials=4, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_basis_op_is_equivariant(name):
    _, in_order, basis, n_ops = LAYERS[name]
    X, A, m = random_batch(seed=3)
    f = (lambda X, A, m: basis(A, m)) if in_order == 2 else (lambda X, A, m: basis(X, m))
    out = f(X, A, m)
    assert out.shape[-1] == n_ops
    assert_equivariant(f, X, A, m, trials=3, atol=1e-10, rtol=1e-8)


def _op_matrices(basis, in_order, n, node_mask):
    """Each basis op as a full linear map: (n_ops, n_in_dims * n_out_dims), one input channel."""
    n_in = n * n if in_order == 2 else n
    eye = torch.eye(n_in, dtype=torch.float64)
    cols = []
    for k in range(n_in):
        x = eye[k].view(1, *([n, n] if in_order == 2 else [n]), 1)
        out = basis(x, node_mask)  # (1, ..., 1, n_ops)
        cols.append(out.reshape(-1, out.shape[-1]))  # (n_out, n_ops)
    M = torch.stack(cols, dim=0)  # (n_in, n_out, n_ops)
    return M.permute(2, 0, 1).reshape(M.shape[-1], -1)


@pytest.mark.parametrize("name", list(LAYERS))
def test_basis_ops_linearly_independent(name):
    """The ops' linear maps have rank = bell(in+out); with equivariance (tested above) they form a basis."""
    _, in_order, basis, n_ops = LAYERS[name]
    n = 4  # bell(4) = 15 needs n >= 4 for all partitions to be realisable
    m = torch.ones(1, n, dtype=torch.bool)
    M = _op_matrices(basis, in_order, n, m)
    assert M.shape[0] == n_ops
    assert torch.linalg.matrix_rank(M).item() == n_ops
    # also with padding: the maps restricted to the 4 real nodes of a 6-padded graph
    m_pad = torch.tensor([[True, True, False, True, True, False]])
    M_pad = _op_matrices(basis, in_order, 6, m_pad)
    assert torch.linalg.matrix_rank(M_pad).item() == n_ops


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_equals_weighted_basis_sum(name):
    """Brute force: the fused forward equals Σ_k op_k(x) W_k + equivariant bias."""
    cls, in_order, basis, n_ops = LAYERS[name]
    torch.manual_seed(2)
    layer = cls(3, 2).double()
    with torch.no_grad():
        layer.bias.normal_()
    X, A, m = random_batch(seed=5)
    x = A if in_order == 2 else X
    ops = basis(x, m)  # (..., d_in, n_ops)
    expected = torch.einsum("...ik,kio->...o", ops, layer.weight)
    if name in ("2to2", "1to2"):
        n = m.shape[1]
        eye = torch.eye(n, dtype=torch.float64).view(1, n, n, 1)
        pm = (m.unsqueeze(2) & m.unsqueeze(1)).unsqueeze(-1).double()
        expected = expected + (eye * layer.bias[0] + (1 - eye) * layer.bias[1]) * pm
    elif name == "2to0":
        expected = expected + layer.bias[0]
    else:
        expected = expected + layer.bias[0] * m.unsqueeze(-1).double()
    torch.testing.assert_close(layer(x, m), expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", list(LAYERS))
def test_padding_invariance(name):
    """Garbage in padded entries and a larger padded size leave the real outputs unchanged; padding out = 0."""
    cls, in_order, _, _ = LAYERS[name]
    torch.manual_seed(4)
    layer = cls(3, 4).double()
    X, A, m = random_batch(seed=6)
    x = A if in_order == 2 else X
    out = layer(x, m)
    # garbage in the padding
    g = torch.Generator().manual_seed(9)
    if in_order == 2:
        pm = (m.unsqueeze(2) & m.unsqueeze(1)).unsqueeze(-1)
        x_bad = torch.where(pm, x, 1e3 * torch.randn(x.shape, generator=g, dtype=x.dtype))
    else:
        x_bad = torch.where(m.unsqueeze(-1), x, 1e3 * torch.randn(x.shape, generator=g, dtype=x.dtype))
    out_bad = layer(x_bad, m)
    torch.testing.assert_close(out_bad, out, atol=1e-10, rtol=1e-10)
    # larger padded size (3 more padded nodes)
    n, extra = x.shape[1], 3
    m_big = torch.cat([m, torch.zeros(m.shape[0], extra, dtype=torch.bool)], dim=1)
    if in_order == 2:
        x_big = torch.randn(x.shape[0], n + extra, n + extra, x.shape[-1], generator=g, dtype=x.dtype)
        x_big[:, :n, :n] = x
    else:
        x_big = torch.randn(x.shape[0], n + extra, x.shape[-1], generator=g, dtype=x.dtype)
        x_big[:, :n] = x
    out_big = layer(x_big, m_big)
    if name == "2to0":
        torch.testing.assert_close(out_big, out, atol=1e-10, rtol=1e-10)
        return
    if out.dim() == 4:
        torch.testing.assert_close(out_big[:, :n, :n], out, atol=1e-10, rtol=1e-10)
        assert out_big[:, n:].abs().max() == 0 and out_big[:, :, n:].abs().max() == 0
        pm = (m.unsqueeze(2) & m.unsqueeze(1)).unsqueeze(-1)
        assert out.masked_select(~pm).abs().max() == 0
    else:
        torch.testing.assert_close(out_big[:, :n], out, atol=1e-10, rtol=1e-10)
        assert out_big[:, n:].abs().max() == 0
        assert out.masked_select(~m.unsqueeze(-1)).abs().max() == 0


def test_sums_normalised_by_own_node_count():
    """All-ones input: every normalised aggregate is exactly 1 whatever n_b and the padded size."""
    sizes = [1, 3, 5]
    n = 8
    m = torch.arange(n).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
    A = torch.ones(3, n, n, 1, dtype=torch.float64)
    ops = basis_2to1(A, m)[..., 0, :]  # (B, n, 5): a, r, c, tr, s
    assert torch.equal(ops[m], torch.ones(int(m.sum()), 5, dtype=torch.float64))
    assert torch.equal(basis_2to0(A, m)[:, 0], torch.ones(3, 2, dtype=torch.float64))
    v = torch.ones(3, n, 1, dtype=torch.float64)
    assert torch.equal(basis_1to1(v, m)[..., 0, 1][m], torch.ones(int(m.sum()), dtype=torch.float64))


def test_2to2_ops_on_a_known_matrix():
    """Spot-check op definitions against explicit formulas on one 3×3 matrix."""
    A = torch.arange(9, dtype=torch.float64).view(1, 3, 3, 1)
    m = torch.ones(1, 3, dtype=torch.bool)
    ops = basis_2to2(A, m)[0, :, :, 0]  # (3, 3, 15)
    M = A[0, :, :, 0]
    r, c = M.sum(1) / 3, M.sum(0) / 3
    tr, s = M.trace() / 3, M.sum() / 9
    eye = torch.eye(3, dtype=torch.float64)
    expected = [M, M.T, torch.diag(M.diagonal()), torch.diag(r), torch.diag(c), tr * eye, s * eye,
                M.diagonal().view(3, 1).expand(3, 3), M.diagonal().view(1, 3).expand(3, 3),
                r.view(3, 1).expand(3, 3), r.view(1, 3).expand(3, 3),
                c.view(3, 1).expand(3, 3), c.view(1, 3).expand(3, 3),
                tr.expand(3, 3), s.expand(3, 3)]
    for k, e in enumerate(expected):
        torch.testing.assert_close(ops[..., k], e, msg=f"op {k + 1}")


def test_reset_parameters_and_shapes():
    torch.manual_seed(0)
    layer = IGN2to2(3, 5)
    w0 = layer.weight.detach().clone()
    layer.reset_parameters()
    assert layer.weight.shape == (15, 3, 5) and layer.bias.shape == (2, 5)
    assert not torch.equal(w0, layer.weight)
    assert IGN2to1(3, 5).weight.shape == (5, 3, 5)
    assert IGN1to2(3, 5).bias.shape == (2, 5)
    assert IGN1to1(3, 5).weight.shape == (2, 3, 5)
    assert IGN2to0(3, 5, bias=False).bias is None


def test_bad_input_raises():
    layer = IGN2to2(3, 4)
    m = torch.ones(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="input channels"):
        layer(torch.randn(2, 5, 5, 2), m)
    with pytest.raises(ValueError, match="pair features"):
        layer(torch.randn(2, 5, 3), m)
    with pytest.raises(ValueError, match="node_mask"):
        layer(torch.randn(2, 5, 5, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="in_channels"):
        IGN1to1(0, 3)


def test_gradients_flow():
    layer = IGN2to2(2, 3)
    X, A, m = random_batch(d=2, dtype=torch.float32)
    layer(A, m).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_assert_equivariant_detects_violations():
    """The helper itself can fail: position-dependent node, edge and graph outputs are caught."""
    X, A, m = random_batch(seed=8)
    n = m.shape[1]
    pos = torch.arange(n, dtype=X.dtype).view(1, n, 1)
    with pytest.raises(AssertionError, match="kind 'node'"):
        assert_equivariant(lambda X, A, m: X + pos, X, A, m)
    with pytest.raises(AssertionError, match="kind 'edge'"):
        assert_equivariant(lambda X, A, m: (X, A + pos.unsqueeze(2)), X, A, m)
    with pytest.raises(AssertionError, match="invariant"):
        assert_equivariant(lambda X, A, m: X[:, 0], X, A, m)
    assert_equivariant(lambda X, A, m: (X * 2, A.transpose(1, 2), X.sum(1)), X, A, m)


def test_pair_standardize_brute_force_equivariant_and_padding_free():
    X, A, m = random_batch(seed=10, sizes=[6, 4, 3])
    out = pair_standardize(A, m, eps=1e-6)
    for b, nb in enumerate([6, 4, 3]):
        H = A[b, :nb, :nb]
        diag = torch.eye(nb, dtype=torch.bool)
        for sel in (diag, ~diag):
            vals = H[sel]  # (k, d)
            expected = (vals - vals.mean(0)) / torch.sqrt(vals.var(0, unbiased=False) + 1e-6)
            torch.testing.assert_close(out[b, :nb, :nb][sel], expected)
    pm = (m.unsqueeze(2) & m.unsqueeze(1)).unsqueeze(-1).expand_as(out)
    assert out[~pm].abs().max() == 0
    assert_equivariant(lambda X, A, m: pair_standardize(A, m), X, A, m, atol=1e-10, rtol=1e-8)
