"""The symmetry-breaking benchmark report: variants × tasks × seeds on fixed optimizer-step budgets.

    python scripts/nll_report.py --preset cpu --jobs 2           # CPU grid, written to reports/cpu
    python scripts/nll_report.py --preset cpu --smoke            # 1 seed, tiny budgets: checks the pipeline
    python scripts/nll_report.py --preset paper                  # QM9 with explicit H at DiGress's settings (GPU)
    python scripts/nll_report.py --preset cpu --aggregate-only   # tables and plots from the finished runs

A preset (``configs/report/<name>.yaml``) names the seeds, the variants (a title and the training overrides
that make each one, e.g. ``model.symbreak=sympe``; ``control: true`` marks a non-equivariant control), the
evaluation calls made on every trained model (``evals``: name -> overrides of ``scripts/evaluate.py``) and the
tasks (a dataset setting with its training budget in optimizer steps, and which evaluation calls it uses).

Each run goes through exactly the commands users run: ``scripts/train_diffusion.py`` with the overrides
``common.train + task.train + variant.train + seed=<s>`` (Hydra keeps the last value of a key given twice),
then ``scripts/evaluate.py checkpoint=<run>/checkpoints/last.ckpt`` (the final weights of the fixed budget)
once per evaluation call, with ``common.eval + evals[name] + task.eval + variant.eval``. A run is skipped
when all its ``eval_<name>/metrics.json`` exist; a training without its ``train_done`` marker continues from its
``checkpoints/last.ckpt`` (``train.resume``), or starts again when it wrote none; so an interrupted report
resumes where it stopped. One progress line per run (done / failed, its
time, its NLL, the estimated time left). A failed run is recorded in ``runs/.../error.txt`` and the others go
on; the report is built from the runs that finished, with the number of seeds behind each cell.

Everything the report reads from ``evaluate.py``'s JSON is named in :data:`KEYS` and :data:`SAMPLE_KEYS` (one
place to adjust when key names change). Columns: the NLL per-draw bound and the g̃-mixture bound (K draws),
the data entropy where it is known exactly, the exchangeable floor of the test set, the node-order leak-test
difference, and for molecules validity / uniqueness at each number of sampling steps. Cells are the mean
± standard error over seeds (``std_{n-1} / sqrt(n)``); units are nats per graph. Writes ``report.md``,
``report.json`` and PNG plots (NLL per variant with error bars, NLL per t bin, validity against sampling
steps, validation NLL curves).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------------
# What the report reads from evaluate.py's metrics.json (adjust here when key names change).
# column -> candidate keys; the first key found wins, searching the run's evaluation calls in preset order.
# "a.b" reads metrics["a"]["b"]. Placeholders, from the preset's `keys` section: {est} the NLL estimator,
# {K} the breaker draws of the mixture bound, {leak} the leak test's convention and estimator. evaluate.py
# names every NLL by its convention (sympe.diffusion.likelihood.nll_section): nll_<convention>_<estimator>, with
# conventions ours_plain (our bound, one breaker draw per term), ours_plain_mix<K> (the g̃-mixture bound)
# and digress (DiGress's formula).
KEYS: dict[str, list[str]] = {
    "nll": ["nll_ours_plain_{est}"],                                   # per-draw bound, mean over test graphs
    "nll_sem": ["nll_ours_plain_{est}_sem"],                           # its s.e. over the test graphs
    "nll_bins": ["nll_ours_plain_{est}_bins"],                         # [{t_min, t_max, mean, sem}] per t bin
    "nll_mix": ["nll_ours_plain_mix{K}_{est}"],                        # g̃-mixture bound, K draws per term
    "nll_mix_sem": ["nll_ours_plain_mix{K}_{est}_sem"],
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
#: The type each column must have (a key whose value has another type is passed over).
KEY_TYPES = {"nll_bins": (list,), "leak_flagged": (bool,)}
#: Sample metrics, read from every evaluation call that sampled (its ``sampling_steps`` is the x axis).
SAMPLE_KEYS: dict[str, list[str]] = {
    "steps": ["sampling_steps"],
    "validity": ["validity"],
    "uniqueness": ["uniqueness"],
    "num_samples": ["num_samples"],
}
#: Columns shown with their s.e. column.
SEM_OF = {"nll": "nll_sem", "nll_mix": "nll_mix_sem", "nll_digress": "nll_digress_sem", "floor": "floor_sem",
          "leak_diff": "leak_sem"}


def lookup(metrics: dict, key: str):
    """``metrics[a][b]...`` for a dotted key, or None when any part is missing."""
    node = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read_value(evals: dict[str, dict], candidates: list[str], fmt: dict, types=(int, float)):
    """The first candidate key present, with a value of ``types``, in the evaluation calls ``evals``
    (name -> metrics, in preset order); None when there is none."""
    for key in candidates:
        key = key.format(**fmt)
        for metrics in evals.values():
            v = lookup(metrics, key)
            if v is not None and isinstance(v, types) and not (types == (int, float) and isinstance(v, bool)):
                return v
    return None


def read_column(evals: dict[str, dict], col: str, fmt: dict):
    return read_value(evals, KEYS[col], fmt, KEY_TYPES.get(col, (int, float)))


def bin_means(value) -> tuple[list[float] | None, list[float] | None]:
    """(bin centres in t or None, per-bin means) of a per-bin breakdown: a list of numbers, or a list of
    ``{"t_min", "t_max", "mean", ...}`` objects."""
    if not value:
        return None, None
    if all(isinstance(b, dict) for b in value):
        centres = [(b["t_min"] + b["t_max"]) / 2 if b.get("t_min") is not None else None for b in value]
        return (centres if None not in centres else None), [float(b["mean"]) for b in value]
    return None, [float(b) for b in value]


# ---------------------------------------------------------------------------------------------------------
# Preset
class PresetError(ValueError):
    """A preset file that is missing or malformed (the message names the file and the field)."""


def load_preset(path: Path) -> dict:
    """Read and validate a preset; ``PresetError`` naming the field and the fix otherwise."""
    from omegaconf import OmegaConf

    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise PresetError(f"no preset file {path}; known presets: {known}")
    p = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for field in ("seeds", "variants", "evals", "tasks"):
        if field not in p:
            raise PresetError(f"{path}: field {field!r} is missing (see configs/report/cpu.yaml for the format)")
    if not isinstance(p["variants"], dict) or not p["variants"]:
        raise PresetError(f"{path}: 'variants' must map a label to {{title, train: [overrides]}}")
    if not isinstance(p["evals"], dict) or not p["evals"]:
        raise PresetError(f"{path}: 'evals' must map a name to a list of evaluate.py overrides")
    labels = set()
    for i, task in enumerate(p["tasks"]):
        for field in ("label", "train"):
            if field not in task:
                raise PresetError(f"{path}: tasks[{i}] has no {field!r}")
        if task["label"] in labels:
            raise PresetError(f"{path}: task label {task['label']!r} appears twice")
        labels.add(task["label"])
        unknown = sorted(set(task.get("evals", p["evals"])) - set(p["evals"]))
        if unknown:
            raise PresetError(f"{path}: task {task['label']!r} uses evaluation calls {unknown} that 'evals' does not "
                              f"define (defined: {sorted(p['evals'])})")
    p.setdefault("common", {})
    p["common"].setdefault("train", [])
    p["common"].setdefault("eval", [])
    p.setdefault("keys", {})
    p["keys"].setdefault("estimator", "mc")
    p["keys"].setdefault("mixture_draws", 16)
    p["keys"].setdefault("leak_convention", "ours_plain")
    p["keys"].setdefault("leak_estimator", "exact")
    return p


def apply_smoke(preset: dict) -> dict:
    """The preset's ``smoke`` section applied: its seeds (default the first), its train / eval overrides
    placed after all others (``last``: Hydra keeps the last value of a key given twice)."""
    smoke = preset.get("smoke") or {}
    p = json.loads(json.dumps(preset))
    p["seeds"] = smoke.get("seeds", p["seeds"][:1])
    p["last"] = {"train": list(smoke.get("train", [])), "eval": list(smoke.get("eval", []))}
    if smoke.get("tasks"):
        p["tasks"] = [t for t in p["tasks"] if t["label"] in smoke["tasks"]]
    return p


# ---------------------------------------------------------------------------------------------------------
# Running
def run_dir_of(out: Path, task: str, variant: str, seed: int) -> Path:
    return out / "runs" / task / variant / f"seed{seed}"


def task_evals(preset: dict, task: dict) -> list[str]:
    return list(task.get("evals", preset["evals"]))


def commands(preset: dict, task: dict, variant: str, seed: int, run_dir: Path,
             resume: bool = False) -> tuple[list[str], dict[str, list[str]]]:
    """(train command, {eval name: evaluate command}) of one run. The training writes into ``run_dir``
    (``paths.out_dir``), or continues the run there (``train.resume``) when ``resume``."""
    v = preset["variants"][variant]
    last = preset.get("last") or {}
    where = f"train.resume={run_dir}" if resume else f"paths.out_dir={run_dir}"
    train = [sys.executable, "scripts/train_diffusion.py", *preset["common"]["train"], *task["train"], *v.get("train", []),
             *last.get("train", []), f"seed={seed}", "train.test_after_fit=false", "train.progress_bar=false", where]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    evals = {}
    for name in task_evals(preset, task):
        evals[name] = [sys.executable, "scripts/evaluate.py", f"checkpoint={ckpt}", *preset["common"]["eval"],
                       *preset["evals"][name], *task.get("eval", []), *v.get("eval", []), *last.get("eval", []),
                       f"seed={seed}",
                       f"out_dir={run_dir / f'eval_{name}'}"]
    return train, evals


def run_logged(cmd: list[str], log: Path, env: dict) -> float:
    """Run ``cmd`` in the repository with stdout+stderr to ``log``; its CPU seconds (user + system).

    Raises ``RuntimeError`` with the log's tail when the command fails.
    """
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\nlog {log}:\n{tail}")
    return usage.ru_utime + usage.ru_stime


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_is_done(preset: dict, task: dict, run_dir: Path) -> bool:
    return all((run_dir / f"eval_{name}" / "metrics.json").exists() for name in task_evals(preset, task))


def execute_run(preset: dict, task: dict, variant: str, seed: int, out: Path, env: dict) -> dict:
    """Train (unless ``train_done`` says it finished) and run the missing evaluation calls of one run.

    Returns its timing: wall and CPU seconds (user + system of the child process) of each command.
    """
    run_dir = run_dir_of(out, task["label"], variant, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").unlink(missing_ok=True)
    last_ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = last_ckpt.exists() and not (run_dir / "train_done").exists()
    train_cmd, eval_cmds = commands(preset, task, variant, seed, run_dir, resume=resume)
    timing_path = run_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    if not (run_dir / "train_done").exists() or not last_ckpt.exists():
        # an interrupted training continues from its last.ckpt (train.resume: exact on one process), one that
        # wrote none starts again; evaluations of an older model are dropped
        stale = [f"eval_{name}" for name in eval_cmds] + ([] if resume else ["checkpoints", "csv"])
        for name in stale:
            shutil.rmtree(run_dir / name, ignore_errors=True)
        t0 = time.time()
        timing["train_cpu_s"] = run_logged(train_cmd, run_dir / "train.log", env)
        timing["train_wall_s"] = time.time() - t0
        write_atomic(run_dir / "train_done", f"{timing['train_wall_s']:.1f}\n")
    for name, cmd in eval_cmds.items():
        if (run_dir / f"eval_{name}" / "metrics.json").exists():
            continue
        t0 = time.time()
        timing[f"eval_{name}_cpu_s"] = run_logged(cmd, run_dir / f"eval_{name}.log", env)
        timing[f"eval_{name}_wall_s"] = time.time() - t0
    write_atomic(timing_path, json.dumps(timing, indent=1))
    return timing


def prepare_datasets(preset: dict, tasks: list[dict], out: Path, env: dict) -> list[str]:
    """Process each task's dataset (and its cached |Aut| values) once, one task at a time, before runs go in
    parallel: ``train_diffusion.py <overrides> train.summary_only=true`` (prints the dataset summary with its
    exchangeable floor). Returns the failures' messages."""
    failures = []
    last = preset.get("last") or {}
    for task in tasks:
        folder = out / "prepare" / task["label"]
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "scripts/train_diffusion.py", *preset["common"]["train"], *task["train"],
               *last.get("train", []), "train.summary_only=true"]
        try:
            run_logged(cmd, folder / "summary.log", env)
        except RuntimeError as e:
            failures.append(f"{task['label']} (dataset): {str(e).splitlines()[0]}")
            print(f"[report] {task['label']}: preparing its dataset FAILED ({folder / 'summary.log'})", flush=True)
    return failures


def run_grid(preset: dict, out: Path, jobs: int = 1, threads: int | None = None) -> list[str]:
    """Every (task, variant, seed) run not done yet, ``jobs`` at a time; returns the failures' messages.

    With ``jobs > 1`` the datasets of the tasks to run are prepared first, one at a time
    (:func:`prepare_datasets`). ``threads`` sets ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` of every command.
    """
    grid = [(t, v, s) for t in preset["tasks"] for v in preset["variants"] for s in preset["seeds"]]
    env = dict(os.environ)
    if threads:
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    todo = [(i, t, v, s) for i, (t, v, s) in enumerate(grid, 1)
            if not run_is_done(preset, t, run_dir_of(out, t["label"], v, s))]
    done_before = len(grid) - len(todo)
    if done_before:
        print(f"[report] {done_before} of {len(grid)} runs already done (skipped)", flush=True)
    started, lock, finished, failures = time.time(), threading.Lock(), [0], []
    if jobs > 1 and todo:  # parallel runs must not process the same dataset cache at once
        labels = {t["label"] for _, t, _, _ in todo}
        failures += prepare_datasets(preset, [t for t in preset["tasks"] if t["label"] in labels], out, env)

    def one(item):
        i, t, v, s = item
        name = f"{t['label']} / {v} / seed {s}"
        t0 = time.time()
        try:
            timing = execute_run(preset, t, v, s, out, env)
        except Exception as e:  # noqa: BLE001 - a failed run is recorded, the grid goes on
            rd = run_dir_of(out, t["label"], v, s)
            rd.mkdir(parents=True, exist_ok=True)
            write_atomic(rd / "error.txt", str(e))
            with lock:
                finished[0] += 1
                failures.append(f"{name}: {str(e).splitlines()[0]}")
                print(f"[{i}/{len(grid)}] {name}: FAILED ({rd / 'error.txt'})", flush=True)
            return
        evals = load_run_evals(preset, t, run_dir_of(out, t["label"], v, s))
        fmt = key_format(preset)
        nll, mix = read_column(evals, "nll", fmt), read_column(evals, "nll_mix", fmt)
        with lock:
            finished[0] += 1
            elapsed = time.time() - started
            eta = elapsed / finished[0] * (len(todo) - finished[0])
            cpu = sum(x for k, x in timing.items() if k.endswith("cpu_s"))
            print(f"[{i}/{len(grid)}] {name}: done in {time.time() - t0:.0f} s ({cpu:.0f} CPU s); NLL {_num(nll)}"
                  f" (mixture {_num(mix)}); {elapsed / 60:.1f} min elapsed, ~{eta / 60:.1f} min left", flush=True)

    if jobs <= 1:
        for item in todo:
            one(item)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, todo))
    return failures


def _num(v) -> str:
    return "–" if not isinstance(v, (int, float)) or v is None else f"{v:.2f}"


# ---------------------------------------------------------------------------------------------------------
# Aggregation
def key_format(preset: dict) -> dict:
    k = preset["keys"]
    return {"est": k["estimator"], "K": int(k["mixture_draws"]), "leak": f"{k['leak_convention']}_{k['leak_estimator']}"}


def load_run_evals(preset: dict, task: dict, run_dir: Path) -> dict[str, dict]:
    """{eval name: metrics} of a run, in preset order, for the calls whose metrics.json exists."""
    out = {}
    for name in task_evals(preset, task):
        path = run_dir / f"eval_{name}" / "metrics.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def known_entropy(run_dir: Path) -> tuple[float | None, float | None]:
    """(data entropy, exchangeable floor of the generating distribution) for the symmetry-breaking families.

    Read from the run's resolved ``config.yaml`` (dataset name and params) and computed exactly by
    :mod:`sympe.datasets.sources.breaking`; (None, None) for other datasets or when the config is missing.
    """
    path = run_dir / "config.yaml"
    if not path.exists():
        return None, None
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    name, params = cfg.get("dataset", {}).get("name"), cfg.get("dataset", {}).get("params") or {}
    from sympe.datasets.sources import breaking

    if name not in breaking.FAMILIES:
        return None, None
    size = params.get(breaking.SIZE_PARAM[name])
    size = size if size is not None else (4 if name == "matching" else 8)
    k = params.get("k") or 1
    return (breaking.data_entropy(name, size, k, bool(params.get("permute_nodes", True))),
            breaking.exchangeable_floor(name, size, k))


def run_record(preset: dict, task: dict, variant: str, seed: int, out: Path) -> dict | None:
    """Everything the report shows about one finished run (None when the run is not done)."""
    rd = run_dir_of(out, task["label"], variant, seed)
    if not run_is_done(preset, task, rd):
        return None
    evals = load_run_evals(preset, task, rd)
    fmt = key_format(preset)
    rec = {"seed": seed, **{col: read_column(evals, col, fmt) for col in KEYS}}
    rec["bin_centres"], rec["nll_bins"] = bin_means(rec["nll_bins"])
    if rec["entropy"] is None or rec["floor"] is None:
        entropy, floor = known_entropy(rd)
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
    timing = rd / "timing.json"
    rec["timing"] = json.loads(timing.read_text()) if timing.exists() else {}
    rec["val_curve"] = val_curve(rd)
    return rec


def val_curve(run_dir: Path) -> list[tuple[int, float]]:
    path = run_dir / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [(int(r["step"]), float(r["val/nll"])) for r in csv.DictReader(f) if r.get("val/nll")]


def mean_sem(values) -> tuple[float | None, float | None, int]:
    """(mean, standard error over the values, count) of the numeric entries; s.e. None below 2 values."""
    v = [float(x) for x in values if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)]
    if not v:
        return None, None, 0
    if len(v) == 1:
        return v[0], None, 1
    return float(np.mean(v)), float(np.std(v, ddof=1) / math.sqrt(len(v))), len(v)


def aggregate(preset: dict, runs: dict) -> dict:
    """The report's numbers from ``runs[task label][variant] = [run records]`` (see :func:`run_record`).

    For every task and variant: each column of :data:`KEYS` as mean ± s.e. over seeds, the difference of the
    NLLs to the ``none`` variant with ``sqrt(se_v² + se_none²)``, how many seeds the leak test flagged, and
    for each number of sampling steps the validity / uniqueness over seeds. Task-level: entropy and floor
    (mean over the runs; they do not depend on the variant).
    """
    tasks = []
    for task in preset["tasks"]:
        label = task["label"]
        rows = []
        task_runs = [r for v in preset["variants"] for r in runs.get(label, {}).get(v, [])]
        entry = {"label": label, "title": task.get("title", label), "train_overrides": task["train"],
                 "evals": task_evals(preset, task), "rows": rows}
        for col in ("entropy", "floor"):
            entry[col] = mean_sem([r[col] for r in task_runs])[0]
        entry["floor_sem"] = mean_sem([r["floor_sem"] for r in task_runs])[0]
        for variant, vdef in preset["variants"].items():
            recs = runs.get(label, {}).get(variant, [])
            row = {"variant": variant, "title": vdef.get("title", variant), "control": bool(vdef.get("control")),
                   "seeds_done": [r["seed"] for r in recs], "runs": recs}
            for col in ("nll", "nll_mix", "nll_digress", "leak_diff"):
                m, s, n = mean_sem([r[col] for r in recs])
                row[col] = {"mean": m, "sem": s, "n": n}
            flagged = [r["leak_flagged"] for r in recs if r["leak_flagged"] is not None]
            row["leak_flagged"] = {"flagged": int(sum(bool(f) for f in flagged)), "of": len(flagged)}
            steps = sorted({p["steps"] for r in recs for p in r["samples"]})
            row["sampling"] = []
            for st in steps:
                pts = [p for r in recs for p in r["samples"] if p["steps"] == st]
                row["sampling"].append({"steps": st, **{c: dict(zip(("mean", "sem", "n"), mean_sem([p[c] for p in pts])))
                                                        for c in ("validity", "uniqueness")}})
            bins = [r["nll_bins"] for r in recs if isinstance(r["nll_bins"], list) and r["nll_bins"]]
            if bins and len({len(b) for b in bins}) == 1:
                arr = np.asarray(bins, dtype=float)
                centres = next((r["bin_centres"] for r in recs if r.get("bin_centres")), None)
                row["nll_bins"] = {"mean": arr.mean(0).tolist(), "centres": centres,
                                   "sem": (arr.std(0, ddof=1) / math.sqrt(len(arr))).tolist() if len(arr) > 1 else None}
            else:
                row["nll_bins"] = None
            rows.append(row)
        base = next((r for r in rows if r["variant"] == "none"), None)
        for row in rows:
            for col in ("nll", "nll_mix"):
                row[f"{col}_vs_none"] = None if row is base else _difference(row[col], base["nll"] if base else None)
            row["below_floor"] = _below_floor(row, entry)
        tasks.append(entry)
    return {"tasks": tasks}


def _difference(a: dict, b: dict | None) -> dict | None:
    """a - b with the s.e. ``sqrt(se_a² + se_b²)`` (None when either side is missing)."""
    if b is None or a["mean"] is None or b["mean"] is None:
        return None
    sem = None if a["sem"] is None or b["sem"] is None else math.hypot(a["sem"], b["sem"])
    return {"mean": a["mean"] - b["mean"], "sem": sem}


def _below_floor(row: dict, task: dict) -> dict[str, bool]:
    """Per NLL column: is its mean more than 2 s.e. (of the mean and of the floor) below the exchangeable floor?"""
    floor = task.get("floor")
    out = {}
    for col in ("nll", "nll_mix"):
        c = row[col]
        out[col] = bool(floor is not None and c["mean"] is not None
                        and c["mean"] + 2 * math.hypot(c["sem"] or 0.0, task.get("floor_sem") or 0.0) < floor)
    return out


def collect(preset: dict, out: Path) -> dict:
    """``runs[task][variant] = [records]`` of every finished run under ``out``."""
    runs: dict = {}
    for task in preset["tasks"]:
        for variant in preset["variants"]:
            recs = [run_record(preset, task, variant, s, out) for s in preset["seeds"]]
            runs.setdefault(task["label"], {})[variant] = [r for r in recs if r is not None]
    return runs


# ---------------------------------------------------------------------------------------------------------
# Output
def fmt(cell: dict | None, digits: int = 2, scale: float = 1.0) -> str:
    if not cell or cell.get("mean") is None:
        return "–"
    m = cell["mean"] * scale
    if cell.get("sem") is None:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {cell['sem'] * scale:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as Markdown: overview tables (tasks × variants), then one detailed table per task."""
    est, K = report["keys"]["estimator"], report["keys"]["mixture_draws"]
    variants = report["variants"]
    lines = [f"# Symmetry-breaking benchmark ({report['preset']} preset)", "",
             f"Command: `{report['command']}`", "",
             f"Seeds {report['seeds']}. Every run trains with `scripts/train_diffusion.py` for a fixed number of "
             "optimizer steps and is evaluated with `scripts/evaluate.py` on its final checkpoint. NLL: test-set "
             f"variational bound in nats per graph, each undirected edge counted once, `{est}` estimator. "
             f"*Per-draw*: one draw of the symmetry breaker per term. *Mixture*: the importance-weighted bound of "
             f"the g̃-mixture model with K = {K} draws per term (both are upper bounds on the NLL). Cells: mean ± "
             "standard error over seeds. *H*: exact entropy of the data distribution (the best possible NLL). "
             "*Floor*: the exchangeable floor E[−log p(N) + log N! − log |Aut(x)|] of the test set, below which no "
             "permutation-invariant model can go. Rows marked *control* read node indices (not equivariant): "
             "they exist to be flagged by the node-order leak test and are never results.",
             f"Compute: {report['total_cpu_s'] / 60:.1f} CPU-minutes over {report['num_runs']} runs "
             f"({report['runs_done']} done).", "",
             "Overrides of every run: training `" + " ".join(report["common"]["train"]) + "`; evaluation `"
             + " ".join(report["common"]["eval"]) + "`" + ("; appended last (smoke): `"
             + " ".join(report["last"]["train"] + report["last"]["eval"]) + "`" if report.get("last") else ""), "",
             "Variants: " + "; ".join(f"{v.get('title', k)} = `{' '.join(v.get('train', []))}`"
                                      for k, v in variants.items()), "",
             "Evaluation calls (`scripts/evaluate.py` overrides): " + "; ".join(
                 f"{k} = `{' '.join(v)}`" for k, v in report["evals"].items()), ""]
    overview = [("nll", "per-draw bound"), ("nll_mix", f"mixture bound (K = {K})")]
    if any(r["nll_digress"]["mean"] is not None for t in report["tasks"] for r in t["rows"]):
        overview.append(("nll_digress", "DiGress's formula (edges twice, reweighted kernel; to compare with "
                                        "published numbers only)"))
    for col, title in overview:
        head = ["task", "H", "floor"] + [variants[v].get("title", v) for v in variants]
        lines += [f"## Test NLL, {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in report["tasks"]:
            cells = [t["title"], _f(t["entropy"]), fmt({"mean": t["floor"], "sem": t.get("floor_sem")})]
            for row in t["rows"]:
                mark = " ↓floor" if row["below_floor"].get(col) else ""
                cells.append(fmt(row[col]) + mark)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["↓floor: more than two standard errors below the exchangeable floor (expected of a control only).", ""]
    for t in report["tasks"]:
        lines += [f"## {t['title']}", "", "Training overrides: `" + " ".join(t["train_overrides"]) + "`  ",
                  f"Evaluation calls: {', '.join(t['evals'])}  ",
                  f"Data entropy H: {_f(t['entropy'])}; exchangeable floor: "
                  f"{fmt({'mean': t['floor'], 'sem': t.get('floor_sem')})} nats per graph", ""]
        steps = sorted({s["steps"] for r in t["rows"] for s in r["sampling"]})
        shown = {m: [st for st in steps if any(p["steps"] == st and p[m]["mean"] is not None
                                               for r in t["rows"] for p in r["sampling"])]
                 for m in ("validity", "uniqueness")}
        has_digress = any(r["nll_digress"]["mean"] is not None for r in t["rows"])
        head = (["variant", "seeds", "NLL per-draw", "Δ vs none", f"NLL mixture K={K}", "Δ vs none"]
                + (["NLL DiGress formula"] if has_digress else []) + ["leak diff. (flagged)"]
                + [f"validity @{s}" for s in shown["validity"]] + [f"uniqueness @{s}" for s in shown["uniqueness"]])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in t["rows"]:
            name = f"*{r['title']} (control)*" if r["control"] else r["title"]
            by_steps = {s["steps"]: s for s in r["sampling"]}
            cells = [name, str(len(r["seeds_done"])), fmt(r["nll"]), fmt(r["nll_vs_none"]), fmt(r["nll_mix"]),
                     fmt(r["nll_mix_vs_none"])]
            if has_digress:
                cells.append(fmt(r["nll_digress"]))
            lf = r["leak_flagged"]
            cells.append(fmt(r["leak_diff"]) + (f" ({lf['flagged']}/{lf['of']})" if lf["of"] else ""))
            cells += [fmt(by_steps.get(s, {}).get("validity"), 1, 100) for s in shown["validity"]]
            cells += [fmt(by_steps.get(s, {}).get("uniqueness"), 1, 100) for s in shown["uniqueness"]]
            lines.append("| " + " | ".join(cells) + " |")
        pics = [f"![NLL per variant](nll_{t['label']}.png)"]
        if any(r["nll_bins"] for r in t["rows"]):
            pics.append(f"![NLL per t bin](nll_bins_{t['label']}.png)")
        if any(p["validity"]["mean"] is not None for r in t["rows"] for p in r["sampling"]):
            pics.append(f"![validity against sampling steps](validity_{t['label']}.png)")
        samples = [f"[{r['variant']}](samples_{t['label']}_{r['variant']}.png)" for r in t["rows"]
                   if f"samples_{t['label']}_{r['variant']}.png" in report.get("plots", [])]
        lines += ["", "Validity and uniqueness in %. Leak diff.: NLL in the stored node order minus NLL under random "
                  "relabellings (nats per graph; (k/n): seeds where the test flagged a leak).", "", " ".join(pics), ""]
        if samples:
            lines += ["Samples (first seed, all steps): " + " ".join(samples), ""]
    if report.get("failures"):
        lines += ["## Failed runs", ""] + [f"- {f}" for f in report["failures"]] + [""]
    return "\n".join(lines) + "\n"


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def time_bin_centres(T: int, num_bins: int) -> list[float]:
    """Centres of the contiguous bins ``[1 + floor(T b / B), floor(T (b+1) / B)]`` of ``1..T``."""
    edges = [1 + (T * b) // num_bins for b in range(num_bins + 1)]
    return [(edges[b] + edges[b + 1] - 1) / 2 for b in range(num_bins)]


def plots(report: dict, out: Path) -> list[str]:
    """PNG plots per task; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    K = report["keys"]["mixture_draws"]
    for t in report["tasks"]:
        rows = t["rows"]
        for r in rows:  # the sample grid of each variant's first finished seed, from its first evaluation call
            if r["runs"]:
                src = run_dir_of(out, t["label"], r["variant"], r["runs"][0]["seed"]) / f"eval_{t['evals'][0]}" / "samples.png"
                if src.exists():
                    name = f"samples_{t['label']}_{r['variant']}.png"
                    shutil.copyfile(src, out / name)
                    written.append(name)
        x = np.arange(len(rows))
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for off, col, label, marker in ((-0.15, "nll", "per-draw bound", "o"), (0.15, "nll_mix", f"mixture bound K={K}", "s")):
            for i, r in enumerate(rows):
                color = "#c33" if r["control"] else "#26a"
                if r[col]["mean"] is not None:
                    ax.errorbar([i + off], [r[col]["mean"]], yerr=[r[col]["sem"] or 0.0], marker=marker, ms=6, capsize=4,
                                color=color, mfc="white" if marker == "s" else color, label=label if i == 0 else None)
                pts = [rr[col] for rr in r["runs"] if rr[col] is not None]
                ax.scatter([i + off + 0.05] * len(pts), pts, color="k", s=6, zorder=3, alpha=0.6)
        if t["floor"] is not None:
            ax.axhline(t["floor"], color="r", ls="--", lw=1, label="exchangeable floor")
        if t["entropy"] is not None:
            ax.axhline(t["entropy"], color="g", ls=":", lw=1.2, label="data entropy")
        ax.set_xticks(x, [r["title"] + (" (control)" if r["control"] else "") for r in rows], rotation=20,
                      fontsize=7, ha="right")
        ax.set_ylabel("test NLL (nats / graph), mean ± s.e. over seeds; dots: seeds")
        ax.yaxis.label.set_size(7)
        ax.set_title(t["title"], fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"nll_{t['label']}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        written.append(name)

        if any(r["nll_bins"] for r in rows):
            fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
            base = next((r["nll_bins"] for r in rows if r["variant"] == "none" and r["nll_bins"]), None)
            for r in rows:
                if not r["nll_bins"]:
                    continue
                mean = np.asarray(r["nll_bins"]["mean"])
                sem = np.asarray(r["nll_bins"]["sem"]) if r["nll_bins"]["sem"] else np.zeros_like(mean)
                T = t.get("T")
                xs = (r["nll_bins"]["centres"] or (time_bin_centres(int(T), len(mean)) if T and T >= len(mean)
                                                   else list(range(1, len(mean) + 1))))
                ls = "--" if r["control"] else "-"
                ax.errorbar(xs, mean, yerr=sem, marker="o", ms=3, capsize=2, label=r["title"], ls=ls)
                if base is not None and len(base["mean"]) == len(mean):
                    bsem = np.asarray(base["sem"]) if base["sem"] else np.zeros_like(mean)
                    ax_d.errorbar(xs, mean - np.asarray(base["mean"]), yerr=np.hypot(sem, bsem), marker="o", ms=3,
                                  capsize=2, label=r["title"], ls=ls)
            if all(m > 0 for r in rows if r["nll_bins"] for m in r["nll_bins"]["mean"]):
                ax.set_yscale("log")
            ax.set_xlabel("diffusion time t (bin centre)")
            ax.set_ylabel("NLL of the bin (nats / graph)")
            ax.set_title(t["title"], fontsize=9)
            ax.legend(fontsize=6)
            ax_d.axhline(0.0, color="k", lw=0.8)
            ax_d.set_xlabel("diffusion time t (bin centre)")
            ax_d.set_ylabel("difference to none (nats / graph)")
            ax_d.set_title("per-bin NLL minus that of none (mean ± s.e. over seeds)", fontsize=8)
            fig.tight_layout()
            name = f"nll_bins_{t['label']}.png"
            fig.savefig(out / name, dpi=90)
            plt.close(fig)
            written.append(name)

        if any(p["validity"]["mean"] is not None for r in rows for p in r["sampling"]):
            fig, ax = plt.subplots(figsize=(6, 3.5))
            for r in rows:
                pts = [p for p in r["sampling"] if p["validity"]["mean"] is not None]
                if not pts:
                    continue
                ax.errorbar([p["steps"] for p in pts], [100 * p["validity"]["mean"] for p in pts],
                            yerr=[100 * (p["validity"]["sem"] or 0) for p in pts], marker="o", ms=3, capsize=2,
                            label=r["title"], ls="--" if r["control"] else "-")
            ax.set_xscale("log")
            ax.set_xlabel("sampling steps")
            ax.set_ylabel("validity (%)")
            ax.set_title(t["title"], fontsize=9)
            ax.legend(fontsize=6)
            fig.tight_layout()
            name = f"validity_{t['label']}.png"
            fig.savefig(out / name, dpi=90)
            plt.close(fig)
            written.append(name)

        curves = [(r, [c for c in (x["val_curve"] for x in r["runs"]) if c]) for r in rows]
        if any(c for _, c in curves):
            fig, ax = plt.subplots(figsize=(6, 3.5))
            for r, cs in curves:
                if not cs:
                    continue
                k = min(len(c) for c in cs)
                steps = [s for s, _ in cs[0][:k]]
                ax.plot(steps, np.mean([[v for _, v in c[:k]] for c in cs], axis=0), marker="o", ms=3,
                        label=r["title"], ls="--" if r["control"] else "-")
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("validation NLL (nats / graph)")
            ax.set_title(t["title"], fontsize=9)
            ax.legend(fontsize=6)
            fig.tight_layout()
            name = f"val_nll_{t['label']}.png"
            fig.savefig(out / name, dpi=90)
            plt.close(fig)
            written.append(name)
    return written


def task_T(preset: dict, runs: dict, out: Path, task: dict) -> int | None:
    """T of a task's models, from the resolved config of any of its runs."""
    for variant in preset["variants"]:
        for r in runs.get(task["label"], {}).get(variant, []):
            path = run_dir_of(out, task["label"], variant, r["seed"]) / "config.yaml"
            if path.exists():
                from omegaconf import OmegaConf

                return int(OmegaConf.load(path).model.diffusion.T)
    return None


def build_report(preset: dict, out: Path, preset_name: str, command: str, failures=(), make_plots: bool = True) -> dict:
    """Aggregate the finished runs under ``out``; writes ``report.json``, ``report.md`` and the plots."""
    runs = collect(preset, out)
    report = {"preset": preset_name, "command": command, "seeds": preset["seeds"], "variants": preset["variants"],
              "common": preset["common"], "evals": preset["evals"], "last": preset.get("last"),
              "keys": {"estimator": preset["keys"]["estimator"], "mixture_draws": int(preset["keys"]["mixture_draws"]),
                       "json_keys": KEYS, "sample_keys": SAMPLE_KEYS},
              **aggregate(preset, runs), "failures": list(failures)}
    for t, task in zip(report["tasks"], preset["tasks"]):
        t["T"] = task_T(preset, runs, out, task)
    all_runs = [r for t in report["tasks"] for row in t["rows"] for r in row["runs"]]
    report["num_runs"] = len(preset["tasks"]) * len(preset["variants"]) * len(preset["seeds"])
    report["runs_done"] = len(all_runs)
    report["total_cpu_s"] = sum(v for r in all_runs for k, v in r["timing"].items() if k.endswith("cpu_s"))
    report["total_wall_s"] = sum(v for r in all_runs for k, v in r["timing"].items() if k.endswith("wall_s"))
    out.mkdir(parents=True, exist_ok=True)
    if make_plots:
        report["plots"] = plots(report, out)
    write_atomic(out / "report.json", json.dumps(report, indent=1, default=str))
    write_atomic(out / "report.md", markdown(report))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", help="configs/report/<preset>.yaml (default: cpu)")
    ap.add_argument("--out", default=None, help="output folder (default reports/<preset>; with --smoke "
                                                "outputs/report_smoke/<preset>)")
    ap.add_argument("--tasks", nargs="*", default=None, help="only these task labels")
    ap.add_argument("--variants", nargs="*", default=None, help="only these variants")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="only these seeds")
    ap.add_argument("--smoke", action="store_true", help="apply the preset's smoke section (1 seed, tiny budgets)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per run (OMP_NUM_THREADS); default: inherited with --jobs 1, else "
                         "cores // jobs")
    ap.add_argument("--aggregate-only", action="store_true", help="build the report from finished runs, train nothing")
    args = ap.parse_args(argv)

    preset_path = REPO / "configs" / "report" / f"{args.preset}.yaml"
    try:
        preset = load_preset(preset_path)
    except PresetError as e:
        raise SystemExit(str(e))
    if args.smoke:
        preset = apply_smoke(preset)
    for flag, field, known in (("--tasks", "tasks", [t["label"] for t in preset["tasks"]]),
                               ("--variants", "variants", list(preset["variants"])), ("--seeds", "seeds", preset["seeds"])):
        chosen = getattr(args, field)
        if chosen is None:
            continue
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise SystemExit(f"{flag} {unknown}: not in preset {args.preset!r} (it has {known})")
        if field == "tasks":
            preset["tasks"] = [t for t in preset["tasks"] if t["label"] in chosen]
        elif field == "variants":
            preset["variants"] = {v: d for v, d in preset["variants"].items() if v in chosen}
        else:
            preset["seeds"] = list(chosen)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads is None and args.jobs > 1:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    default_out = REPO / ("outputs/report_smoke" if args.smoke else "reports") / args.preset
    out = Path(args.out).resolve() if args.out else default_out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    command = "python scripts/nll_report.py " + " ".join(argv if argv is not None else sys.argv[1:])

    failures: list[str] = []
    started = time.time()
    if not args.aggregate_only:
        failures = run_grid(preset, out, jobs=args.jobs, threads=args.threads)
    report = build_report(preset, out, args.preset, command.strip(), failures)
    print(f"[report] {report['runs_done']}/{report['num_runs']} runs done, {report['total_cpu_s'] / 60:.1f} CPU-minutes "
          f"in all; written to {out / 'report.md'} ({(time.time() - started) / 60:.1f} min this invocation)")
    if failures:
        print(f"[report] {len(failures)} run(s) failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
