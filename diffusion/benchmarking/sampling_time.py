"""Seconds to sample graphs from a diffusion model, with all T reverse steps or a strided grid of K steps.

Measured: wall-clock seconds to sample ``batch_size`` graphs (node counts drawn from the model's
``n_nodes_dist``) with ``num_steps`` reverse steps plus the final decode, the device synchronised. With
``timed_steps`` only the first ``timed_steps`` reverse steps of that grid are timed, after one untimed 1-step
run that warms up and gives a valid start, and the figure is extrapolated linearly (each step costs the same
network call): ``per_step * (num_steps + 1)``.
"""
from __future__ import annotations

import time
from itertools import islice

import torch

from sympe.diffusion.benchmarking.steps import autocast_bf16
from sympe.diffusion.benchmarking.timing import sync

__all__ = ["time_sampling"]


@torch.no_grad()
def time_sampling(model, batch_size: int, device, num_steps: int, timed_steps: int | None = None,
                  bf16: bool = False) -> float:
    """Seconds to sample ``batch_size`` graphs with ``num_steps`` reverse steps (module docstring).

    ``model`` provides ``n_nodes_dist``, ``model_fn`` and ``process`` (a DiscreteDiffusion); it is put in eval mode.
    """
    from sympe.diffusion.process.sampling import reverse_chain, sample_graphs, sample_n_nodes

    model.eval()
    sizes = sample_n_nodes(model.n_nodes_dist.cpu(), batch_size).to(device)
    with autocast_bf16(device, bf16):
        if timed_steps is None or timed_steps >= num_steps:
            sync(device)
            start = time.perf_counter()
            sample_graphs(model.model_fn, sizes, model.process, steps=num_steps)
            sync(device)
            return time.perf_counter() - start
        z = sample_graphs(model.model_fn, sizes, model.process, steps=1)  # a valid start (and a warm-up)
        sync(device)
        start = time.perf_counter()
        for _ in islice(reverse_chain(model.model_fn, z, model.process, steps=num_steps), timed_steps):
            pass
        sync(device)
        per_step = (time.perf_counter() - start) / timed_steps
        return per_step * (num_steps + 1)  # K reverse steps + the final decode
