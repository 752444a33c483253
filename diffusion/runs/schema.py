"""The typed configs of the commands, and how a command composes and checks its config.

Every option's default, meaning and check is written once, in a dataclass:

* :mod:`~sympe.diffusion.runs.model_config`: :class:`ModelConfig` (``model``) and :class:`TrainConfig` (``train``);
* :mod:`~sympe.diffusion.runs.command_config`: :class:`SampleConfig` (``scripts/sample.py``) and
  :class:`EvaluateConfig` (``scripts/evaluate.py``);
* :mod:`~sympe.diffusion.runs.typed_config`: the machinery (:func:`build`, :func:`defaults`).

:func:`register_configs` stores the defaults in Hydra's ``ConfigStore`` (``model/graph_transformer``,
``train/default``, ``sample_schema``, ``evaluate_schema``); the YAML files under ``configs/`` only pick and
override (``configs/train/digress.yaml``, ``configs/experiment/*.yaml``). The nodes are stored as plain
mappings built from the dataclass defaults, not as typed nodes: Hydra's own type errors are several lines long
and cannot name the accepted values, so a composed group is checked by building its dataclass, whose
``__post_init__`` raises :class:`~sympe.diffusion.runs.options.ConfigError` with one line naming the option, the
value and the accepted values, before anything is loaded (:func:`check_train_config` and the others).

:func:`compose_config` composes a command's config from the shipped ``configs/`` (:data:`CONFIG_DIR`) outside a
command (tests, benchmarks, notebooks); :func:`model_arguments` turns (partial) ``model`` / ``train`` groups into
the constructor arguments of :class:`~sympe.diffusion.runs.model.DiscreteDiffusion`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.runs.command_config import (EvalOverrides, EvaluateConfig, InferenceOverrides, SampleConfig,
                                                 SamplingOptions)
from sympe.diffusion.runs.model_config import (FREE_ON_RESUME, NETWORK_KEYS, DiffusionConfig, EvalConfig, HiddenDims,
                                               MLPDims, ModelConfig, ObjectiveConfig, TrainConfig)
from sympe.diffusion.runs.options import SEED_MAX, ConfigError, Int
from sympe.diffusion.runs.typed_config import build, check_known_keys, defaults

__all__ = ["CONFIG_DIR", "MLPDims", "HiddenDims", "DiffusionConfig", "EvalConfig", "ObjectiveConfig", "ModelConfig",
           "TrainConfig", "SamplingOptions", "SampleConfig", "EvalOverrides", "InferenceOverrides", "EvaluateConfig",
           "NETWORK_KEYS", "FREE_ON_RESUME", "COMMAND_CONFIGS", "build", "defaults", "model_arguments",
           "register_configs", "compose_config", "check_train_config", "check_model_config", "check_sample_config",
           "check_evaluate_config"]

#: The shipped Hydra configs (``configs/`` of a checkout; ``sympe/configs`` of an installed package).
CONFIG_DIR = Path(importlib.util.find_spec("sympe.configs").submodule_search_locations[0])


def model_arguments(model=None, train=None, dataset: dict | None = None) -> dict:
    """The keyword arguments of :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` (all but ``info``) from a
    ``model`` and a ``train`` group: mappings (``DictConfig`` or dict) that may be partial (notebooks, tests:
    ``model_arguments({"n_layers": 1, "diffusion": {"T": 10}})``), completed with the defaults of
    :class:`ModelConfig` / :class:`TrainConfig` and checked as a command checks them (:class:`ConfigError`).
    ``dataset``: the ``{"name", "params"}`` recorded in the checkpoint (None: not recorded).

    ``condition`` is None for an unconditional model, else ``{"names", "dropout"}``: the caller replaces it with the
    spec fitted on the train split (:func:`sympe.datasets.conditions.attach_conditions`).

    Returns ``{"network", "diffusion", "optim", "eval", "x0_kernel", "objective", "dataset", "condition"}``."""
    def merged(cls, given):
        base = OmegaConf.create(defaults(cls))
        if given is not None:
            given = OmegaConf.to_container(given, resolve=True) if isinstance(given, DictConfig) else dict(given)
            unknown = [k for k in given if k not in base]
            if unknown:
                raise ConfigError(f"{cls.PREFIX}{unknown[0]} is not an option of {cls.PREFIX.rstrip('.')}; known: "
                                  + ", ".join(base.keys()))
            base = OmegaConf.merge(base, given)
        return OmegaConf.to_container(base, resolve=True)

    m, t = merged(ModelConfig, model), merged(TrainConfig, train)
    build(ModelConfig, m)
    build(TrainConfig, t)
    return {"network": {k: m[k] for k in NETWORK_KEYS}, "diffusion": m["diffusion"],
            "optim": {k: t[k] for k in ("lr", "weight_decay", "amsgrad", "lambda_E")}, "eval": m["eval"],
            "x0_kernel": m["x0_kernel"], "objective": m["train"], "dataset": dataset,
            "condition": {"names": list(m["condition"]), "dropout": m["condition_dropout"]} if m["condition"] else None}


# ====================================================================================== Hydra
def register_configs() -> None:
    """Store the defaults of the groups in Hydra's ``ConfigStore`` (idempotent): ``model/graph_transformer``,
    ``train/default``, ``sample_schema`` and ``evaluate_schema`` (the primary configs
    ``configs/sample/sample.yaml`` and ``configs/evaluate/evaluate.yaml`` extend the last two)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="model", name="graph_transformer", node=defaults(ModelConfig))
    cs.store(group="train", name="default", node=defaults(TrainConfig))
    cs.store(name="sample_schema", node=defaults(SampleConfig))
    cs.store(name="evaluate_schema", node=defaults(EvaluateConfig))


#: command -> (folder of CONFIG_DIR, primary config name), as the scripts' ``@hydra.main`` use them
COMMAND_CONFIGS = {"train": (".", "config"), "sample": ("sample", "sample"), "evaluate": ("evaluate", "evaluate")}


def compose_config(overrides=(), command: str = "train", config_dir: str | Path | None = None):
    """The composed config of ``command`` (``train``, ``sample`` or ``evaluate``; :data:`COMMAND_CONFIGS`) with
    ``overrides``, as the command would see it, from :data:`CONFIG_DIR` (or ``config_dir``). Raises ``KeyError``
    for another command."""
    from hydra import compose, initialize_config_dir

    folder, name = COMMAND_CONFIGS[command]
    register_configs()
    with initialize_config_dir(config_dir=str(Path(config_dir or CONFIG_DIR) / folder), version_base="1.3"):
        return compose(name, overrides=list(overrides))


# ====================================================================================== checks of a composed config
#: the top-level keys of a training config (configs/config.yaml) and of its ``paths`` group
TRAIN_TOP_KEYS = ("seed", "dataset", "model", "train", "paths")
PATHS_KEYS = ("data_root", "runs_root", "out_dir")


def check_train_config(cfg: DictConfig) -> TrainConfig:
    """``seed``, the ``train`` group and the top-level and ``paths`` keys (a key added with ``+`` that the config
    does not know is refused, naming the closest known key) of a training config; returns the built
    :class:`TrainConfig`."""
    check_known_keys([k for k in cfg.keys() if k != "hydra"], TRAIN_TOP_KEYS)
    check_known_keys(list(cfg.paths.keys()), PATHS_KEYS, "paths.")
    Int(0, SEED_MAX, what="random seed")("seed", cfg.seed)
    return build(TrainConfig, cfg.train)


def check_model_config(cfg: DictConfig) -> ModelConfig:
    """The ``model`` group of a training config; returns the built :class:`ModelConfig`."""
    return build(ModelConfig, cfg.model)


def check_sample_config(cfg: DictConfig) -> SampleConfig:
    """The options of ``scripts/sample.py`` (the checkpoint itself is checked when it is opened)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    return build(SampleConfig, values, "")


def check_evaluate_config(cfg: DictConfig) -> EvaluateConfig:
    """The options of ``scripts/evaluate.py``, ``model.*`` overrides included, and exactly one of ``checkpoint`` /
    ``samples`` (with ``dataset``). A bare ``nll_conventions=ours_plain``
    (no brackets) is made the one-item list it means, in ``cfg`` too (not read letter by letter)."""
    if isinstance(cfg.get("nll_conventions"), str):
        cfg.nll_conventions = [cfg.nll_conventions]
    values = OmegaConf.to_container(cfg, resolve=True)
    built = build(EvaluateConfig, values, "")
    if (built.checkpoint is None) == (built.samples is None):
        raise ConfigError("give exactly one of checkpoint=PATH (evaluate a model) or samples=FILE dataset=NAME "
                          "(score a sample file)")
    if built.targets is not None and built.samples is None:
        raise ConfigError("targets=FILE scores a samples file against the targets its samples were asked for: give "
                          "samples=FILE dataset=NAME too")
    if built.samples is not None and built.dataset is None:
        raise ConfigError("samples=FILE needs dataset=NAME (qm9, qm9_h, moses, planar, sbm, comm20, symmetric)")
    return built
