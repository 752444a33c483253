"""The report's numbers: one record per finished run from evaluate.py's JSON, and cells over seeds.

Everything the report reads from ``evaluate.py``'s ``metrics.json`` is named in :data:`KEYS` and
:data:`SAMPLE_KEYS` (one place to adjust when key names change). Columns: the per-draw NLL bound and the
g̃-mixture bound (K draws), the data entropy where it is known exactly, the exchangeable floor of the test set,
the node-order leak-test difference, and validity / uniqueness at each number of sampling steps. A cell is the
mean ± standard error over seeds (``std_{n-1} / sqrt(n)``); every NLL, entropy and floor is in nats per graph.

The data entropy (and the floor, when evaluate.py reports none) can come from a caller's ``exact_numbers(name,
params) -> (entropy, floor)`` applied to the run's resolved dataset config: this package knows no dataset.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from sympe.diffusion.runs.report.layout import TIMING, load_run_evals, read_run_config, run_dir_of, run_is_done
from sympe.diffusion.runs.report.presets import KEY_DEFAULTS, task_evals

__all__ = ["KEYS", "KEY_TYPES", "SAMPLE_KEYS", "SEM_OF", "NLL_COLUMNS", "ExactNumbers", "lookup", "read_value", "read_column",
           "key_format", "bin_means", "mean_sem", "val_curve", "run_record", "collect", "aggregate", "task_T"]

# column -> candidate keys; the first key found wins, searching the run's evaluation calls in preset order.
# "a.b" reads metrics["a"]["b"]. Placeholders, from the preset's `keys` section: {est} the NLL estimator,
# {K} the breaker draws of the mixture bound, {leak} the leak test's convention and estimator. evaluate.py
# names every NLL by its convention (sympe.diffusion.likelihood.nll_section): nll_<convention>_<estimator>, with
# conventions ours_plain (our bound, one breaker draw per term), ours_plain_mix<K> (the g̃-mixture bound)
# and digress (DiGress's formula).
#: What the report reads from evaluate.py's metrics.json: column -> candidate keys (see the comment above).
KEYS: dict[str, list[str]] = {
    "nll": ["nll_ours_plain_{est}"],                                   # per-draw bound, mean over test graphs
    "nll_sem": ["nll_ours_plain_{est}_sem"],                           # its s.e. over the test graphs
    "nll_bins": ["nll_ours_plain_{est}_bins"],                         # [{t_min, t_max, mean, sem}] per t bin
    # g̃-mixture bound, K draws per term from the breaker itself (named ours_plain_mix<K> before the proposals)
    "nll_mix": ["nll_ours_plain_mix{K}_prior_{est}", "nll_ours_plain_mix{K}_{est}"],
    "nll_mix_sem": ["nll_ours_plain_mix{K}_prior_{est}_sem", "nll_ours_plain_mix{K}_{est}_sem"],
    # the mixture bound with a proposal over g̃ (the preset's keys.proposal_convention) and its exact sum over g̃
    "nll_iw": ["nll_{P}_{est}"],
    "nll_iw_sem": ["nll_{P}_{est}_sem"],
    "nll_exact": ["nll_ours_plain_mix_exact_{est}"],
    "nll_exact_sem": ["nll_ours_plain_mix_exact_{est}_sem"],
    # F(T): the best bound of a factorised denoiser (symmetry-breaking families; evaluate.py)
    "factorised": ["factorised_bound"],
    "factorised_sem": ["factorised_bound_sem"],
    "nll_digress": ["nll_digress_{est}"],                              # DiGress's formula (paper preset)
    "nll_digress_sem": ["nll_digress_{est}_sem"],
    # the exchangeable floor of the graphs the per-draw NLL was computed on (else of the whole test subset)
    "floor": ["nll_ours_plain_{est}_floor", "exchangeable_nll_floor"],
    "floor_sem": ["nll_ours_plain_{est}_floor_sem", "exchangeable_nll_floor_sem"],
    "entropy": ["data_entropy"],                                       # exact entropy of the data, if reported
    # node-order leak test: NLL(stored order) - NLL(random relabellings), its s.e., and the verdict
    "leak_diff": ["leak_test_{leak}.difference"],
    "leak_sem": ["leak_test_{leak}.difference_sem"],
    "leak_flagged": ["leak_test_{leak}.flagged"],
}
#: The type each column must have (a key whose value has another type is passed over); default a number.
KEY_TYPES = {"nll_bins": (list,), "leak_flagged": (bool,)}
#: Sample metrics, read from every evaluation call that sampled (its ``sampling_steps`` is the x axis).
SAMPLE_KEYS: dict[str, list[str]] = {
    "steps": ["sampling_steps"],
    "validity": ["validity"],
    "uniqueness": ["uniqueness"],
    "novelty": ["novelty"],
    "num_samples": ["num_samples"],
}
#: Columns shown with their s.e. column.
SEM_OF = {"nll": "nll_sem", "nll_mix": "nll_mix_sem", "nll_iw": "nll_iw_sem", "nll_exact": "nll_exact_sem",
          "nll_digress": "nll_digress_sem", "floor": "floor_sem", "leak_diff": "leak_sem",
          "factorised": "factorised_sem"}
#: The NLL columns of a row (all upper bounds on the model's NLL, nats per graph).
NLL_COLUMNS = ("nll", "nll_mix", "nll_iw", "nll_exact", "nll_digress")

#: ``exact_numbers(dataset name, dataset params) -> (data entropy, exchangeable floor)`` of the generating
#: distribution in nats per graph, each None where not known.
ExactNumbers = Callable[[str, dict], "tuple[float | None, float | None]"]


def lookup(metrics: dict, key: str):
    """``metrics[a][b]...`` for a dotted key ``"a.b..."``, or None when any part is missing."""
    node = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read_value(evals: dict[str, dict], candidates: list[str], fmt: dict, types=(int, float)):
    """The first candidate key (formatted with ``fmt``) present with a value of ``types`` in the evaluation calls
    ``evals`` (name -> metrics, in preset order); None when there is none. Booleans do not count as numbers."""
    for key in candidates:
        key = key.format(**fmt)
        for metrics in evals.values():
            v = lookup(metrics, key)
            if v is not None and isinstance(v, types) and not (types == (int, float) and isinstance(v, bool)):
                return v
    return None


def read_column(evals: dict[str, dict], col: str, fmt: dict):
    """The value of report column ``col`` (a key of :data:`KEYS`) in a run's evaluation calls, or None."""
    return read_value(evals, KEYS[col], fmt, KEY_TYPES.get(col, (int, float)))


def key_format(preset: dict) -> dict:
    """The placeholders of :data:`KEYS` from the preset's ``keys`` section: ``{est, K, leak, P}``."""
    k = preset["keys"]
    return {"est": k["estimator"], "K": int(k["mixture_draws"]), "leak": f"{k['leak_convention']}_{k['leak_estimator']}",
            "P": k.get("proposal_convention", KEY_DEFAULTS["proposal_convention"])}


def bin_means(value) -> tuple[list[float] | None, list[float] | None]:
    """(bin centres in t or None, per-bin means in nats per graph) of a per-t-bin breakdown: a list of numbers, or
    a list of ``{"t_min", "t_max", "mean", ...}`` objects (centre ``(t_min + t_max) / 2``); (None, None) when
    empty."""
    if not value:
        return None, None
    if all(isinstance(b, dict) for b in value):
        centres = [(b["t_min"] + b["t_max"]) / 2 if b.get("t_min") is not None else None for b in value]
        return (centres if None not in centres else None), [float(b["mean"]) for b in value]
    return None, [float(b) for b in value]


def mean_sem(values) -> tuple[float | None, float | None, int]:
    """(mean, standard error ``std_{n-1} / sqrt(n)``, count) of the finite numeric entries of ``values``
    (booleans and None are skipped); the s.e. is None below 2 values, the mean None without any."""
    v = [float(x) for x in values if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)]
    if not v:
        return None, None, 0
    if len(v) == 1:
        return v[0], None, 1
    return float(np.mean(v)), float(np.std(v, ddof=1) / math.sqrt(len(v))), len(v)


def val_curve(run_dir: Path) -> list[tuple[int, float]]:
    """(optimizer step, validation NLL in nats per graph) of the rows of the run's ``csv/metrics.csv`` that hold
    ``val/nll``; empty without the file."""
    path = Path(run_dir) / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [(int(r["step"]), float(r["val/nll"])) for r in csv.DictReader(f) if r.get("val/nll")]


def _exact_numbers_of_run(run_dir: Path, exact_numbers: ExactNumbers) -> tuple[float | None, float | None]:
    cfg = read_run_config(run_dir)
    if cfg is None:
        return None, None
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(cfg, resolve=False)
    name, params = cfg.get("dataset", {}).get("name"), cfg.get("dataset", {}).get("params") or {}
    if name is None:
        return None, None
    return exact_numbers(name, params)


def run_record(preset: dict, task: dict, variant: str, seed: int, out: Path,
               exact_numbers: ExactNumbers | None = None) -> dict | None:
    """Everything the report shows about one finished run, None when it is not done.

    The record holds ``seed``, every column of :data:`KEYS`, ``bin_centres`` and ``nll_bins`` (per-bin means,
    :func:`bin_means`), ``samples`` (one point of :data:`SAMPLE_KEYS` per evaluation call that sampled, sorted
    by steps), ``timing`` (``timing.json``) and ``val_curve``. When evaluate.py reports no data entropy or no
    floor, ``exact_numbers`` (if given) is asked with the run's resolved dataset name and params; a floor found
    that way has s.e. 0 and ``floor_source`` "generating distribution (exact)".
    """
    rd = run_dir_of(out, task["label"], variant, seed)
    if not run_is_done(preset, task, rd):
        return None
    evals = load_run_evals(preset, task, rd)
    fmt = key_format(preset)
    rec = {"seed": seed, **{col: read_column(evals, col, fmt) for col in KEYS}}
    rec["bin_centres"], rec["nll_bins"] = bin_means(rec["nll_bins"])
    if (rec["entropy"] is None or rec["floor"] is None) and exact_numbers is not None:
        entropy, floor = _exact_numbers_of_run(rd, exact_numbers)
        if rec["entropy"] is None:
            rec["entropy"] = entropy
        if rec["floor"] is None and floor is not None:
            rec["floor"], rec["floor_sem"], rec["floor_source"] = floor, 0.0, "generating distribution (exact)"
    samples = []
    for name, metrics in evals.items():
        point = {col: read_value({name: metrics}, keys, fmt) for col, keys in SAMPLE_KEYS.items()}
        if point["steps"] is not None and (point["num_samples"] or 0) > 0:
            samples.append({"eval": name, **point})
    rec["samples"] = sorted(samples, key=lambda p: p["steps"])
    timing = rd / TIMING
    rec["timing"] = json.loads(timing.read_text()) if timing.exists() else {}
    rec["val_curve"] = val_curve(rd)
    return rec


def collect(preset: dict, out: Path, exact_numbers: ExactNumbers | None = None) -> dict:
    """``runs[task label][variant] = [records]`` (:func:`run_record`) of every finished run under ``out``."""
    runs: dict = {}
    for task in preset["tasks"]:
        for variant in preset["variants"]:
            recs = [run_record(preset, task, variant, s, out, exact_numbers) for s in preset["seeds"]]
            runs.setdefault(task["label"], {})[variant] = [r for r in recs if r is not None]
    return runs


def aggregate(preset: dict, runs: dict) -> dict:
    """The report's numbers (``{"tasks": [...]}``) from ``runs[task label][variant] = [run records]``.

    For every task and variant: each NLL column (``nll``, ``nll_mix``, ``nll_digress``) and the leak difference as
    ``{mean, sem, n}`` over seeds (nats per graph), the difference of the NLLs to the ``none`` variant with s.e.
    ``sqrt(se_v² + se_none²)``, how many seeds the leak test flagged, for each number of sampling steps the
    validity / uniqueness over seeds, the per-t-bin means over seeds (when all seeds have as many bins), and
    whether each NLL lies more than 2 s.e. below the exchangeable floor. Task-level: entropy and floor (mean over
    the runs; they do not depend on the variant).
    """
    tasks = []
    for task in preset["tasks"]:
        label = task["label"]
        rows = []
        task_runs = [r for v in preset["variants"] for r in runs.get(label, {}).get(v, [])]
        entry = {"label": label, "title": task.get("title", label), "train_overrides": task["train"],
                 "evals": task_evals(preset, task), "rows": rows}
        for col in ("entropy", "floor", "factorised"):
            entry[col] = mean_sem([r[col] for r in task_runs])[0]
        entry["floor_sem"] = mean_sem([r["floor_sem"] for r in task_runs])[0]
        entry["factorised_sem"] = mean_sem([r["factorised_sem"] for r in task_runs])[0]
        for variant, vdef in preset["variants"].items():
            rows.append(_row(variant, vdef, runs.get(label, {}).get(variant, [])))
        base = next((r for r in rows if r["variant"] == "none"), None)
        for row in rows:
            for col in ("nll", "nll_mix", "nll_iw", "nll_exact"):
                row[f"{col}_vs_none"] = None if row is base else _difference(row[col], base["nll"] if base else None)
            row["below_floor"] = _below_floor(row, entry)
            row["below_entropy"] = _below(row, entry.get("entropy"), 0.0)
        tasks.append(entry)
    return {"tasks": tasks}


def _row(variant: str, vdef: dict, recs: list[dict]) -> dict:
    row = {"variant": variant, "title": vdef.get("title", variant), "control": bool(vdef.get("control")),
           "seeds_done": [r["seed"] for r in recs], "runs": recs}
    for col in (*NLL_COLUMNS, "leak_diff"):
        m, s, n = mean_sem([r[col] for r in recs])
        if len(recs) == 1 and n == 1 and SEM_OF.get(col) in recs[0]:  # one run: the s.e. over its test graphs
            s = recs[0][SEM_OF[col]] if isinstance(recs[0][SEM_OF[col]], (int, float)) else None
        row[col] = {"mean": m, "sem": s, "n": n}
    flagged = [r["leak_flagged"] for r in recs if r["leak_flagged"] is not None]
    row["leak_flagged"] = {"flagged": int(sum(bool(f) for f in flagged)), "of": len(flagged)}
    steps = sorted({p["steps"] for r in recs for p in r["samples"]})
    row["sampling"] = []
    for st in steps:
        pts = [p for r in recs for p in r["samples"] if p["steps"] == st]
        row["sampling"].append({"steps": st, **{c: dict(zip(("mean", "sem", "n"), mean_sem([p[c] for p in pts])))
                                                for c in ("validity", "uniqueness", "novelty")}})
    bins = [r["nll_bins"] for r in recs if isinstance(r["nll_bins"], list) and r["nll_bins"]]
    if bins and len({len(b) for b in bins}) == 1:
        arr = np.asarray(bins, dtype=float)
        centres = next((r["bin_centres"] for r in recs if r.get("bin_centres")), None)
        row["nll_bins"] = {"mean": arr.mean(0).tolist(), "centres": centres,
                           "sem": (arr.std(0, ddof=1) / math.sqrt(len(arr))).tolist() if len(arr) > 1 else None}
    else:
        row["nll_bins"] = None
    return row


def _difference(a: dict, b: dict | None) -> dict | None:
    """a - b with the s.e. ``sqrt(se_a² + se_b²)`` (None when either side is missing)."""
    if b is None or a["mean"] is None or b["mean"] is None:
        return None
    sem = None if a["sem"] is None or b["sem"] is None else math.hypot(a["sem"], b["sem"])
    return {"mean": a["mean"] - b["mean"], "sem": sem}


def _below_floor(row: dict, task: dict) -> dict[str, bool]:
    """Per NLL column: is its mean more than 2 s.e. (of the mean and of the floor) below the exchangeable floor?"""
    return _below(row, task.get("floor"), task.get("floor_sem") or 0.0)


def _below(row: dict, level: float | None, level_sem: float) -> dict[str, bool]:
    """Per NLL column: is its mean more than 2 s.e. below ``level`` (the floor, or the data entropy, which no
    bound of a valid model may go below)?"""
    out = {}
    for col in NLL_COLUMNS:
        c = row[col]
        out[col] = bool(level is not None and c["mean"] is not None
                        and c["mean"] + 2 * math.hypot(c["sem"] or 0.0, level_sem) < level)
    return out


def task_T(preset: dict, runs: dict, out: Path, task: dict) -> int | None:
    """T (diffusion steps) of a task's models, from the resolved config of its first finished run; None without."""
    for variant in preset["variants"]:
        for r in runs.get(task["label"], {}).get(variant, []):
            cfg = read_run_config(run_dir_of(out, task["label"], variant, r["seed"]))
            if cfg is not None:
                return int(cfg.model.diffusion.T)
    return None
