"""Wall-clock and CPU time of callables, alone and interleaved round by round.

Measured: seconds of wall-clock time (``time.perf_counter``) and seconds of CPU time of the whole process
(``time.process_time``: all threads, user + system) of one call. On CUDA the device is synchronised before
the clock starts and before it stops (:func:`sync`), so queued kernels are counted in the call that queued them.

:func:`interleave` times several variants of a step (say, a model with and without a symmetry breaker) in
rounds: every round calls each variant once, the order rotated by one variant per round (two variants:
alternated), so that drifts of a shared machine (other jobs, clock changes, a warming cache) hit every
variant alike; the first ``warmup`` rounds are run and not recorded. Compare variants by their medians.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import median
from typing import Callable, Mapping

import torch

__all__ = ["sync", "timed_call", "interleave", "InterleavedTimes"]


def sync(device) -> None:
    """Wait for the queued work of ``device`` (a no-op unless it is a CUDA device)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable, *args, device="cpu", clock: Callable[[], float] = time.perf_counter,
               cpu_clock: Callable[[], float] = time.process_time) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of ``fn(*args)``, the device synchronised before and after.

    ``clock`` / ``cpu_clock`` replace the two clocks (tests pass fake ones)."""
    sync(device)
    start, cpu = clock(), cpu_clock()
    fn(*args)
    sync(device)
    return clock() - start, cpu_clock() - cpu


@dataclass
class InterleavedTimes:
    """What :func:`interleave` recorded: per variant, one wall / CPU time (seconds) per timed round, and the
    order in which the variants ran in every round (warm-up rounds included)."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    order: list[list[str]] = field(default_factory=list)

    def medians(self, kind: str = "wall") -> dict[str, float]:
        """Median seconds per call of each variant (``kind`` = ``"wall"`` or ``"cpu"``)."""
        times = {"wall": self.wall, "cpu": self.cpu}[kind]
        return {k: float(median(v)) for k, v in times.items()}

    def ratio(self, numerator: str, denominator: str, kind: str = "wall") -> float:
        """Median time of ``numerator`` over median time of ``denominator`` (> 1: the denominator is faster)."""
        m = self.medians(kind)
        return m[numerator] / m[denominator]


def interleave(variants: Mapping[str, Callable[[int], object]], rounds: int, warmup: int = 0, device="cpu",
               seed_rounds: bool = False, clock: Callable[[], float] = time.perf_counter,
               cpu_clock: Callable[[], float] = time.process_time) -> InterleavedTimes:
    """Time ``variants[k](r)`` for rounds ``r = 0 .. warmup + rounds - 1``, every variant once per round.

    Round ``r`` runs the variants in their given order rotated left by ``r`` (two variants alternate who goes
    first). Rounds ``r < warmup`` are run and not recorded, so each variant gets ``rounds`` recorded times.
    Each call is timed by :func:`timed_call` (device synchronised around it). With ``seed_rounds`` every call of
    round ``r`` starts from ``torch.manual_seed(r)`` (untimed), so the variants of a round draw the same random
    numbers. Raises ``ValueError`` for no variants, ``rounds < 1`` or ``warmup < 0``.
    """
    names = list(variants)
    if not names:
        raise ValueError("interleave: no variants to time")
    if rounds < 1 or warmup < 0:
        raise ValueError(f"interleave: rounds must be >= 1 and warmup >= 0, got rounds={rounds}, warmup={warmup}")
    out = InterleavedTimes({k: [] for k in names}, {k: [] for k in names})
    for r in range(warmup + rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        out.order.append(order)
        for k in order:
            if seed_rounds:
                torch.manual_seed(r)
            wall, cpu = timed_call(variants[k], r, device=device, clock=clock, cpu_clock=cpu_clock)
            if r >= warmup:
                out.wall[k].append(wall)
                out.cpu[k].append(cpu)
    return out
