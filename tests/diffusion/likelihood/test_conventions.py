"""Convention labels of the NLL (result keys): convention_name and parse_convention are inverse, bad labels refused."""
from __future__ import annotations

import pytest

from sympe.diffusion.likelihood.bound import convention_name, describe_convention
from sympe.diffusion.likelihood.nll_section import parse_convention


@pytest.mark.parametrize("kernel", ["plain", "reweighted"])
@pytest.mark.parametrize("mix,num,prop", [(0, 1, "prior"), (0, 4, "prior"), (16, 1, "prior"), (4, 1, "canonical"),
                                          (2, 1, "defensive"), (1, 1, "exact")])
def test_labels_round_trip(kernel, mix, num, prop):
    label = convention_name(False, kernel, mix, num, prop)
    opts = parse_convention(label)
    assert convention_name(False, opts["x0_kernel"], opts["mixture_draws"], opts["num_draws"],
                           opts["mixture_proposal"]) == label
    assert describe_convention(label)
    if prop == "exact":
        assert label == f"ours_{kernel}_mix_exact"
    elif mix:
        assert label == f"ours_{kernel}_mix{mix}_{prop}"


@pytest.mark.parametrize("bad", ["ours_plain_mix16", "ours_plain_mix0_prior", "ours_plain_mix4_best", "ours_plain_mix_4",
                                 "ours_other", "digress_mix4_prior", "ours_plain_avg"])
def test_bad_labels_name_the_forms(bad):
    with pytest.raises(ValueError, match="ours_<kernel>_mix<K>_<prior|canonical|defensive>"):
        parse_convention(bad)
    assert parse_convention("digress")["digress_compat"]
