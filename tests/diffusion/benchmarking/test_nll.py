"""sympe.diffusion.benchmarking.nll: which NLL evaluations are timed, per graph, and the option restored."""
from __future__ import annotations

import pytest
import torch

from sympe.diffusion.benchmarking import time_nll
from sympe.diffusion.graph import DenseGraph


class FakeModel:
    """Records every ``nll`` call with the mixture option in force; ``fail_on`` raises on that estimator."""

    def __init__(self, mixture_draws=7, fail_on=None):
        self.mixture_draws, self.calls, self.fail_on, self.training = mixture_draws, [], fail_on, True

    def eval(self):
        self.training = False
        return self

    mixture_proposal = "prior"

    def set_eval_options(self, mixture_draws=None, mixture_proposal=None):
        if mixture_draws is not None:
            self.mixture_draws = mixture_draws
        if mixture_proposal is not None:
            self.mixture_proposal = mixture_proposal

    def nll(self, x, estimator="mc", generator=None):
        assert not torch.is_grad_enabled() and isinstance(generator, torch.Generator)
        if estimator == self.fail_on:
            raise RuntimeError("boom")
        self.calls.append((estimator, self.mixture_draws, x.batch_size) if self.mixture_proposal == "prior"
                          else (estimator, self.mixture_draws, self.mixture_proposal, x.batch_size))


def graph(B=3, n=4) -> DenseGraph:
    X = torch.zeros(B, n, dtype=torch.long)
    E = torch.zeros(B, n, n, dtype=torch.long)
    return DenseGraph.from_indices(X, E, torch.ones(B, n, dtype=torch.bool), 2, 2)


def test_one_warmup_then_one_timed_call_per_estimator_and_mixture_size():
    model = FakeModel()
    out = time_nll(model, graph(), mixture_draws=(2, 5), estimators=("mc", "exact"))
    assert list(out) == ["mc", "exact", "mixture2_mc", "mixture5_mc"]
    assert all(isinstance(v, float) and v >= 0 for v in out.values())
    assert model.calls == [("mc", 0, 3), ("mc", 0, 3), ("exact", 0, 3), ("mc", 2, 3), ("mc", 5, 3)]
    assert model.mixture_draws == 7 and not model.training


def test_mixture_option_is_restored_after_an_error():
    model = FakeModel(mixture_draws=3, fail_on="stratified")
    with pytest.raises(RuntimeError, match="boom"):
        time_nll(model, graph())
    assert model.mixture_draws == 3


def test_proposals_are_timed_for_a_rank_breaker_only():
    model = FakeModel()
    model.network = type("Net", (), {"breaker_draw": "ranks"})()
    out = time_nll(model, graph(), mixture_draws=(2,), estimators=("mc",), proposals=("canonical",))
    assert list(out) == ["mc", "mixture2_mc", "mixture2_canonical_mc"]
    assert model.calls[-1] == ("mc", 2, "canonical", 3)
    assert model.mixture_draws == 7 and model.mixture_proposal == "prior"
