"""Ancestral sampling of graphs from the reverse process of a :class:`~sympe.diffusion.process.discrete_process.DiscreteProcess`.

Given a denoiser ``model_fn(z_t, t_int, generator) -> (logits_X, logits_E)`` predicting the clean graph:

1. ``z_T ~ p(z_T)``, the process's limit: every real node class from ``m_X``, every real unordered pair
   from ``m_E`` (:meth:`~sympe.diffusion.process.discrete_process.DiscreteProcess.sample_prior`).
2. For the strictly decreasing times ``T = t_0 > t_1 > ... > t_K = 0`` of the process's grid
   (:meth:`~sympe.diffusion.process.discrete_process.DiscreteProcess.timesteps`): ``z_{t_{k+1}} ~ p_θ(z_{t_{k+1}} | z_{t_k})``
   (:meth:`~sympe.diffusion.process.discrete_process.DiscreteProcess.step`; exact for strides > 1 because ``Q_{t|s}`` is
   exact). :func:`reverse_chain` yields these states one by one.
3. The output ``x ~ p_θ(x | z_0) = p̂(x0 | z_0)`` (the model at the decoder time ``t_min = 0``, a time the
   model is trained at). By default it is *sampled* (``final="sample"``): that is the distribution whose
   likelihood :mod:`~sympe.diffusion.likelihood.bound` bounds. ``final="argmax"`` takes the most likely class.

So ``steps = K`` costs ``K + 1`` model calls per ``num_draws``. Graph ``b`` has ``n_nodes[b]`` real nodes,
the first ones (``node_mask[b, :n_nodes[b]]`` True), and the batch is padded to ``max(n_nodes)``. Every
draw (prior, steps, the denoiser's own symmetry-breaking draws, the final decode) uses ``generator``.

A caller that samples in batches and is interrupted (Ctrl-C) raises :class:`SamplingInterrupted`, a
``KeyboardInterrupt`` that carries the batches finished before it, so that they can still be written.
"""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from sympe.diffusion.process.categorical import sample_categorical
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.process.discrete_process import DiscreteProcess, ModelFn, predict_x0
from sympe.symbreak.masks import pair_mask


class SamplingInterrupted(KeyboardInterrupt):
    """Ctrl-C during batched sampling. ``batches``: the :class:`~sympe.diffusion.graph.DenseGraph` batches finished
    before the interrupt (the batch in progress is dropped); ``num_requested``: the graphs asked for."""

    def __init__(self, batches: list, num_requested: int):
        super().__init__(f"sampling interrupted after {len(batches)} batches")
        self.batches = batches
        self.num_requested = int(num_requested)

    @property
    def num_sampled(self) -> int:
        return sum(int(b.X.shape[0]) for b in self.batches)


def sample_n_nodes(n_nodes_dist: Tensor, B: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``B`` node counts from ``p(N)``: ``n_nodes_dist`` (max_nodes + 1,), entry N = p(N); entry 0 must be 0.

    Returns (B,) long on ``n_nodes_dist``'s device (drawn on the generator's device if it differs).
    """
    out_device = torch.as_tensor(n_nodes_dist).device
    p = torch.as_tensor(n_nodes_dist, dtype=torch.float64).flatten()
    if p.numel() < 2 or not torch.isfinite(p).all() or (p < 0).any() or not float(p.sum()) > 0:
        raise ValueError("n_nodes_dist must be a non-negative finite (max_nodes + 1,) vector with positive mass, "
                         f"got {p.tolist()[:10]}")
    if float(p[0]) > 0:
        raise ValueError(f"n_nodes_dist[0] = p(N = 0) must be 0 (graphs have at least one node), got {float(p[0])}")
    if int(B) < 0:
        raise ValueError(f"B must be >= 0, got {B}")
    if int(B) == 0:
        return torch.zeros(0, dtype=torch.long, device=out_device)
    if generator is not None and generator.device != p.device:
        p = p.to(generator.device)
    n = torch.multinomial(p, int(B), replacement=True, generator=generator)
    return n.to(out_device)


def _argmax_graph(pX: Tensor, pE: Tensor, node_mask: Tensor, y: Tensor) -> DenseGraph:
    dx, de = pX.shape[-1], pE.shape[-1]
    X = F.one_hot(pX.argmax(-1), dx).to(pX.dtype) * node_mask.unsqueeze(-1).to(pX.dtype)
    upper = pair_mask(node_mask, diagonal=False, upper=True)  # DenseGraph.pair_mask(upper=True)
    Eu = F.one_hot(pE.argmax(-1), de).to(pE.dtype) * upper.unsqueeze(-1).to(pE.dtype)
    return DenseGraph(X, Eu + Eu.transpose(1, 2), y, node_mask)


def reverse_chain(
    model_fn: ModelFn,
    z_T: DenseGraph,
    process: DiscreteProcess,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    num_draws: int = 1,
    time_distortion: str = "identity",
) -> Iterator[tuple[int, int, DenseGraph]]:
    """Run the reverse chain from ``z_T`` over the process's grid, yielding ``(t, s, z_s)`` after each step.

    ``steps``: None = all T reverse steps, K = K strided steps, evenly spaced or through ``time_distortion``
    (:func:`~sympe.diffusion.process.discrete_process.timestep_schedule`). The last state yielded is ``z_0`` (``s = 0``); the
    decode to ``x`` is not part of the chain (see :func:`sample_graphs`).
    """
    times = process.timesteps(steps, time_distortion)
    z = z_T
    B, device = z.batch_size, z.X.device
    for t, s in zip(times[:-1], times[1:]):
        t_int = torch.full((B,), t, dtype=torch.long, device=device)
        s_int = torch.full((B,), s, dtype=torch.long, device=device)
        z = process.step(model_fn, z, t_int, s_int, generator=generator, num_draws=num_draws)
        yield t, s, z


def sample_graphs(
    model_fn: ModelFn,
    n_nodes: Tensor,
    process: DiscreteProcess,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    keep_chain: int = 0,
    num_draws: int = 1,
    final: str = "sample",
    time_distortion: str = "identity",
    y: Tensor | None = None,
):
    """Sample ``B = len(n_nodes)`` graphs by ancestral sampling (module docstring).

    Args:
        model_fn: ``(z_t DenseGraph, t_int (B,), generator) -> (logits_X (B, n, dx), logits_E (B, n, n, de))``.
        n_nodes: (B,) long, >= 1; the device of the sampled tensors.
        process: the :class:`~sympe.diffusion.process.discrete_process.DiscreteProcess` the model was trained under.
        steps: None = all T reverse steps, K = K evenly strided steps (:func:`~sympe.diffusion.process.discrete_process.timestep_schedule`).
        generator: optional ``torch.Generator`` for every draw (also handed to ``model_fn``).
        keep_chain: 0, or the number of snapshots to keep, evenly spaced over the visited states
            ``[z_T, z_{t_1}, ..., z_0, x]`` (always including the final ``x``, and ``z_T`` too when >= 2;
            capped at the number of states).
        num_draws: model calls averaged per step (for a stochastic ``model_fn``).
        final: ``"sample"`` (default) or ``"argmax"`` for ``x`` from ``p̂(x0 | z_0)``.
        time_distortion: the strided grid's spacing, ``"identity"`` (even) or one of DeFoG's distortions
            (:data:`~sympe.diffusion.process.discrete_process.TIME_DISTORTIONS`; e.g. ``"polydec"``: shorter steps near the data).
        y: (B, dy) graph features carried by every state and by ``x`` (a conditional model's encoded condition,
            which ``model_fn`` reads from ``z_t.y``); None = width 0.

    Returns:
        ``x`` (a DenseGraph, padded to ``max(n_nodes)``), or ``(x, chain)`` with ``chain`` a list of
        ``keep_chain`` DenseGraphs when ``keep_chain > 0``.
    """
    if final not in ("sample", "argmax"):
        raise ValueError(f"sample_graphs: final must be 'sample' or 'argmax', got {final!r}")
    n_nodes = torch.as_tensor(n_nodes)
    if n_nodes.dim() != 1 or n_nodes.numel() == 0 or n_nodes.is_floating_point():
        raise ValueError(f"sample_graphs: n_nodes must be a non-empty (B,) integer tensor, got {tuple(n_nodes.shape)}")
    if int(n_nodes.min()) < 1:
        raise ValueError(f"sample_graphs: every graph needs at least 1 node, got n_nodes.min() = {int(n_nodes.min())}")
    if int(keep_chain) < 0:
        raise ValueError(f"keep_chain must be >= 0, got {keep_chain}")
    num_states = len(process.timesteps(steps, time_distortion)) + 1  # validates steps before any draw
    device = n_nodes.device
    B, n = n_nodes.numel(), int(n_nodes.max())
    node_mask = torch.arange(n, device=device).unsqueeze(0) < n_nodes.unsqueeze(1)
    if y is None:
        y = torch.zeros(B, 0, device=device)
    elif y.dim() != 2 or y.shape[0] != B:
        raise ValueError(f"sample_graphs: y must be (B={B}, dy), got {tuple(y.shape)}")
    y = y.to(device)
    z = process.sample_prior(node_mask, generator=generator, y=y)

    keep: set[int] = set()
    if keep_chain:
        k = min(int(keep_chain), num_states)
        if k == 1:
            keep = {num_states - 1}
        else:
            keep = {round(i * (num_states - 1) / (k - 1)) for i in range(k)}
    chain: list[DenseGraph] = []
    if 0 in keep:
        chain.append(z.clone())

    chain_iter = reverse_chain(model_fn, z, process, steps, generator, num_draws, time_distortion)
    for idx, (_, _, z) in enumerate(chain_iter, start=1):
        if idx in keep:
            chain.append(z.clone())

    t0 = torch.full((B,), process.t_min, dtype=torch.long, device=device)
    pX, pE = predict_x0(model_fn, z, t0, num_draws=num_draws, generator=generator)
    if final == "sample":
        x = sample_categorical(pX, pE, node_mask, generator=generator, y=y)
    else:
        x = _argmax_graph(pX, pE, node_mask, y)
    if keep_chain:
        chain.append(x.clone())
        return x, chain
    return x
