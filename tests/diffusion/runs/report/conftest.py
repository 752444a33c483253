"""Fake report folders: the run JSONs evaluate.py writes, for a preset of three variants on two tasks."""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from sympe.diffusion.runs.report import run_dir_of

# per (task, variant): per-seed per-draw NLL, mixture NLL, leak difference; validity at 10 / 50 / 500 steps
NLL = {("cycle", "none"): [12.0, 13.0, 14.0], ("cycle", "sympe"): [11.0, 11.5, 12.5], ("cycle", "index"): [5.0, 6.0, 7.0],
       ("mol", "none"): [60.0, 62.0, 64.0], ("mol", "sympe"): [59.0, 61.0, 66.0], ("mol", "index"): [30.0, 31.0, 32.0]}
MIX_OFFSET = {"none": 0.0, "sympe": -1.5, "index": -0.5}
LEAK = {"none": [0.1, -0.2, 0.05], "sympe": [0.0, 0.3, -0.1], "index": [-4.0, -5.0, -6.0]}
MOL_FLOOR = 36.25
CYCLE_ENTROPY = math.log(math.factorial(8) / 2)   # marked cycle, n = 8, k = 1: log(8!/2) = 9.9115


def fake_preset() -> dict:
    return {
        "seeds": [0, 1, 2],
        "keys": {"estimator": "stratified", "mixture_draws": 16, "leak_convention": "ours_plain",
                 "leak_estimator": "stratified"},
        "common": {"train": ["train.lr=1e-3"], "eval": ["num_samples=8"]},
        "variants": {"none": {"title": "none", "train": ["model.symbreak=none"]},
                     "sympe": {"title": "SymPE", "train": ["model.symbreak=sympe"]},
                     "index": {"title": "index", "control": True, "train": ["model.symbreak=index"]}},
        "evals": {"nll": ["nll_estimator=stratified", "nll_conventions=[ours_plain,ours_plain_mix16]"],
                  "steps10": ["nll_estimator=none", "steps=10"], "steps50": ["nll_estimator=none", "steps=50"]},
        "tasks": [{"label": "cycle", "title": "marked cycle", "train": ["dataset=marked_cycle"], "evals": ["nll", "steps10"]},
                  {"label": "mol", "title": "molecules", "train": ["dataset=qm9_h"], "evals": ["nll", "steps10", "steps50"]}],
    }


def write_run(out: Path, task: str, variant: str, seed: int, skip_eval: str | None = None) -> None:
    """The files of one finished run (all evaluation calls but ``skip_eval``)."""
    rd = run_dir_of(out, task, variant, seed)
    nll = NLL[(task, variant)][seed]
    # evaluate.py's layout (sympe.diffusion.likelihood.nll_section): flat keys named by convention and estimator
    bins = [{"t_min": 1 + 50 * b, "t_max": 50 * (b + 1), "mean": nll / 10 + b, "sem": 0.1} for b in range(10)]
    main = {"nll_ours_plain_stratified": nll, "nll_ours_plain_stratified_sem": 0.5,
            "nll_ours_plain_stratified_bins": bins,
            "nll_ours_plain_mix16_stratified": nll + MIX_OFFSET[variant], "nll_ours_plain_mix16_stratified_sem": 0.4,
            "leak_test_ours_plain_stratified": {"difference": LEAK[variant][seed], "difference_sem": 0.3,
                                                "flagged": abs(LEAK[variant][seed]) > 0.9}}
    if task == "mol":
        main.update({"nll_ours_plain_stratified_floor": MOL_FLOOR, "nll_ours_plain_stratified_floor_sem": 0.06,
                     "exchangeable_nll_floor": 99.0, "sampling_steps": 500, "num_samples": 8,
                     "validity": 0.5 + 0.1 * seed, "uniqueness": 1.0})
    else:
        main.update({"sampling_steps": 10, "num_samples": 8, "validity": None})   # uniqueness absent
    steps10 = {"num_samples": 0}
    if task == "mol":
        steps10.update({"sampling_steps": 10, "num_samples": 8, "validity": 0.1 * seed, "uniqueness": 0.9})
    evals = {"nll": main, "steps10": steps10}
    if task == "mol":
        evals["steps50"] = {"sampling_steps": 50, "num_samples": 8, "validity": 0.3, "uniqueness": 1.0}
    for name, metrics in evals.items():
        if name == skip_eval:
            continue
        (rd / f"eval_{name}").mkdir(parents=True, exist_ok=True)
        (rd / f"eval_{name}" / "metrics.json").write_text(json.dumps(metrics))
    if seed == 0:
        (rd / "eval_nll" / "samples.png").write_bytes(b"fake png")
    if task == "cycle":  # the resolved training config, from which the exact entropy is computed
        (rd / "config.yaml").write_text("dataset:\n  name: marked_cycle\n  params: {n: 8, k: 1, seed: 0, "
                                        "permute_nodes: true}\nmodel:\n  diffusion: {T: 10}\n")
    (rd / "timing.json").write_text(json.dumps({"train_cpu_s": 10.0, "eval_nll_cpu_s": 2.0}))


def write_grid(out: Path, preset: dict) -> None:
    """Every run of the fake preset; seed 2 of (mol, sympe) lacks one evaluation call (an unfinished run)."""
    for task in ("cycle", "mol"):
        for variant in preset["variants"]:
            for seed in preset["seeds"]:
                write_run(out, task, variant, seed,
                          skip_eval="steps50" if (task, variant, seed) == ("mol", "sympe", 2) else None)


def exact_numbers(name: str, params: dict):
    """The caller's exact-numbers lookup: the marked cycle's entropy and floor (nats per graph), from the
    dataset library."""
    from sympe.datasets.sources import breaking

    if name not in breaking.FAMILIES:
        return None, None
    return (breaking.data_entropy(name, params["n"], params["k"], params["permute_nodes"]),
            breaking.data_floor(name, params["n"], params["k"]))


@pytest.fixture
def fake():
    """The fake preset's builders and numbers."""
    return SimpleNamespace(preset=fake_preset, write_run=write_run, write_grid=write_grid, exact_numbers=exact_numbers,
                           NLL=NLL, MIX_OFFSET=MIX_OFFSET, LEAK=LEAK, MOL_FLOOR=MOL_FLOOR, CYCLE_ENTROPY=CYCLE_ENTROPY)
