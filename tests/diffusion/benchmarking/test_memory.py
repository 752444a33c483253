"""sympe.diffusion.benchmarking.memory: the probes see memory that is allocated."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

from sympe.diffusion.benchmarking import PeakMemory, peak_memory_mb, peak_rss_mb, rss_mb

MIB = 2 ** 20


def test_resident_set_grows_by_a_large_tensor_and_the_peak_is_at_least_the_current_size():
    before = rss_mb()
    x = torch.ones(128 * MIB // 4)  # 128 MiB of float32, written (so resident)
    after = rss_mb()
    assert after - before > 100, (before, after)
    assert peak_rss_mb() >= after - 1
    assert peak_memory_mb("cpu") >= after - 1
    del x


PROBE = """
import json, torch
from sympe.diffusion.benchmarking import PeakMemory
with PeakMemory("cpu") as big:
    x = torch.ones(256 * 2**20 // 4)  # 256 MiB, freed before the block ends: only the peak sees it
    del x
with PeakMemory("cpu") as small:
    y = torch.ones(1024)
print(json.dumps({k: [p.before_mb, p.peak_mb, p.added_mb, p.reset] for k, p in (("big", big), ("small", small))}))
"""


def test_peak_probe_reports_a_freed_large_tensor_and_resets_between_blocks():
    # a fresh process: its peak so far is small, whatever this test session allocated before
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    before, peak, added, reset = got["big"]
    assert peak - before == added
    assert added > 200, got
    s_before, s_peak, s_added, s_reset = got["small"]
    if s_reset:  # the peak was reset (Linux): the second block's peak no longer holds the first's tensor
        assert s_added < 50, got
    else:  # where it cannot be reset the peak is the process's: an upper bound
        assert s_peak >= peak


def test_probe_fields_are_set_only_by_the_block():
    p = PeakMemory("cpu")
    assert p.added_mb != p.added_mb  # NaN before use
    with p:
        pass
    assert p.peak_mb >= p.before_mb - 1 and abs(p.added_mb - (p.peak_mb - p.before_mb)) < 1e-9
