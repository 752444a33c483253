"""scripts/nll_report.py without training: presets, commands, resuming, and the aggregator on fake run JSONs."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from support import REPO  # noqa: E402


@pytest.fixture(scope="module")
def nr():
    spec = importlib.util.spec_from_file_location("nll_report", REPO / "scripts" / "nll_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


# per (task, variant): per-seed per-draw NLL, mixture NLL, leak difference; validity at 10 / 50 / 500 steps
NLL = {("cycle", "none"): [12.0, 13.0, 14.0], ("cycle", "sympe"): [11.0, 11.5, 12.5], ("cycle", "index"): [5.0, 6.0, 7.0],
       ("mol", "none"): [60.0, 62.0, 64.0], ("mol", "sympe"): [59.0, 61.0, 66.0], ("mol", "index"): [30.0, 31.0, 32.0]}
MIX_OFFSET = {"none": 0.0, "sympe": -1.5, "index": -0.5}
LEAK = {"none": [0.1, -0.2, 0.05], "sympe": [0.0, 0.3, -0.1], "index": [-4.0, -5.0, -6.0]}
MOL_FLOOR = 36.25


def write_run(out: Path, task: str, variant: str, seed: int, nr, skip_eval: str | None = None) -> None:
    rd = nr.run_dir_of(out, task, variant, seed)
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


def se(values) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_aggregator_builds_the_table_from_run_jsons(nr, tmp_path):
    preset = fake_preset()
    for task in ("cycle", "mol"):
        for variant in preset["variants"]:
            for seed in preset["seeds"]:
                # seed 2 of (mol, sympe) lacks one evaluation call: an unfinished run, left out of the means
                write_run(tmp_path, task, variant, seed, nr, skip_eval="steps50" if (task, variant, seed) == ("mol", "sympe", 2) else None)
    report = nr.build_report(preset, tmp_path, "fake", "python scripts/nll_report.py --preset fake")
    tasks = {t["label"]: t for t in report["tasks"]}
    rows = {(t, r["variant"]): r for t in tasks for r in tasks[t]["rows"]}

    # mean ± standard error over seeds, per-draw and mixture
    for (task, variant), values in NLL.items():
        row = rows[(task, variant)]
        vals = values[:2] if (task, variant) == ("mol", "sympe") else values
        assert row["nll"]["n"] == len(vals)
        assert row["nll"]["mean"] == pytest.approx(np.mean(vals))
        assert row["nll"]["sem"] == pytest.approx(se(vals))
        assert row["nll_mix"]["mean"] == pytest.approx(np.mean(vals) + MIX_OFFSET[variant])
    # the difference to `none` with the combined standard error
    d = rows[("cycle", "sympe")]["nll_vs_none"]
    assert d["mean"] == pytest.approx(np.mean(NLL[("cycle", "sympe")]) - 13.0)
    assert d["sem"] == pytest.approx(math.hypot(se(NLL[("cycle", "sympe")]), se(NLL[("cycle", "none")])))
    assert rows[("cycle", "none")]["nll_vs_none"] is None
    d = rows[("cycle", "sympe")]["nll_mix_vs_none"]
    assert d["mean"] == pytest.approx(np.mean(NLL[("cycle", "sympe")]) - 1.5 - 13.0)
    # entropy and floor: exact for the symmetry-breaking family (from the run's config), read for molecules
    assert tasks["cycle"]["entropy"] == pytest.approx(math.log(math.factorial(8) / 2))   # log(8!/2) = 9.912
    assert tasks["cycle"]["floor"] == pytest.approx(math.log(math.factorial(8) / 2))
    assert tasks["mol"]["floor"] == pytest.approx(MOL_FLOOR) and tasks["mol"]["entropy"] is None
    # the index control goes below the floor and is flagged by the leak test; equivariant variants are not
    assert rows[("mol", "index")]["below_floor"] == {"nll": True, "nll_mix": True}
    assert rows[("cycle", "index")]["below_floor"]["nll"]
    assert not any(rows[(t, v)]["below_floor"][c] for t in ("mol", "cycle") for v in ("none", "sympe")
                   for c in ("nll", "nll_mix"))
    assert rows[("cycle", "index")]["leak_flagged"] == {"flagged": 3, "of": 3}
    assert rows[("cycle", "none")]["leak_flagged"] == {"flagged": 0, "of": 3}
    assert rows[("cycle", "index")]["leak_diff"]["mean"] == pytest.approx(-5.0)
    # validity against sampling steps, molecules only
    sampling = {p["steps"]: p for p in rows[("mol", "none")]["sampling"]}
    assert sorted(sampling) == [10, 50, 500]
    assert sampling[500]["validity"]["mean"] == pytest.approx(0.6)
    assert sampling[500]["validity"]["sem"] == pytest.approx(se([0.5, 0.6, 0.7]))
    assert sampling[10]["validity"]["mean"] == pytest.approx(0.1)
    assert all(p["validity"]["mean"] is None for p in rows[("cycle", "none")]["sampling"])
    # per-t-bin breakdown: mean over seeds per bin, with the bins' centres
    bins = rows[("mol", "none")]["nll_bins"]
    assert len(bins["mean"]) == 10 and bins["mean"][3] == pytest.approx(62.0 / 10 + 3)
    assert bins["centres"][0] == pytest.approx(25.5)
    assert report["runs_done"] == 17 and report["num_runs"] == 18
    assert report["total_cpu_s"] == pytest.approx(17 * 12.0)

    md = (tmp_path / "report.md").read_text()
    assert "| task | H | floor | none | SymPE | index |" in md
    assert "DiGress's formula" not in md                  # no run reported it
    assert "13.00 ± 0.58" in md                     # cycle / none per-draw: mean 13, s.e. 1/sqrt(3)
    assert "9.911" in md and "36.25 ± 0.06" in md
    assert "*index (control)*" in md and "↓floor" in md
    assert "SymPE = `model.symbreak=sympe`" in md and "steps10 = `nll_estimator=none steps=10`" in md
    assert "validity @10 | validity @50 | validity @500" in md
    assert "| leak diff. (flagged) |\n" in md          # the cycle task: no validity / uniqueness columns
    assert "60.0 ± 5.8" in md                       # validity in % at 500 steps
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["keys"]["json_keys"]["nll"][0] == "nll_ours_plain_{est}"
    for name in ("nll_cycle.png", "nll_mol.png", "nll_bins_mol.png", "validity_mol.png"):
        assert (tmp_path / name).exists(), name
    assert not (tmp_path / "validity_cycle.png").exists()      # no validity for non-molecules
    assert (tmp_path / "samples_mol_sympe.png").read_bytes() == b"fake png"
    assert "[sympe](samples_mol_sympe.png)" in md


def test_key_lookup(nr):
    """Dotted keys read nested objects, later candidates are fallbacks, values of the wrong type are passed over."""
    fmt = {"est": "mc", "K": 16, "leak": "ours_plain_mc"}
    evals = {"a": {"nll_ours_plain_mc": 3.0, "leak_test_ours_plain_mc": {"difference": -1.0, "flagged": 1}},
             "b": {"exchangeable_nll_floor": 7.0}}
    assert nr.read_column(evals, "nll", fmt) == 3.0 and nr.read_column(evals, "nll_mix", fmt) is None
    assert nr.read_column(evals, "floor", fmt) == 7.0            # fallback key, from the second call
    assert nr.read_column(evals, "leak_diff", fmt) == -1.0
    assert nr.read_column(evals, "leak_flagged", fmt) is None    # 1 is not a bool
    assert nr.bin_means([1.0, 2.0]) == (None, [1.0, 2.0])


@pytest.mark.parametrize("name", ["cpu", "paper"])
def test_shipped_presets_are_complete(nr, name):
    preset = nr.load_preset(REPO / "configs" / "report" / f"{name}.yaml")
    assert len(preset["seeds"]) >= 3
    variants = preset["variants"]
    assert {"none", "noise", "sympe_nodes", "sympe", "sympe_mix", "index"} <= set(variants)
    assert variants["index"].get("control") and not any(v.get("control") for k, v in variants.items() if k != "index")
    # the keys the report reads match what the evaluation calls ask for
    K, leak = preset["keys"]["mixture_draws"], preset["keys"]["leak_estimator"]
    nll_call = preset["evals"]["nll"]
    assert any(o.startswith("nll_conventions=") and f"ours_plain_mix{K}" in o for o in nll_call)
    assert f"leak_test_estimator={leak}" in nll_call and f"nll_estimator={preset['keys']['estimator']}" in nll_call
    for task in preset["tasks"]:
        budget = [o for o in task["train"] + preset["common"]["train"] if o.startswith("train.max_steps=")]
        assert budget and int(budget[-1].split("=")[1]) > 0, f"{task['label']}: no optimizer-step budget"
        assert not any(o.startswith("train.max_time=") for o in task["train"] + preset["common"]["train"])


def test_commands_put_smoke_overrides_last(nr, tmp_path):
    preset = nr.apply_smoke(nr.load_preset(REPO / "configs" / "report" / "cpu.yaml"))
    assert preset["seeds"] == [0]
    task = preset["tasks"][0]
    train, evals = nr.commands(preset, task, "sympe", 0, tmp_path)
    steps = [i for i, a in enumerate(train) if a.startswith("train.max_steps=")]
    assert train[steps[-1]] == "train.max_steps=4" and steps[-1] > max(i for i, a in enumerate(train)
                                                                        if a == "model.symbreak=sympe")
    assert set(evals) == set(task["evals"])
    for name, cmd in evals.items():
        assert f"out_dir={tmp_path / f'eval_{name}'}" in cmd and cmd[-2] == "seed=0"
        assert cmd.index("num_samples=8") > cmd.index("num_samples=64")


def test_bad_preset_names_the_field(nr, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seeds: [0]\nvariants: {none: {}}\nevals: {nll: []}\ntasks:\n  - {label: a, train: [], evals: [mix]}\n")
    with pytest.raises(nr.PresetError, match=r"task 'a' uses evaluation calls \['mix'\]"):
        nr.load_preset(path)
    with pytest.raises(nr.PresetError, match="known presets"):
        nr.load_preset(tmp_path / "missing.yaml")


def test_grid_resumes_and_survives_a_failed_run(nr, tmp_path, monkeypatch):
    preset = fake_preset()
    preset["tasks"] = preset["tasks"][:1]
    write_run(tmp_path, "cycle", "none", 0, nr)            # finished before: must be skipped
    write_run(tmp_path, "cycle", "none", 1, nr, skip_eval="steps10")   # interrupted: must be run again
    calls = []

    def fake_execute(p, task, variant, seed, out, env):
        calls.append((variant, seed))
        if (variant, seed) == ("sympe", 1):
            raise RuntimeError("command failed (1): boom")
        write_run(out, task["label"], variant, seed, nr)
        return {"train_cpu_s": 1.0}

    monkeypatch.setattr(nr, "execute_run", fake_execute)
    failures = nr.run_grid(preset, tmp_path, jobs=1)
    assert ("none", 0) not in calls and ("none", 1) in calls and len(calls) == 8
    assert len(failures) == 1 and "sympe / seed 1" in failures[0]
    assert (nr.run_dir_of(tmp_path, "cycle", "sympe", 1) / "error.txt").read_text().startswith("command failed")
    calls.clear()
    monkeypatch.setattr(nr, "execute_run", lambda *a: (_ for _ in ()).throw(AssertionError("nothing to run")))
    write_run(tmp_path, "cycle", "sympe", 1, nr)
    assert nr.run_grid(preset, tmp_path, jobs=2) == []


def test_execute_run_trains_once_and_runs_only_missing_evaluations(nr, tmp_path, monkeypatch):
    preset = fake_preset()
    task = preset["tasks"][1]                       # evals nll, steps10, steps50
    calls = []

    def fake_run(cmd, log, env):
        script = Path(cmd[1]).name
        calls.append(script if script != "train_diffusion.py" else next(
            a.split("=")[0] for a in cmd if a.startswith(("paths.out_dir=", "train.resume="))))
        out = next(a.split("=", 1)[1] for a in cmd if a.startswith(("paths.out_dir=", "train.resume=", "out_dir=")))
        if script == "train_diffusion.py":
            (Path(out) / "checkpoints").mkdir(parents=True, exist_ok=True)
            (Path(out) / "checkpoints" / "last.ckpt").write_text("weights")
        else:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "metrics.json").write_text("{}")
        return 1.5

    monkeypatch.setattr(nr, "run_logged", fake_run)
    rd = nr.run_dir_of(tmp_path, "mol", "sympe", 0)
    (rd / "eval_steps50").mkdir(parents=True)
    (rd / "eval_steps50" / "metrics.json").write_text('{"stale": true}')   # from an older, unfinished training
    timing = nr.execute_run(preset, task, "sympe", 0, tmp_path, {})
    assert calls == ["paths.out_dir", "evaluate.py", "evaluate.py", "evaluate.py"]
    assert json.loads((rd / "eval_steps50" / "metrics.json").read_text()) == {}
    assert timing["train_cpu_s"] == 1.5 and nr.run_is_done(preset, task, rd)
    # an interrupted evaluation: only that call runs again, the model is not retrained
    (rd / "eval_steps10" / "metrics.json").unlink()
    calls.clear()
    nr.execute_run(preset, task, "sympe", 0, tmp_path, {})
    assert calls == ["evaluate.py"]
    # an interrupted training (last.ckpt, no train_done) continues in its folder; its evaluations are redone
    (rd / "train_done").unlink()
    calls.clear()
    nr.execute_run(preset, task, "sympe", 0, tmp_path, {})
    assert calls == ["train.resume", "evaluate.py", "evaluate.py", "evaluate.py"]
    assert (rd / "checkpoints" / "last.ckpt").read_text() == "weights" and (rd / "train_done").exists()
    # a training that wrote no checkpoint starts again in a clean folder
    (rd / "train_done").unlink()
    (rd / "checkpoints" / "last.ckpt").unlink()
    (rd / "checkpoints" / "best-epoch=0-step=2.ckpt").write_text("old")
    calls.clear()
    nr.execute_run(preset, task, "sympe", 0, tmp_path, {})
    assert calls[0] == "paths.out_dir" and not (rd / "checkpoints" / "best-epoch=0-step=2.ckpt").exists()


def test_parallel_grid_prepares_each_dataset_first(nr, tmp_path, monkeypatch):
    preset = fake_preset()
    events = []
    monkeypatch.setattr(nr, "run_logged", lambda cmd, log, env: events.append(("prepare", cmd)) or 0.0)

    def fake_execute(p, task, variant, seed, out, env):
        events.append(("run", env.get("OMP_NUM_THREADS")))
        write_run(out, task["label"], variant, seed, nr)
        return {}

    monkeypatch.setattr(nr, "execute_run", fake_execute)
    assert nr.run_grid(preset, tmp_path, jobs=2, threads=1) == []
    prepares = [cmd for kind, cmd in events if kind == "prepare"]
    assert len(prepares) == 2 and all("train.summary_only=true" in c for c in prepares)
    assert [e[0] for e in events[:2]] == ["prepare", "prepare"] and len(events) == 2 + 18
    assert {e[1] for e in events[2:]} == {"1"}
