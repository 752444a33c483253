"""The options of ``scripts/sample.py`` and ``scripts/evaluate.py``: every default, its meaning and its check, once.

:class:`SamplingOptions` holds what both commands share; :class:`SampleConfig` and :class:`EvaluateConfig` add
their own; :class:`InferenceOverrides` (with :class:`EvalOverrides`) is evaluate's ``model`` group, where null
keeps the checkpoint's own value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from sympe.diffusion.likelihood.nll_section import ESTIMATOR_CHOICES, parse_convention
from sympe.diffusion.process.discrete_process import REVERSE_KERNELS, TIME_DISTORTIONS
from sympe.diffusion.runs.model_config import check_mixture_exclusive
from sympe.diffusion.runs.options import SEED_MAX, AutoBool, Bool, Choice, ConfigError, Device, Float, Int
from sympe.diffusion.runs.typed_config import Schema, opt
from sympe.symbreak.proposal import PROPOSALS

__all__ = ["SamplingOptions", "SampleConfig", "EvalOverrides", "InferenceOverrides", "EvaluateConfig"]


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
    seed: int = opt(0, Int(0, SEED_MAX, what="random seed"))
    device: str = opt("auto", Device())    # auto | cpu | cuda | cuda:N | mps
    # a given out_dir that already holds files is refused unless true (then same-named files are replaced)
    overwrite: bool = opt(False, Bool())
    # a property regressor (scripts/train_regressor.py) that scores samples on dataset columns RDKit cannot compute
    # (QM9's mu, homo) when they are targets
    oracle: Optional[str] = opt(None)

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
    out_dir: Optional[str] = opt(None)     # default: a new folder <checkpoint folder>/../samples/<time>-<id>
    # conditional models: the targets, a mapping ("{logp: 2.0, qed: 0.5}", every graph) or the path of a CSV whose
    # header names the properties (one graph per row; num_samples is then the number of rows); null = unconditional
    condition: Any = opt(None)
    # classifier-free guidance weight w (sympe.diffusion.process.guidance): 0 = the conditional model p(x | y)
    guidance: float = opt(0.0, Float(what="classifier-free guidance weight w; 0 = the conditional model"))


@dataclass
class EvalOverrides(Schema):
    """``model.eval.*`` of ``evaluate.py``: null = as the checkpoint was trained (meanings: :class:`EvalConfig`)."""
    PREFIX: ClassVar[str] = "model.eval."
    digress_compat: Optional[bool] = opt(None)
    num_draws: Optional[int] = opt(None, Int(1, none=True, what="draws of the symmetry breaker per step"))
    mixture_draws: Optional[int] = opt(None, Int(0, none=True, what="0 = per-draw bound, K >= 1 = mixture bound with K draws"))
    num_bins: Optional[int] = opt(None, Int(1, none=True, what="time bins of the stratified / exact NLL breakdown; null = min(T, 10)"))
    mixture_proposal: Optional[str] = opt(None, Choice(PROPOSALS + (None,), "proposal over g~ of the mixture bound; null = as trained"))
    mixture_exact_max: Optional[int] = opt(None, Int(1, none=True, what="orders per graph the exact mixture bound may enumerate"))

    def check(self) -> None:
        if self.digress_compat is not None:
            Bool()("model.eval.digress_compat", self.digress_compat)
        check_mixture_exclusive(self.mixture_draws, self.digress_compat, self.num_draws)


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
    # smiles / csv: auto (a first line naming 'smiles' is a header) | true | false
    header: Any = opt("auto", AutoBool("a header line in a SMILES / CSV file"))
    # digress_txt molecules: DiGress's element per class (default: DiGress's QM9 / QM9-H / MOSES order)
    atom_decoder: Any = opt(None)
    # planar / sbm / comm20: benchmark (the shipped SPECTRE graphs, DiGress split) | dataset (as configured)
    reference: str = opt("benchmark")
    sbm_method: str = opt("auto")  # SBM validity: auto (graph-tool when importable, else Louvain) | graph_tool | louvain
    sbm_workers: int = opt(1)      # graph-tool fits run in parallel in this many processes (~0.5 min per graph)
    # samples mode: qm9 | qm9_h | moses | planar | sbm | comm20 | symmetric (configs/dataset/NAME.yaml)
    dataset: Optional[str] = opt(None)
    # samples mode: a CSV of the targets each sample was asked for (sample.py's targets.csv; one row per sample, the
    # header names the properties): adds how well they are met (MAE, fraction within tolerance)
    targets: Optional[str] = opt(None)
    dataset_params: Any = opt(None)  # samples mode: overrides of the dataset's params (e.g. {source: csv, csv_path: ...})
    num_samples: int = opt(1000, Int(0, what="graphs sampled for the sample metrics; 0 = NLL only"))
    sample_batch_size: int = opt(256, Int(1))
    nll_estimator: str = opt("mc", Choice(ESTIMATOR_CHOICES))  # mc | stratified | exact | both (mc + exact) | all | none
    # test graphs scored with the stratified and exact estimators (null = all)
    exact_nll_graphs: Optional[int] = opt(100, Int(1, none=True))
    # list of labels, e.g. [ours_plain, ours_plain_mix16_prior, ours_plain_mix4_defensive, digress]; null = the model's
    # options
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
    # default: a new folder <run>/eval/<time>-<id> (checkpoint), or <samples stem>.metrics.json beside the samples
    # file (<stem>.metrics-<time>-<id>.json when that name is taken)
    out_dir: Optional[str] = opt(None)

    def check(self) -> None:
        super().check()
        for label in self.nll_conventions or []:
            try:
                parse_convention(str(label))
            except ValueError as exc:
                raise ConfigError(f"nll_conventions: {exc}") from None
