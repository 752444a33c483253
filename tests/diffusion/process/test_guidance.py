"""Classifier-free guidance: the guided prediction equals p(x0|z,y)^(1+w) p(x0|z)^(-w), renormalised, per node and
per pair (against a hand computation); w = 0 is the conditional model and w = -1 the unconditional one; both calls
see the same breaker draws; guided sampling works with both kernels and strided / distorted grids and carries y."""
from __future__ import annotations

import pytest
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import DiscreteProcess, predict_x0
from sympe.diffusion.process.guidance import guided_model_fn
from sympe.diffusion.process.sampling import sample_graphs
from sympe.diffusion.process.schedule import make_schedule
from sympe.diffusion.process.transition import make_transition

B, n, dx, de = 3, 4, 3, 2


def noisy():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, dx, (B, n), generator=g)
    E = torch.randint(0, de, (B, n, n), generator=g)
    mask = torch.ones(B, n, dtype=torch.bool)
    return DenseGraph.from_indices(X, E, mask, dx, de, y=torch.zeros(B, 2))


def conditional_net(z, t, generator=None):
    """Logits that depend on y (its first channel) and, through the generator, on a noise draw."""
    noise = torch.rand(z.batch_size, 1, 1, generator=generator)
    base = torch.arange(dx, dtype=torch.float32).view(1, 1, dx)
    lX = base * z.y[:, :1].view(-1, 1, 1) + noise + z.X
    lE = torch.stack([z.y[:, 0].view(-1, 1, 1).expand(-1, n, n), -z.y[:, 0].view(-1, 1, 1).expand(-1, n, n)], -1) + z.E
    conditional_net.draws.append(noise.clone())
    return lX, lE


conditional_net.draws = []


@pytest.mark.parametrize("w", [0.0, 0.5, 2.0, -1.0])
def test_the_guided_prediction_is_the_renormalised_geometric_combination(w):
    z = noisy()
    y = torch.tensor([[1.0, 1.0], [-2.0, 1.0], [0.5, 1.0]])
    null = torch.zeros_like(y)
    t = torch.full((B,), 3)
    pX, pE = predict_x0(guided_model_fn(conditional_net, y, null, w), z, t, generator=torch.Generator().manual_seed(5))
    # by hand, with the draw both calls must share
    noise = torch.rand(B, 1, 1, generator=torch.Generator().manual_seed(5))
    base = torch.arange(dx, dtype=torch.float32).view(1, 1, dx)
    pc = torch.softmax(base * y[:, :1].view(-1, 1, 1) + noise + z.X, -1)
    pu = torch.softmax(noise + z.X + 0 * base, -1)
    want = pc ** (1 + w) * pu ** (-w)
    want = want / want.sum(-1, keepdim=True)
    assert torch.allclose(pX, want, atol=1e-5)
    if w == 0.0:
        assert torch.allclose(pX, pc, atol=1e-6)
    if w == -1.0:
        assert torch.allclose(pX, pu, atol=1e-6)
    assert torch.allclose(pE.sum(-1)[z.edge_mask], torch.ones(()), atol=1e-5)


def test_both_calls_see_the_same_breaker_draws_and_the_callers_stream_advances_once():
    z = noisy()
    y = torch.ones(B, 2)
    conditional_net.draws.clear()
    g = torch.Generator().manual_seed(3)
    guided_model_fn(conditional_net, y, torch.zeros_like(y), 1.5)(z, torch.full((B,), 2), generator=g)
    assert len(conditional_net.draws) == 2 and torch.equal(*conditional_net.draws)
    after = torch.rand(1, generator=g)
    ref = torch.Generator().manual_seed(3)
    torch.rand(B, 1, 1, generator=ref)
    assert torch.equal(after, torch.rand(1, generator=ref))


def test_bad_arguments_are_refused():
    y = torch.ones(B, 2)
    with pytest.raises(ValueError, match="finite"):
        guided_model_fn(conditional_net, y, torch.zeros_like(y), float("nan"))
    with pytest.raises(ValueError, match="differ in shape"):
        guided_model_fn(conditional_net, y, torch.zeros(B, 3), 1.0)
    with pytest.raises(ValueError, match="conditions for a batch"):
        guided_model_fn(conditional_net, y[:2], torch.zeros(2, 2), 1.0)(noisy(), torch.full((B,), 2))


@pytest.mark.parametrize("kernel", ["plain", "reweighted"])
@pytest.mark.parametrize("steps,distortion", [(None, "identity"), (3, "identity"), (3, "polydec")])
def test_guided_sampling_runs_on_every_kernel_and_grid_and_carries_y(kernel, steps, distortion):
    process = DiscreteProcess(make_schedule("cosine", 10), make_transition("marginal", dx, de,
                              node_marginals=torch.tensor([0.5, 0.3, 0.2]), edge_marginals=torch.tensor([0.7, 0.3])),
                              kernel=kernel)
    y = torch.tensor([[3.0, 1.0], [-3.0, 1.0], [0.0, 1.0]])
    fn = guided_model_fn(conditional_net, y, torch.zeros_like(y), 2.0)
    x = sample_graphs(fn, torch.tensor([4, 3, 2]), process, steps=steps, generator=torch.Generator().manual_seed(0),
                      time_distortion=distortion, y=y)
    x.validate()
    assert torch.equal(x.y, y)
    # the condition steers: y = +3 favours the last node class, y = -3 the first
    Xi, _ = x.collapse()
    assert (Xi[0, :4] == dx - 1).float().mean() > (Xi[1, :3] == dx - 1).float().mean()
    with pytest.raises(ValueError, match="y must be"):
        sample_graphs(fn, torch.tensor([4, 3, 2]), process, steps=2, y=y[:2])
