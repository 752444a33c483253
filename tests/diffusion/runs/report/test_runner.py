"""The job runner without training: commands, resuming, failures, parallel preparation (commands faked)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from support import REPO
from sympe.diffusion.runs.report import apply_smoke, command_for, commands, load_preset, run_dir_of, run_is_done
from sympe.diffusion.runs.report import runner


def test_command_for_starts_the_scripts_as_modules():
    """``python -m sympe.cli.<name>`` is scripts/<name>.py, in a checkout and in an installed package alike."""
    import importlib.util

    assert command_for("train_diffusion") == [sys.executable, "-m", "sympe.cli.train_diffusion"]
    assert command_for("evaluate") == [sys.executable, "-m", "sympe.cli.evaluate"]
    for name in runner.COMMANDS:
        origin = Path(importlib.util.find_spec(command_for(name)[2]).origin)
        assert origin.resolve() == (REPO / "scripts" / f"{name}.py").resolve()
    with pytest.raises(ValueError, match="unknown command 'sample'"):
        command_for("sample")


def test_commands_put_smoke_overrides_last(tmp_path):
    preset = apply_smoke(load_preset(REPO / "configs" / "report" / "cpu.yaml"))
    assert preset["seeds"] == [0]
    task = preset["tasks"][0]
    train, evals = commands(preset, task, "sympe", 0, tmp_path)
    assert train[:3] == command_for("train_diffusion") and train[-1] == f"paths.out_dir={tmp_path}"
    steps = [i for i, a in enumerate(train) if a.startswith("train.max_steps=")]
    assert train[steps[-1]] == "train.max_steps=4" and steps[-1] > max(i for i, a in enumerate(train)
                                                                        if a == "model.symbreak=sympe")
    assert set(evals) == set(task["evals"])
    for name, cmd in evals.items():
        assert cmd[:3] == command_for("evaluate") and cmd[3] == f"checkpoint={tmp_path / 'checkpoints' / 'last.ckpt'}"
        assert cmd[-3:] == ["seed=0", f"out_dir={tmp_path / f'eval_{name}'}", "overwrite=true"]  # the runner's folder
        assert cmd.index("num_samples=8") > cmd.index("num_samples=64")
    train, _ = commands(preset, task, "sympe", 0, tmp_path, resume=True)
    assert train[-1] == f"train.resume={tmp_path}"


def test_run_logged_returns_cpu_seconds_and_raises_with_the_log(tmp_path):
    log = tmp_path / "ok.log"
    cpu = runner.run_logged([sys.executable, "-c", "import os; print(os.getcwd())"], log, {}, tmp_path)
    assert cpu >= 0.0 and log.read_text().strip() == str(tmp_path)
    with pytest.raises(RuntimeError, match=r"command failed \(3\)[\s\S]*boom"):
        runner.run_logged([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path / "bad.log", {},
                          tmp_path)


def test_grid_resumes_and_survives_a_failed_run(fake, tmp_path, monkeypatch, capsys):
    preset = fake.preset()
    preset["tasks"] = preset["tasks"][:1]
    fake.write_run(tmp_path, "cycle", "none", 0)            # finished before: must be skipped
    fake.write_run(tmp_path, "cycle", "none", 1, skip_eval="steps10")   # interrupted: must be run again
    calls = []

    def fake_execute(p, task, variant, seed, out, env, cwd):
        assert cwd == REPO
        calls.append((variant, seed))
        if (variant, seed) == ("sympe", 1):
            raise RuntimeError("command failed (1): boom")
        fake.write_run(out, task["label"], variant, seed)
        return {"train_cpu_s": 1.0}

    monkeypatch.setattr(runner, "execute_run", fake_execute)
    failures = runner.run_grid(preset, tmp_path, cwd=REPO, jobs=1)
    assert ("none", 0) not in calls and ("none", 1) in calls and len(calls) == 8
    assert len(failures) == 1 and "sympe / seed 1" in failures[0]
    assert (run_dir_of(tmp_path, "cycle", "sympe", 1) / "error.txt").read_text().startswith("command failed")
    printed = capsys.readouterr().out
    assert "[report] 1 of 9 runs already done (skipped)" in printed
    assert "[2/9] cycle / none / seed 1: done in " in printed and "NLL 13.00 (mixture 13.00)" in printed
    assert "[5/9] cycle / sympe / seed 1: FAILED (" in printed
    calls.clear()
    monkeypatch.setattr(runner, "execute_run", lambda *a: (_ for _ in ()).throw(AssertionError("nothing to run")))
    fake.write_run(tmp_path, "cycle", "sympe", 1)
    assert runner.run_grid(preset, tmp_path, cwd=REPO, jobs=2) == []


def test_execute_run_trains_once_and_runs_only_missing_evaluations(fake, tmp_path, monkeypatch):
    preset = fake.preset()
    task = preset["tasks"][1]                       # evals nll, steps10, steps50
    calls = []

    def fake_run(cmd, log, env, cwd):
        assert cwd == tmp_path
        script = cmd[2].rsplit(".", 1)[1] + ".py"
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

    monkeypatch.setattr(runner, "run_logged", fake_run)
    rd = run_dir_of(tmp_path, "mol", "sympe", 0)
    (rd / "eval_steps50").mkdir(parents=True)
    (rd / "eval_steps50" / "metrics.json").write_text('{"stale": true}')   # from an older, unfinished training
    (rd / "error.txt").write_text("an earlier failure")
    timing = runner.execute_run(preset, task, "sympe", 0, tmp_path, {}, tmp_path)
    assert calls == ["paths.out_dir", "evaluate.py", "evaluate.py", "evaluate.py"]
    assert json.loads((rd / "eval_steps50" / "metrics.json").read_text()) == {}
    assert timing["train_cpu_s"] == 1.5 and run_is_done(preset, task, rd) and not (rd / "error.txt").exists()
    # timing.json: indent 1, no final newline; train_done: the wall seconds with one decimal and a newline
    assert (rd / "timing.json").read_text() == json.dumps(timing, indent=1)
    assert set(timing) == {"train_cpu_s", "train_wall_s"} | {f"eval_{n}_{k}_s" for n in task["evals"]
                                                              for k in ("cpu", "wall")}
    assert (rd / "train_done").read_text() == f"{timing['train_wall_s']:.1f}\n"
    assert not list(rd.rglob("*.tmp"))
    # an interrupted evaluation: only that call runs again, the model is not retrained
    (rd / "eval_steps10" / "metrics.json").unlink()
    calls.clear()
    runner.execute_run(preset, task, "sympe", 0, tmp_path, {}, tmp_path)
    assert calls == ["evaluate.py"]
    # an interrupted training (last.ckpt, no train_done) continues in its folder; its evaluations are redone
    (rd / "train_done").unlink()
    calls.clear()
    runner.execute_run(preset, task, "sympe", 0, tmp_path, {}, tmp_path)
    assert calls == ["train.resume", "evaluate.py", "evaluate.py", "evaluate.py"]
    assert (rd / "checkpoints" / "last.ckpt").read_text() == "weights" and (rd / "train_done").exists()
    # a training that wrote no checkpoint starts again in a clean folder
    (rd / "train_done").unlink()
    (rd / "checkpoints" / "last.ckpt").unlink()
    (rd / "checkpoints" / "best-epoch=0-step=2.ckpt").write_text("old")
    calls.clear()
    runner.execute_run(preset, task, "sympe", 0, tmp_path, {}, tmp_path)
    assert calls[0] == "paths.out_dir" and not (rd / "checkpoints" / "best-epoch=0-step=2.ckpt").exists()


def test_parallel_grid_prepares_each_dataset_first(fake, tmp_path, monkeypatch):
    preset = fake.preset()
    events = []
    monkeypatch.setattr(runner, "run_logged", lambda cmd, log, env, cwd: events.append(("prepare", cmd)) or 0.0)

    def fake_execute(p, task, variant, seed, out, env, cwd):
        events.append(("run", env.get("OMP_NUM_THREADS")))
        fake.write_run(out, task["label"], variant, seed)
        return {}

    monkeypatch.setattr(runner, "execute_run", fake_execute)
    assert runner.run_grid(preset, tmp_path, cwd=REPO, jobs=2, threads=1) == []
    prepares = [cmd for kind, cmd in events if kind == "prepare"]
    assert len(prepares) == 2 and all("train.summary_only=true" in c for c in prepares)
    assert all(c[:3] == command_for("train_diffusion") for c in prepares)
    assert [e[0] for e in events[:2]] == ["prepare", "prepare"] and len(events) == 2 + 18
    assert {e[1] for e in events[2:]} == {"1"}
