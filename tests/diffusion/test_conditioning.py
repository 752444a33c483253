"""ConditionSpec: standardisation with the train split's statistics, one-hot categories, presence bits, the null
condition, the training dropout's frequencies, range checks, and the round trip through a checkpoint dict."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sympe.diffusion.conditioning import RANGE_MARGIN_STD, ConditionError, ConditionSpec


def spec(dropout=0.1):
    values = {"logp": [1.0, 2.0, None, 4.0, 3.0], "rings": [0, 1, 1, 2, "x"][:4] + [None]}
    return ConditionSpec.fit(values, {"logp": "continuous", "rings": "categorical"}, dropout,
                             tolerances={"logp": 0.5})


def test_fit_uses_the_train_values_that_are_known():
    s = spec()
    p = s.property("logp")
    known = np.array([1.0, 2.0, 4.0, 3.0])
    assert p.mean == pytest.approx(known.mean()) and p.std == pytest.approx(known.std()) and p.missing == 1
    assert (p.low, p.high) == (1.0, 4.0)
    assert s.property("rings").categories == [0, 1, 2]
    assert s.width == 1 + 3 + 2  # a value, a one-hot of 3, two presence bits


def test_encode_standardises_one_hots_and_marks_presence():
    s = spec()
    p = s.property("logp")
    y = s.encode([{"logp": 2.5, "rings": 2}, {"rings": 1.0}, {}])
    assert y.shape == (3, 6)
    assert y[0, 0] == pytest.approx((2.5 - p.mean) / p.std)
    assert y[0, 1:4].tolist() == [0, 0, 1] and y[0, 4:].tolist() == [1, 1]
    assert y[1, 0] == 0 and y[1, 1:4].tolist() == [0, 1, 0] and y[1, 4:].tolist() == [0, 1]  # 1.0 is category 1
    assert torch.equal(y[2], s.null(1)[0])
    assert s.decode(y) == [{"logp": 2.5, "rings": 2}, {"rings": 1}, {}]


def test_targets_are_checked_against_the_train_range_and_categories():
    s = spec()
    p = s.property("logp")
    s.check_value("logp", p.high + 0.99 * RANGE_MARGIN_STD * p.std)
    with pytest.raises(ConditionError, match=r"logp=.* is outside the range .* train split's \[1, 4\]"):
        s.check_value("logp", p.high + 1.01 * RANGE_MARGIN_STD * p.std)
    with pytest.raises(ConditionError, match="not a number"):
        s.check_value("logp", "high")
    with pytest.raises(ConditionError, match=r"categories \[0, 1, 2\] only"):
        s.encode([{"rings": 7}])
    with pytest.raises(ConditionError, match="'qed' is not a property this model was trained on; it knows"):
        s.encode([{"qed": 0.5}])
    # the dataset's own graphs: an unseen category is encoded as not given
    assert s.encode([{"rings": 7}], strict=False).sum() == 0


def test_a_property_with_nothing_to_condition_on_is_refused():
    with pytest.raises(ConditionError, match="no value on any train graph"):
        ConditionSpec.fit({"a": [None, float("nan")]}, {"a": "continuous"}, 0.1)
    with pytest.raises(ConditionError, match="single value"):
        ConditionSpec.fit({"a": ["x", "x"]}, {"a": "categorical"}, 0.1)
    with pytest.raises(ConditionError, match="condition_dropout"):
        ConditionSpec.fit({"a": [1.0, 2.0]}, {"a": "continuous"}, 1.0)


def test_the_training_dropout_has_the_stated_frequencies():
    s = spec(dropout=0.2)
    B = 40_000
    y = s.encode([{"logp": 2.0, "rings": 1}] * B)
    g = torch.Generator().manual_seed(0)
    d = s.drop(y, generator=g)
    present = d[:, 4:]
    none = (present.sum(1) == 0).float().mean().item()
    both = (present.sum(1) == 2).float().mean().item()
    # whole condition dropped w.p. p; otherwise each property w.p. p: P(none) = p + (1-p) p^2, P(both) = (1-p)^3
    p = 0.2
    assert none == pytest.approx(p + (1 - p) * p * p, abs=0.01)
    assert both == pytest.approx((1 - p) ** 3, abs=0.01)
    # a dropped property has its block zeroed together with its presence bit
    assert torch.all(d[present[:, 0] == 0, 0] == 0) and torch.all(d[present[:, 1] == 0, 1:4] == 0)
    assert torch.equal(s.drop(y[:5], generator=torch.Generator().manual_seed(1)),
                       s.drop(y[:5], generator=torch.Generator().manual_seed(1)))
    assert torch.equal(spec(dropout=0.0).drop(y), y)


def test_the_spec_survives_a_checkpoint_round_trip():
    s = spec()
    t = ConditionSpec.from_dict(s.to_dict())
    rows = [{"logp": 3.5, "rings": 0}]
    assert torch.equal(s.encode(rows), t.encode(rows)) and t.dropout == s.dropout and t.names == ["logp", "rings"]
    assert s.property("logp").tolerance == 0.5
