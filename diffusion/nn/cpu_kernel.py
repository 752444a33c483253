"""Build and load the fused CPU loops of the edge attention (``csrc/edge_attention_cpu.c``).

The loops of :func:`~sympe.diffusion.nn.edge_attention.edge_attention` that are not matrix products (biases,
``Q_i ⊙ K_j`` modulation, softmax over keys, weighted sum, and their gradients) are one C pass per query row
instead of a dozen full passes of PyTorch kernels over (B, n, n, d) tensors. The file is plain C99 (no Python
or PyTorch headers): on first use it is compiled with the system C compiler (``$CC``, which may carry flags or a
wrapper such as ``ccache gcc``; else ``cc``) with ``-O3 -march=native`` (retried without ``-march=native`` where
the compiler refuses it) into a shared library cached under ``$SYMPE_KERNEL_CACHE`` (default
``~/.cache/sympe/kernels``), keyed by a hash of the source, the flags, the compiler's version and this CPU's
feature flags. The library is written under a temporary name and renamed, so concurrent processes never load a
half-written file; a cached file that does not load is rebuilt once. Calls go through ``ctypes``, which
releases the GIL: a batch is split over ``torch.get_num_threads()`` threads by graph.

Anything that stops the build or the load (no compiler, a compile error or timeout, an unwritable cache
directory, a library without the expected symbols) raises :class:`KernelBuildError` from :func:`load_kernel`;
:func:`kernel_available` turns it into one ``RuntimeWarning`` and ``False``, so the PyTorch formulation is used.
``SYMPE_CPU_KERNEL=0`` disables the kernel; ``SYMPE_CPU_KERNEL=1`` makes a failed build an error instead.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from sympe.diffusion.files import atomic_path

__all__ = ["kernel_available", "load_kernel", "forward", "backward", "KernelBuildError", "KernelSwitchError"]

SOURCE = Path(__file__).with_name("csrc") / "edge_attention_cpu.c"
CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-std=c99"]
ENV_SWITCH = "SYMPE_CPU_KERNEL"


class KernelBuildError(RuntimeError):
    """The C file could not be compiled or loaded (the message has the compiler's output). Raised out of
    :func:`kernel_available` only with ``SYMPE_CPU_KERNEL=1``; the scripts then print it as one ``error:`` line."""

    user_error = True


class KernelSwitchError(ValueError):
    """``SYMPE_CPU_KERNEL`` holds a value other than 0, 1 or auto."""

    user_error = True


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_failed: str | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # a forked child gets a pool of its own (threads do not survive fork)


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def _compiler() -> list[str]:
    cc = shlex.split(os.environ.get("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        raise KernelBuildError(f"no C compiler: `{' '.join(cc) or '(empty CC)'}` is not on PATH "
                               f"(set CC, or {ENV_SWITCH}=0 to skip)")
    return cc


def _cache_dir() -> Path:
    root = os.environ.get("SYMPE_KERNEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "sympe" / "kernels"


def _compile(cc: list[str], target: Path) -> None:
    """Compile SOURCE into ``target`` (atomically: a temporary file of this process, renamed over it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, keep_suffix=True, unique=True) as tmp:  # unique: processes may build at once
        errors = []
        for flags in (CFLAGS, [f for f in CFLAGS if f != "-march=native"]):
            proc = subprocess.run([*cc, *flags, str(SOURCE), "-o", str(tmp), "-lm"], capture_output=True, text=True,
                                  timeout=300)
            if proc.returncode == 0:
                break
            errors.append(proc.stderr.strip()[-1500:])
        else:
            raise KernelBuildError(f"`{' '.join(cc)}` failed to compile {SOURCE}:\n" + "\n".join(errors))
        os.chmod(tmp, 0o644)  # a shared cache directory should serve every user


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.sympe_edge_attention_forward.argtypes = [i64] * 4 + [ptr] * 3 + [ptr, i64] * 3 + [ptr] * 6
    lib.sympe_edge_attention_forward.restype = ctypes.c_int
    lib.sympe_edge_attention_backward.argtypes = [i64] * 4 + [ptr] * 4 + [ptr, i64] * 2 + [ptr] * 11
    lib.sympe_edge_attention_backward.restype = ctypes.c_int
    return lib


def _build() -> ctypes.CDLL:
    cc = _compiler()
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelBuildError(f"C compiler `{' '.join(cc)}` does not run: {err}") from err
    src = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([src, " ".join(CFLAGS).encode(), version.encode(), _cpu_flags().encode()]))
    target = _cache_dir() / f"edge_attention_cpu-{key.hexdigest()[:16]}.so"
    try:
        for attempt in (0, 1):
            if attempt or not target.exists():
                _compile(cc, target)
            try:
                return _declare(ctypes.CDLL(str(target)))
            except (OSError, AttributeError) as err:  # a truncated / foreign file in the cache: rebuild once
                if attempt:
                    raise KernelBuildError(f"cannot load {target}: {err}") from err
                target.unlink(missing_ok=True)
    except (OSError, subprocess.SubprocessError) as err:  # unwritable cache directory, compiler timeout, ...
        raise KernelBuildError(f"cannot build the kernel into {target.parent}: {err} (set SYMPE_KERNEL_CACHE to a "
                               f"writable folder, or {ENV_SWITCH}=0)") from err
    raise AssertionError("unreachable")


def load_kernel() -> ctypes.CDLL:
    """The compiled library (built on first call). Raises :class:`KernelBuildError` when it cannot be built."""
    global _lib, _failed
    with _lock:
        if _lib is not None:
            return _lib
        if _failed is not None:
            raise KernelBuildError(_failed)
        try:
            _lib = _build()
        except KernelBuildError as err:
            _failed = str(err)
            raise
        return _lib


def kernel_available() -> bool:
    """True when the fused CPU kernel is enabled (``SYMPE_CPU_KERNEL`` is not ``0``) and builds. A failed build
    warns once and returns False, unless ``SYMPE_CPU_KERNEL=1``, which raises :class:`KernelBuildError`; any
    other value than 0 / 1 / auto raises :class:`KernelSwitchError` (a ``ValueError``)."""
    switch = os.environ.get(ENV_SWITCH, "auto").strip().lower()
    if switch in ("0", "false", "off", "no"):
        return False
    if switch not in ("", "auto", "1", "true", "on", "yes"):
        raise KernelSwitchError(f"{ENV_SWITCH}={os.environ[ENV_SWITCH]!r} is not understood: use 0 (off), "
                                "1 (required) or auto (default: used when it builds)")
    try:
        load_kernel()
        return True
    except KernelBuildError as err:
        if switch in ("1", "true", "on", "yes"):
            raise
        if not getattr(kernel_available, "_warned", False):
            kernel_available._warned = True
            warnings.warn(f"fused CPU attention kernel unavailable, using the PyTorch formulation: {err}",
                          RuntimeWarning, stacklevel=2)
        return False


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _run(fn, B: int, *args) -> None:
    """Call ``fn(b0, b1, *args)`` over graph ranges covering [0, B), one per thread."""
    global _pool, _pool_size, _pool_pid
    threads = max(1, min(torch.get_num_threads(), B))
    if threads == 1:
        if fn(0, B, *args) != 0:
            raise MemoryError("edge attention kernel: out of memory for its scratch buffers")
        return
    with _lock:
        if _pool is None or _pool_size < threads or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sympe-kernel")
            _pool_size, _pool_pid = threads, os.getpid()
    bounds = [B * k // threads for k in range(threads + 1)]
    codes = list(_pool.map(lambda k: fn(bounds[k], bounds[k + 1], *args), range(threads)))
    if any(c != 0 for c in codes):
        raise MemoryError("edge attention kernel: out of memory for its scratch buffers")


def _check(name: str, t: Tensor | None, shape: tuple) -> None:
    if t is None:
        return
    if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous() or tuple(t.shape) != shape:
        raise ValueError(f"cpu_kernel: {name} must be a contiguous float32 CPU tensor of shape {shape}, got "
                         f"{t.dtype} {t.device} {tuple(t.shape)} (contiguous: {t.is_contiguous()})")


def _check_common(Q, K, V, m, mask) -> tuple[int, int, int]:
    if Q.dim() != 3:
        raise ValueError(f"cpu_kernel: Q must be (B, n, d), got {tuple(Q.shape)}")
    B, n, d = Q.shape
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        _check(name, t, (B, n, d))
    _check("m", m, (B, d))
    if mask.dtype != torch.bool or tuple(mask.shape) != (B, n):
        raise ValueError(f"cpu_kernel: node_mask must be a (B, n) = {(B, n)} bool tensor, got {mask.dtype} "
                         f"{tuple(mask.shape)}")
    return B, n, d


def _rows(t: Tensor, d: int, R: int) -> tuple[int, int]:
    """(pointer, row stride in floats) of a (R, d) float32 CPU view whose rows are contiguous."""
    if (t.dim() != 2 or tuple(t.shape) != (R, d) or t.stride(1) != 1 or t.stride(0) < d
            or t.dtype != torch.float32 or t.device.type != "cpu"):
        raise ValueError(f"cpu_kernel: expected a float32 CPU ({R}, {d}) view with contiguous rows, got "
                         f"{t.dtype} {tuple(t.shape)} strides {t.stride()}")
    return t.data_ptr(), t.stride(0)


def forward(Q: Tensor, K: Tensor, V: Tensor, M0: Tensor, A0: Tensor, S: Tensor, b1p: Tensor, b2: Tensor,
            m: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The fused forward loops (math in ``csrc/edge_attention_cpu.c``). ``Q, K, V`` (B, n, d), ``m`` (B, d),
    ``b1p = b1 + 1`` and ``b2`` (d,): contiguous float32 CPU tensors; ``M0, A0, S``: (B·n·n, d) float32 row
    views (rows contiguous, any row stride; ``S`` may be ``A0`` itself: written in place); ``mask`` (B, n) bool.
    Fills ``S`` and returns ``(F, h)``, ``F = m ⊙ S`` (B, n, n, d), ``h`` (B, n, d).

    Raises ``ValueError`` on a wrong shape, dtype, device or layout (the C code reads raw pointers),
    :class:`KernelBuildError` when the library cannot be built, ``MemoryError`` when its scratch allocation
    fails."""
    B, n, d = _check_common(Q, K, V, m, mask)
    R = B * n * n
    for name, t in (("b1p", b1p), ("b2", b2)):
        _check(name, t, (d,))
    rows = [_rows(t, d, R) for t in (M0, A0, S)]
    lib = load_kernel()
    F = torch.empty(B, n, n, d)
    h = torch.empty(B, n, d)
    _run(lib.sympe_edge_attention_forward, B, n, d, _ptr(Q), _ptr(K), _ptr(V), *rows[0], *rows[1], *rows[2],
         _ptr(b1p), _ptr(b2), _ptr(m), _ptr(mask.contiguous().view(torch.uint8)), _ptr(F), _ptr(h))
    return F, h


def backward(Q: Tensor, K: Tensor, V: Tensor, h: Tensor, M0: Tensor, S: Tensor, b1p: Tensor, m: Tensor,
             mask: Tensor, gF: Tensor | None, gh: Tensor | None, want_F: bool) -> dict:
    """The fused backward loops (math in ``csrc/edge_attention_cpu.c``). Inputs as in :func:`forward`, plus ``h``
    (B, n, d) of the forward and the incoming gradients ``gF = ∂E_out W_out`` ((B·n·n, d) contiguous, or None)
    and ``gh`` ((B, n, d) contiguous, or None). ``M0`` and ``S`` ((B·n·n, d) row views) are overwritten with
    ``∂M`` and ``∂A = ∂S``. Returns ``gQ, gK, gV`` (B, n, d), ``gm`` (B, d), ``gb`` (2d,) and ``F = m ⊙ S``
    (B, n, n, d) (None unless ``want_F``). Raises as :func:`forward`."""
    B, n, d = _check_common(Q, K, V, m, mask)
    R = B * n * n
    _check("h", h, (B, n, d))
    _check("b1p", b1p, (d,))
    _check("gF", gF, (R, d))
    _check("gh", gh, (B, n, d))
    rows = [_rows(t, d, R) for t in (M0, S)]
    lib = load_kernel()
    gQ, gK, gV = torch.zeros(B, n, d), torch.zeros(B, n, d), torch.zeros(B, n, d)
    gm, gb = torch.zeros(B, d), torch.zeros(B, 2 * d)
    F = torch.empty(B, n, n, d) if want_F else None
    _run(lib.sympe_edge_attention_backward, B, n, d, _ptr(Q), _ptr(K), _ptr(V), _ptr(h), *rows[0], *rows[1],
         _ptr(b1p), _ptr(m), _ptr(mask.contiguous().view(torch.uint8)), _ptr(gF), _ptr(gh), _ptr(F),
         _ptr(gQ), _ptr(gK), _ptr(gV), _ptr(gm), _ptr(gb))
    return {"gQ": gQ, "gK": gK, "gV": gV, "gm": gm, "gb": gb.sum(0), "F": F}
