"""sympe.diffusion.runs: training runs, the only part of sympe that imports Lightning or Hydra.

* :mod:`~sympe.diffusion.runs.schema`: the typed configs (every option's default, meaning and check) and how a
  command composes and checks its config; :mod:`~sympe.diffusion.runs.options`: the value rules, ``ConfigError``;
* :mod:`~sympe.diffusion.runs.model`: :class:`DiscreteDiffusion` (the LightningModule), :func:`load_model`;
* :mod:`~sympe.diffusion.runs.training`: model and trainer from a config, :func:`train`;
* run folders, checkpoints and resuming: :mod:`~sympe.diffusion.runs.run_folder`,
  :mod:`~sympe.diffusion.runs.checkpoint_callbacks`, :mod:`~sympe.diffusion.runs.checkpoint_files`,
  :mod:`~sympe.diffusion.runs.interrupt`, :mod:`~sympe.diffusion.runs.rng_state`,
  :mod:`~sympe.diffusion.runs.metrics_log`; progress: :mod:`~sympe.diffusion.runs.progress`;
* :mod:`~sympe.diffusion.runs.report`: the symmetry-breaking benchmark report.
"""
from sympe.diffusion.runs.model import DiscreteDiffusion, load_model, upgrade_hparams
from sympe.diffusion.runs.options import ConfigError
from sympe.diffusion.runs.run_folder import RunFolder, resolve_run
from sympe.diffusion.runs.schema import (EvaluateConfig, ModelConfig, SampleConfig, TrainConfig, compose_config,
                                         model_arguments, register_configs)
from sympe.diffusion.runs.training import build_model, build_trainer, load_for_inference, train

__all__ = ["DiscreteDiffusion", "load_model", "upgrade_hparams", "ConfigError", "RunFolder", "resolve_run",
           "ModelConfig", "TrainConfig", "SampleConfig", "EvaluateConfig", "compose_config", "model_arguments",
           "register_configs", "build_model", "build_trainer", "load_for_inference", "train"]
