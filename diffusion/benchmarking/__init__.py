"""sympe.diffusion.benchmarking: plain-torch measurements of speed and memory (``scripts/benchmark.py``).

* ``timing``: wall / CPU seconds of a call, variants timed interleaved round by round, medians and ratios.
* ``steps``: the timed units: one training step, one reverse step of the full-T chain, bf16 autocast.
* ``sampling``: seconds to sample graphs with T or K strided reverse steps (extrapolated from a few steps).
* ``nll``: seconds of one NLL evaluation per graph, per estimator and for the mixture bound.
* ``memory``: peak memory in MiB (CUDA allocated tensors, or the process's peak resident set on CPU).
* ``gemm``: a step's self CPU time split into matrix products and the rest (torch.profiler).

Models are duck-typed (a :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` fits); nothing here imports
Lightning, Hydra or a dataset: the caller builds the model and the batches.
"""
from sympe.diffusion.benchmarking.gemm import GEMM_LEAF_OPS, GEMM_OPS, GemmProfile, gemm_share, profile_gemm
from sympe.diffusion.benchmarking.memory import (PeakMemory, peak_memory_mb, peak_rss_mb, reset_peak_memory,
                                                 reset_peak_rss, rss_mb)
from sympe.diffusion.benchmarking.nll import time_nll
from sympe.diffusion.benchmarking.sampling_time import time_sampling
from sympe.diffusion.benchmarking.steps import ReverseSteps, autocast_bf16, train_step
from sympe.diffusion.benchmarking.timing import InterleavedTimes, interleave, sync, timed_call

__all__ = [
    # timing
    "sync", "timed_call", "interleave", "InterleavedTimes",
    # steps, sampling, nll
    "train_step", "ReverseSteps", "autocast_bf16", "time_sampling", "time_nll",
    # memory
    "rss_mb", "reset_peak_rss", "peak_rss_mb", "reset_peak_memory", "peak_memory_mb", "PeakMemory",
    # gemm
    "GEMM_OPS", "GEMM_LEAF_OPS", "GemmProfile", "profile_gemm", "gemm_share",
]
