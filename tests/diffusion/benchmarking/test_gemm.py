"""sympe.diffusion.benchmarking.gemm: the profiler counts the matrix products of a known step."""
from __future__ import annotations

import pytest
import torch

from sympe.diffusion.benchmarking import GEMM_LEAF_OPS, gemm_share, profile_gemm


def known_step():
    """Per call: one addmm (Linear with bias), two mm (Linear without bias, x @ x.T), one bmm."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4, bias=False))
    a, b = torch.randn(3, 5, 6), torch.randn(3, 6, 2)

    def step(x):
        with torch.no_grad():
            net(x)
            torch.bmm(a, b)
            x @ x.T
    return step


def test_counts_the_matrix_products_of_a_known_module():
    inputs = [torch.randn(10, 8) for _ in range(3)]
    prof = profile_gemm(known_step(), inputs)
    assert prof.steps == 3
    assert prof.gemm_calls == {"aten::addmm": 3, "aten::mm": 6, "aten::bmm": 3}
    assert prof.gemm_calls_per_step == 4
    assert set(prof.gemm_calls) <= set(GEMM_LEAF_OPS)
    assert prof.gemm_us > 0 and prof.other_us > 0


def test_elementwise_work_has_no_gemm_time():
    prof = profile_gemm(lambda x: (x * 2).sin().exp(), [torch.randn(1000)] * 2)
    assert prof.gemm_calls == {} and prof.gemm_us == 0.0
    share = prof.ms_per_step()
    assert share["gemm_ms"] == 0.0 and share["other_ms"] > 0


def test_ms_per_step_divides_by_the_number_of_steps():
    share = gemm_share(known_step(), [torch.randn(10, 8)] * 2)
    assert set(share) == {"gemm_ms", "other_ms"} and share["gemm_ms"] > 0
    prof = profile_gemm(known_step(), [torch.randn(10, 8)] * 4)
    ms = prof.ms_per_step()
    assert ms["gemm_ms"] == pytest.approx(prof.gemm_us / 4 / 1e3)
    assert ms["other_ms"] == pytest.approx(prof.other_us / 4 / 1e3)
    with pytest.raises(ValueError, match="no inputs"):
        profile_gemm(known_step(), [])
