"""Progress reporting never changes a result: the denoiser-call bar's forward hook returns nothing (a forward
hook that returns a value replaces the module's output), and bars are drawn on a terminal only."""
from __future__ import annotations

import io
import time

import torch

from sympe.diffusion.bars import bars_enabled
from sympe.diffusion.runs.progress import network_call_progress


class Slow(torch.nn.Module):
    """Returns a tuple, like the denoiser, and takes longer than tqdm's redraw interval (0.1 s) per call, so
    that every ``bar.update`` redraws and returns True."""

    def forward(self, x):
        time.sleep(0.15)
        return x + 1, x * 2


def test_counting_hook_leaves_the_output_alone():
    net = Slow()
    x = torch.arange(3.0)
    with network_call_progress(net, total=3, desc="calls", enable=True) as bar:
        outs = [net(x) for _ in range(3)]
        assert bar.n == 3
    for out in outs:
        assert isinstance(out, tuple) and torch.equal(out[0], x + 1) and torch.equal(out[1], x * 2)
    assert not net._forward_hooks  # removed on exit


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_unless_forced(monkeypatch):
    monkeypatch.delenv("SYMPE_PROGRESS", raising=False)
    assert bars_enabled(Tty()) and not bars_enabled(io.StringIO())
    monkeypatch.setenv("SYMPE_PROGRESS", "1")
    assert bars_enabled(io.StringIO())
    monkeypatch.setenv("SYMPE_PROGRESS", "0")
    assert not bars_enabled(Tty())

