"""Aggregation: run records from evaluate.py's JSON (the keys of KEYS) and cells over seeds (nats per graph)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sympe.diffusion.runs.report import (KEYS, aggregate, bin_means, collect, key_format, mean_sem, read_column,
                                         run_record)


def se(values) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_key_lookup():
    """Dotted keys read nested objects, later candidates are fallbacks, values of the wrong type are passed over."""
    fmt = {"est": "mc", "K": 16, "leak": "ours_plain_mc"}
    evals = {"a": {"nll_ours_plain_mc": 3.0, "leak_test_ours_plain_mc": {"difference": -1.0, "flagged": 1}},
             "b": {"exchangeable_nll_floor": 7.0}}
    assert read_column(evals, "nll", fmt) == 3.0 and read_column(evals, "nll_mix", fmt) is None
    assert read_column(evals, "floor", fmt) == 7.0            # fallback key, from the second call
    assert read_column(evals, "leak_diff", fmt) == -1.0
    assert read_column(evals, "leak_flagged", fmt) is None    # 1 is not a bool
    assert read_column({"a": {"nll_ours_plain_mc": True}}, "nll", fmt) is None   # a bool is not a number
    assert bin_means([1.0, 2.0]) == (None, [1.0, 2.0])
    assert bin_means([]) == (None, None)
    assert bin_means([{"t_min": 1, "t_max": 4, "mean": 2}, {"t_min": 5, "t_max": 8, "mean": 3}]) == ([2.5, 6.5],
                                                                                                     [2.0, 3.0])
    assert key_format({"keys": {"estimator": "mc", "mixture_draws": "4", "leak_convention": "ours_plain",
                                "leak_estimator": "exact"}}) == {"est": "mc", "K": 4, "leak": "ours_plain_exact",
                                                                 "P": "ours_plain_mix4_defensive"}


def test_mean_sem():
    assert mean_sem([]) == (None, None, 0)
    assert mean_sem([None, True, float("nan"), 2.0]) == (2.0, None, 1)      # only finite numbers count
    m, s, n = mean_sem([1.0, 2.0, 4.0])
    assert n == 3 and m == pytest.approx(7 / 3) and s == pytest.approx(se([1.0, 2.0, 4.0]))


def test_aggregator_builds_the_cells_from_run_jsons(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    runs = collect(preset, tmp_path, fake.exact_numbers)
    assert [r["seed"] for r in runs["mol"]["sympe"]] == [0, 1]           # seed 2 is unfinished
    tasks = {t["label"]: t for t in aggregate(preset, runs)["tasks"]}
    rows = {(t, r["variant"]): r for t in tasks for r in tasks[t]["rows"]}

    # mean ± standard error over seeds, per-draw and mixture
    for (task, variant), values in fake.NLL.items():
        row = rows[(task, variant)]
        vals = values[:2] if (task, variant) == ("mol", "sympe") else values
        assert row["nll"]["n"] == len(vals) and row["seeds_done"] == list(range(len(vals)))
        assert row["nll"]["mean"] == pytest.approx(np.mean(vals))
        assert row["nll"]["sem"] == pytest.approx(se(vals))
        assert row["nll_mix"]["mean"] == pytest.approx(np.mean(vals) + fake.MIX_OFFSET[variant])
        assert row["control"] == (variant == "index")
        assert row["nll_digress"] == {"mean": None, "sem": None, "n": 0}
    # the difference to `none` with the combined standard error
    d = rows[("cycle", "sympe")]["nll_vs_none"]
    assert d["mean"] == pytest.approx(np.mean(fake.NLL[("cycle", "sympe")]) - 13.0)
    assert d["sem"] == pytest.approx(math.hypot(se(fake.NLL[("cycle", "sympe")]), se(fake.NLL[("cycle", "none")])))
    assert rows[("cycle", "none")]["nll_vs_none"] is None
    d = rows[("cycle", "sympe")]["nll_mix_vs_none"]
    assert d["mean"] == pytest.approx(np.mean(fake.NLL[("cycle", "sympe")]) - 1.5 - 13.0)
    # entropy and floor: exact for the symmetry-breaking family (from the run's config), read for molecules
    assert tasks["cycle"]["entropy"] == pytest.approx(fake.CYCLE_ENTROPY)   # log(8!/2) = 9.9115
    assert tasks["cycle"]["floor"] == pytest.approx(fake.CYCLE_ENTROPY) and tasks["cycle"]["floor_sem"] == 0.0
    assert runs["cycle"]["none"][0]["floor_source"] == "generating distribution (exact)"
    assert tasks["mol"]["floor"] == pytest.approx(fake.MOL_FLOOR) and tasks["mol"]["entropy"] is None
    assert tasks["mol"]["floor_sem"] == pytest.approx(0.06)
    # the index control goes below the floor and is flagged by the leak test; equivariant variants are not
    assert rows[("mol", "index")]["below_floor"] == {"nll": True, "nll_mix": True, "nll_iw": False,
                                                     "nll_exact": False, "nll_digress": False}
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
    assert sampling[50]["uniqueness"] == {"mean": 1.0, "sem": 0.0, "n": 3}
    assert all(p["validity"]["mean"] is None for p in rows[("cycle", "none")]["sampling"])
    # per-t-bin breakdown: mean over seeds per bin, with the bins' centres
    bins = rows[("mol", "none")]["nll_bins"]
    assert len(bins["mean"]) == 10 and bins["mean"][3] == pytest.approx(62.0 / 10 + 3)
    assert bins["centres"][0] == pytest.approx(25.5)
    assert bins["sem"][3] == pytest.approx(se([6.0 + 3, 6.2 + 3, 6.4 + 3]))


def test_exact_numbers_are_asked_only_for_what_evaluate_does_not_report(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    asked = []

    def exact(name, params):
        asked.append((name, params))
        return 1.25, 0.5

    cycle, mol = preset["tasks"]
    rec = run_record(preset, cycle, "none", 0, tmp_path, exact)
    assert asked == [("marked_cycle", {"n": 8, "k": 1, "seed": 0, "permute_nodes": True})]
    assert (rec["entropy"], rec["floor"], rec["floor_sem"]) == (1.25, 0.5, 0.0)
    # molecules: the floor is reported, the entropy is not, and the run has no config to ask about
    rec = run_record(preset, mol, "none", 0, tmp_path, exact)
    assert len(asked) == 1 and rec["entropy"] is None and rec["floor"] == fake.MOL_FLOOR and "floor_source" not in rec
    # without a lookup nothing is added; an unfinished run has no record
    rec = run_record(preset, cycle, "none", 0, tmp_path)
    assert rec["entropy"] is None and rec["floor"] is None
    assert run_record(preset, mol, "sympe", 2, tmp_path, exact) is None
    assert set(KEYS) <= set(rec) and rec["timing"] == {"train_cpu_s": 10.0, "eval_nll_cpu_s": 2.0}
    assert rec["val_curve"] == [] and [p["steps"] for p in rec["samples"]] == [10]


def test_validation_curve_is_read_from_the_run_csv(fake, tmp_path):
    preset = fake.preset()
    fake.write_grid(tmp_path, preset)
    from sympe.diffusion.runs.report import run_dir_of, val_curve

    rd = run_dir_of(tmp_path, "cycle", "none", 0)
    (rd / "csv").mkdir()
    (rd / "csv" / "metrics.csv").write_text("step,train/loss,val/nll\n3,1.0,\n4,,12.5\n9,,11.0\n")
    assert val_curve(rd) == [(4, 12.5), (9, 11.0)]
    assert run_record(preset, preset["tasks"][0], "none", 0, tmp_path)["val_curve"] == [(4, 12.5), (9, 11.0)]
