"""sympe.diffusion.process: the forward process and the reverse kernel (plain torch).

* :mod:`~sympe.diffusion.process.schedule`: β_t and ᾱ_t (cosine, linear);
* :mod:`~sympe.diffusion.process.transition`: the categorical transitions (uniform, marginal, absorbing);
* :mod:`~sympe.diffusion.process.categorical`: per-variable draws and exact Bayes posteriors;
* :mod:`~sympe.diffusion.process.discrete_process`: :class:`DiscreteProcess`, the one object that noises, gives
  posteriors and reverse kernels, the prior and the time grid;
* :mod:`~sympe.diffusion.process.sampling`: ancestral sampling of graphs with a denoiser.
"""
from sympe.diffusion.process.categorical import (model_posterior, posterior, posterior_all_x0, reweighted_posterior,
                                                 sample_categorical)
from sympe.diffusion.process.discrete_process import (REVERSE_KERNELS, TIME_DISTORTIONS, DiscreteProcess, ModelFn,
                                                      predict_x0, timestep_schedule, uniform_times)
from sympe.diffusion.process.sampling import SamplingInterrupted, reverse_chain, sample_graphs, sample_n_nodes
from sympe.diffusion.process.schedule import (CosineSchedule, LinearAlphaBarSchedule, LinearBetaSchedule,
                                              NoiseSchedule, make_schedule,
                                              schedule_needs_exact_limit)
from sympe.diffusion.process.transition import (AbsorbingTransition, MarginalTransition, Transition,
                                                UniformTransition, make_transition)

__all__ = ["NoiseSchedule", "CosineSchedule", "LinearAlphaBarSchedule", "LinearBetaSchedule", "make_schedule", "schedule_needs_exact_limit",
           "Transition", "UniformTransition", "MarginalTransition", "AbsorbingTransition", "make_transition",
           "sample_categorical", "posterior", "posterior_all_x0", "model_posterior", "reweighted_posterior",
           "DiscreteProcess", "ModelFn", "REVERSE_KERNELS", "TIME_DISTORTIONS", "timestep_schedule", "uniform_times",
           "predict_x0", "sample_graphs", "reverse_chain", "sample_n_nodes", "SamplingInterrupted"]
