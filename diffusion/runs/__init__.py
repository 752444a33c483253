"""sympe.diffusion.runs: training runs, the only part of sympe that imports Lightning or Hydra.

* :mod:`~sympe.diffusion.runs.schema`: the typed configs (every option's default, meaning and check) and how a
  command composes and checks its config; :mod:`~sympe.diffusion.runs.options`: the value rules, ``ConfigError``;
* :mod:`~sympe.diffusion.runs.model`: :class:`DiscreteDiffusion` (the LightningModule), :func:`load_model`;
* :mod:`~sympe.diffusion.runs.training`: model and trainer from a config, :func:`train`;
* run folders, checkpoints and resuming: :mod:`~sympe.diffusion.runs.run_folder`,
  :mod:`~sympe.diffusion.runs.checkpoint_callbacks`, :mod:`~sympe.diffusion.runs.checkpoint_files`,
  :mod:`~sympe.diffusion.runs.interrupt`, :mod:`~sympe.diffusion.runs.rng_state`,
  :mod:`~sympe.diffusion.runs.metrics_log`; progress: :mod:`~sympe.diffusion.runs.progress`;
* :mod:`~sympe.diffusion.runs.output_paths`: where a command writes (claimed, locked, checked, never replaced);
* :mod:`~sympe.diffusion.runs.pretrained`: the models that ship with the package (``checkpoint=pretrained:qm9``);
* :mod:`~sympe.diffusion.runs.report`: the symmetry-breaking benchmark report.

The names below are imported on first use (PEP 562): importing one module of this package (the commands import
``options`` and ``schema`` before Hydra configures logging) must not import Lightning, whose loggers would then
ignore the job's logging config.
"""
import importlib

#: public name -> module of sympe.diffusion.runs that defines it
_EXPORTS = {
    "DiscreteDiffusion": "model", "load_model": "model", "upgrade_hparams": "model",
    "ConfigError": "options", "RunFolder": "run_folder", "resolve_run": "run_folder",
    "OutputError": "output_paths", "claim_folder": "output_paths", "FolderLock": "output_paths",
    "write_new_json": "output_paths",
    "load_pretrained": "pretrained", "export_weights": "pretrained", "resolve_checkpoint": "pretrained",
    "ModelConfig": "schema", "TrainConfig": "schema", "SampleConfig": "schema", "EvaluateConfig": "schema",
    "compose_config": "schema", "model_arguments": "schema", "register_configs": "schema",
    "build_model": "training", "build_trainer": "training", "load_for_inference": "training", "train": "training",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"sympe.diffusion.runs.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sympe.diffusion.runs' has no attribute {name!r}")
