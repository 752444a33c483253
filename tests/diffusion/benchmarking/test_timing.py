"""sympe.diffusion.benchmarking.timing: what interleaved timing runs and records (fake clocks: no wall-clock
limits are asserted anywhere)."""
from __future__ import annotations

import pytest
import torch

from sympe.diffusion.benchmarking import InterleavedTimes, interleave, timed_call


class FakeClock:
    """A clock that moves only when the code under test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_variants(cost: dict, wall: FakeClock, cpu: FakeClock, calls: list):
    """Variant k run in round r costs cost[k] * (1 + r % 2) wall seconds and cost[k] / 2 CPU seconds."""
    def make(k):
        def run(r):
            calls.append((r, k))
            wall.now += cost[k] * (1 + r % 2)
            cpu.now += cost[k] / 2
        return run
    return {k: make(k) for k in cost}


def test_each_variant_runs_once_per_round_in_rotated_order_and_warmup_is_not_recorded():
    cost = {"a": 1.0, "b": 3.0, "c": 2.0}
    wall, cpu, calls = FakeClock(), FakeClock(), []
    t = interleave(fake_variants(cost, wall, cpu, calls), rounds=4, warmup=2, clock=wall, cpu_clock=cpu)
    assert isinstance(t, InterleavedTimes)
    # every variant the same number of times, once per round, rounds in order
    assert [r for r, _ in calls] == [r for r in range(6) for _ in range(3)]
    assert {k: sum(1 for _, v in calls if v == k) for k in cost} == {"a": 6, "b": 6, "c": 6}
    # the order rotates by one variant per round, so each variant goes first equally often
    assert t.order == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]] * 2
    assert [k for r, k in calls if r == 4] == ["b", "c", "a"]
    # only the 4 timed rounds (2..5) are recorded, and each time is that variant's own interval
    assert t.wall == {k: [c * f for f in (1, 2, 1, 2)] for k, c in cost.items()}
    assert t.cpu == {k: [c / 2] * 4 for k, c in cost.items()}


def test_two_variants_alternate_who_goes_first():
    wall, cpu, calls = FakeClock(), FakeClock(), []
    interleave(fake_variants({"x": 1.0, "y": 1.0}, wall, cpu, calls), rounds=5, warmup=1, clock=wall, cpu_clock=cpu)
    firsts = [calls[2 * r][1] for r in range(6)]
    assert firsts == ["x", "y", "x", "y", "x", "y"]


def test_one_median_per_variant_and_ratios_of_medians():
    cost = {"slow": 4.0, "fast": 1.0}
    wall, cpu = FakeClock(), FakeClock()
    t = interleave(fake_variants(cost, wall, cpu, []), rounds=3, warmup=0, clock=wall, cpu_clock=cpu)
    # rounds 0, 1, 2 cost factors 1, 2, 1 -> median factor 1
    assert t.medians() == {"slow": 4.0, "fast": 1.0}
    assert t.medians("cpu") == {"slow": 2.0, "fast": 0.5}
    assert t.ratio("slow", "fast") == 4.0
    assert t.ratio("fast", "slow", "cpu") == 0.25


def test_seeded_rounds_give_every_variant_of_a_round_the_same_random_numbers():
    draws: dict[str, list[float]] = {"a": [], "b": []}
    variants = {k: (lambda r, k=k: draws[k].append(float(torch.rand(1)))) for k in draws}
    interleave(variants, rounds=3, warmup=1, seed_rounds=True)
    assert draws["a"] == draws["b"]
    assert len(set(draws["a"])) == 4  # a different seed in every round
    draws = {"a": [], "b": []}
    interleave(variants, rounds=3, warmup=1)
    assert draws["a"] != draws["b"]


def test_timed_call_passes_arguments_and_measures_the_call_only():
    wall, cpu, seen = FakeClock(), FakeClock(), []

    def fn(x, y):
        seen.append((x, y))
        wall.now += 0.25
        cpu.now += 0.5

    wall.now = 100.0  # time before the call is not counted
    assert timed_call(fn, 1, 2, clock=wall, cpu_clock=cpu) == (0.25, 0.5)
    assert seen == [(1, 2)]
    w, c = timed_call(lambda: sum(range(1000)))  # the real clocks: two non-negative numbers
    assert w >= 0.0 and c >= 0.0


@pytest.mark.parametrize("kwargs", [{"variants": {}, "rounds": 1}, {"variants": {"a": print}, "rounds": 0},
                                    {"variants": {"a": print}, "rounds": 1, "warmup": -1}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match="interleave"):
        interleave(**kwargs)
