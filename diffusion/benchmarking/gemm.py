"""How much of a step's CPU time is matrix products (GEMMs): the part no elementwise fusion can remove.

Measured with ``torch.profiler`` (CPU activity): the *self* CPU time of every operator (its own time, not that
of the operators it calls), summed over the profiled calls, split into the GEMM operators of
:data:`GEMM_OPS` and everything else, in milliseconds per step; and how many times each GEMM operator ran.
The profiler's own overhead inflates the total a little. On CUDA the self CPU time is the time to launch
kernels, not their run time: use the split on CPU.

``aten::matmul`` dispatches to one of the others, so its self time is counted but its calls are not
(:data:`GEMM_LEAF_OPS` are the counted ones: each call is one matrix product, batched for ``bmm``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

__all__ = ["GEMM_OPS", "GEMM_LEAF_OPS", "GemmProfile", "profile_gemm", "gemm_share"]

GEMM_LEAF_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm")
GEMM_OPS = GEMM_LEAF_OPS + ("aten::matmul",)


@dataclass
class GemmProfile:
    """Totals over ``steps`` profiled calls: ``gemm_us`` / ``other_us`` (self CPU microseconds) and
    ``gemm_calls`` (calls per operator of :data:`GEMM_LEAF_OPS` that ran)."""

    steps: int
    gemm_us: float = 0.0
    other_us: float = 0.0
    gemm_calls: dict[str, int] = field(default_factory=dict)

    @property
    def gemm_calls_per_step(self) -> float:
        return sum(self.gemm_calls.values()) / self.steps

    def ms_per_step(self) -> dict[str, float]:
        """``{"gemm_ms", "other_ms"}``: milliseconds per step."""
        k = 1e3 * self.steps
        return {"gemm_ms": self.gemm_us / k, "other_ms": self.other_us / k}


def profile_gemm(step: Callable, inputs: Iterable) -> GemmProfile:
    """Run ``step(x)`` for each ``x`` of ``inputs`` under the profiler; see the module docstring."""
    from torch.profiler import ProfilerActivity, profile

    inputs = list(inputs)
    if not inputs:
        raise ValueError("profile_gemm: no inputs to run the step on")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for x in inputs:
            step(x)
    out = GemmProfile(steps=len(inputs))
    for ev in prof.key_averages():
        if ev.key in GEMM_OPS:
            out.gemm_us += ev.self_cpu_time_total
            if ev.key in GEMM_LEAF_OPS:
                out.gemm_calls[ev.key] = out.gemm_calls.get(ev.key, 0) + int(ev.count)
        else:
            out.other_us += ev.self_cpu_time_total
    return out


def gemm_share(step: Callable, inputs: Iterable) -> dict[str, float]:
    """``{"gemm_ms", "other_ms"}`` per step of :func:`profile_gemm`."""
    return profile_gemm(step, inputs).ms_per_step()
