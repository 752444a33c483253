"""The training loss (sympe.diffusion.objectives.cross_entropy.diffusion_ce_loss) against a cross-entropy written out by hand:
mean over real nodes, mean over real unordered pairs i < j, edge term weighted by lambda_E; padding,
the diagonal and the lower triangle never count."""
from __future__ import annotations

import math

import pytest
import torch

from sympe.diffusion.runs.schema import TrainConfig
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss

DX, DE = 3, 4


LAMBDA_E = TrainConfig().lambda_E  # the one default (sympe.diffusion.runs.schema)

def batch(seed, B=3, n=6, symmetric_logits=False):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(0, DX, (B, n), generator=gen)
    E = torch.randint(0, DE, (B, n, n), generator=gen)
    mask = torch.rand(B, n, generator=gen) < 0.7
    mask[:, :2] = True
    mask[0, 2] = False  # padding in the middle of a graph
    g = DenseGraph.from_indices(X, E, mask, DX, DE).validate()
    lx = torch.randn(B, n, DX, generator=gen, dtype=torch.float64)
    le = torch.randn(B, n, n, DE, generator=gen, dtype=torch.float64)
    if symmetric_logits:
        le = 0.5 * (le + le.transpose(1, 2))
    return lx, le, g


def nll(logits, k):
    """-log softmax(logits)[k], written out."""
    values = logits.tolist()
    return -(values[k] - math.log(sum(math.exp(v) for v in values)))


def by_hand(lx, le, g, lambda_E):
    Xi, Ei = g.X.argmax(-1), g.E.argmax(-1)
    node_terms, pair_terms = [], []
    for b in range(g.batch_size):
        real = [i for i in range(g.max_nodes) if g.node_mask[b, i]]
        node_terms += [nll(lx[b, i], int(Xi[b, i])) for i in real]
        pair_terms += [nll(le[b, i, j], int(Ei[b, i, j])) for i in real for j in real if i < j]
    lX = sum(node_terms) / len(node_terms)
    lE = sum(pair_terms) / len(pair_terms)
    return lX + lambda_E * lE, lX, lE


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lambda_E", [0.0, 1.0, 5.0])
def test_loss_equals_the_cross_entropy_written_out(seed, lambda_E):
    lx, le, g = batch(seed)
    out = diffusion_ce_loss(lx, le, g, lambda_E=lambda_E)
    total, lX, lE = by_hand(lx, le, g, lambda_E)
    assert out["loss_X"].item() == pytest.approx(lX, rel=1e-5)
    assert out["loss_E"].item() == pytest.approx(lE, rel=1e-5)
    assert out["loss"].item() == pytest.approx(total, rel=1e-5)


def test_default_edge_weight_is_five():
    assert LAMBDA_E == 5.0  # DiGress's λ, the default of train.lambda_E
    lx, le, g = batch(7)
    out = diffusion_ce_loss(lx, le, g, LAMBDA_E)
    assert out["loss"].item() == pytest.approx(out["loss_X"].item() + 5.0 * out["loss_E"].item(), rel=1e-6)


def test_padding_diagonal_and_lower_triangle_do_not_count():
    lx, le, g = batch(3)
    ref = diffusion_ce_loss(lx, le, g, LAMBDA_E)
    junk_x, junk_e = lx.clone(), le.clone()
    junk_x[~g.node_mask] = 100.0
    upper = g.pair_mask(upper=True)
    junk_e[~upper] = torch.randn_like(junk_e[~upper]) * 50  # padding, diagonal and i > j
    out = diffusion_ce_loss(junk_x, junk_e, g, LAMBDA_E)
    for key in ("loss", "loss_X", "loss_E"):
        assert out[key].item() == pytest.approx(ref[key].item(), rel=1e-6)
    # gradients reach exactly the counted entries
    lx.requires_grad_(True)
    le.requires_grad_(True)
    diffusion_ce_loss(lx, le, g, LAMBDA_E)["loss"].backward()
    assert (lx.grad[~g.node_mask] == 0).all() and (lx.grad[g.node_mask].abs().sum(-1) > 0).all()
    assert (le.grad[~upper] == 0).all() and (le.grad[upper].abs().sum(-1) > 0).all()


def test_symmetric_logits_give_the_ordered_pair_average():
    """With symmetric logits, the mean over i < j equals DiGress's mean over ordered pairs i != j."""
    lx, le, g = batch(5, symmetric_logits=True)
    out = diffusion_ce_loss(lx, le, g, LAMBDA_E)
    em = g.edge_mask
    ordered = torch.nn.functional.cross_entropy(le[em], g.E.argmax(-1)[em])
    assert out["loss_E"].item() == pytest.approx(ordered.item(), rel=1e-6)


def test_perfect_prediction_has_near_zero_loss_and_graph_weights_are_per_variable():
    _, _, g = batch(2)
    out = diffusion_ce_loss(g.X.double() * 60, g.E.double() * 60, g, LAMBDA_E)
    assert out["loss"].item() < 1e-20
    # the means are over variables, not graphs: a batch of two copies of a graph has the same loss
    lx, le, g1 = batch(4, B=1)
    two = DenseGraph(g1.X.repeat(2, 1, 1), g1.E.repeat(2, 1, 1, 1), g1.y.repeat(2, 1), g1.node_mask.repeat(2, 1))
    a = diffusion_ce_loss(lx, le, g1, LAMBDA_E)["loss"]
    b = diffusion_ce_loss(lx.repeat(2, 1, 1), le.repeat(2, 1, 1, 1), two, LAMBDA_E)["loss"]
    assert a.item() == pytest.approx(b.item(), rel=1e-9)


def test_graphs_without_pairs_give_a_finite_zero_edge_term():
    mask = torch.tensor([[True, False, False]])
    g = DenseGraph.from_indices(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long),
                                mask, DX, DE)
    lx = torch.randn(1, 3, DX, requires_grad=True)
    le = torch.randn(1, 3, 3, DE, requires_grad=True)
    out = diffusion_ce_loss(lx, le, g, LAMBDA_E)
    assert out["loss_E"].item() == 0.0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert torch.isfinite(lx.grad).all() and (le.grad == 0).all()
