"""The report's resumable job runner: every (task, variant, seed) run through the commands users run.

Each run is ``scripts/train_diffusion.py`` with the overrides ``common.train + task.train + variant.train (+ smoke
train) + seed=<s>`` (Hydra keeps the last value of a key given twice), then ``scripts/evaluate.py
checkpoint=<run>/checkpoints/last.ckpt`` (the final weights of the fixed budget) once per evaluation call of the
task, with ``common.eval + evals[name] + task.eval + variant.eval (+ smoke eval)``. Both commands are started
through :func:`command_for`, the one place that says how a project command is invoked.

Resuming: a run is skipped when all its ``eval_<name>/metrics.json`` exist; a training without its ``train_done``
marker continues from its ``checkpoints/last.ckpt`` (``train.resume``), or starts again when it wrote none; so an
interrupted report resumes where it stopped. One progress line per run (done / failed, its time, its NLL in nats
per graph, the estimated time left). A failed run is recorded in its ``error.txt`` and the others go on.
Folder layout: :mod:`sympe.diffusion.runs.report.layout`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sympe.diffusion.files import atomic_write_json, atomic_write_text
from sympe.diffusion.runs.report.aggregate import key_format, read_column
from sympe.diffusion.runs.report.layout import ERROR, LAST_CHECKPOINT, TIMING, TRAIN_DONE, eval_dir, load_run_evals, \
    run_dir_of, run_is_done
from sympe.diffusion.runs.report.presets import task_evals

__all__ = ["COMMANDS", "command_for", "commands", "run_logged", "execute_run", "prepare_datasets", "run_grid"]

#: The project commands the runner starts.
COMMANDS = ("train_diffusion", "evaluate")


def command_for(name: str) -> list[str]:
    """The argument list that starts project command ``name`` (one of :data:`COMMANDS`), to which its overrides
    are appended: ``[python, "-m", "sympe.cli.<name>"]``, the script ``scripts/<name>.py`` of a checkout or of the
    installed package alike (the runner's ``cwd`` only anchors relative paths of the preset). Raises
    ``ValueError`` for another name."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; the report runs {list(COMMANDS)}")
    return [sys.executable, "-m", f"sympe.cli.{name}"]


def commands(preset: dict, task: dict, variant: str, seed: int, run_dir: Path,
             resume: bool = False) -> tuple[list[str], dict[str, list[str]]]:
    """(train command, {eval name: evaluate command}) of one run. The training writes into ``run_dir``
    (``paths.out_dir``), or continues the run there (``train.resume``) when ``resume``."""
    v = preset["variants"][variant]
    last = preset.get("last") or {}
    where = f"train.resume={run_dir}" if resume else f"paths.out_dir={run_dir}"
    train = [*command_for("train_diffusion"), *preset["common"]["train"], *task["train"], *v.get("train", []),
             *last.get("train", []), f"seed={seed}", "train.test_after_fit=false", "train.progress_bar=false", where]
    ckpt = Path(run_dir) / LAST_CHECKPOINT
    evals = {}
    for name in task_evals(preset, task):
        evals[name] = [*command_for("evaluate"), f"checkpoint={ckpt}", *preset["common"]["eval"],
                       *preset["evals"][name], *task.get("eval", []), *v.get("eval", []), *last.get("eval", []),
                       f"seed={seed}", f"out_dir={eval_dir(run_dir, name)}", "overwrite=true"]  # the runner's own folder:
        # it reruns only an evaluation that wrote no metrics.json (an interrupted one may have left samples)
    return train, evals


def run_logged(cmd: list[str], log: Path, env: dict, cwd: Path) -> float:
    """Run ``cmd`` in ``cwd`` with stdout+stderr to ``log``; returns its CPU seconds (user + system).

    Raises ``RuntimeError`` with the log's last 3000 characters when the command exits with a non-zero status.
    """
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\nlog {log}:\n{tail}")
    return usage.ru_utime + usage.ru_stime


def execute_run(preset: dict, task: dict, variant: str, seed: int, out: Path, env: dict, cwd: Path) -> dict:
    """Train (unless ``train_done`` says it finished) and run the missing evaluation calls of one run.

    Returns its timing, also written to ``timing.json``: wall and CPU seconds (user + system of the child
    process) of each command (``train_wall_s``, ``train_cpu_s``, ``eval_<name>_wall_s``, ...). Raises the
    ``RuntimeError`` of :func:`run_logged` when a command fails.
    """
    run_dir = run_dir_of(out, task["label"], variant, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR).unlink(missing_ok=True)
    last_ckpt = run_dir / LAST_CHECKPOINT
    resume = last_ckpt.exists() and not (run_dir / TRAIN_DONE).exists()
    train_cmd, eval_cmds = commands(preset, task, variant, seed, run_dir, resume=resume)
    timing_path = run_dir / TIMING
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    if not (run_dir / TRAIN_DONE).exists() or not last_ckpt.exists():
        # an interrupted training continues from its last.ckpt (train.resume: exact on one process), one that
        # wrote none starts again; evaluations of an older model are dropped
        stale = [eval_dir(run_dir, name).name for name in eval_cmds] + ([] if resume else ["checkpoints", "csv"])
        for name in stale:
            shutil.rmtree(run_dir / name, ignore_errors=True)
        t0 = time.time()
        timing["train_cpu_s"] = run_logged(train_cmd, run_dir / "train.log", env, cwd)
        timing["train_wall_s"] = time.time() - t0
        atomic_write_text(run_dir / TRAIN_DONE, f"{timing['train_wall_s']:.1f}\n")
    for name, cmd in eval_cmds.items():
        if (eval_dir(run_dir, name) / "metrics.json").exists():
            continue
        t0 = time.time()
        timing[f"eval_{name}_cpu_s"] = run_logged(cmd, run_dir / f"eval_{name}.log", env, cwd)
        timing[f"eval_{name}_wall_s"] = time.time() - t0
    atomic_write_json(timing_path, timing, indent=1)
    return timing


def prepare_datasets(preset: dict, tasks: list[dict], out: Path, env: dict, cwd: Path) -> list[str]:
    """Process each task's dataset (and its cached |Aut| values) once, one task at a time, before runs go in
    parallel: ``train_diffusion.py <overrides> train.summary_only=true`` (prints the dataset summary with its
    exchangeable floor), logged to ``<out>/prepare/<task>/summary.log``. Returns the failures' messages (a
    failure is printed, not raised)."""
    failures = []
    last = preset.get("last") or {}
    for task in tasks:
        folder = Path(out) / "prepare" / task["label"]
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [*command_for("train_diffusion"), *preset["common"]["train"], *task["train"], *last.get("train", []),
               "train.summary_only=true"]
        try:
            run_logged(cmd, folder / "summary.log", env, cwd)
        except RuntimeError as e:
            failures.append(f"{task['label']} (dataset): {str(e).splitlines()[0]}")
            print(f"[report] {task['label']}: preparing its dataset FAILED ({folder / 'summary.log'})", flush=True)
    return failures


def run_grid(preset: dict, out: Path, cwd: Path, jobs: int = 1, threads: int | None = None) -> list[str]:
    """Every (task, variant, seed) run not done yet, ``jobs`` at a time, each command started in ``cwd`` (the
    repository checkout); returns the failures' messages. Prints one progress line per run.

    With ``jobs > 1`` the datasets of the tasks to run are prepared first, one at a time
    (:func:`prepare_datasets`). ``threads`` sets ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` of every command.
    A run that raises is recorded in its ``error.txt`` and the grid goes on.
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
        failures += prepare_datasets(preset, [t for t in preset["tasks"] if t["label"] in labels], out, env, cwd)

    def one(item):
        i, t, v, s = item
        name = f"{t['label']} / {v} / seed {s}"
        t0 = time.time()
        try:
            timing = execute_run(preset, t, v, s, out, env, cwd)
        except Exception as e:  # noqa: BLE001 - a failed run is recorded, the grid goes on
            rd = run_dir_of(out, t["label"], v, s)
            rd.mkdir(parents=True, exist_ok=True)
            atomic_write_text(rd / ERROR, str(e))
            with lock:
                finished[0] += 1
                failures.append(f"{name}: {str(e).splitlines()[0]}")
                print(f"[{i}/{len(grid)}] {name}: FAILED ({rd / ERROR})", flush=True)
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
