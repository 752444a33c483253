"""Nothing lost, nothing silently wrong: output folders claimed atomically and never replaced, locations checked
before any work, damaged checkpoints refused, interrupts that keep what was done, and one line for each."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from sympe.diffusion.runs.checkpoint_files import CheckpointError, check_checkpoint_file
from sympe.diffusion.runs.output_paths import (FolderLock, OutputError, check_writable, claim_folder,
                                               write_new_json)
from sympe.diffusion.runs.run_folder import resolve_run
from sympe.diffusion.runs.options import ConfigError

from support import REPO

FIXTURE = REPO / "tests" / "fixtures" / "run_e537846" / "checkpoints" / "last.ckpt"


def script(name: str, args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture
def ckpt(tmp_path) -> Path:
    """A copy of the fixture checkpoint in a run folder of its own (outputs default to <run>/samples, <run>/eval)."""
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    shutil.copy(FIXTURE, path)
    return path


# ---------------------------------------------------------------------- output_paths
def test_claimed_folders_are_new_and_given_ones_must_be_empty(tmp_path):
    a, b = (claim_folder(None, tmp_path / "samples", "out_dir") for _ in range(2))  # the same second
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path / "samples" and a.created
    (a.path / "samples.smi").write_text("C\n")
    with pytest.raises(OutputError, match=r"out_dir=.* already holds results \(samples.smi\).*overwrite=true"):
        claim_folder(a.path, tmp_path, "out_dir")
    assert claim_folder(a.path, tmp_path, "out_dir", overwrite=True).path == a.path
    assert (a.path / "samples.smi").read_text() == "C\n"  # claiming with overwrite removes nothing
    assert not b.created or b.remove_if_empty() and not b.path.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        claim_folder(tmp_path / "file" / "sub", tmp_path, "out_dir")


def test_unwritable_and_full_locations_are_named_before_any_work(tmp_path):
    with pytest.raises(OutputError, match=r"out_dir=/sys/sympe-x: cannot write in /sys"):
        check_writable("/sys/sympe-x", "out_dir")  # sysfs: read-only even for root
    with pytest.raises(OutputError, match=r"paths.runs_root=.*free in .* needs about 1000000.0 TB"):
        check_writable(tmp_path / "new" / "deeper", "paths.runs_root", need_bytes=10**18)
    assert check_writable(tmp_path / "new" / "deeper", "paths.runs_root", need_bytes=1000) == tmp_path
    assert list(tmp_path.iterdir()) == []  # the check leaves nothing behind


def test_results_files_are_never_replaced(tmp_path):
    first = write_new_json(tmp_path / "f.metrics.json", {"run": 1})
    second = write_new_json(tmp_path / "f.metrics.json", {"run": 2})
    assert first == tmp_path / "f.metrics.json" and second != first
    assert second.name.startswith("f.metrics-") and second.suffix == ".json"
    assert json.loads(first.read_text()) == {"run": 1} and json.loads(second.read_text()) == {"run": 2}
    write_new_json(first, {"run": 3}, overwrite=True)
    assert json.loads(first.read_text()) == {"run": 3}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_a_folder_lock_refuses_a_running_process_and_frees_with_its_end(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time; from sympe.diffusion.runs.output_paths import "
                               "FolderLock; FolderLock(sys.argv[1], 'paths.out_dir').acquire(); print('held', flush=True); "
                               "time.sleep(60)", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=rf"paths.out_dir={tmp_path} is in use by another run \(process "
                                              rf"{holder.pid} on .*\.sympe\.lock"):
            FolderLock(tmp_path, "paths.out_dir").acquire()
        with pytest.raises(OutputError, match="in use by another run"):  # a given out_dir of sample / evaluate too
            claim_folder(tmp_path, tmp_path.parent, "out_dir")
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up; the kernel drops its lock
        holder.wait()
    assert (tmp_path / ".sympe.lock").exists()
    (tmp_path / ".sympe.lock").write_text("5")  # whatever the file holds, only the kernel's lock counts
    lock = FolderLock(tmp_path, "paths.out_dir").acquire()
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock.path.exists()
    claimed = claim_folder(tmp_path, tmp_path.parent, "out_dir")  # empty apart from the lock: accepted
    assert claimed.lock.held and not claimed.created
    claimed.release()


# ---------------------------------------------------------------------- run folders
def _train_cfg(tmp_path, *overrides):
    from sympe.diffusion.runs.schema import compose_config

    return compose_config(["dataset=symmetric", f"paths.data_root={tmp_path / 'data'}",
                           f"paths.runs_root={tmp_path / 'outputs'}", *overrides])


def test_every_way_of_starting_a_run_honours_or_refuses_paths(tmp_path, ckpt):
    # a checkpoint outside any run folder continues in paths.out_dir (not in ./outputs of the working directory)
    loose = tmp_path / "loose.ckpt"
    shutil.copy(FIXTURE, loose)
    run = resolve_run(_train_cfg(tmp_path, f"train.ckpt_path={loose}", f"paths.out_dir={tmp_path / 'forked'}"))
    assert run.path == tmp_path / "forked" and run.ckpt_path == str(loose) and not run.fresh
    run = resolve_run(_train_cfg(tmp_path, f"train.ckpt_path={loose}"))
    assert run.path.parent == tmp_path / "outputs" / "symmetric"  # paths.runs_root
    # train.resume continues in its own folder: another paths.out_dir is refused, naming the way to fork
    with pytest.raises(ConfigError, match=r"train.resume=.* continues the run in its own folder, but paths.out_dir="
                                          r".* names another.*train.ckpt_path="):
        resolve_run(_train_cfg(tmp_path, f"train.resume={ckpt.parent.parent}", f"paths.out_dir={tmp_path / 'x'}"))
    # an unwritable runs_root or out_dir is named before anything loads
    (tmp_path / "a_file").write_text("")
    for option in ("paths.runs_root", "paths.out_dir"):
        with pytest.raises(OutputError, match=rf"{option}=.*a_file"):
            resolve_run(_train_cfg(tmp_path, f"{option}={tmp_path / 'a_file' / 'runs'}"))


TINY_TRAIN = ["dataset=symmetric", "+dataset.params.num_graphs={train: 24, val: 8, test: 8}", "+dataset.params.max_nodes=12",
              "model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
              "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
              "model.diffusion.T=20", "train.batch_size=8", "train.progress_bar=false", "train.max_steps=30",
              "train.test_after_fit=false"]


def test_two_runs_started_on_one_folder_at_once_one_is_refused(tmp_path):
    env = {**os.environ, "SYMPE_DATA_ROOT": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    script("train_diffusion.py", [*TINY_TRAIN, "train.summary_only=true"], tmp_path)  # the dataset, processed once
    cmd = [sys.executable, str(REPO / "scripts" / "train_diffusion.py"), *TINY_TRAIN, "paths.out_dir=same"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    refused = next(err for p, (_, err) in zip(procs, outs) if p.returncode == 2)
    assert refused.strip().splitlines()[-1].startswith("error: paths.out_dir=") and (
        "in use by another run" in refused or "already holds a run" in refused), refused
    assert (tmp_path / "same" / "checkpoints" / "last.ckpt").exists()
    assert not (tmp_path / "same" / ".sympe.lock").exists()  # released when the run ended
    # later, the finished run's folder is refused as well
    late = script("train_diffusion.py", [*TINY_TRAIN, "paths.out_dir=same"], tmp_path)
    assert late.returncode == 2 and "already holds a run" in late.stderr


# ---------------------------------------------------------------------- checkpoints
def _member_offset(path: Path, member: str) -> int:
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    return info.header_offset + 30 + name_len + extra_len


def test_a_checkpoint_with_damaged_bytes_is_refused_naming_the_member(tmp_path, ckpt):
    with zipfile.ZipFile(ckpt) as z:
        member = max(z.infolist(), key=lambda i: i.file_size).filename
    offset = _member_offset(ckpt, member)
    with open(ckpt, "r+b") as f:
        f.seek(offset)
        data = f.read(256)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))
    with pytest.raises(CheckpointError, match=rf"checkpoint=.* is damaged: its member {member} fails"):
        check_checkpoint_file(ckpt, "checkpoint")
    proc = script("sample.py", [f"checkpoint={ckpt}", "num_samples=2"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: checkpoint=") and member in proc.stderr
    assert not (ckpt.parent.parent / "samples").exists()


def test_a_checkpoint_with_non_finite_weights_is_refused_naming_the_weight(tmp_path, ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point() and v.numel() > 4)
    state["state_dict"][name].view(-1)[3] = float("nan")
    torch.save(state, ckpt)
    proc = script("sample.py", [f"checkpoint={ckpt}", "num_samples=2"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"the weight {name} holds 1 non-finite values" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- sample.py / evaluate.py outputs
def test_sampling_twice_keeps_both_and_a_used_out_dir_is_refused_before_loading(tmp_path, ckpt):
    for _ in range(2):
        proc = script("sample.py", [f"checkpoint={ckpt}", "num_samples=3", "steps=2"], tmp_path)
        assert proc.returncode == 0, proc.stderr
    folders = sorted((ckpt.parent.parent / "samples").iterdir())
    assert len(folders) == 2 and all((f / "samples.npz").is_file() and (f / "sampling.json").is_file() for f in folders)
    assert not json.loads((folders[0] / "sampling.json").read_text())["partial"]
    proc = script("sample.py", [f"checkpoint={ckpt}", "num_samples=3", f"out_dir={folders[0]}"], tmp_path)
    assert proc.returncode == 2 and "already holds results" in proc.stderr and "overwrite=true" in proc.stderr
    assert script("sample.py", [f"checkpoint={ckpt}", "num_samples=3", f"out_dir={folders[0]}", "overwrite=true"],
                  tmp_path).returncode == 0
    proc = script("sample.py", [f"checkpoint={ckpt}", "num_samples=3", "out_dir=/sys/sympe-samples"], tmp_path)
    assert proc.returncode == 2 and "cannot write in /sys" in proc.stderr


def test_evaluating_a_checkpoint_twice_keeps_both_and_writes_strict_json(tmp_path, ckpt):
    args = [f"checkpoint={ckpt}", "num_samples=2", "steps=2", "limit_test_graphs=1", "sample_batch_size=2"]
    for _ in range(2):
        proc = script("evaluate.py", args, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted((ckpt.parent.parent / "eval").glob("*/metrics.json"))
    assert len(written) == 2
    text = written[0].read_text()
    m = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert m["num_samples"] == 2 and m["nll_ours_plain_mc"] > 0
    assert m["nll_ours_plain_mc_sem"] is None  # one test graph: the standard error is undefined, not 0
    assert json.loads(proc.stdout.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(c)) == json.loads(
        written[1].read_text())
    assert not list((ckpt.parent.parent / "eval").glob("*/.sympe.lock"))


def test_ctrl_c_during_sampling_writes_the_finished_batches(tmp_path, ckpt):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "sample.py"), f"checkpoint={ckpt}",
                             "num_samples=100000", "batch_size=2", "out_dir=partial"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    while line and "writing into" not in line:
        line = proc.stderr.readline()
    time.sleep(3)  # a few batches
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    summary = json.loads((tmp_path / "partial" / "sampling.json").read_text())
    assert summary["partial"] and summary["num_requested"] == 100000 and 0 < summary["num_samples"] < 100000
    assert summary["num_samples"] % 2 == 0  # whole batches only
    import numpy as np

    assert len(np.load(tmp_path / "partial" / "samples.npz")["num_nodes"]) == summary["num_samples"]
    last = err.strip().splitlines()[-1]
    assert last.startswith("[sympe] interrupted: wrote the") and "Traceback" not in err


def test_model_sample_keeps_the_batches_finished_before_an_interrupt(monkeypatch):
    from sympe.diffusion.process.sampling import SamplingInterrupted
    from sympe.diffusion.runs import model as model_module
    from sympe.diffusion.runs.model import load_model

    real, calls = model_module.sample_graphs, []

    def interrupted_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(model_module, "sample_graphs", interrupted_third)
    model = load_model(str(FIXTURE))
    model.train()
    with pytest.raises(SamplingInterrupted) as info:
        model.sample(10, batch_size=2, steps=2)
    assert len(info.value.batches) == 2 and info.value.num_sampled == 4 and info.value.num_requested == 10
    assert isinstance(info.value, KeyboardInterrupt) and model.training  # the mode is restored


# ---------------------------------------------------------------------- interrupts at the edges of training
def test_a_second_ctrl_c_prints_one_line(tmp_path, capsys):
    from sympe.diffusion.runs.interrupt import SaveOnInterrupt

    saver = SaveOnInterrupt(tmp_path, "python scripts/train_diffusion.py train.resume=r")
    saver._handler(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        saver._handler(signal.SIGINT, None)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[-1] == ("[sympe] second Ctrl-C: stopped at once, without writing a checkpoint; no checkpoint was "
                         "written; resume with: python scripts/train_diffusion.py train.resume=r")


def test_ctrl_c_during_the_final_test_names_the_evaluate_command(tmp_path, monkeypatch, capsys):
    import pytorch_lightning as pl

    from sympe.datasets.config import build_datamodule, build_splits_from_cfg
    from sympe.diffusion.runs.training import train

    def interrupted_test(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        raise AssertionError("SIGINT did not interrupt the test")

    cfg = _train_cfg(tmp_path, *TINY_TRAIN[:-2], "train.max_steps=2", f"paths.out_dir={tmp_path / 'r'}")
    splits = build_splits_from_cfg(cfg)
    monkeypatch.setattr(pl.Trainer, "test", interrupted_test)
    with pytest.raises(SystemExit) as info:
        train(cfg, splits["train"].info, build_datamodule(cfg, splits), resolve_run(cfg))
    assert info.value.code == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the test after training was interrupted" in last and "python scripts/evaluate.py checkpoint=" in last
    assert (tmp_path / "r" / "checkpoints" / "last.ckpt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_the_standard_error_of_one_test_graph_is_null(tmp_path):
    from sympe.datasets.config import build_datamodule, build_splits_from_cfg
    from sympe.diffusion.runs.training import checkpoint_bytes, train

    cfg = _train_cfg(tmp_path, *[o for o in TINY_TRAIN if not o.startswith(("+dataset.params.num_graphs", "train.test"))],
                     "+dataset.params.num_graphs={train: 16, val: 4, test: 1}", "train.max_steps=2",
                     f"paths.out_dir={tmp_path / 'r'}")
    splits = build_splits_from_cfg(cfg)
    result = train(cfg, splits["train"].info, build_datamodule(cfg, splits), resolve_run(cfg))
    saved = json.loads((tmp_path / "r" / "test_metrics.json").read_text())
    assert saved["test/nll_sem"] is None and saved["test/nll"] > 0
    assert result["test"]["test/nll_sem"] != result["test"]["test/nll_sem"]  # NaN in memory, null in the file
    # the free-space check's estimate of a checkpoint bounds the real file from above, by at most its 1 MB margin
    from sympe.diffusion.runs.model import load_model

    size = (tmp_path / "r" / "checkpoints" / "last.ckpt").stat().st_size
    estimate = checkpoint_bytes(load_model(result["last"]), cfg.train)
    assert size <= estimate <= size + 1_000_000


def test_a_disk_that_fills_during_training_leaves_no_temporary_file(tmp_path, monkeypatch):
    """The best checkpoint's write fails with ENOSPC inside Lightning's save, during a real fit: the error stops the
    run, last.ckpt is written and intact, and no ``*.tmp`` is left in checkpoints/."""
    import errno

    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    from sympe.datasets.config import build_datamodule, build_splits_from_cfg
    from sympe.diffusion.runs.training import train

    real = TorchCheckpointIO.save_checkpoint

    def fills_on_best(self, checkpoint, path, storage_options=None):
        if "best-" in Path(path).name or "best-" in Path(str(path).replace(".tmp", "")).name:
            with open(path, "wb") as f:
                f.write(b"PK" + b"\0" * 4096)  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, checkpoint, path, storage_options)

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", fills_on_best)
    cfg = _train_cfg(tmp_path, *TINY_TRAIN[:-2], "train.max_steps=6", "train.val_check_interval=3",
                     "train.test_after_fit=false", f"paths.out_dir={tmp_path / 'r'}")
    splits = build_splits_from_cfg(cfg)
    with pytest.raises(OSError, match="No space left"):
        train(cfg, splits["train"].info, build_datamodule(cfg, splits), resolve_run(cfg))
    folder = tmp_path / "r" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    check_checkpoint_file(folder / "last.ckpt")
    assert torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 3
