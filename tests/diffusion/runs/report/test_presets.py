"""Report presets: the shipped ones are complete, a bad one names its field, smoke and selections narrow a copy."""
from __future__ import annotations

import pytest

from support import REPO
from sympe.diffusion.runs.report import PresetError, apply_smoke, load_preset, restrict, task_evals


@pytest.mark.parametrize("name", ["cpu", "paper"])
def test_shipped_presets_are_complete(name):
    preset = load_preset(REPO / "configs" / "report" / f"{name}.yaml")
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


def test_bad_preset_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seeds: [0]\nvariants: {none: {}}\nevals: {nll: []}\ntasks:\n  - {label: a, train: [], evals: [mix]}\n")
    with pytest.raises(PresetError, match=r"task 'a' uses evaluation calls \['mix'\]"):
        load_preset(path)
    with pytest.raises(PresetError, match="known presets"):
        load_preset(tmp_path / "missing.yaml")
    path.write_text("seeds: [0]\nvariants: {none: {}}\nevals: {nll: []}\n")
    with pytest.raises(PresetError, match="field 'tasks' is missing"):
        load_preset(path)
    path.write_text("seeds: [0]\nvariants: {none: {}}\nevals: {nll: []}\ntasks: [{label: a, train: []}, "
                    "{label: a, train: []}]\n")
    with pytest.raises(PresetError, match="task label 'a' appears twice"):
        load_preset(path)


def test_defaults_and_smoke(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("seeds: [3, 4]\nvariants: {none: {}}\nevals: {nll: [], s: []}\n"
                    "tasks: [{label: a, train: []}, {label: b, train: [], evals: [s]}]\n"
                    "smoke: {train: [train.max_steps=2], eval: [num_samples=1], tasks: [b]}\n")
    preset = load_preset(path)
    assert preset["common"] == {"train": [], "eval": []}
    assert preset["keys"] == {"estimator": "mc", "mixture_draws": 16, "leak_convention": "ours_plain",
                              "leak_estimator": "exact", "proposal_convention": "ours_plain_mix4_defensive"}
    assert task_evals(preset, preset["tasks"][0]) == ["nll", "s"] and task_evals(preset, preset["tasks"][1]) == ["s"]
    smoke = apply_smoke(preset)
    assert smoke["seeds"] == [3] and [t["label"] for t in smoke["tasks"]] == ["b"]
    assert smoke["last"] == {"train": ["train.max_steps=2"], "eval": ["num_samples=1"]}
    assert preset["seeds"] == [3, 4] and "last" not in preset          # a copy


def test_restrict_keeps_the_chosen_and_names_the_unknown():
    preset = load_preset(REPO / "configs" / "report" / "cpu.yaml")
    small = restrict(preset, "cpu", tasks=["matching_T10"], variants=["sympe", "none"], seeds=[2, 0])
    assert [t["label"] for t in small["tasks"]] == ["matching_T10"]
    assert list(small["variants"]) == ["none", "sympe"] and small["seeds"] == [2, 0]
    assert len(preset["tasks"]) == 4                                   # the preset itself is unchanged
    assert restrict(preset, "cpu") == preset
    with pytest.raises(PresetError, match=r"^--variants \['nope'\]: not in preset 'cpu' \(it has \['none', "):
        restrict(preset, "cpu", variants=["none", "nope"])
    with pytest.raises(PresetError, match=r"^--seeds \[7\]: not in preset 'cpu' \(it has \[0, 1, 2\]\)$"):
        restrict(preset, "cpu", seeds=[7])


def test_breaking_preset_reads_what_it_asks_for():
    """The breaking preset: the proposal convention and the prior mixture it reads are the ones its nll call computes,
    the exact call runs only on graphs small enough to enumerate, and the noise variant asks only for the prior."""
    preset = load_preset(REPO / "configs" / "report" / "breaking.yaml")
    keys, evals = preset["keys"], preset["evals"]
    conv = next(o for o in evals["nll"] if o.startswith("nll_conventions="))
    assert keys["proposal_convention"] in conv and f"ours_plain_mix{keys['mixture_draws']}_prior" in conv
    assert any("ours_plain_mix_exact" in o for o in evals["exact"])
    for task in preset["tasks"]:
        if "exact" in task.get("evals", []):
            assert any(o in ("dataset.params.n=6", "dataset.params.m=3") for o in task["train"]), task["label"]
    assert "mix4_defensive" not in " ".join(preset["variants"]["noise"]["eval"])
    assert preset["variants"]["index"]["control"]
    assert "model.train.weighting=likelihood" in preset["variants"]["sympe_prop"]["train"]
