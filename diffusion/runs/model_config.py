"""The ``model`` and ``train`` groups of a training run: every default, its meaning and its check, once.

:class:`ModelConfig` (the denoiser, the process, inference options, the training objective; with
:class:`MLPDims`, :class:`HiddenDims`, :class:`DiffusionConfig`, :class:`EvalConfig`, :class:`ObjectiveConfig`)
and :class:`TrainConfig` (batches, budget, optimizer, checkpoints, logging). Choices are checked against the
library's own registries (structural features, breakers, reverse kernels, weightings; schedules and transitions
by building them), so a new entry there is accepted without a change here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch

from sympe.diffusion.nn.features import ExtraFeatures
from sympe.diffusion.objectives.mixture import OBJECTIVE_PROPOSALS, WEIGHTINGS
from sympe.diffusion.likelihood.mixture_bound import DEFAULT_EXACT_MAX
from sympe.diffusion.process.discrete_process import REVERSE_KERNELS
from sympe.diffusion.process.schedule import make_schedule
from sympe.diffusion.process.transition import make_transition
from sympe.diffusion.runs.options import Bool, Choice, ConfigError, Devices, Float, Int, Names, TimeLimit, fail, show
from sympe.diffusion.runs.typed_config import Schema, opt
from sympe.symbreak.breakers import BREAKERS, RANK_BREAKERS
from sympe.symbreak.proposal import PROPOSALS

__all__ = ["MLPDims", "HiddenDims", "DiffusionConfig", "EvalConfig", "ObjectiveConfig", "ModelConfig", "TrainConfig",
           "NETWORK_KEYS", "FREE_ON_RESUME", "PRECISIONS", "check_mixture_exclusive"]


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


def check_mixture_exclusive(mixture_draws, digress_compat, num_draws, prefix: str = "model.eval.") -> None:
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
    # where the mixture bound draws g~: prior (the breaker's draws) | canonical | defensive | exact (every order)
    mixture_proposal: str = opt("prior", Choice(PROPOSALS, "proposal over g~ of the mixture bound"))
    # the most tie-consistent orders per graph that mixture_proposal=exact enumerates (7! = 5040)
    mixture_exact_max: int = opt(DEFAULT_EXACT_MAX, Int(1, what="orders per graph the exact mixture bound may enumerate"))

    def check(self) -> None:
        check_mixture_exclusive(self.mixture_draws, self.digress_compat, self.num_draws)


@dataclass
class ObjectiveConfig(Schema):
    """The training objective (``model.train``)."""
    PREFIX: ClassVar[str] = "model.train."
    # K >= 1: the K-draw g̃-mixture objective (K network calls per step); 0 = cross-entropy
    mixture_draws: int = opt(0, Int(0, what="g~ draws of the mixture objective; 0 = cross-entropy"))
    # digress (K = 1 equals the cross-entropy loss) | likelihood (edges weight 1; a bound for every K)
    weighting: str = opt("digress", Choice(WEIGHTINGS, "edge weighting of the mixture objective"))
    # ranks the breaker is given in training: none (its own draws) | canonical (teacher-forced ranks of a canonical
    # labelling of x0 within z_t's tie groups) | defensive (half each); SymPE only
    proposal: str = opt("none", Choice(OBJECTIVE_PROPOSALS, "proposal over g~ of the training objective"))


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
    # graph-level properties the model is conditioned on, e.g. [logp, qed] (sympe.datasets.conditions: logp, qed,
    # mol_weight, tpsa, num_rings | num_edges, num_triangles | a column of the dataset: QM9's mu, homo); [] = none
    condition: list = opt(factory=list, rule=Names("e.g. model.condition=[logp] or [logp,qed]"))
    # classifier-free guidance: training drops the whole condition with this probability (and, when it is kept,
    # each of several properties with the same probability)
    condition_dropout: float = opt(0.1, Float(0, 1, open_max=True))

    def check(self) -> None:
        Int(1, self.diffusion.T, none=True, what="time bins of the stratified / exact NLL breakdown; null = min(T, 10)")(
            "model.eval.num_bins", self.eval.num_bins)
        if self.train.proposal != "none" and self.symbreak not in RANK_BREAKERS:
            raise ConfigError(f"model.train.proposal={show(self.train.proposal)} gives the symmetry breaker ranks, but "
                              f"model.symbreak={show(self.symbreak)} draws none; use model.symbreak=sympe (or "
                              "sympe_nodes), or model.train.proposal=none")
        if self.train.proposal != "none" and self.train.weighting == "digress" and (
                self.train.proposal == "defensive" or self.train.mixture_draws >= 2):
            raise ConfigError(f"model.train.proposal={show(self.train.proposal)} with model.train.mixture_draws="
                              f"{self.train.mixture_draws} and model.train.weighting=digress is no likelihood bound "
                              "(importance weights of a tempered joint); use model.train.weighting=likelihood")
        if self.eval.mixture_proposal != "prior" and self.symbreak == "noise":
            raise ConfigError(f"model.eval.mixture_proposal={show(self.eval.mixture_proposal)} needs a rank-based "
                              "breaker (sympe, sympe_nodes); a noise breaker has only mixture_proposal=prior")


#: The options of ``model`` that are keyword arguments of the denoiser (:class:`~sympe.diffusion.nn.denoiser.DenoisingNetwork`).
NETWORK_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                     if f.name not in ("diffusion", "x0_kernel", "eval", "train", "condition", "condition_dropout"))


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
