"""sympe.diffusion.likelihood: the test NLL (nats per graph) of a diffusion model, and what it can show (plain torch).

* :mod:`~sympe.diffusion.likelihood.bound`: the variational bound, term by term, and its estimators (mc,
  stratified, exact);
* :mod:`~sympe.diffusion.likelihood.mixture_bound`: the importance-weighted bound of the g~-mixture model;
* :mod:`~sympe.diffusion.likelihood.digress_compat`: DiGress's published formula, for comparison only;
* :mod:`~sympe.diffusion.likelihood.leak_test`: does the NLL depend on the stored node order?
* :mod:`~sympe.diffusion.likelihood.nll_section`: every convention x estimator of an evaluation, with the floor.
"""
from sympe.diffusion.likelihood.bound import (DEFAULT_NUM_BINS, ESTIMATORS, convention_name, describe_convention,
                                              evaluate_nll, nll_summary, nll_terms, summarize_terms, time_bins)
from sympe.diffusion.likelihood.leak_test import LeakTestResult, leak_test
from sympe.diffusion.likelihood.mixture_bound import mixture_diffusion_term, mixture_reconstruction_term
from sympe.diffusion.likelihood.nll_section import ESTIMATOR_CHOICES, estimator_list, nll_section, parse_convention

__all__ = ["ESTIMATORS", "ESTIMATOR_CHOICES", "DEFAULT_NUM_BINS", "time_bins", "convention_name", "describe_convention",
           "nll_terms", "nll_summary", "evaluate_nll", "summarize_terms", "mixture_diffusion_term",
           "mixture_reconstruction_term", "LeakTestResult", "leak_test", "nll_section", "parse_convention",
           "estimator_list"]
