"""Checks of user-facing option values, run before anything is loaded.

Hydra passes command-line values through as YAML scalars (``train.max_steps=abc`` arrives as the string
``"abc"``), and most of them would otherwise fail late (after minutes of data loading) or deep inside
PyTorch / Lightning. Each check here raises :class:`ConfigError` with one line that names the option, the
value given and the values accepted, e.g.::

    train.batch_size=0 is not accepted: expected an integer >= 1 (graphs per training batch)

An option is described by a small rule (:class:`Int`, :class:`Float`, :class:`Choice`, :class:`Bool`,
:class:`TimeLimit`, :class:`Devices`); :data:`TRAIN_OPTIONS`, :data:`SAMPLE_OPTIONS` and
:data:`EVALUATE_OPTIONS` hold the rules of the three commands' option groups, and
:func:`check_model_config` checks the ``model`` group against the library's own registries (schedules,
transitions, structural features, symmetry breakers).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

__all__ = ["ConfigError", "user_errors", "Int", "Float", "Choice", "Bool", "AutoBool", "TimeLimit", "Devices", "check_options",
           "check_train_config", "check_model_config", "check_inference_options", "TRAIN_OPTIONS", "SAMPLE_OPTIONS", "EVALUATE_OPTIONS",
           "DEVICE_PATTERN"]


class ConfigError(ValueError):
    """An option value that is not accepted; the message names the option and the accepted values."""

    user_error = True


def user_errors(main):
    """Decorate a command's main function: an error of the user's input (an exception whose class sets
    ``user_error = True``: :class:`ConfigError`, :class:`~sympe.diffusion.runs.checkpoint_callbacks.CheckpointError`,
    ``sympe.datasets.config.DatasetConfigError``) ends the command with its one-line message on stderr and
    exit status 2, without a traceback. Other exceptions propagate unchanged."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except Exception as exc:
            if getattr(exc, "user_error", False):
                print(f"error: {exc}", file=sys.stderr, flush=True)
                raise SystemExit(2) from None
            raise

    return wrapper


def _show(value) -> str:
    return "null" if value is None else (repr(value) if isinstance(value, str) and value == "" else str(value))


def _fail(key: str, value, expected: str) -> ConfigError:
    return ConfigError(f"{key}={_show(value)} is not accepted: expected {expected}")


@dataclass
class Int:
    """An integer ``>= min`` (and ``<= max``); ``none`` allows null; ``special`` lists extra accepted values."""

    min: int | None = None
    max: int | None = None
    none: bool = False
    what: str = ""
    special: tuple = ()

    def expected(self) -> str:
        parts = ["an integer"]
        if self.min is not None:
            parts.append(f">= {self.min}")
        if self.max is not None:
            parts.append(f"<= {self.max}")
        text = " ".join(parts)
        extra = [f"{s}" for s in self.special] + (["null"] if self.none else [])
        if extra:
            text += " or " + " or ".join(extra)
        return text + (f" ({self.what})" if self.what else "")

    def __call__(self, key: str, value):
        if value is None and self.none:
            return None
        if value in self.special and not isinstance(value, bool):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _fail(key, value, self.expected())
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise _fail(key, value, self.expected())
        return value


@dataclass
class Float:
    """A real number in the interval given by ``min`` / ``max`` (``open_min`` / ``open_max`` exclude the end)."""

    min: float | None = None
    max: float | None = None
    open_min: bool = False
    open_max: bool = False
    none: bool = False
    what: str = ""

    def expected(self) -> str:
        lo = "(" if self.open_min else "["
        hi = ")" if self.open_max else "]"
        lo_v = "-inf" if self.min is None else f"{self.min:g}"
        hi_v = "inf" if self.max is None else f"{self.max:g}"
        text = f"a number in {lo}{lo_v}, {hi_v}{hi}" + (" or null" if self.none else "")
        return text + (f" ({self.what})" if self.what else "")

    def __call__(self, key: str, value):
        if value is None and self.none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, value, self.expected())
        v = float(value)
        if self.min is not None and (v < self.min or (self.open_min and v == self.min)):
            raise _fail(key, value, self.expected())
        if self.max is not None and (v > self.max or (self.open_max and v == self.max)):
            raise _fail(key, value, self.expected())
        return value


@dataclass
class Choice:
    choices: tuple
    what: str = ""

    def __call__(self, key: str, value):
        if isinstance(value, bool) or value not in self.choices:
            raise _fail(key, value, "one of " + ", ".join(_show(c) for c in self.choices)
                        + (f" ({self.what})" if self.what else ""))
        return value


@dataclass
class RegistryChoice:
    """One of the names of a registry dict, imported only when a value is checked (``module``, ``name``)."""
    module: str
    name: str
    what: str = ""

    def __call__(self, key: str, value):
        import importlib

        registry = getattr(importlib.import_module(self.module), self.name)
        return Choice(tuple(registry), self.what)(key, value)


@dataclass
class Bool:
    def __call__(self, key: str, value):
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
        return value


@dataclass
class AutoBool:
    """``auto``, true or false (Hydra reads ``true`` / ``false`` as booleans)."""
    what: str = ""

    def __call__(self, key: str, value):
        if isinstance(value, bool) or value == "auto":
            return value
        raise _fail(key, value, "one of auto, true, false" + (f" ({self.what})" if self.what else ""))


@dataclass
class TimeLimit:
    """null, ``"DD:HH:MM:SS"`` or a dict of ``timedelta`` arguments (Lightning's ``max_time``)."""

    def __call__(self, key: str, value):
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d+:\d{2}:\d{2}:\d{2}", value):
            return value
        raise _fail(key, value, 'null or a duration "DD:HH:MM:SS" (e.g. "00:12:00:00" for 12 hours)')


DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"


@dataclass
class Devices:
    """Lightning's ``devices``: an integer >= 1, ``"auto"``, or a list of device indices."""

    def __call__(self, key: str, value):
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and v >= 0 for v in value):
            return value
        raise _fail(key, value, 'an integer >= 1 (number of devices), "auto", or a list of device indices')


@dataclass
class Device:
    """Where sampling / evaluation runs: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""

    def __call__(self, key: str, value):
        if isinstance(value, str) and re.fullmatch(DEVICE_PATTERN, value):
            return value
        raise _fail(key, value, "one of auto, cpu, cuda, cuda:N, mps")


PRECISIONS = ("32-true", "32", 32, "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64", 64, "16", 16,
              "bf16")

TRAIN_OPTIONS = {
    "batch_size": Int(1, what="graphs per training batch"),
    "eval_batch_size": Int(1, none=True, what="graphs per validation / test batch; null = batch_size"),
    "num_workers": Int(0, what="data loading processes; 0 = in the main process"),
    "limit_train_graphs": Int(1, none=True, what="train on the first N graphs only"),
    "limit_eval_graphs": Int(1, none=True, what="validate / test on the first N graphs only"),
    "max_epochs": Int(1, special=(-1,), what="-1 = no limit"),
    "max_steps": Int(1, special=(-1,), what="optimizer steps; -1 = no limit"),
    "max_time": TimeLimit(),
    "lr": Float(0, open_min=True),
    "weight_decay": Float(0),
    "amsgrad": Bool(),
    "lambda_E": Float(0, what="weight of the edge cross-entropy"),
    "gradient_clip_val": Float(0, open_min=True, none=True, what="null disables clipping"),
    "ema_decay": Float(0, 1, open_max=True, what="0 disables the EMA of weights"),
    "check_val_every_n_epoch": Int(1, none=True),
    "val_check_interval": Float(0, open_min=True, none=True,
                                what="an integer = every that many train steps, a fraction <= 1 = of an epoch"),
    "limit_val_batches": Float(0, what="an integer = batches, a fraction <= 1 = of the split"),
    "limit_test_batches": Float(0, what="an integer = batches, a fraction <= 1 = of the split"),
    "log_every_n_steps": Int(1),
    "accelerator": Choice(("auto", "cpu", "gpu", "cuda", "mps", "tpu")),
    "devices": Devices(),
    "num_nodes": Int(1, what="machines"),
    "precision": Choice(PRECISIONS),
    "compile": Bool(),
    "logger": Choice(("csv", "tensorboard", "both")),
    "progress_bar": Bool(),
    "model_summary": Bool(),
    "ckpt_every_n_steps": Int(0, what="write last.ckpt every N optimizer steps; 0 = off"),
    "ckpt_every_minutes": Float(0, what="write last.ckpt every M minutes of training; 0 = off"),
    "test_after_fit": Bool(),
    "summary_only": Bool(),
    "deterministic": Bool(),
}

SAMPLE_OPTIONS = {
    "num_samples": Int(1, what="graphs to sample"),
    "batch_size": Int(1, what="graphs sampled at once"),
    "steps": Int(1, none=True, what="reverse steps; null = all T"),
    "time_distortion": RegistryChoice("sympe.diffusion.process.discrete_process", "TIME_DISTORTIONS",
                                      "spacing of the strided steps (DeFoG's time distortions)"),
    "n_nodes": Int(1, none=True, what="nodes of every sampled graph; null = drawn from the train distribution"),
    "chain_snapshots": Int(0),
    "relaxed": Bool(),
    "grid": Int(0, what="samples drawn in samples.png"),
    "seed": Int(),
    "device": Device(),
}

EVALUATE_OPTIONS = {
    "num_samples": Int(0, what="graphs sampled for the sample metrics; 0 = NLL only"),
    "sample_batch_size": Int(1),
    "steps": Int(1, none=True, what="reverse steps when sampling; null = all T"),
    "time_distortion": RegistryChoice("sympe.diffusion.process.discrete_process", "TIME_DISTORTIONS",
                                      "spacing of the strided steps (DeFoG's time distortions)"),
    "nll_estimator": Choice(("mc", "stratified", "exact", "both", "all", "none")),
    "exact_nll_graphs": Int(1, none=True),
    "leak_test_permutations": Int(0, what="random relabellings per graph in the node-order leak test; 0 = off"),
    "leak_test_estimator": Choice(("mc", "stratified", "exact")),
    "leak_test_graphs": Int(1, none=True),
    "limit_test_graphs": Int(1, none=True),
    "batch_size": Int(1, what="graphs per NLL batch"),
    "fill_hydrogens": Bool(),
    "relaxed": Bool(),
    "fcd": AutoBool("Fréchet ChemNet Distance of molecules; auto = when fcd-torch is installed"),
    "seed": Int(),
    "device": Device(),
}


def check_options(cfg: DictConfig, rules: dict, prefix: str = "") -> None:
    """Apply ``rules`` (option name -> rule) to ``cfg``; raise :class:`ConfigError` at the first bad value.
    Options missing from ``cfg`` are skipped (Hydra already refuses unknown ones)."""
    for name, rule in rules.items():
        if name not in cfg:
            continue
        value = OmegaConf.select(cfg, name) if isinstance(cfg, DictConfig) else cfg[name]
        rule(prefix + name, value)


def check_sampling_grid(cfg: DictConfig) -> None:
    """``time_distortion`` other than ``identity`` needs ``steps`` = K (strided sampling)."""
    if cfg.get("time_distortion", "identity") != "identity" and cfg.get("steps") is None:
        raise ConfigError(f"time_distortion={cfg.time_distortion} is not accepted with steps=null: a time distortion "
                          "spaces strided steps; set steps=K (e.g. steps=50) or time_distortion=identity")


def check_train_config(cfg: DictConfig) -> None:
    """The ``train`` group and ``seed`` of a training config, and the interplay of their values."""
    Int()("seed", cfg.seed)
    check_options(cfg.train, TRAIN_OPTIONS, "train.")
    t = cfg.train
    vci = t.val_check_interval
    if isinstance(vci, float) and vci > 1:
        raise _fail("train.val_check_interval", vci, "an integer number of steps or a fraction of an epoch <= 1")
    for key in ("limit_val_batches", "limit_test_batches"):
        v = t[key]
        if isinstance(v, float) and v > 1:
            raise _fail(f"train.{key}", v, "an integer number of batches or a fraction <= 1")
    if t.max_epochs == -1 and t.max_steps == -1 and t.max_time is None:
        raise ConfigError("train.max_epochs=-1, train.max_steps=-1 and train.max_time=null: the run would never stop; "
                          "set one of them")


def check_model_config(cfg: DictConfig) -> None:
    """The ``model`` group, against the library's registries (names of schedules, transitions, features, breakers)."""
    m = cfg.model
    Int(1, what="transformer layers")("model.n_layers", m.n_layers)
    Float(0, 1, open_max=True)("model.dropout", m.dropout)
    Bool()("model.molecular_features", m.molecular_features)
    Bool()("model.recompute_attention", m.recompute_attention)
    for group, keys in (("hidden_mlp_dims", ("X", "E", "y")),
                        ("hidden_dims", ("dx", "de", "dy", "n_head", "dim_ffX", "dim_ffE", "dim_ffy"))):
        d = m[group]
        if not isinstance(d, (dict, DictConfig)):
            raise _fail(f"model.{group}", d, "a mapping {" + ", ".join(f"{k}: int" for k in keys) + "}")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ConfigError(f"model.{group} lacks {missing}; it needs " + ", ".join(keys))
        for k in keys:
            Int(1)(f"model.{group}.{k}", d[k])
    if m.hidden_dims.dx % m.hidden_dims.n_head or m.hidden_dims.de % m.hidden_dims.n_head:
        raise ConfigError(f"model.hidden_dims.n_head={m.hidden_dims.n_head} must divide dx={m.hidden_dims.dx} "
                          f"and de={m.hidden_dims.de}")
    from sympe.diffusion.nn.features import ExtraFeatures
    from sympe.symbreak.breakers import BREAKERS

    Choice(tuple(ExtraFeatures.KINDS), "structural features of the noisy graph")("model.features", m.features)
    Choice(tuple(BREAKERS), "symmetry breaker")("model.symbreak", m.symbreak)
    T = Int(1, what="diffusion steps")("model.diffusion.T", m.diffusion.T)
    from sympe.diffusion.process.schedule import make_schedule

    try:
        make_schedule(m.diffusion.schedule, T)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"model.diffusion.schedule={_show(m.diffusion.schedule)}: {exc}") from None
    from sympe.diffusion.process.transition import make_transition

    import torch

    uniform = torch.tensor([0.5, 0.5])
    try:
        make_transition(m.diffusion.transition, 2, 2, node_marginals=uniform, edge_marginals=uniform)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"model.diffusion.transition={_show(m.diffusion.transition)}: {exc}") from None
    check_inference_options(m, T=T)
    from sympe.diffusion.objectives.mixture import WEIGHTINGS

    train = m.get("train") or {}
    Int(0, what="g~ draws of the mixture objective; 0 = cross-entropy")("model.train.mixture_draws",
                                                                        train.get("mixture_draws", 0))
    Choice(WEIGHTINGS, "edge weighting of the mixture objective")("model.train.weighting",
                                                                  train.get("weighting", "digress"))


def check_inference_options(m, T: int | None = None, none: bool = False) -> None:
    """``model.x0_kernel`` and ``model.eval.*`` of a ``model`` group (training config, or the overrides of
    ``evaluate.py``, where ``none=True`` accepts null = as in the checkpoint). ``T`` bounds ``num_bins``
    when known. Raises :class:`ConfigError` naming the option."""
    kernel = m.get("x0_kernel", None if none else "plain")
    if not (none and kernel is None):
        from sympe.diffusion.process.discrete_process import REVERSE_KERNELS

        Choice(tuple(REVERSE_KERNELS), "reverse kernel from p^(x0|z_t)")("model.x0_kernel", kernel)
    ev = m.get("eval") or {}
    digress = ev.get("digress_compat", None if none else False)
    if not (none and digress is None):
        Bool()("model.eval.digress_compat", digress)
    num_draws = Int(1, none=True, what="draws of the symmetry breaker per step")("model.eval.num_draws",
                                                                               ev.get("num_draws"))
    mix = Int(0, none=True, what="0 = per-draw bound, K >= 1 = mixture bound with K draws")(
        "model.eval.mixture_draws", ev.get("mixture_draws"))
    Int(1, T, none=True, what="time bins of the stratified / exact NLL breakdown; null = min(T, 10)")(
        "model.eval.num_bins", ev.get("num_bins"))
    if mix and (digress or (num_draws or 1) > 1):
        raise ConfigError(f"model.eval.mixture_draws={mix} (the mixture bound) cannot be combined with "
                          "model.eval.digress_compat=true or model.eval.num_draws > 1")
