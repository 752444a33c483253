"""The typed configs of the commands: every option, its default, its meaning and its check, once.

Each option group is a dataclass; its fields hold the defaults (the only place they are written), a comment
with the meaning, and a rule of :mod:`~sympe.diffusion.runs.options` that checks a value:

* :class:`ModelConfig` (``model``: the denoiser, the process, inference options, the training objective),
  with :class:`MLPDims`, :class:`HiddenDims`, :class:`DiffusionConfig`, :class:`EvalConfig`,
  :class:`ObjectiveConfig`;
* :class:`TrainConfig` (``train``: batches, budget, optimizer, checkpoints, logging);
* :class:`SampleConfig` (``scripts/sample.py``) and :class:`EvaluateConfig` (``scripts/evaluate.py``), which
  share :class:`SamplingOptions`; :class:`InferenceOverrides` is evaluate's ``model`` group (null = as trained).

:func:`register_configs` stores them in Hydra's ``ConfigStore`` (``model/graph_transformer``,
``train/default``, ``sample_schema``, ``evaluate_schema``); the YAML files under ``configs/`` only pick and
override (``configs/train/digress.yaml``, ``configs/experiment/*.yaml``). The nodes are stored as plain
mappings built from the dataclass defaults, not as typed nodes: Hydra's own type errors are several lines
long and cannot name the accepted values, so a composed group is checked by building its dataclass
(:func:`build`), whose ``__post_init__`` raises :class:`~sympe.diffusion.runs.options.ConfigError` with one
line naming the option, the value and the accepted values, before anything is loaded.

:func:`compose_config` composes a command's config from the shipped ``configs/`` folder (:data:`CONFIG_DIR`)
outside a command (tests, benchmarks, reports).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.nn.features import ExtraFeatures
from sympe.diffusion.objectives.mixture import WEIGHTINGS
from sympe.diffusion.process.discrete_process import REVERSE_KERNELS, TIME_DISTORTIONS
from sympe.diffusion.process.schedule import make_schedule
from sympe.diffusion.process.transition import make_transition
from sympe.diffusion.runs.options import (AutoBool, Bool, Choice, ConfigError, Device, Devices, Float, Int, TimeLimit,
                                          fail, show)
from sympe.symbreak.breakers import BREAKERS

__all__ = ["CONFIG_DIR", "MLPDims", "HiddenDims", "DiffusionConfig", "EvalConfig", "ObjectiveConfig", "ModelConfig",
           "TrainConfig", "SamplingOptions", "SampleConfig", "EvalOverrides", "InferenceOverrides", "EvaluateConfig",
           "NETWORK_KEYS", "FREE_ON_RESUME", "COMMAND_CONFIGS", "build", "defaults", "model_arguments", "register_configs", "compose_config",
           "check_train_config", "check_model_config", "check_sample_config", "check_evaluate_config"]

#: The shipped Hydra configs (``configs/`` of a checkout; ``sympe/configs`` of an installed package).
CONFIG_DIR = Path(importlib.util.find_spec("sympe.configs").submodule_search_locations[0])


def opt(default=None, rule=None, *, factory=None, free_on_resume: bool = False):
    """A config field: its default (or ``factory`` for a mutable one), the rule that checks a value
    (:mod:`~sympe.diffusion.runs.options`; None = any value) and whether a resumed run may change it."""
    meta = {"rule": rule, "free_on_resume": free_on_resume}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Schema:
    """Base of the config dataclasses: ``PREFIX`` is the option path of the group (e.g. ``"model.diffusion."``);
    ``COMPLETE`` groups must be given whole when given as a mapping (no key filled in from a default)."""

    PREFIX: ClassVar[str] = ""
    COMPLETE: ClassVar[bool] = False

    def __post_init__(self):
        for f in dataclasses.fields(self):
            rule = f.metadata.get("rule")
            if rule is not None:
                setattr(self, f.name, rule(self.PREFIX + f.name, getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Checks of several options together (after each option's own rule)."""


def _nested_types(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and issubclass(hints[f.name], Schema)}


def build(cls, values, prefix: str | None = None):
    """The dataclass ``cls`` from a mapping (a composed group, ``DictConfig`` or dict): nested groups are built
    recursively, a key the group does not have raises :class:`ConfigError` naming it and the known keys, and
    every value passes its rule (``__post_init__``). Missing keys take their defaults, except in ``COMPLETE``
    groups. Returns the dataclass instance."""
    prefix = cls.PREFIX if prefix is None else prefix
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, dict):
        names = ", ".join(f"{f.name}: ..." for f in dataclasses.fields(cls))
        raise fail(prefix.rstrip("."), values, "a mapping {" + names + "}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]} is not an option of {prefix.rstrip('.') or 'this command'}; "
                          f"known: {', '.join(names)}")
    if cls.COMPLETE:
        missing = [k for k in names if k not in values]
        if missing:
            raise ConfigError(f"{prefix.rstrip('.')} lacks {missing}; it needs " + ", ".join(names))
    kwargs = dict(values)
    for name, sub in _nested_types(cls).items():
        if name in kwargs:
            kwargs[name] = build(sub, kwargs[name], f"{prefix}{name}.")
    return cls(**kwargs)


def defaults(cls) -> dict:
    """The defaults of ``cls`` as a plain nested dict (what :func:`register_configs` stores)."""
    return dataclasses.asdict(cls())


# ====================================================================================== model
@dataclass
class MLPDims(Schema):
    """Widths of the input / output MLPs of the graph transformer (DiGress's ``hidden_mlp_dims``)."""
    PREFIX: ClassVar[str] = "model.hidden_mlp_dims."
    COMPLETE: ClassVar[bool] = True
    X: int = opt(256, Int(1))
    E: int = opt(128, Int(1))
    y: int = opt(128, Int(1))


@dataclass
class HiddenDims(Schema):
    """Widths of the transformer layers (DiGress's ``hidden_dims``); ``n_head`` divides ``dx`` and ``de``."""
    PREFIX: ClassVar[str] = "model.hidden_dims."
    COMPLETE: ClassVar[bool] = True
    dx: int = opt(256, Int(1))
    de: int = opt(64, Int(1))
    dy: int = opt(64, Int(1))
    n_head: int = opt(8, Int(1))
    dim_ffX: int = opt(256, Int(1))
    dim_ffE: int = opt(128, Int(1))
    dim_ffy: int = opt(128, Int(1))

    def check(self) -> None:
        if self.dx % self.n_head or self.de % self.n_head:
            raise ConfigError(f"model.hidden_dims.n_head={self.n_head} must divide dx={self.dx} and de={self.de}")


@dataclass
class DiffusionConfig(Schema):
    """The process: ``T`` steps, the noise schedule and the transition (:mod:`sympe.diffusion.process`)."""
    PREFIX: ClassVar[str] = "model.diffusion."
    T: int = opt(500, Int(1, what="diffusion steps"))
    schedule: str = opt("cosine")          # cosine | linear_alpha_bar
    transition: str = opt("marginal")      # marginal | uniform | absorbing

    def check(self) -> None:
        try:
            make_schedule(self.schedule, self.T)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"model.diffusion.schedule={show(self.schedule)}: {exc}") from None
        uniform = torch.tensor([0.5, 0.5])
        try:
            make_transition(self.transition, 2, 2, node_marginals=uniform, edge_marginals=uniform)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"model.diffusion.transition={show(self.transition)}: {exc}") from None


def _check_mixture_exclusive(mixture_draws, digress_compat, num_draws, prefix: str = "model.eval.") -> None:
    if mixture_draws and (digress_compat or (num_draws or 1) > 1):
        raise ConfigError(f"{prefix}mixture_draws={mixture_draws} (the mixture bound) cannot be combined with "
                          f"{prefix}digress_compat=true or {prefix}num_draws > 1")


@dataclass
class EvalConfig(Schema):
    """Inference options; all can be changed at evaluation (``scripts/evaluate.py model.eval.X=...``)."""
    PREFIX: ClassVar[str] = "model.eval."
    # true: DiGress's NLL formula term by term (sympe.diffusion.likelihood.digress_compat)
    digress_compat: bool = opt(False, Bool())
    # p̂(x0|z_t) averaged over K draws of the symmetry breaker per step (NLL and sampling)
    num_draws: Optional[int] = opt(1, Int(1, none=True, what="draws of the symmetry breaker per step"))
    # K >= 1: NLL by the importance-weighted mixture bound with K breaker draws per term
    mixture_draws: Optional[int] = opt(0, Int(0, none=True, what="0 = per-draw bound, K >= 1 = mixture bound with K draws"))
    # time bins of the stratified / exact NLL breakdown (null = min(T, 10)); checked against T by ModelConfig
    num_bins: Optional[int] = opt(None, Int(1, none=True, what="time bins of the stratified / exact NLL breakdown; null = min(T, 10)"))

    def check(self) -> None:
        _check_mixture_exclusive(self.mixture_draws, self.digress_compat, self.num_draws)


@dataclass
class ObjectiveConfig(Schema):
    """The training objective (``model.train``)."""
    PREFIX: ClassVar[str] = "model.train."
    # K >= 1: the K-draw g̃-mixture objective (K network calls per step); 0 = cross-entropy
    mixture_draws: int = opt(0, Int(0, what="g~ draws of the mixture objective; 0 = cross-entropy"))
    # digress (K = 1 equals the cross-entropy loss) | likelihood (edges weight 1)
    weighting: str = opt("digress", Choice(WEIGHTINGS, "edge weighting of the mixture objective"))


@dataclass
class ModelConfig(Schema):
    """The denoiser (DiGress's graph transformer; DiGress's ``configs/model/discrete.yaml`` widths) and the process."""
    PREFIX: ClassVar[str] = "model."
    n_layers: int = opt(5, Int(1, what="transformer layers"))
    hidden_mlp_dims: MLPDims = opt(factory=MLPDims)
    hidden_dims: HiddenDims = opt(factory=HiddenDims)
    dropout: float = opt(0.0, Float(0, 1, open_max=True))
    # keep less for backward (one more GEMM per layer); same values and gradients; may change on resume
    recompute_attention: bool = opt(True, Bool(), free_on_resume=True)
    # structural features of the noisy graph: all | cycles | eigenvalues | rrwp | none
    features: str = opt("all", Choice(tuple(ExtraFeatures.KINDS), "structural features of the noisy graph"))
    feature_kwargs: dict = opt(factory=dict)
    # valency (real bond orders) and molecular weight; molecules only
    molecular_features: bool = opt(True, Bool())
    # none | noise | sympe_nodes | sympe | index (NOT equivariant: leak-test control only)
    symbreak: str = opt("none", Choice(BREAKERS, "symmetry breaker"))
    symbreak_kwargs: dict = opt(factory=dict)
    diffusion: DiffusionConfig = opt(factory=DiffusionConfig)
    # reverse kernel from p̂(x0|z_t): plain | reweighted (DiGress's L_t model); sampling and NLL
    x0_kernel: str = opt("plain", Choice(tuple(REVERSE_KERNELS), "reverse kernel from p^(x0|z_t)"))
    eval: EvalConfig = opt(factory=EvalConfig)
    train: ObjectiveConfig = opt(factory=ObjectiveConfig)

    def check(self) -> None:
        Int(1, self.diffusion.T, none=True, what="time bins of the stratified / exact NLL breakdown; null = min(T, 10)")(
            "model.eval.num_bins", self.eval.num_bins)


#: The options of ``model`` that are keyword arguments of the denoiser (:class:`~sympe.diffusion.nn.denoiser.DenoisingNetwork`).
NETWORK_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                     if f.name not in ("diffusion", "x0_kernel", "eval", "train"))


# ====================================================================================== train
PRECISIONS = ("32-true", "32", 32, "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64", 64, "16", 16,
              "bf16")


@dataclass
class TrainConfig(Schema):
    """Training: batches, budget, optimizer, checkpoints, logging (Lightning ``Trainer`` arguments by name).

    The budget is that of the main command (QM9 without H on a CPU, ~1 h on 2 cores): 20,000 optimizer steps,
    validation every 1,000 train batches on the first 64 validation batches. DiGress's budgets (epochs, the whole
    validation split every epoch) are ``train=digress`` (``configs/train/digress.yaml``), which the
    ``experiment=...`` presets use."""
    PREFIX: ClassVar[str] = "train."
    batch_size: int = opt(32, Int(1, what="graphs per training batch"))
    eval_batch_size: Optional[int] = opt(None, Int(1, none=True, what="graphs per validation / test batch; null = batch_size"))
    num_workers: int = opt(0, Int(0, what="data loading processes; 0 = in the main process"))
    # train on the first N graphs of the train split only (CPU-sized runs)
    limit_train_graphs: Optional[int] = opt(None, Int(1, none=True, what="train on the first N graphs only"))
    # validate / test on the first N graphs of val / test only
    limit_eval_graphs: Optional[int] = opt(None, Int(1, none=True, what="validate / test on the first N graphs only"))
    max_epochs: int = opt(1000, Int(1, special=(-1,), what="-1 = no limit"))
    # > 0 stops after that many optimizer steps; -1 = no step limit (max_epochs bounds)
    max_steps: int = opt(20000, Int(1, special=(-1,), what="optimizer steps; -1 = no limit"))
    max_time: Any = opt(None, TimeLimit())  # e.g. "00:00:30:00" (DD:HH:MM:SS)
    lr: float = opt(0.0002, Float(0, open_min=True))
    weight_decay: float = opt(1.0e-12, Float(0))
    amsgrad: bool = opt(True, Bool())
    lambda_E: float = opt(5.0, Float(0, what="weight of the edge cross-entropy"))
    gradient_clip_val: Optional[float] = opt(1.0, Float(0, open_min=True, none=True, what="null disables clipping"))
    ema_decay: float = opt(0.999, Float(0, 1, open_max=True, what="0 disables the EMA of weights"))
    check_val_every_n_epoch: Optional[int] = opt(1, Int(1, none=True))
    # int = every that many train batches within an epoch (at each epoch's end when an epoch is shorter),
    # a fraction <= 1 = of an epoch, null = at each epoch's end
    val_check_interval: Any = opt(1000, Float(0, open_min=True, none=True,
                                              what="an integer = every that many train steps, a fraction <= 1 = of an epoch"))
    # validation batches (of eval_batch_size graphs) per check; 1.0 = the whole split
    limit_val_batches: Any = opt(64, Float(0, what="an integer = batches, a fraction <= 1 = of the split"))
    limit_test_batches: Any = opt(1.0, Float(0, what="an integer = batches, a fraction <= 1 = of the split"))
    log_every_n_steps: int = opt(20, Int(1))
    accelerator: str = opt("auto", Choice(("auto", "cpu", "gpu", "cuda", "mps", "tpu")))
    devices: Any = opt(1, Devices())
    num_nodes: int = opt(1, Int(1, what="machines"))
    strategy: str = opt("auto")            # ddp for multi-GPU / multi-node
    precision: Any = opt("32-true", Choice(PRECISIONS))  # bf16-mixed on recent GPUs
    compile: bool = opt(False, Bool())     # torch.compile the transformer (CUDA)
    logger: str = opt("csv", Choice(("csv", "tensorboard", "both")))
    # a bar on a terminal; plain progress lines (every 60 s, after each validation) in a log
    progress_bar: bool = opt(True, Bool())
    model_summary: bool = opt(False, Bool())  # true: print Lightning's table of the model's modules at start
    # a run folder to continue (outputs/<dataset>/<run>): same folder, same metrics file
    resume: Optional[str] = opt(None)
    # continue from this checkpoint (default with resume: <run>/checkpoints/last.ckpt)
    ckpt_path: Optional[str] = opt(None)
    # write checkpoints/last.ckpt every N optimizer steps (0 = off)
    ckpt_every_n_steps: int = opt(5000, Int(0, what="write last.ckpt every N optimizer steps; 0 = off"))
    # ... and every M minutes of training (0 = off); also on Ctrl-C / SIGTERM / errors
    ckpt_every_minutes: float = opt(10, Float(0, what="write last.ckpt every M minutes of training; 0 = off"))
    test_after_fit: bool = opt(True, Bool())  # test NLL of the best checkpoint when training ends
    summary_only: bool = opt(False, Bool())   # print the dataset summary and stop
    deterministic: bool = opt(False, Bool())

    def check(self) -> None:
        vci = self.val_check_interval
        if isinstance(vci, float) and vci > 1:
            raise fail("train.val_check_interval", vci, "an integer number of steps or a fraction of an epoch <= 1")
        for key in ("limit_val_batches", "limit_test_batches"):
            v = getattr(self, key)
            if isinstance(v, float) and v > 1:
                raise fail(f"train.{key}", v, "an integer number of batches or a fraction <= 1")
        if self.max_epochs == -1 and self.max_steps == -1 and self.max_time is None:
            raise ConfigError("train.max_epochs=-1, train.max_steps=-1 and train.max_time=null: the run would never "
                              "stop; set one of them")


#: ``model.*`` / ``train.*`` options a resumed run may change (they do not change the weights' meaning).
FREE_ON_RESUME = tuple(
    f"{prefix}{f.name}" for cls, prefix in ((ModelConfig, "model."), (TrainConfig, "train."))
    for f in dataclasses.fields(cls) if f.metadata.get("free_on_resume"))


# ====================================================================================== sample / evaluate
def _time_distortion_rule():
    return Choice(tuple(TIME_DISTORTIONS), "spacing of the strided steps (DeFoG's time distortions)")


@dataclass
class SamplingOptions(Schema):
    """Options that ``sample.py`` and ``evaluate.py`` share."""
    # reverse steps: null = all T; an int = that many strided steps through Q_{t|s}
    steps: Optional[int] = opt(None, Int(1, none=True, what="reverse steps; null = all T"))
    # spacing of the strided steps: identity (even) | polydec (shorter near the data) | polyinc | cos | revcos (DeFoG)
    time_distortion: str = opt("identity", _time_distortion_rule())
    # molecules: relaxed validity (formal charges inferred) when writing SMILES
    relaxed: bool = opt(False, Bool())
    seed: int = opt(0, Int())
    device: str = opt("auto", Device())    # auto | cpu | cuda | cuda:N | mps

    def check(self) -> None:
        if self.time_distortion != "identity" and self.steps is None:
            raise ConfigError(f"time_distortion={self.time_distortion} is not accepted with steps=null: a time "
                              "distortion spaces strided steps; set steps=K (e.g. steps=50) or time_distortion=identity")


@dataclass
class SampleConfig(SamplingOptions):
    """``python scripts/sample.py checkpoint=PATH [num_samples=1000 steps=50 n_nodes=null out_dir=...]``."""
    checkpoint: str = opt("???")           # a .ckpt written by scripts/train_diffusion.py (required)
    num_samples: int = opt(100, Int(1, what="graphs to sample"))
    batch_size: int = opt(256, Int(1, what="graphs sampled at once"))
    # null = drawn from the train distribution; an int = every graph that size
    n_nodes: Optional[int] = opt(None, Int(1, none=True, what="nodes of every sampled graph; null = drawn from the train distribution"))
    # > 0: also save that many snapshots of the first chains as a PNG per snapshot
    chain_snapshots: int = opt(0, Int(0))
    grid: int = opt(16, Int(0, what="samples drawn in samples.png"))
    out_dir: Optional[str] = opt(None)     # default: <checkpoint folder>/../samples


@dataclass
class EvalOverrides(Schema):
    """``model.eval.*`` of ``evaluate.py``: null = as the checkpoint was trained (meanings: :class:`EvalConfig`)."""
    PREFIX: ClassVar[str] = "model.eval."
    digress_compat: Optional[bool] = opt(None)
    num_draws: Optional[int] = opt(None, Int(1, none=True, what="draws of the symmetry breaker per step"))
    mixture_draws: Optional[int] = opt(None, Int(0, none=True, what="0 = per-draw bound, K >= 1 = mixture bound with K draws"))
    num_bins: Optional[int] = opt(None, Int(1, none=True, what="time bins of the stratified / exact NLL breakdown; null = min(T, 10)"))

    def check(self) -> None:
        if self.digress_compat is not None:
            Bool()("model.eval.digress_compat", self.digress_compat)
        _check_mixture_exclusive(self.mixture_draws, self.digress_compat, self.num_draws)


@dataclass
class InferenceOverrides(Schema):
    """``evaluate.py``'s ``model`` group: inference options applied to the checkpoint's model (null = as trained)."""
    PREFIX: ClassVar[str] = "model."
    x0_kernel: Optional[str] = opt(None)   # plain | reweighted (sampling and NLL alike)
    eval: EvalOverrides = opt(factory=EvalOverrides)

    def check(self) -> None:
        if self.x0_kernel is not None:
            Choice(tuple(REVERSE_KERNELS), "reverse kernel from p^(x0|z_t)")("model.x0_kernel", self.x0_kernel)


@dataclass
class EvaluateConfig(SamplingOptions):
    """``python scripts/evaluate.py checkpoint=PATH`` (test NLL + sample metrics) or ``samples=FILE dataset=NAME``
    (score samples of any system, no model)."""
    checkpoint: Optional[str] = opt(None)  # a .ckpt of scripts/train_diffusion.py: test NLL + sample metrics
    # a file of samples: SMILES lines, a CSV with a SMILES column, an .npz of graphs (sympe's or DiGress's adjacency
    # matrices) or DiGress's N=/X:/E: dump (sympe.datasets.samples.readers)
    samples: Optional[str] = opt(None)
    format: str = opt("auto")  # auto (detected from the content) | smiles | csv | npz_edges | npz_adjacency | digress_txt
    # csv: the SMILES column, by name or 0-based index (default: the header column named like 'smiles')
    column: Any = opt(None)
    header: Any = opt("auto")  # smiles / csv: auto (a first line naming 'smiles' is a header) | true | false
    # digress_txt molecules: DiGress's element per class (default: DiGress's QM9 / QM9-H / MOSES order)
    atom_decoder: Any = opt(None)
    # planar / sbm / comm20: benchmark (the shipped SPECTRE graphs, DiGress split) | dataset (as configured)
    reference: str = opt("benchmark")
    sbm_method: str = opt("auto")  # SBM validity: auto (graph-tool when importable, else Louvain) | graph_tool | louvain
    sbm_workers: int = opt(1)      # graph-tool fits run in parallel in this many processes (~0.5 min per graph)
    # samples mode: qm9 | qm9_h | moses | planar | sbm | comm20 | symmetric (configs/dataset/NAME.yaml)
    dataset: Optional[str] = opt(None)
    dataset_params: Any = opt(None)  # samples mode: overrides of the dataset's params (e.g. {source: csv, csv_path: ...})
    num_samples: int = opt(1000, Int(0, what="graphs sampled for the sample metrics; 0 = NLL only"))
    sample_batch_size: int = opt(256, Int(1))
    nll_estimator: str = opt("mc", Choice(("mc", "stratified", "exact", "both", "all", "none")))
    # test graphs scored with the stratified and exact estimators (null = all)
    exact_nll_graphs: Optional[int] = opt(100, Int(1, none=True))
    # list of labels, e.g. [ours_plain, ours_plain_mix16, digress]; null = the model's options
    nll_conventions: Any = opt(None)
    leak_test_permutations: int = opt(0, Int(0, what="random relabellings per graph in the node-order leak test; 0 = off"))
    leak_test_estimator: str = opt("exact", Choice(("mc", "stratified", "exact")))
    leak_test_graphs: Optional[int] = opt(100, Int(1, none=True))  # test graphs in the leak test (null = all)
    model: InferenceOverrides = opt(factory=InferenceOverrides)
    limit_test_graphs: Optional[int] = opt(None, Int(1, none=True))  # NLL on the first N test graphs only
    batch_size: int = opt(256, Int(1, what="graphs per NLL batch"))
    # explicit-H graphs / SMILES: let RDKit add missing H for validity as DiGress does (default: a missing H is an
    # invalid radical)
    fill_hydrogens: bool = opt(False, Bool())
    # molecules (QM9 / QM9-H): Fréchet ChemNet Distance of the valid samples to the test split. auto = computed when
    # the optional package fcd-torch is installed (extra .[metrics]), else fcd: null and one `warnings` entry naming
    # `pip install "sympe[metrics]"`; true = required (an error before anything loads without fcd-torch); false =
    # skipped. The test split's ChemNet pass (~0.5-1 min on CPU) is cached beside the processed split.
    fcd: Any = opt("auto", AutoBool("Fréchet ChemNet Distance of molecules; auto = when fcd-torch is installed"))
    data_root: str = opt("${oc.env:SYMPE_DATA_ROOT,data}")
    out_dir: Optional[str] = opt(None)     # default: beside the checkpoint (<run>/eval) or the samples file


# ====================================================================================== model arguments
def model_arguments(model=None, train=None, dataset: dict | None = None) -> dict:
    """The keyword arguments of :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` (all but ``info``) from a
    ``model`` and a ``train`` group: mappings (``DictConfig`` or dict) that may be partial (notebooks, tests:
    ``model_arguments({"n_layers": 1, "diffusion": {"T": 10}})``), completed with the defaults of
    :class:`ModelConfig` / :class:`TrainConfig` and checked as a command checks them (:class:`ConfigError`).
    ``dataset``: the ``{"name", "params"}`` recorded in the checkpoint (None: not recorded).

    Returns ``{"network", "diffusion", "optim", "eval", "x0_kernel", "objective", "dataset"}``."""
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
            "x0_kernel": m["x0_kernel"], "objective": m["train"], "dataset": dataset}


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
def check_train_config(cfg: DictConfig) -> TrainConfig:
    """``seed`` and the ``train`` group of a training config; returns the built :class:`TrainConfig`."""
    Int()("seed", cfg.seed)
    return build(TrainConfig, cfg.train)


def check_model_config(cfg: DictConfig) -> ModelConfig:
    """The ``model`` group of a training config; returns the built :class:`ModelConfig`."""
    return build(ModelConfig, cfg.model)


def check_sample_config(cfg: DictConfig) -> SampleConfig:
    """The options of ``scripts/sample.py`` (the checkpoint itself is checked when it is opened)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    return build(SampleConfig, values, "")


def check_evaluate_config(cfg: DictConfig) -> EvaluateConfig:
    """The options of ``scripts/evaluate.py``, ``model.*`` overrides included."""
    values = OmegaConf.to_container(cfg, resolve=True)
    return build(EvaluateConfig, values, "")
