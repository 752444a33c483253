"""Where a report's files lie: one folder per (task, variant, seed) run under ``<out>/runs``.

::

    <out>/runs/<task>/<variant>/seed<s>/    the training's run folder (config.yaml, checkpoints/, csv/metrics.csv)
        train.log, train_done               the training's output; ``train_done`` holds its wall seconds
        eval_<name>/metrics.json            evaluate.py's metrics of evaluation call <name> (eval_<name>.log)
        timing.json                         wall and CPU seconds of every command
        error.txt                           why the run failed (absent when it did not)
    <out>/prepare/<task>/summary.log        dataset preparation before parallel runs
    <out>/report.md, report.json, *.png     the report

A run is done when every evaluation call of its task wrote its ``metrics.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

from sympe.diffusion.runs.report.presets import task_evals

__all__ = ["run_dir_of", "eval_dir", "run_is_done", "load_run_evals", "read_run_config", "TRAIN_DONE", "TIMING",
           "ERROR", "LAST_CHECKPOINT"]

TRAIN_DONE = "train_done"
TIMING = "timing.json"
ERROR = "error.txt"
#: The checkpoint every evaluation call reads (the final weights of the fixed budget), relative to the run folder.
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def run_dir_of(out: Path, task: str, variant: str, seed: int) -> Path:
    """The run folder of (task label, variant, seed) under the report folder ``out``."""
    return Path(out) / "runs" / task / variant / f"seed{seed}"


def eval_dir(run_dir: Path, name: str) -> Path:
    """The output folder of evaluation call ``name`` of a run."""
    return Path(run_dir) / f"eval_{name}"


def run_is_done(preset: dict, task: dict, run_dir: Path) -> bool:
    """Whether every evaluation call of ``task`` wrote its ``metrics.json`` in ``run_dir``."""
    return all((eval_dir(run_dir, name) / "metrics.json").exists() for name in task_evals(preset, task))


def load_run_evals(preset: dict, task: dict, run_dir: Path) -> dict[str, dict]:
    """``{eval name: metrics}`` of a run, in the task's order, for the calls whose ``metrics.json`` exists.

    Raises ``json.JSONDecodeError`` for a metrics file that is not JSON.
    """
    out = {}
    for name in task_evals(preset, task):
        path = eval_dir(run_dir, name) / "metrics.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def read_run_config(run_dir: Path):
    """The training's resolved ``config.yaml`` of a run as an OmegaConf ``DictConfig``, or None without one."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return None
    from omegaconf import OmegaConf

    return OmegaConf.load(path)
