"""Peak memory of a piece of work, in MiB (2**20 bytes).

Measured:

* CUDA: the peak of the bytes held by PyTorch's caching allocator in tensors
  (``torch.cuda.max_memory_allocated``; the allocator's cached free blocks and the CUDA context are not counted).
* CPU: the peak resident set size of the whole process (Linux ``VmHWM`` of ``/proc/self/status``; elsewhere
  ``ru_maxrss``). It includes Python, imported libraries and everything else the process holds, and freed
  memory that the C allocator keeps. The peak can be reset on Linux (writing 5 to ``/proc/self/clear_refs``);
  where that is refused it is the peak since the process started, so a probe then reports an upper bound.

:class:`PeakMemory` measures a ``with`` block: the memory in use when it starts (``before_mb``), the peak
during it (``peak_mb``) and their difference (``added_mb``: what the block added at its peak).
"""
from __future__ import annotations

import gc
import resource
import sys

import torch

__all__ = ["rss_mb", "reset_peak_rss", "peak_rss_mb", "reset_peak_memory", "peak_memory_mb", "PeakMemory"]

MIB = 2 ** 20


def _ru_maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident set size of this process now (``VmRSS``; the peak so far where /proc is not there)."""
    now = _status_mb("VmRSS")
    return _ru_maxrss_mb() if now is None else now


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set to its current size; ``False`` where the system refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process since the last :func:`reset_peak_rss` (or since it started)."""
    peak = _status_mb("VmHWM")
    return _ru_maxrss_mb() if peak is None else peak


def _is_cuda(device) -> bool:
    return torch.device(device).type == "cuda"


def reset_peak_memory(device="cpu") -> bool:
    """Start a new peak for :func:`peak_memory_mb` on ``device``; ``False`` if the CPU peak could not be reset."""
    if _is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return True
    return reset_peak_rss()


def peak_memory_mb(device="cpu") -> float:
    """Peak since the last reset: ``torch.cuda.max_memory_allocated`` on CUDA, the peak resident set on CPU."""
    if _is_cuda(device):
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / MIB
    return peak_rss_mb()


def _in_use_mb(device) -> float:
    return torch.cuda.memory_allocated(device) / MIB if _is_cuda(device) else rss_mb()


class PeakMemory:
    """``with PeakMemory(device) as p: ...``, then ``p.before_mb``, ``p.peak_mb``, ``p.added_mb`` (MiB).

    On entry: garbage is collected, the peak is reset (``p.reset`` says whether that worked on CPU) and the
    memory in use is read (``before_mb``: allocated tensor bytes on CUDA, the resident set on CPU). On exit:
    ``peak_mb`` is the peak during the block and ``added_mb = peak_mb - before_mb``.
    """

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.reset = False
        self.before_mb = self.peak_mb = self.added_mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.reset = reset_peak_memory(self.device)
        self.before_mb = _in_use_mb(self.device)
        return self

    def __exit__(self, *exc) -> None:
        self.peak_mb = peak_memory_mb(self.device)
        self.added_mb = self.peak_mb - self.before_mb
