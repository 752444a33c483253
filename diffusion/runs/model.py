"""`DiscreteDiffusion`: the LightningModule that trains, validates (NLL) and samples.

It only wires together objects that live in their own modules:

* the diffusion process (:class:`~sympe.diffusion.process.discrete_process.DiscreteProcess`: the noise schedule and the
  node/edge transitions; the schedule and transition are registered here so that checkpoints carry them),
* the denoising network (:mod:`~sympe.diffusion.nn.denoiser`): features + symmetry breaker + transformer,
* the loss (:mod:`~sympe.diffusion.objectives.cross_entropy`), the likelihood (:mod:`~sympe.diffusion.likelihood.bound`) and the
  sampler (:mod:`~sympe.diffusion.process.sampling`).

Training step: x (DenseGraph) -> t ~ U{0..T} per graph (the time convention of
:mod:`~sympe.diffusion.likelihood.bound`) -> z_t ~ q(z_t | x) -> logits = net(z_t, t) -> CE_X + λ CE_E; or, with
``objective.mixture_draws = K >= 1``, the K-draw g̃-mixture objective of :mod:`~sympe.diffusion.objectives.mixture`
(K network calls at the same z_t; equal to CE_X + λ CE_E at K = 1), or with ``objective.proposal`` the objective
with teacher-forced ranks from the canonical proposal (SymPE).
Validation/test: the Monte Carlo NLL bound per graph (``val/nll``, nats per graph, each undirected edge
counted once unless ``digress_compat``), and the CE loss at training-distributed times.

Every checkpoint stores the :class:`DatasetInfo` and its fingerprint; :func:`load_model` refuses a
checkpoint whose dataset does not match the one it is used with.
"""
from __future__ import annotations


import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric, SumMetric

from sympe.diffusion.conditioning import ConditionSpec
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.likelihood.bound import convention_name, nll_terms
from sympe.diffusion.likelihood.mixture_bound import DEFAULT_EXACT_MAX
from sympe.symbreak.proposal import PROPOSALS
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss
from sympe.diffusion.objectives.mixture import OBJECTIVE_PROPOSALS, WEIGHTINGS, mixture_nll_loss, proposal_nll_loss
from sympe.diffusion.nn.denoiser import DenoisingNetwork
from sympe.diffusion.process.discrete_process import DiscreteProcess
from sympe.diffusion.process.guidance import guided_model_fn
from sympe.diffusion.process.sampling import SamplingInterrupted, sample_graphs, sample_n_nodes
from sympe.diffusion.process.schedule import make_schedule, schedule_needs_exact_limit
from sympe.diffusion.process.transition import make_transition

CHECKPOINT_KEY = "sympe"
#: Options of the NLL and the sampler (``model.eval.*``), all switchable on a trained model.
EVAL_OPTIONS = ("digress_compat", "num_draws", "mixture_draws", "num_bins", "mixture_proposal", "mixture_exact_max")
#: Options of the training objective (``model.train.*``).
OBJECTIVE_OPTIONS = ("mixture_draws", "weighting", "proposal")


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss is NaN or infinite."""


class DiscreteDiffusion(pl.LightningModule):
    """DiGress-style discrete diffusion over graphs.

    Args (plain dicts, so that they are saved as hyperparameters and in checkpoints; every key is required:
    :func:`~sympe.diffusion.runs.schema.model_arguments` makes them from (partial) ``model`` / ``train``
    configs, filling in the defaults of the typed configs, and :func:`upgrade_hparams` completes those of
    checkpoints written by older versions):
        info: ``DatasetInfo.to_dict()`` of the train split.
        network: keyword arguments of :class:`DenoisingNetwork` (transformer dims, features, breaker).
        diffusion: ``{"T", "schedule", "transition"}``.
        optim: ``{"lr", "weight_decay", "lambda_E", "amsgrad"}``.
        eval: options of the NLL and the sampler (:data:`EVAL_OPTIONS`; all switchable on a trained model
            with :meth:`set_eval_options`): ``digress_compat`` (DiGress's NLL formula), ``num_draws`` (K > 1:
            p̂(x0|z_t) averaged over K network calls per step, in the NLL and in sampling: the "num_draws
            model" of :mod:`~sympe.diffusion.likelihood.bound`), ``mixture_draws`` (0, or K >= 1: the
            importance-weighted mixture bound with K breaker draws per term), ``mixture_proposal`` (where those draws
            come from: ``prior``, ``canonical``, ``defensive`` or ``exact``; :mod:`~sympe.diffusion.likelihood.mixture_bound`),
            ``mixture_exact_max`` (the most orders ``exact`` enumerates per graph), ``num_bins`` (time bins of the
            stratified / exact estimators; null = min(T, 10)).
        dataset: the dataset config (``{"name", "params"}``) the model is trained on; only recorded, so that
            evaluation scripts can rebuild the same splits from a checkpoint.
        x0_kernel: the reverse kernel, ``"plain"`` or ``"reweighted"``
            (:data:`~sympe.diffusion.process.discrete_process.REVERSE_KERNELS`), used by the sampler and the NLL alike.
        objective: ``{"mixture_draws": K, "weighting": "digress" | "likelihood", "proposal": "none" | "canonical" |
            "defensive"}``: K = 0 (default) trains on the per-variable cross-entropy; K >= 1 on the K-draw mixture
            objective (:func:`~sympe.diffusion.objectives.mixture.mixture_nll_loss`; ``"digress"`` weighting makes
            K = 1 equal to the default loss); a ``proposal`` other than ``none`` gives SymPE teacher-forced ranks of
            the canonical proposal of x0 (:func:`~sympe.diffusion.objectives.mixture.proposal_nll_loss`, K = max(1, K)).
        condition: None (an unconditional model) or ``ConditionSpec.to_dict()`` of the graph-level conditions
            (:mod:`~sympe.diffusion.conditioning`), fitted on the train split: the network reads the encoded condition
            from ``y``, training drops it as the spec says, and the NLL is then ``−log p(x | y)``.

    The absorbing transition's schedule ends with β_T = 1 (its one-hot prior term is then exactly 0; see
    :mod:`~sympe.diffusion.process.schedule`); marginal and uniform keep DiGress's cap. The checkpoint selected as
    "best" is the one of lowest validation per-draw NLL, which cannot credit a breaker trained for the mixture:
    for those, evaluate ``last.ckpt`` (the report does).
    """

    def __init__(self, info: dict, network: dict, diffusion: dict, optim: dict, eval: dict, dataset: dict | None,
                 x0_kernel: str, objective: dict, condition: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        if condition is not None and "properties" not in condition:
            raise ValueError("condition must be a fitted ConditionSpec.to_dict() (sympe.datasets.conditions."
                             f"attach_conditions fits it on the train split), got {condition}")
        self.condition = None if condition is None else ConditionSpec.from_dict(dict(condition))
        self.info = DatasetInfo.from_dict(dict(info))
        self.lr = float(optim["lr"])
        self.weight_decay = float(optim["weight_decay"])
        self.amsgrad = bool(optim["amsgrad"])
        self.lambda_E = float(optim["lambda_E"])
        objective = dict(objective)
        unknown = sorted(set(objective) - set(OBJECTIVE_OPTIONS))
        if unknown:
            raise ValueError(f"unknown training objective option(s) {unknown} (model.train.*); known: {list(OBJECTIVE_OPTIONS)}")
        self.mixture_train_draws = int(objective["mixture_draws"])
        self.mixture_weighting = str(objective["weighting"])
        if self.mixture_train_draws < 0:
            raise ValueError(f"model.train.mixture_draws must be 0 (off) or K >= 1, got {self.mixture_train_draws}")
        if self.mixture_weighting not in WEIGHTINGS:
            raise ValueError(f"model.train.weighting={self.mixture_weighting!r}; choose one of {list(WEIGHTINGS)}")
        self.proposal = str(objective["proposal"])
        if self.proposal not in OBJECTIVE_PROPOSALS:
            raise ValueError(f"model.train.proposal={self.proposal!r}; choose one of {list(OBJECTIVE_PROPOSALS)}")
        self.digress_compat, self.num_draws, self.mixture_draws, self.num_bins = False, 1, 0, None
        self.mixture_proposal, self.mixture_exact_max = "prior", DEFAULT_EXACT_MAX

        dx, de = self.info.num_node_classes, self.info.num_edge_classes
        self.T = int(diffusion["T"])
        # the absorbing chain ends exactly in its one-hot limit (β_T = 1), so that its prior term is 0, not +∞
        self.schedule = make_schedule(diffusion["schedule"], self.T,
                                      exact_limit=schedule_needs_exact_limit(diffusion["transition"]))
        self.transition = make_transition(
            diffusion["transition"], dx, de,
            node_marginals=self.info.node_marginals_tensor(), edge_marginals=self.info.edge_marginals_tensor(),
        )
        self.process = DiscreteProcess(self.schedule, self.transition)
        eval = dict(eval)
        unknown = sorted(set(eval) - set(EVAL_OPTIONS))
        if unknown:
            raise ValueError(f"unknown evaluation option(s) {unknown} (model.eval.*); known: {list(EVAL_OPTIONS)}")
        self.set_eval_options(**eval, x0_kernel=x0_kernel)
        self.network = DenoisingNetwork(self.info, T=self.T, **dict(network),
                                        condition_dim=0 if self.condition is None else self.condition.width)
        self.register_buffer("n_nodes_dist", self.info.n_nodes_tensor(), persistent=False)
        self.val_nll = MeanMetric()
        self.val_ce = MeanMetric()
        self.test_nll = MeanMetric()
        self.test_nll_sq = MeanMetric()
        self.test_count = SumMetric()

    # ------------------------------------------------------------------ evaluation options
    def set_eval_options(self, digress_compat: bool | None = None, num_draws: int | None = None,
                         mixture_draws: int | None = None, num_bins: int | None = None,
                         x0_kernel: str | None = None, mixture_proposal: str | None = None,
                         mixture_exact_max: int | None = None) -> "DiscreteDiffusion":
        """Change how the NLL is computed and how graphs are sampled (``None`` keeps the current value).

        Every option is one of inference, not of training, so it may be changed on a trained model (e.g. by
        ``scripts/evaluate.py checkpoint=... model.eval.digress_compat=true model.x0_kernel=reweighted``).
        Meanings: class docstring. Raises ``ValueError`` naming the option for a bad value. Returns ``self``.
        """
        if x0_kernel is not None:
            self.process.set_kernel(str(x0_kernel))
        if digress_compat is not None:
            self.digress_compat = bool(digress_compat)
        if num_draws is not None:
            if int(num_draws) < 1:
                raise ValueError(f"model.eval.num_draws must be >= 1, got {num_draws}")
            self.num_draws = int(num_draws)
        if mixture_draws is not None:
            if int(mixture_draws) < 0:
                raise ValueError(f"model.eval.mixture_draws must be 0 (per-draw bound) or K >= 1, got {mixture_draws}")
            self.mixture_draws = int(mixture_draws)
        if mixture_proposal is not None:
            if mixture_proposal not in PROPOSALS:
                raise ValueError(f"model.eval.mixture_proposal={mixture_proposal!r}; choose one of {list(PROPOSALS)}")
            self.mixture_proposal = str(mixture_proposal)
        if mixture_exact_max is not None:
            if int(mixture_exact_max) < 1:
                raise ValueError(f"model.eval.mixture_exact_max must be >= 1, got {mixture_exact_max}")
            self.mixture_exact_max = int(mixture_exact_max)
        if num_bins is not None:
            if not 1 <= int(num_bins) <= self.T:
                raise ValueError(f"model.eval.num_bins must be in 1..T={self.T}, got {num_bins}")
            self.num_bins = int(num_bins)
        if self.mixture_draws and (self.digress_compat or self.num_draws > 1):
            raise ValueError("model.eval.mixture_draws > 0 (the mixture bound) cannot be combined with "
                             "model.eval.digress_compat=true or model.eval.num_draws > 1")
        return self

    @property
    def x0_kernel(self) -> str:
        """The reverse kernel's name (``process.kernel_name``)."""
        return self.process.kernel_name

    @property
    def nll_convention(self) -> str:
        """The label of the current NLL convention (:func:`~sympe.diffusion.likelihood.bound.convention_name`)."""
        return convention_name(self.digress_compat, self.x0_kernel, self.mixture_draws, self.num_draws,
                               self.mixture_proposal)

    # ------------------------------------------------------------------ the denoiser as a function
    def model_fn(self, noisy: DenseGraph, t_int: torch.Tensor, generator: torch.Generator | None = None):
        """p̂(x0 | z_t) as logits: (logits_X (B,n,dx), logits_E (B,n,n,de)); ``generator`` feeds the breaker."""
        return self.network(noisy, t_int, generator=generator)

    def _dense(self, batch) -> DenseGraph:
        x = DenseGraph.from_pyg(batch)
        width = 0 if self.condition is None else self.condition.width
        if x.y.shape[1] != width:
            raise ValueError(f"the batch's graph features y have width {x.y.shape[1]}, this model expects {width}: "
                             + ("it is conditional on " + ", ".join(self.condition.names) + "; attach the dataset's "
                                "conditions (sympe.datasets.conditions.attach_conditions)" if width else
                                "it is unconditional; give graphs without y"))
        return x

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        x = self._dense(batch)
        if self.condition is not None:  # classifier-free guidance: also learn p(x) and every subset of properties
            x = DenseGraph(x.X, x.E, self.condition.drop(x.y), x.node_mask)
        B = x.batch_size
        t_int = self.process.sample_t(B, device=self.device)
        z_t = self.process.q_sample(x, t_int)
        if self.proposal != "none":
            out = proposal_nll_loss(self.network, z_t, t_int, x, self.mixture_train_draws, proposal=self.proposal,
                                    process=self.process, weighting=self.mixture_weighting, lambda_E=self.lambda_E)
            losses = {"loss": out["loss"], "mixture_ess": out["ess"].mean().to(out["loss"].dtype)}
        elif self.mixture_train_draws:
            out = mixture_nll_loss(self.model_fn, z_t, t_int, x, self.mixture_train_draws,
                                   weighting=self.mixture_weighting, lambda_E=self.lambda_E)
            losses = {"loss": out["loss"], "mixture_ess": out["ess"].mean().to(out["loss"].dtype)}
        else:
            logits_X, logits_E = self.model_fn(z_t, t_int)
            losses = diffusion_ce_loss(logits_X, logits_E, x, self.lambda_E)
        loss = losses["loss"]
        # one host sync per step: the price of stopping at the first non-finite loss with a clear message
        if not torch.isfinite(loss):
            ckpt = None
            if self.trainer is not None and self.trainer.checkpoint_callback is not None:
                cb = self.trainer.checkpoint_callback
                ckpt = getattr(cb, "last_model_path", None) or getattr(cb, "best_model_path", None)
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at global step {self.global_step} (epoch {self.current_epoch}); "
                f"last good checkpoint: {ckpt or 'none saved yet'}. Lower the learning rate or resume from it."
            )
        if self._trainer is not None:
            self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=B,
                          prog_bar=False, on_step=True, on_epoch=False)
            self.log("loss", loss.detach(), prog_bar=True, batch_size=B, logger=False)
        return loss

    def configure_optimizers(self):
        """AdamW (Loshchilov & Hutter) with ``lr``, ``weight_decay``, ``amsgrad`` of the config. PyTorch's fused
        implementation (one kernel over all parameters; same update, floating-point order aside) when every
        parameter is a float tensor on CPU or CUDA and the precision is not ``16-mixed`` (whose gradient scaler
        Lightning does not combine with clipping and a fused optimizer), else the per-parameter one. DiGress uses the per-parameter
        one; on CPU the fused step takes about a third of its time."""
        params = list(self.parameters())
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64)
                                     for p in params)
        # Lightning refuses gradient clipping with a fused optimizer under a gradient scaler (16-mixed)
        precision = str(self._trainer.precision) if self._trainer is not None else ""  # no trainer: plain float32
        if precision.startswith("16"):
            fused = False
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay, amsgrad=self.amsgrad,
                                 fused=fused or None)

    # ------------------------------------------------------------------ NLL (validation / test)
    def nll(self, x: DenseGraph, estimator: str = "mc", generator=None) -> dict[str, torch.Tensor]:
        """Per-graph NLL terms under the current evaluation options (:func:`sympe.diffusion.likelihood.bound.nll_terms`)."""
        return nll_terms(self.model_fn, x, self.process, self.n_nodes_dist,
                         estimator=estimator, digress_compat=self.digress_compat, num_draws=self.num_draws,
                         generator=generator, mixture_draws=self.mixture_draws, num_bins=self.num_bins,
                         mixture_proposal=self.mixture_proposal, mixture_exact_max=self.mixture_exact_max,
                         denoiser=self.network)

    def validation_step(self, batch, batch_idx):
        x = self._dense(batch)
        terms = self.nll(x)
        self.val_nll.update(terms["nll"])
        # CE at a uniformly drawn t, comparable with the training loss
        t_int = self.process.sample_t(x.batch_size, device=self.device)
        logits_X, logits_E = self.model_fn(self.process.q_sample(x, t_int), t_int)
        self.val_ce.update(diffusion_ce_loss(logits_X, logits_E, x, self.lambda_E)["loss"])

    def on_validation_epoch_end(self):
        mean = self.val_nll.compute()
        self.log("val/nll", mean, prog_bar=True)
        self.log("val/ce", self.val_ce.compute())
        self.val_nll.reset(); self.val_ce.reset()

    def test_step(self, batch, batch_idx):
        x = self._dense(batch)
        terms = self.nll(x)
        self.test_nll.update(terms["nll"])
        self.test_nll_sq.update(terms["nll"] ** 2)
        self.test_count.update(torch.tensor(float(x.batch_size), device=self.device))

    def on_test_epoch_end(self):
        mean = self.test_nll.compute()
        var = (self.test_nll_sq.compute() - mean**2).clamp_min(0)
        n = self.test_count.compute()
        key = self.test_nll_key
        self.log(key, mean)
        # standard error of the mean, std_{unbiased} / sqrt(n) = sqrt(var_pop / (n - 1)); undefined (NaN) for one graph
        self.log(f"{key}_sem", torch.sqrt(var / (n - 1)) if float(n) > 1 else torch.full_like(mean, float("nan")))
        self.test_nll.reset(); self.test_nll_sq.reset(); self.test_count.reset()

    @property
    def test_nll_key(self) -> str:
        """``"test/nll"``, or ``"test/nll_given_y"`` for a conditional model (its NLL is ``−log p(x | y)``)."""
        return "test/nll" if self.condition is None else "test/nll_given_y"

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, num_graphs: int, batch_size: int = 256, n_nodes: int | torch.Tensor | None = None,
               steps: int | None = None, generator: torch.Generator | None = None, keep_chain: int = 0,
               time_distortion: str = "identity", condition: torch.Tensor | None = None, guidance: float = 0.0):
        """Sample ``num_graphs`` graphs; returns a list of DenseGraph batches (and chains if asked).

        ``condition`` (conditional models): (num_graphs, width) encoded targets (:meth:`ConditionSpec.encode`), one
        row per graph, carried in each sampled graph's ``y``; ``guidance`` is the classifier-free guidance weight w
        (:mod:`~sympe.diffusion.process.guidance`; 0 = the conditional model). None samples the unconditional model
        (the null condition).

        ``steps``: None (all T) or K strided steps, spaced evenly or by ``time_distortion`` (DeFoG's time
        distortions, :func:`~sympe.diffusion.process.discrete_process.timestep_schedule`).

        ``n_nodes``: None (draw from the train distribution), an int (all graphs that size) or a (num_graphs,)
        tensor. Graphs are batched by node count so that little padding is computed (largest first).

        Ctrl-C raises :class:`~sympe.diffusion.process.sampling.SamplingInterrupted` carrying the finished batches.
        """
        max_n = self.info.max_nodes
        if n_nodes is None:
            sizes = sample_n_nodes(self.n_nodes_dist.cpu(), num_graphs, generator=generator)
        elif isinstance(n_nodes, int):
            sizes = torch.full((num_graphs,), n_nodes, dtype=torch.long)
        else:
            sizes = torch.as_tensor(n_nodes, dtype=torch.long).cpu()
            if sizes.numel() != num_graphs:
                raise ValueError(f"n_nodes has {sizes.numel()} entries but num_graphs={num_graphs}")
        if int(sizes.max()) > max_n or int(sizes.min()) < 1:
            raise ValueError(
                f"cannot sample graphs with {int(sizes.min())}..{int(sizes.max())} nodes: this model was trained on "
                f"{self.info.name} with at most {max_n} nodes (and at least 1)"
            )
        if steps is not None and not (1 <= steps <= self.T):
            raise ValueError(f"steps must be in 1..T={self.T}, got {steps}")
        self.process.timesteps(steps, time_distortion)  # a bad distortion fails before any network call
        if self.condition is None and condition is not None:
            raise ValueError("this model is unconditional: it cannot be given a condition (train with model.condition=[...])")
        if self.condition is not None:
            if condition is None:  # the unconditional model p(x): the null condition, nothing to guide
                condition, guidance = self.condition.null(num_graphs), 0.0
            condition = torch.as_tensor(condition).float().cpu()
            if tuple(condition.shape) != (num_graphs, self.condition.width):
                raise ValueError(f"condition must be ({num_graphs}, {self.condition.width}), got {tuple(condition.shape)}")
        order = torch.argsort(sizes, descending=True, stable=True)
        out, chains = [], []
        was_training = self.training
        self.eval()
        try:
            for start in range(0, num_graphs, batch_size):
                idx = order[start : start + batch_size]
                fn, y = self.model_fn, None
                if self.condition is not None:
                    y = condition[idx].to(self.device)
                    fn = guided_model_fn(self.model_fn, y, torch.zeros_like(y), guidance)
                res = sample_graphs(fn, sizes[idx].to(self.device), self.process, steps=steps,
                                    generator=generator, keep_chain=keep_chain, num_draws=self.num_draws,
                                    time_distortion=time_distortion, y=y)
                if keep_chain:
                    res, chain = res
                    chains.append(chain)
                out.append(res)
        except KeyboardInterrupt as exc:
            raise SamplingInterrupted(out, num_graphs) from exc
        finally:
            self.train(was_training)
        return (out, chains) if keep_chain else out

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {"info": self.info.to_dict(), "fingerprint": self.info.fingerprint()}


def check_checkpoint_matches(path: str, expected_info: DatasetInfo, ckpt: dict | None = None) -> dict:
    """Raise ``ValueError`` naming the mismatch when checkpoint ``path`` was trained on another dataset; returns the
    loaded checkpoint (``ckpt``: the checkpoint already loaded from ``path``, which is then not read again)."""
    if ckpt is None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file
            raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    meta = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if meta is None:
        raise ValueError(f"{path} is not a sympe checkpoint (no '{CHECKPOINT_KEY}' entry)")
    if meta["fingerprint"] != expected_info.fingerprint():
        saved = DatasetInfo.from_dict(meta["info"])
        diffs = []
        for field in ("name", "node_classes", "edge_classes", "max_nodes"):
            if getattr(saved, field) != getattr(expected_info, field):
                diffs.append(f"{field}: checkpoint {getattr(saved, field)!r} vs dataset {getattr(expected_info, field)!r}")
        if not diffs:
            diffs.append("the class marginals differ (another split, source or remove_h setting?)")
        raise ValueError(f"checkpoint {path} was trained on a different dataset: " + "; ".join(diffs))
    return ckpt


#: Keys added to the hyperparameters after the first release (2026-11-27), with the value the code used before
#: each was recorded (so an old checkpoint behaves as it did): (group, key) -> value. Every other key has been
#: recorded since the first release. Applied by :func:`upgrade_hparams`.
ADDED_KEYS = {
    ("network", "recompute_attention"): True,   # a memory option, no effect on values
    ("eval", "mixture_draws"): 0,                # the per-draw bound
    ("eval", "num_bins"): None,                  # min(T, 10) bins
    ("objective", "mixture_draws"): 0,           # the cross-entropy objective
    ("objective", "weighting"): "digress",
    ("objective", "proposal"): "none",          # the breaker's own ranks in training
    ("eval", "mixture_proposal"): "prior",      # the mixture bound drew g~ from the breaker
    ("eval", "mixture_exact_max"): 5040,
}


def upgrade_hparams(hparams: dict) -> dict:
    """The constructor arguments of a checkpoint's ``hyper_parameters``, completed for :class:`DiscreteDiffusion`.

    Checkpoints written before a key existed lack it (:data:`ADDED_KEYS`; the ``objective`` group and
    ``x0_kernel`` came later too): each missing value is set to what the code used then, ``x0_kernel`` to
    ``"plain"``, ``dataset`` to None. Values present are never changed. Returns a new dict (``hparams`` is not
    modified); the result is what :func:`load_model` constructs the model with."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in dict(hparams).items()}
    for (group, key), value in ADDED_KEYS.items():
        out[group] = dict(out.get(group) or {})
        out[group].setdefault(key, value)
    out.setdefault("x0_kernel", "plain")
    out.setdefault("dataset", None)
    out.setdefault("condition", None)  # unconditional (conditions came later)
    return out


def load_model(path: str, expected_info: DatasetInfo | None = None, map_location="cpu") -> DiscreteDiffusion:
    """Load a checkpoint (its hyperparameters completed by :func:`upgrade_hparams`); with ``expected_info``,
    refuse one trained on another dataset/config (``ValueError``)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if expected_info is not None:
        check_checkpoint_matches(path, expected_info, ckpt)
    hparams = upgrade_hparams(ckpt.get("hyper_parameters") or {})
    return DiscreteDiffusion.load_from_checkpoint(path, map_location=map_location, weights_only=False, **hparams)
