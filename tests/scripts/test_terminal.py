"""Every entry point as a user runs it: on a terminal (a pseudo-terminal, so that tqdm and Lightning draw their
bars and Ctrl-C arrives as the terminal's interrupt character) and with its output redirected to a file (no
bar, no carriage return, no model summary).

On a tiny model (one layer, T = 20, a few small symmetric graphs): train until the first ``last.ckpt``,
Ctrl-C, resume with the printed command, then ``sample.py``, ``evaluate.py`` and ``nll_report.py --smoke``.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import pty
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import torch

from support import REPO  # noqa: E402
TINY = ["dataset=symmetric", "+dataset.params.num_graphs={train: 24, val: 8, test: 8}", "+dataset.params.max_nodes=12",
        "model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
        "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
        "model.diffusion.T=20", "model.features=cycles", "train.batch_size=8"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A command run on a fresh pseudo-terminal (80 x 24) as its controlling terminal, in the foreground."""

    def __init__(self, argv: list[str], cwd: Path, env: dict):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its stdin, stdout, stderr and controlling terminal
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.raw = b""
        self.status: int | None = None

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as exc:  # EIO: the child closed the terminal (it exited)
            if exc.errno != errno.EIO:
                raise
            return False
        if not chunk:
            return False
        self.raw += chunk
        return True

    def wait_for(self, condition, timeout: float = 300.0) -> None:
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout:
                self.kill()
                raise AssertionError(f"timed out; output so far:\n{self.screen()[-4000:]}")
            if not self._read(0.2):
                raise AssertionError(f"the command ended early:\n{self.screen()[-4000:]}")

    def interrupt(self) -> None:
        os.write(self.fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the foreground process group

    def finish(self, timeout: float = 600.0) -> int:
        start = time.monotonic()
        while self._read(0.2):
            if time.monotonic() - start > timeout:
                self.kill()
                raise AssertionError(f"did not exit; output so far:\n{self.screen()[-4000:]}")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def screen(self) -> str:
        """The output as the terminal shows it: escape sequences dropped, each line as last redrawn."""
        text = ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r\n", "\n")
        return "\n".join(line.split("\r")[-1] for line in text.split("\n"))


def run_on_terminal(script: str, args: list[str], cwd: Path, env: dict, timeout: float = 600.0) -> Terminal:
    term = Terminal([sys.executable, str(REPO / "scripts" / script), *args], cwd, env)
    status = term.finish(timeout)
    assert status == 0, f"{script} exited with {status} on a terminal:\n{term.screen()[-6000:]}"
    return term


@pytest.fixture
def env(tmp_path):
    out = {**os.environ, "SYMPE_DATA_ROOT": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore", "TERM": "xterm",
           "COLUMNS": "80", "LINES": "24"}
    for key in ("SYMPE_PROGRESS", "SYMPE_RUN_DIR"):
        out.pop(key, None)
    return out


def test_train_ctrl_c_resume_sample_evaluate_on_a_terminal(tmp_path, env):
    # train on a terminal until the first periodic last.ckpt, then press Ctrl-C
    term = Terminal([sys.executable, str(REPO / "scripts" / "train_diffusion.py"), *TINY, "train.max_steps=100000",
                     "train.ckpt_every_n_steps=5", "train.test_after_fit=false"], tmp_path, env)
    runs = tmp_path / "outputs" / "symmetric"
    term.wait_for(lambda: runs.is_dir() and any((r / "checkpoints" / "last.ckpt").exists() for r in runs.iterdir()))
    term.wait_for(lambda: "train steps" in term.screen())  # the bar is drawn
    term.interrupt()
    assert term.finish() == 130, term.screen()[-4000:]
    screen = term.screen()
    run_dir = next(runs.iterdir())
    assert "| Name" not in screen and "Total Flops" not in screen  # no model summary unless asked
    step = int(re.search(r"stopped by SIGINT at step (\d+)", screen).group(1))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == step
    lines = [line for line in screen.splitlines() if line.strip()]
    command = lines[-1].strip()  # the resume command is the last thing on the screen: no bar redrawn below it
    assert command.startswith("python ") and "train.resume=" in command, lines[-6:]
    assert lines[-2].strip() == "[sympe] resume with:"
    bars = [line for line in lines if line.startswith("train steps")]
    assert bars and re.search(rf"\b{step}/", bars[-1]), bars[-3:]  # the bar ends at the step the message names

    # resume with the printed command, on a terminal, for 3 more steps
    argv = [a if not a.startswith("train.max_steps=") else f"train.max_steps={step + 3}" for a in shlex.split(command)[1:]]
    resumed = run_on_terminal(Path(argv[0]).name, argv[1:], tmp_path, env)
    assert f"run folder: {run_dir}" in resumed.screen()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == step + 3

    # sample and evaluate on a terminal: the denoiser-call bars are drawn and the outputs written
    sample = run_on_terminal("sample.py", [f"checkpoint={ckpt}", "num_samples=6", "batch_size=3", "steps=5"], tmp_path, env)
    assert "sampling 6 graphs" in sample.screen()
    summary = json.loads([line for line in sample.screen().splitlines() if line.startswith("{")][-1])
    assert summary["num_samples"] == 6 and Path(summary["file"]).is_file()
    evaluate = run_on_terminal("evaluate.py", [f"checkpoint={ckpt}", "num_samples=4", "steps=4", "sample_batch_size=4"],
                               tmp_path, env)
    (written,) = (run_dir / "eval").glob("*/metrics.json")  # a new folder <run>/eval/<time>-<id>/ per call
    metrics = json.loads(written.read_text())
    assert metrics["num_samples"] == 4 and math.isfinite(metrics["nll_ours_plain_mc"])
    assert "sampling 4 graphs" in evaluate.screen()


def test_redirected_output_has_no_bars_and_no_model_summary(tmp_path, env):
    """Output to a file: plain progress lines instead of bars, no carriage return anywhere."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_diffusion.py"), *TINY, "train.max_steps=6"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    assert "\r" not in out and "\x1b[" not in out
    assert "| Name" not in out and "Total Flops" not in out
    assert re.search(r"\[sympe\] validated at step 3/6 \(50\.0%\), epoch 0 \| [0-9.]+ s/step \| 0:00:0\d left \| loss [0-9.]+, val/nll [0-9.]+", out), out[-3000:]
    assert "[sympe] training ended at step 6/6" in out
    assert "test NLL" in out
    ckpt = next((tmp_path / "outputs" / "symmetric").iterdir()) / "checkpoints" / "last.ckpt"
    for script, args in (("sample.py", ["num_samples=4", "steps=3"]),
                         ("evaluate.py", ["num_samples=4", "steps=3", "nll_estimator=stratified"])):
        proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), f"checkpoint={ckpt}", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "\r" not in proc.stdout + proc.stderr, (script, proc.stderr[-2000:])


def test_model_summary_when_asked(tmp_path, env):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_diffusion.py"), *TINY, "train.max_steps=1",
                           "train.model_summary=true", "train.test_after_fit=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Trainable params" in proc.stdout


def test_nll_report_smoke_on_a_terminal(tmp_path, env):
    """One run of the report's smoke grid (matchings, variant none) end to end on a terminal."""
    out = tmp_path / "report"
    term = run_on_terminal("nll_report.py", ["--preset", "cpu", "--smoke", "--tasks", "matching_T10", "--variants",
                                             "none", "--out", str(out)], tmp_path, env, timeout=900)
    assert (out / "report.md").is_file() and (out / "report.json").is_file(), term.screen()[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report, term.screen()[-3000:]
