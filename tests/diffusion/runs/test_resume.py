"""Training runs that never lose work: exact mid-epoch resume, checkpoints on SIGINT / SIGTERM, run folders,
and option values checked before anything loads."""
from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch_geometric.data import Data

from sympe.datasets.config import build_datamodule, build_splits_from_cfg
from sympe.datasets.train_sampler import ResumableDataLoader
from sympe.diffusion.runs.checkpoint_files import CheckpointError, atomic_save, check_checkpoint_file
from sympe.diffusion.runs.interrupt import TrainingInterrupted
from sympe.diffusion.runs.options import ConfigError
from sympe.diffusion.runs.schema import compose_config
from sympe.diffusion.runs.run_folder import RUN_DIR_ENV, compare_with_saved_config, resolve_run
from sympe.diffusion.runs.training import train

from support import REPO  # noqa: E402
TINY = ["dataset=symmetric", "+dataset.params.num_graphs={train: 24, val: 8, test: 8}", "+dataset.params.max_nodes=12",
        "model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
        "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
        "model.diffusion.T=20", "model.features=cycles", "train.batch_size=8", "train.log_every_n_steps=1",
        "train.progress_bar=false"]


def make_cfg(tmp_path: Path, *overrides: str):
    return compose_config([*TINY, f"paths.data_root={tmp_path / 'data'}", f"paths.runs_root={tmp_path / 'outputs'}",
                           *overrides])


def fit(cfg, extra_callbacks=None) -> dict:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    splits = build_splits_from_cfg(cfg)
    return train(cfg, splits["train"].info, build_datamodule(cfg, splits), resolve_run(cfg), extra_callbacks)


class SignalAtStep(pl.Callback):
    """Sends ``signum`` to this process once, right after optimizer step ``step``."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum, self.sent = step, signum, False

    def on_train_batch_end(self, trainer, *_):
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


def val_rows(run_dir: Path) -> dict[int, float]:
    rows = csv.DictReader(open(run_dir / "csv" / "metrics.csv"))
    return {int(r["step"]): float(r["val/nll"]) for r in rows if r.get("val/nll")}


def train_steps(run_dir: Path) -> list[int]:
    return [int(r["step"]) for r in csv.DictReader(open(run_dir / "csv" / "metrics.csv")) if r.get("train/loss")]


@pytest.fixture(autouse=True)
def _no_inherited_run_dir(monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)


# ---------------------------------------------------------------------- exact resume
def test_interrupted_and_resumed_run_matches_uninterrupted_run(tmp_path):
    """SIGTERM mid-epoch (3 batches per epoch, EMA on, validation every 2 steps), resume from last.ckpt in the same
    folder: the weights, the EMA average, the optimizer state and the validation NLLs at step 10 equal those of a
    run that was never interrupted."""
    common = ["train.max_steps=10", "train.val_check_interval=2", "train.check_val_every_n_epoch=null",
              "train.test_after_fit=false", "train.ema_decay=0.9"]
    full = fit(make_cfg(tmp_path, *common, f"paths.out_dir={tmp_path / 'full'}"))
    assert full["last"] and Path(full["best"]).parent == tmp_path / "full" / "checkpoints"

    part_dir = tmp_path / "part"
    with pytest.raises(TrainingInterrupted) as stop:
        fit(make_cfg(tmp_path, *common, f"paths.out_dir={part_dir}"), [SignalAtStep(4, signal.SIGTERM)])
    assert stop.value.code == 128 + signal.SIGTERM
    stopped = torch.load(part_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # the signal arrives after step 4; the validation that follows it stops at its first batch
    assert stopped["global_step"] == 4
    assert "at step 4" in stop.value.message and stop.value.message.endswith(f"train.resume={part_dir}")
    assert not list((part_dir / "checkpoints").glob("*.tmp"))

    resumed = fit(make_cfg(tmp_path, *common, f"train.resume={part_dir}"))
    assert resumed["run_dir"] == str(part_dir)
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(part_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 10
    for key in ("state_dict", "current_model_state"):  # EMA average, raw weights
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.allclose(a[key][name], b[key][name], rtol=0, atol=1e-6), (key, name)
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        for name in sa:
            assert torch.allclose(torch.as_tensor(sa[name]), torch.as_tensor(sb[name]), rtol=0, atol=1e-6)
    # one metrics file, continued: every train step once, validation NLLs equal to the uninterrupted run's
    assert train_steps(part_dir) == list(range(10))
    # the validation the signal interrupted (after step 4, logged as step 3) is not repeated; the others ran
    assert set(val_rows(part_dir)) == set(val_rows(tmp_path / "full")) - {3}
    for step, v in val_rows(part_dir).items():
        assert v == pytest.approx(val_rows(tmp_path / "full")[step], rel=1e-5)
    # best and last together in the run's own folder; the best is from a validation of this run
    assert Path(resumed["best"]).parent == part_dir / "checkpoints"


def test_best_checkpoint_when_validation_falls_on_max_steps(tmp_path):
    result = fit(make_cfg(tmp_path, "train.max_steps=4", "train.val_check_interval=2",
                          "train.check_val_every_n_epoch=null", "train.test_after_fit=false"))
    assert result["best"] is not None and Path(result["best"]).exists()
    assert torch.load(result["best"], map_location="cpu", weights_only=False)["global_step"] == 4
    assert torch.load(result["last"], map_location="cpu", weights_only=False)["global_step"] == 4


def test_last_checkpoint_every_n_steps_without_validation(tmp_path):
    """last.ckpt follows the step trigger, not validation (validation only at the end of the run)."""
    seen = []

    class Watch(pl.Callback):
        def on_train_batch_start(self, trainer, *_):
            last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
            if last.exists():
                seen.append((trainer.global_step, torch.load(last, map_location="cpu", weights_only=False)["global_step"]))

    fit(make_cfg(tmp_path, "train.max_steps=7", "train.max_epochs=-1", "train.check_val_every_n_epoch=100",
                 "train.ckpt_every_n_steps=2", "train.test_after_fit=false"), [Watch()])
    assert seen and all(step - saved < 2 for step, saved in seen), seen
    assert {saved for _, saved in seen} == {2, 4, 6}


def test_train_loader_state_replays_the_rest_of_the_epoch():
    graphs = [Data(x=torch.tensor([[float(i)]]), num_nodes=1) for i in range(10)]

    def ids(batch):
        return batch.x[:, 0].long().tolist()

    full = ResumableDataLoader(graphs, batch_size=3, generator=torch.Generator().manual_seed(5))
    reference = [[ids(b) for b in full] for _ in range(3)]
    # the same batches as torch's own shuffling with that generator (a seed keeps its batches)
    from torch_geometric.loader import DataLoader

    plain = DataLoader(graphs, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(5))
    assert reference == [[ids(b) for b in plain] for _ in range(3)]

    part = ResumableDataLoader(graphs, batch_size=3, generator=torch.Generator().manual_seed(5))
    consumed = iter(part)
    first = [ids(next(consumed)) for _ in range(2)]
    state = part.state_dict()
    assert state["consumed"] == 6
    again = ResumableDataLoader(graphs, batch_size=3, generator=torch.Generator().manual_seed(123))
    again.load_state_dict(state)
    rest = [ids(b) for b in again]
    assert first + rest == reference[0]
    assert [[ids(b) for b in again] for _ in range(2)] == reference[1:]


# ---------------------------------------------------------------------- run folders
def test_run_folders_are_unique_and_untrained_runs_leave_none(tmp_path):
    cfg = make_cfg(tmp_path)
    folders = {resolve_run(cfg).path for _ in range(20)}  # the same second, twenty runs
    assert len(folders) == 20
    assert not (tmp_path / "outputs").exists()  # resolving a folder creates nothing

    class Boom(pl.Callback):
        def on_train_start(self, *_):
            raise RuntimeError("boom before the first step")

    with pytest.raises(RuntimeError, match="boom"):
        fit(make_cfg(tmp_path, "train.max_steps=3"), [Boom()])
    assert not any((tmp_path / "outputs").rglob("*.ckpt"))
    assert not (tmp_path / "outputs" / "symmetric").exists() or not list((tmp_path / "outputs" / "symmetric").iterdir())


def test_resume_refuses_other_model_settings_and_missing_runs(tmp_path):
    run_dir = tmp_path / "r"
    fit(make_cfg(tmp_path, "train.max_steps=2", "train.test_after_fit=false", f"paths.out_dir={run_dir}"))
    with pytest.raises(ConfigError, match="model.n_layers: run 1 vs now 2"):
        fit(make_cfg(tmp_path, "train.max_steps=4", "model.n_layers=2", f"train.resume={run_dir}"))
    # a memory knob may change, and a config saved before it existed still matches
    saved = (run_dir / "config.yaml").read_text()
    assert "recompute_attention: true" in saved
    assert compare_with_saved_config(make_cfg(tmp_path, "model.recompute_attention=false"), resolve_run(
        make_cfg(tmp_path, f"train.resume={run_dir}"))) == []
    (run_dir / "config.yaml").write_text(saved.replace("  recompute_attention: true\n", ""))
    assert "recompute_attention" not in (run_dir / "config.yaml").read_text()
    assert compare_with_saved_config(make_cfg(tmp_path), resolve_run(make_cfg(tmp_path, f"train.resume={run_dir}"))) == []
    assert compare_with_saved_config(make_cfg(tmp_path, "model.n_layers=2"), resolve_run(
        make_cfg(tmp_path, f"train.resume={run_dir}"))) == ["model.n_layers: run 1 vs now 2"]
    with pytest.raises(ConfigError, match="already holds a run"):
        resolve_run(make_cfg(tmp_path, f"paths.out_dir={run_dir}"))
    with pytest.raises(ConfigError, match="train.resume=.* is not a folder"):
        resolve_run(make_cfg(tmp_path, f"train.resume={tmp_path / 'nope'}"))


def test_atomic_save_never_replaces_a_good_checkpoint_with_a_partial_one(tmp_path):
    good = tmp_path / "last.ckpt"

    class Trainer:  # the part of a Lightning trainer atomic_save uses
        is_global_zero = True

        class strategy:
            @staticmethod
            def barrier(name):
                pass

        def __init__(self, payload: bytes):
            self.payload = payload

        def save_checkpoint(self, path, weights_only=False):
            if self.payload is None:
                torch.save({"w": torch.ones(3)}, path)
            else:
                Path(path).write_bytes(self.payload)

    atomic_save(Trainer(None), str(good))
    check_checkpoint_file(good)
    complete = good.read_bytes()
    with pytest.raises(CheckpointError, match="incomplete"):
        atomic_save(Trainer(complete[: len(complete) // 2]), str(good))  # a write cut in the middle
    assert good.read_bytes() == complete and not (tmp_path / "last.ckpt.tmp").exists()


def test_unreadable_checkpoints_give_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint=.*missing.ckpt does not exist"):
        check_checkpoint_file(tmp_path / "missing.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        check_checkpoint_file(tmp_path / "empty.ckpt")
    torch.save({"w": torch.ones(1000)}, tmp_path / "full.ckpt")
    data = (tmp_path / "full.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        check_checkpoint_file(tmp_path / "cut.ckpt")


# ---------------------------------------------------------------------- the scripts
def run_script(script: str, args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop(RUN_DIR_ENV, None)
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


def test_scripts_refuse_bad_values_before_loading_and_leave_no_folder(tmp_path):
    for script, args, message in [
        ("train_diffusion.py", ["train.batch_size=0"], "train.batch_size=0 is not accepted"),
        ("train_diffusion.py", ["train.max_steps=abc"], "train.max_steps=abc is not accepted"),
        ("sample.py", ["checkpoint=x.ckpt", "num_samples=0"], "num_samples=0 is not accepted"),
        ("sample.py", ["checkpoint=x.ckpt", "n_nodes=abc"], "n_nodes=abc is not accepted"),
        ("sample.py", ["checkpoint=x.ckpt", "time_distortion=polydec"], "time_distortion=polydec is not accepted with steps=null"),
        ("evaluate.py", ["checkpoint=full.ckpt", "time_distortion=sqrt"], "time_distortion=sqrt is not accepted"),
        ("sample.py", ["checkpoint=cut.ckpt"], "checkpoint=cut.ckpt cannot be read as a checkpoint"),
        ("evaluate.py", ["checkpoint=cut.ckpt"], "checkpoint=cut.ckpt cannot be read as a checkpoint"),
        ("evaluate.py", ["checkpoint=full.ckpt", "model.x0_kernel=bogus"], "model.x0_kernel=bogus is not accepted"),
        ("evaluate.py", ["checkpoint=full.ckpt", "nll_conventions=[ours_magic]"], "NLL convention 'ours_magic'"),
        ("train_diffusion.py", ["model.eval.num_bins=0"], "model.eval.num_bins=0 is not accepted"),
        ("train_diffusion.py", ["dataset=planar", "dataset.params.source=npz"],
         "dataset.params.source=npz needs dataset.params.path=<path>"),
        ("train_diffusion.py", ["dataset=qm9", "dataset.params.source=csv"],
         "dataset.params.source=csv needs dataset.params.csv_path=<path>"),
        ("train_diffusion.py", ["dataset=planar", "dataset.params.source=npz", "dataset.params.path=absent.npz"],
         "dataset.params.path=absent.npz does not exist"),
        ("evaluate.py", ["samples=full.ckpt", "dataset=planar", "dataset_params={source: npz}"],
         "dataset_params.source=npz needs dataset_params.path=<path>"),
        ("evaluate.py", ["samples=full.ckpt", "dataset=planar", "dataset_params={source: npz, path: absent.npz}"],
         "dataset_params.path=absent.npz does not exist"),
    ]:
        torch.save({"w": torch.ones(1000)}, tmp_path / "full.ckpt")
        (tmp_path / "cut.ckpt").write_bytes((tmp_path / "full.ckpt").read_bytes()[:500])
        proc = run_script(script, args, tmp_path)
        assert proc.returncode == 2, (script, args, proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: ") and message in lines[-1], (script, args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
    # summary_only prints the summary and writes no run folder
    proc = run_script("train_diffusion.py", [*TINY, "train.summary_only=true"], tmp_path)
    assert proc.returncode == 0 and "splits: train=24" in proc.stdout
    assert not (tmp_path / "outputs").exists()


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    start = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training ended before {path} appeared:\n{proc.stdout.read()}\n{proc.stderr.read()}")
        if time.monotonic() - start > timeout:
            proc.kill()
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.2)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_last_checkpoint_and_the_printed_command_resumes(tmp_path, signum):
    """A real training run stopped by a signal at an arbitrary step writes last.ckpt at the step it stops at
    and prints the command that resumes it; that command continues in the same folder."""
    env = {**os.environ, "SYMPE_DATA_ROOT": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop(RUN_DIR_ENV, None)
    args = [*TINY, "train.max_steps=100000", "train.ckpt_every_n_steps=3", "train.check_val_every_n_epoch=2",
            "train.test_after_fit=false"]
    # run from a folder of its own with the script given by path, as users do
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "train_diffusion.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "outputs", proc)
    run_dir = next((tmp_path / "outputs" / "symmetric").iterdir())
    _wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    time.sleep(0.5)  # an arbitrary moment later
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, (proc.returncode, err[-3000:])
    step = int(re.search(r"stopped by SIG\w+ at step (\d+)", err).group(1))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == step >= 3
    command = err.strip().splitlines()[-1].strip()
    assert command.startswith("python ") and f"train.resume={os.path.relpath(run_dir, tmp_path)}" in command

    # resume with the printed command, for 2 more steps
    argv = shlex.split(command)
    argv = [a if not a.startswith("train.max_steps=") else f"train.max_steps={step + 2}" for a in argv[1:]]
    done = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"run folder: {run_dir}" in done.stdout
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == step + 2
    assert list((tmp_path / "outputs" / "symmetric").iterdir()) == [run_dir]  # no second folder
    steps = train_steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == step + 1  # one file, each step once
