"""The graph-transformer denoiser (sympe.diffusion.nn.transformer)."""
import math

import numpy as np
import pytest
import torch

from sympe.diffusion.nn.transformer import (
    Dropout,
    GraphTransformer,
    GraphTransformerLayer,
    NodeEdgeAttention,
    edge_attention,
    edge_attention_reference,
    masked_statistics,
)

DX_IN, DE_IN, DY_IN = 7, 5, 3
DX_OUT, DE_OUT, DY_OUT = 4, 3, 2


#: the two knobs the model config sets (sympe.diffusion.runs.schema.ModelConfig), at the values these tests use
KNOBS = {"dropout": 0.0, "recompute_attention": True}

def make_model(dim_ffy=48, input_residual=True, dropout=0.0, n_layers=2, seed=0):
    torch.manual_seed(seed)
    return GraphTransformer(
        n_layers=n_layers,
        input_dims={"X": DX_IN, "E": DE_IN, "y": DY_IN},
        hidden_mlp_dims={"X": 24, "E": 12, "y": 16},
        hidden_dims={"dx": 16, "de": 8, "dy": 12, "n_head": 4, "dim_ffX": 32, "dim_ffE": 16, "dim_ffy": dim_ffy},
        output_dims={"X": DX_OUT, "E": DE_OUT, "y": DY_OUT},
        dropout=dropout,
        recompute_attention=True,
        input_residual=input_residual,
    )


def random_inputs(B=4, n=8, seed=0, dtype=torch.float64):
    """Padded batch with real nodes at random positions; one graph has a single node."""
    g = torch.Generator().manual_seed(seed)
    sizes = [n, 5, 1, 3][:B] + [n - 2] * max(0, B - 4)
    mask = torch.zeros(B, n, dtype=torch.bool)
    for b, k in enumerate(sizes):
        mask[b, torch.randperm(n, generator=g)[:k]] = True
    X = torch.randn(B, n, DX_IN, generator=g, dtype=dtype)
    E = torch.randn(B, n, n, DE_IN, generator=g, dtype=dtype)
    E = 0.5 * (E + E.transpose(1, 2))
    y = torch.randn(B, DY_IN, generator=g, dtype=dtype)
    pair = (mask.unsqueeze(2) & mask.unsqueeze(1)) & ~torch.eye(n, dtype=torch.bool)
    return X * mask.unsqueeze(-1), E * pair.unsqueeze(-1), y, mask


def add_padding_garbage(X, E, mask, seed):
    g = torch.Generator().manual_seed(seed)
    pad = ~mask
    pair_pad = pad.unsqueeze(2) | pad.unsqueeze(1)
    X2 = torch.where(pad.unsqueeze(-1), 100 * torch.randn(X.shape, generator=g, dtype=X.dtype), X)
    E2 = torch.where(pair_pad.unsqueeze(-1), 100 * torch.randn(E.shape, generator=g, dtype=E.dtype), E)
    return X2, E2


def permute(X, E, mask, perm):
    b = torch.arange(X.shape[0]).unsqueeze(1)
    return X[b, perm], E[b.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)], mask[b, perm]


# ---------------------------------------------------------------------------------------- outputs
def test_output_shapes_symmetry_and_masking():
    model = make_model().double().eval()
    X, E, y, mask = random_inputs()
    oX, oE, oy = model(X, E, y, mask)
    B, n = mask.shape
    assert oX.shape == (B, n, DX_OUT) and oE.shape == (B, n, n, DE_OUT) and oy.shape == (B, DY_OUT)
    assert torch.equal(oE, oE.transpose(1, 2))
    assert torch.all(torch.diagonal(oE, dim1=1, dim2=2) == 0)
    pair = mask.unsqueeze(2) & mask.unsqueeze(1)
    assert torch.all(oX[~mask] == 0) and torch.all(oE[~pair] == 0)
    assert torch.all(torch.isfinite(oX)) and torch.all(torch.isfinite(oE)) and torch.all(torch.isfinite(oy))
    # real entries are not trivially zero
    assert oX[mask].abs().min() > 0 or oX[mask].abs().mean() > 1e-3
    off = pair & ~torch.eye(n, dtype=torch.bool)
    assert oE[off].abs().mean() > 1e-3


def test_empty_graph_in_batch_is_finite():
    model = make_model().double().eval()
    X, E, y, mask = random_inputs()
    mask[2] = False
    X, E = X * mask.unsqueeze(-1), E * (mask.unsqueeze(2) & mask.unsqueeze(1)).unsqueeze(-1)
    oX, oE, oy = model(X, E, y, mask)
    assert torch.all(torch.isfinite(oy)) and torch.all(oX[2] == 0) and torch.all(oE[2] == 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_equivariance_padded(seed):
    model = make_model(seed=seed).double().eval()
    X, E, y, mask = random_inputs(seed=seed)
    B, n = mask.shape
    g = torch.Generator().manual_seed(100 + seed)
    perm = torch.stack([torch.randperm(n, generator=g) for _ in range(B)])  # real and padded slots mixed
    oX, oE, oy = model(X, E, y, mask)
    Xp, Ep, mp = permute(X, E, mask, perm)
    pX, pE, py = model(Xp, Ep, y, mp)
    qX, qE, _ = permute(oX, oE, mask, perm)
    assert torch.allclose(pX, qX, atol=1e-10)
    assert torch.allclose(pE, qE, atol=1e-10)
    assert torch.allclose(py, oy, atol=1e-10)


def test_permutation_of_real_nodes_only():
    """Real nodes contiguous at the start; permute them among themselves, padding fixed."""
    model = make_model(seed=3).double().eval()
    X, E, y, _ = random_inputs(seed=3)
    B, n = X.shape[:2]
    sizes = torch.tensor([8, 5, 1, 3])
    mask = torch.arange(n).unsqueeze(0) < sizes.unsqueeze(1)
    pair = (mask.unsqueeze(2) & mask.unsqueeze(1)) & ~torch.eye(n, dtype=torch.bool)
    X, E = X * mask.unsqueeze(-1), E * pair.unsqueeze(-1)
    perm = torch.arange(n).repeat(B, 1)
    g = torch.Generator().manual_seed(9)
    for b, k in enumerate(sizes.tolist()):
        perm[b, :k] = torch.randperm(k, generator=g)
    oX, oE, oy = model(X, E, y, mask)
    pX, pE, py = model(*permute(X, E, mask, perm)[:2], y, mask)
    qX, qE, _ = permute(oX, oE, mask, perm)
    assert torch.allclose(pX, qX, atol=1e-10) and torch.allclose(pE, qE, atol=1e-10)
    assert torch.allclose(py, oy, atol=1e-10)


@pytest.mark.parametrize("input_residual", [True, False])
def test_padding_content_never_changes_real_outputs(input_residual):
    model = make_model(input_residual=input_residual).double().eval()
    X, E, y, mask = random_inputs(seed=4)
    oX, oE, oy = model(X, E, y, mask)
    X2, E2 = add_padding_garbage(X, E, mask, seed=5)
    pX, pE, py = model(X2, E2, y, mask)
    assert torch.allclose(pX, oX, atol=1e-10)
    assert torch.allclose(pE, oE, atol=1e-10)
    assert torch.allclose(py, oy, atol=1e-10)  # the pooled graph stream sees no padding


def test_graph_stream_pooling_ignores_padding_in_a_layer():
    """Inside one layer too: hidden padding content must not reach the graph stream."""
    torch.manual_seed(0)
    layer = GraphTransformerLayer(16, 8, 12, 4, 32, 16, 24, dropout=0.0, recompute_attention=True).double().eval()
    B, n = 3, 6
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1], [1] * 6], dtype=torch.bool)
    X = torch.randn(B, n, 16, dtype=torch.float64)
    E = torch.randn(B, n, n, 8, dtype=torch.float64)
    y = torch.randn(B, 12, dtype=torch.float64)
    X2 = torch.where(mask.unsqueeze(-1), X, torch.randn_like(X) * 50)
    pair = mask.unsqueeze(2) & mask.unsqueeze(1)
    E2 = torch.where(pair.unsqueeze(-1), E, torch.randn_like(E) * 50)
    a = layer(X, E, y, mask)
    b = layer(X2, E2, y, mask)
    assert torch.allclose(a[2], b[2], atol=1e-10)
    assert torch.allclose(a[0][mask], b[0][mask], atol=1e-10)
    assert torch.allclose(a[1][pair], b[1][pair], atol=1e-10)


def test_input_residual_adds_the_leading_input_channels():
    X, E, y, mask = random_inputs(seed=6)
    with_res = make_model(input_residual=True).double().eval()
    without = make_model(input_residual=False).double().eval()
    without.load_state_dict(with_res.state_dict())
    aX, aE, ay = with_res(X, E, y, mask)
    bX, bE, by = without(X, E, y, mask)
    n = mask.shape[1]
    off = (mask.unsqueeze(2) & mask.unsqueeze(1)) & ~torch.eye(n, dtype=torch.bool)
    assert torch.allclose(aX - bX, X[..., :DX_OUT] * mask.unsqueeze(-1), atol=1e-12)
    Es = 0.5 * (E[..., :DE_OUT] + E[..., :DE_OUT].transpose(1, 2)) * off.unsqueeze(-1)
    assert torch.allclose(aE - bE, Es, atol=1e-12)
    assert torch.allclose(ay - by, y[..., :DY_OUT], atol=1e-12)


# ---------------------------------------------------------------------------------------- pieces
def test_masked_statistics_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 4, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1, 1, 0, 0, 1], [0] * 7, [0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    stats = masked_statistics(x, mask)
    assert stats.shape == (3, 16)
    for b in range(3):
        rows = x[b][mask[b]].numpy()
        if len(rows) == 0:
            assert torch.all(stats[b] == 0)
            continue
        expected = np.concatenate([rows.mean(0), rows.min(0), rows.max(0), np.sqrt(np.maximum(rows.var(0), 1e-10))])
        np.testing.assert_allclose(stats[b].numpy(), expected, atol=1e-12)


def _attention_args(B=2, n=4, d=3, de=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shapes = [(B, n, d), (B, n, d), (B, n, d), (B, n, n, de), (2 * d, de), (2 * d,), (B, d), (de + 1, d), (B, de + 1)]
    args = [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, 1] = False  # a padded key/query in the middle
    if B > 1:
        mask[1, n - 1] = False
    return args, mask


@pytest.mark.parametrize("seed", [0, 1])
def test_edge_attention_gradcheck_against_autograd(seed):
    """The hand-written backward of the fused attention: finite differences (gradcheck, float64) and the
    plain-autograd formulation agree, for every input, with padded keys present."""
    args, mask = _attention_args(seed=seed)
    S, h = edge_attention(*args, mask, recompute=True)
    rS, rh = edge_attention_reference(*args, mask)
    assert torch.allclose(S, rS, atol=1e-12) and torch.allclose(h, rh, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *a: edge_attention(*a, mask, recompute=True), args)
    # the same gradients as autograd through the reference, for a random cotangent of both outputs
    g = torch.Generator().manual_seed(10 + seed)
    wS, wh = torch.randn(S.shape, generator=g, dtype=S.dtype), torch.randn(h.shape, generator=g, dtype=h.dtype)
    ga = torch.autograd.grad((S * wS).sum() + (h * wh).sum(), args)
    gr = torch.autograd.grad((rS * wS).sum() + (rh * wh).sum(), args)
    for a, r in zip(ga, gr):
        assert torch.allclose(a, r, atol=1e-10)
    # only one output used (the other's gradient is None inside backward)
    assert torch.autograd.gradcheck(lambda *a: edge_attention(*a, mask, recompute=True)[0], args)
    assert torch.autograd.gradcheck(lambda *a: edge_attention(*a, mask, recompute=True)[1], args)


def test_edge_attention_padded_keys_get_no_weight():
    args, mask = _attention_args(seed=3)
    Q, K, V, E, W, b, m, Wo, c = args
    h = edge_attention(Q, K, V, E, W, b, m, Wo, c, mask, recompute=True)[1]
    # changing the padded key's K, V and edges changes nothing at real queries
    K2, V2, E2 = K.detach().clone(), V.detach().clone(), E.detach().clone()
    K2[0, 1], V2[0, 1], E2[0, :, 1] = 50.0, -50.0, 9.0
    h2 = edge_attention(Q, K2, V2, E2, W, b, m, Wo, c, mask, recompute=True)[1]
    assert torch.allclose(h[0][mask[0]], h2[0][mask[0]], atol=1e-12)
    # a graph with no real node stays finite
    none = torch.zeros_like(mask)
    S3, h3 = edge_attention(Q, K, V, E, W, b, m, Wo, c, none, recompute=True)
    assert torch.isfinite(S3).all() and torch.isfinite(h3).all()
    with pytest.raises(ValueError, match="edge_attention"):
        edge_attention(Q, K, V, E[:, :3], W, b, m, Wo, c, mask, recompute=True)


def test_layer_backward_under_bf16_autocast_is_close_to_float32():
    """Reduced precision (autocast) runs through the fused backward and stays near the float32 gradients."""
    torch.manual_seed(0)
    layer = GraphTransformerLayer(16, 8, 12, 4, 32, 16, 24, dropout=0.0, recompute_attention=True)
    X, E = torch.randn(2, 5, 16), torch.randn(2, 5, 5, 8)
    y, mask = torch.randn(2, 12), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)

    def grads(autocast):
        layer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            oX, oE, oy = layer(X, E, y, mask)
            loss = oX.float().square().sum() + oE.float().square().sum() + oy.float().square().sum()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in layer.parameters() if p.grad is not None])

    g32, g16 = grads(False), grads(True)
    assert torch.isfinite(g16).all()
    assert (g16 - g32).norm() < 0.1 * g32.norm()


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cpu_dropout_rate_scale_and_gradient(p):
    """The bit-mask dropout drops each element with probability p (to 2^-15), independently of its position
    in the 64-bit word it came from, keeps E[out] = x, and its gradient is the same mask and scale.
    Bounds: 6 binomial standard deviations (false alarm < 1e-8 per check)."""
    torch.manual_seed(0)
    drop = Dropout(p).train()
    N = 1 << 20
    x = torch.ones(N, requires_grad=True)
    out = drop(x)
    kept = out != 0
    p_eff = round(p * 32768) / 32768
    assert abs(p_eff - p) <= 0.5 / 32768
    sd = math.sqrt(p_eff * (1 - p_eff) / (N // 4))
    for lane in range(4):  # elements 4k + lane come from the same 16-bit lane of each random word
        rate = 1 - kept[lane::4].float().mean().item()
        assert abs(rate - p_eff) < 6 * sd, (lane, rate, p_eff)
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p_eff)))
    assert abs(out.mean().item() - 1.0) < 6 * math.sqrt(p_eff / (1 - p_eff) / N)
    out.backward(torch.arange(N, dtype=torch.float32))
    assert torch.equal(x.grad, out.detach() * torch.arange(N, dtype=torch.float32))
    # reproducible under the global seed; identity in eval mode
    torch.manual_seed(3)
    a = drop(torch.ones(1000))
    torch.manual_seed(3)
    assert torch.equal(a, drop(torch.ones(1000)))
    drop.eval()
    y = torch.randn(7, 5)
    assert drop(y) is y
    with pytest.raises(ValueError, match="Dropout"):
        Dropout(1.0)


def literal_attention(att: NodeEdgeAttention, X, E, y, mask):
    """The layer's math written out term by term (no fusion), with the module's parameters."""
    dx, de = att.dx, att.de
    B, n, _ = X.shape
    Wq, Wk, Wv = att.qkv.weight.split(dx)
    bq, bk, bv = att.qkv.bias.split(dx)
    Q, K, V = X @ Wq.T + bq, X @ Wk.T + bk, X @ Wv.T + bv
    W1, W2 = att.e_film.weight.split(dx)
    b1, b2 = att.e_film.bias.split(dx)
    E1, E2 = E @ W1.T + b1, E @ W2.T + b2
    d_head = dx // att.n_head
    Yw, Yb = att.y_film.weight.split(dx), att.y_film.bias.split(dx)
    a_E, m_E, a_X, m_X = [y @ w.T + b for w, b in zip(Yw, Yb)]
    Xn = torch.zeros(B, n, dx, dtype=X.dtype)
    En = torch.zeros(B, n, n, de, dtype=X.dtype)
    for b in range(B):
        real = torch.nonzero(mask[b]).flatten().tolist()
        for i in real:
            S_i = torch.stack([Q[b, i] * K[b, j] / math.sqrt(d_head) * (E1[b, i, j] + 1) + E2[b, i, j] for j in range(n)])
            for j in real:
                En[b, i, j] = att.e_out(a_E[b] + (m_E[b] + 1) * S_i[j])
            w = torch.softmax(S_i[real], dim=0)  # per channel over real j
            h = (w * V[b, real]).sum(0)
            Xn[b, i] = att.x_out(a_X[b] + (m_X[b] + 1) * h)
    yn = []
    for b in range(B):
        xs = X[b][mask[b]]
        off = [(i, j) for i in range(n) for j in range(n) if i != j and mask[b, i] and mask[b, j]]
        es = torch.stack([E[b, i, j] for i, j in off]) if off else None

        def stats(z, d):
            if z is None:
                return torch.zeros(4 * d, dtype=X.dtype)
            return torch.cat([z.mean(0), z.min(0).values, z.max(0).values, z.var(0, unbiased=False).clamp_min(1e-10).sqrt()])

        yn.append(att.y_self(y[b]) + att.x_pool.lin(stats(xs, dx)) + att.e_pool.lin(stats(es, de)))
    yn = att.y_out(torch.stack(yn))
    return Xn, En, yn


def test_fused_attention_equals_literal_math():
    torch.manual_seed(1)
    att = NodeEdgeAttention(dx=8, de=4, dy=5, n_head=2, recompute=True).double()
    B, n = 3, 5
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 1, 1, 0, 1], [0, 0, 1, 0, 0]], dtype=torch.bool)
    X = torch.randn(B, n, 8, dtype=torch.float64)
    E = torch.randn(B, n, n, 4, dtype=torch.float64)
    y = torch.randn(B, 5, dtype=torch.float64)
    fX, fE, fy = att(X, E, y, mask)
    lX, lE, ly = literal_attention(att, X, E, y, mask)
    assert torch.allclose(fX, lX, atol=1e-10)
    assert torch.allclose(fE, lE, atol=1e-10)
    assert torch.allclose(fy, ly, atol=1e-10)


def test_dim_ffy_is_configurable_and_required():
    model = make_model(dim_ffy=40)
    assert all(layer.ff_y.lin1.out_features == 40 for layer in model.layers if layer.update_y)
    hd = {"dx": 16, "de": 8, "dy": 12, "n_head": 4, "dim_ffX": 32, "dim_ffE": 16}
    with pytest.raises(ValueError, match="missing keys \\['dim_ffy'\\]"):
        GraphTransformer(2, {"X": 3, "E": 2, "y": 1}, {"X": 8, "E": 8, "y": 8}, hd, {"X": 3, "E": 2, "y": 0}, **KNOBS)
    hd["dim_ffy"] = 2048  # DiGress's hard-coded graph FFN width
    m2 = GraphTransformer(2, {"X": 3, "E": 2, "y": 1}, {"X": 8, "E": 8, "y": 8}, hd, {"X": 3, "E": 2, "y": 0}, **KNOBS)
    assert m2.layers[0].ff_y.lin1.out_features == 2048
    # without a graph output the last layer builds no graph-stream update (no parameter without gradient)
    assert not m2.layers[1].update_y and not hasattr(m2.layers[1], "ff_y")
    X, E = torch.randn(2, 4, 3), torch.randn(2, 4, 4, 2)
    oX, oE, oy = m2(X, 0.5 * (E + E.transpose(1, 2)), torch.randn(2, 1), torch.ones(2, 4, dtype=torch.bool))
    assert oX.shape == (2, 4, 3) and oE.shape == (2, 4, 4, 2) and oy.shape == (2, 0)


def test_reset_parameters_reinitialises():
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    model.reset_parameters()
    changed = [k for k, v in model.state_dict().items() if k.endswith("weight") and v.numel() > 1
               and not k.split(".")[-2].startswith("norm") and not torch.equal(v, before[k])]
    weights = [k for k, v in model.state_dict().items() if k.endswith("weight") and v.numel() > 1
               and not k.split(".")[-2].startswith("norm")]
    assert changed == weights


def test_bad_configuration_and_inputs_raise():
    hd = {"dx": 16, "de": 8, "dy": 12, "n_head": 4, "dim_ffX": 32, "dim_ffE": 16, "dim_ffy": 16}
    io = {"X": 3, "E": 2, "y": 1}
    with pytest.raises(ValueError, match="missing"):
        GraphTransformer(1, {"X": 3, "E": 2}, io, hd, io, **KNOBS)
    with pytest.raises(ValueError, match="unknown"):
        GraphTransformer(1, io, io, {**hd, "dim_ffz": 3}, io, **KNOBS)
    with pytest.raises(ValueError, match="divisible"):
        GraphTransformer(1, io, io, {**hd, "n_head": 3}, io, **KNOBS)
    with pytest.raises(ValueError, match="input_residual"):
        GraphTransformer(1, io, io, hd, {"X": 4, "E": 2, "y": 1}, **KNOBS)
    model = make_model()
    X, E, y, mask = random_inputs(dtype=torch.float32)
    with pytest.raises(ValueError, match="X has"):
        model(X[..., :3], E, y, mask)
    with pytest.raises(ValueError, match="E must be"):
        model(X, E[:, :3], y, mask)
    with pytest.raises(ValueError, match="node_mask"):
        model(X, E, y, mask.float())


# ---------------------------------------------------------------------------------------- training
@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, and this avoids OpenMP stalls when other jobs share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_overfits_a_tiny_fixed_target(one_thread):
    """Cross-entropy on a fixed noisy batch -> fixed clean classes drops by >95% in 100 Adam steps.

    Besides the noisy one-hot channels, nodes and pairs get random continuous channels so that no
    two nodes look alike (an equivariant model cannot fit different targets on automorphic nodes).
    """
    torch.manual_seed(0)
    model = GraphTransformer(
        n_layers=2,
        input_dims={"X": 8, "E": 5, "y": 1},
        hidden_mlp_dims={"X": 32, "E": 16, "y": 16},
        hidden_dims={"dx": 32, "de": 16, "dy": 16, "n_head": 4, "dim_ffX": 64, "dim_ffE": 32, "dim_ffy": 32},
        output_dims={"X": 4, "E": 3, "y": 0}, dropout=0.0, recompute_attention=True,
    )
    B, n = 4, 7
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(n).unsqueeze(0) < torch.tensor([[7], [6], [4], [5]])
    off = (mask.unsqueeze(2) & mask.unsqueeze(1)) & ~torch.eye(n, dtype=torch.bool)
    tX = torch.randint(0, 4, (B, n), generator=g)
    tE = torch.randint(0, 3, (B, n, n), generator=g).triu(1)
    tE = tE + tE.transpose(1, 2)
    Xin = torch.nn.functional.one_hot(torch.randint(0, 4, (B, n), generator=g), 4).float()
    Xin = torch.cat([Xin, torch.randn(B, n, 4, generator=g)], dim=-1) * mask.unsqueeze(-1)
    Ein = torch.nn.functional.one_hot(torch.randint(0, 3, (B, n, n), generator=g), 3).float()
    Ein = torch.cat([Ein, torch.randn(B, n, n, 2, generator=g)], dim=-1)
    Ein = (Ein + Ein.transpose(1, 2)) / 2 * off.unsqueeze(-1)
    y = torch.full((B, 1), 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn():
        oX, oE, _ = model(Xin, Ein, y, mask)
        return (torch.nn.functional.cross_entropy(oX[mask], tX[mask])
                + torch.nn.functional.cross_entropy(oE[off], tE[off]))

    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(loss_fn())
    assert last < 0.05 * first, (first, last)
