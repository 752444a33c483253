"""Report presets: ``configs/report/<name>.yaml`` read, checked, and narrowed to what one command runs.

A preset names

* ``seeds``: the seeds of every (task, variant) cell;
* ``variants``: label -> ``{title, train: [training overrides], eval: [evaluate.py overrides], control}``; the
  overrides make the variant (e.g. ``model.symbreak=sympe``); ``control: true`` marks a non-equivariant control;
* ``evals``: name -> the ``scripts/evaluate.py`` overrides of one evaluation call made on every trained model;
* ``tasks``: a list of ``{label, title, train, eval, evals}``: a dataset setting with its training budget in
  optimizer steps (``train``), extra evaluation overrides (``eval``) and which evaluation calls it uses
  (``evals``, default all of them, in preset order);
* optional ``common`` (``{train, eval}``: overrides of every run), ``keys`` (which ``evaluate.py`` keys the report
  reads: ``estimator``, ``mixture_draws``, ``leak_convention``, ``leak_estimator``, ``proposal_convention``; see
  :mod:`sympe.diffusion.runs.report.aggregate`) and ``smoke`` (``{seeds, train, eval, tasks}``, applied by
  :func:`apply_smoke`).

The overrides of a run are ``common + task + variant (+ smoke)`` in that order; Hydra keeps the last value of a
key given twice (:func:`sympe.diffusion.runs.report.runner.commands`).
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["PresetError", "load_preset", "apply_smoke", "restrict", "task_evals", "KEY_DEFAULTS"]

#: The ``keys`` section's defaults (which evaluate.py keys the report reads).
KEY_DEFAULTS = {"estimator": "mc", "mixture_draws": 16, "leak_convention": "ours_plain", "leak_estimator": "exact",
                "proposal_convention": "ours_plain_mix4_defensive"}


class PresetError(ValueError):
    """A preset file that is missing or malformed, or a selection it does not hold (the message names the file
    or option and the field)."""


def load_preset(path: Path) -> dict:
    """The preset at ``path`` as a plain dict, checked, with ``common`` and ``keys`` filled with their defaults.

    Raises :class:`PresetError` naming the field (and the known presets when the file does not exist): a missing
    ``seeds`` / ``variants`` / ``evals`` / ``tasks``, empty ``variants`` or ``evals``, a task without ``label`` or
    ``train``, a task label given twice, a task using an evaluation call that ``evals`` does not define.
    """
    from omegaconf import OmegaConf

    path = Path(path)
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
    for key, value in KEY_DEFAULTS.items():
        p["keys"].setdefault(key, value)
    return p


def apply_smoke(preset: dict) -> dict:
    """A copy of ``preset`` with its ``smoke`` section applied: its seeds (default the first seed), its tasks
    (default all), and its train / eval overrides kept in ``last``, placed after all others (Hydra keeps the
    last value of a key given twice)."""
    smoke = preset.get("smoke") or {}
    p = json.loads(json.dumps(preset))
    p["seeds"] = smoke.get("seeds", p["seeds"][:1])
    p["last"] = {"train": list(smoke.get("train", [])), "eval": list(smoke.get("eval", []))}
    if smoke.get("tasks"):
        p["tasks"] = [t for t in p["tasks"] if t["label"] in smoke["tasks"]]
    return p


def restrict(preset: dict, name: str, tasks=None, variants=None, seeds=None) -> dict:
    """A copy of ``preset`` with only the chosen task labels, variants and seeds (None: all of them), in the
    preset's order for tasks and variants and in the given order for seeds.

    Raises :class:`PresetError` naming the option of ``scripts/nll_report.py`` (``--tasks``, ``--variants``,
    ``--seeds``), the values the preset ``name`` does not hold, and the ones it does.
    """
    p = json.loads(json.dumps(preset))
    for flag, field, known in (("--tasks", "tasks", [t["label"] for t in p["tasks"]]),
                               ("--variants", "variants", list(p["variants"])), ("--seeds", "seeds", p["seeds"])):
        chosen = {"tasks": tasks, "variants": variants, "seeds": seeds}[field]
        if chosen is None:
            continue
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise PresetError(f"{flag} {unknown}: not in preset {name!r} (it has {known})")
        if field == "tasks":
            p["tasks"] = [t for t in p["tasks"] if t["label"] in chosen]
        elif field == "variants":
            p["variants"] = {v: d for v, d in p["variants"].items() if v in chosen}
        else:
            p["seeds"] = list(chosen)
    return p


def task_evals(preset: dict, task: dict) -> list[str]:
    """The names of the evaluation calls made on every model of ``task``, in the order the task lists them."""
    return list(task.get("evals", preset["evals"]))
