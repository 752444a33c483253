"""Where a command writes: checked before any work, claimed atomically, never replacing earlier results.

Every command that writes results (training, ``sample.py``, ``evaluate.py``) goes through this module:

* :func:`check_writable`: before anything is loaded or sampled, a file is created and removed in the output
  folder (or in its nearest existing parent, where the folder is yet to be made) and the free space there is
  compared with what the command expects to write; either failure is one :class:`OutputError` line naming the
  option, the folder and the fix.
* :func:`claim_folder`: the folder a command writes into. Left unset, it is a new folder
  ``<parent>/<YYYY-mm-dd_HH-MM-SS>-<6 hex digits>`` created with ``mkdir(exist_ok=False)`` (atomic: two commands
  started in the same second get two folders). Given, it is locked (:class:`FolderLock`) and then must be empty
  or absent; a folder that already holds files is refused unless ``overwrite=true``.
* :func:`write_new_json`: a results file that never replaces another: the content goes to a temporary file that
  is then *hard-linked* onto the final name (``os.link`` fails when the name exists, atomically), so of two
  commands finishing at once neither loses its file; a taken name gets a timestamped variant.
* :class:`FolderLock`: ``<folder>/.sympe.lock`` locked with ``fcntl.flock`` while the command runs. Run folders and
  given ``out_dir`` folders are claimed with it, so that a second command started on the same folder is refused
  with one line. The kernel drops the lock when its process ends, however it ends, so no lock is ever stale.

No torch, no Lightning: commands call these functions first.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OutputError", "timestamp_name", "nearest_existing", "check_writable", "claim_folder", "ClaimedFolder",
           "json_safe", "write_new_json", "evaluation_output", "FolderLock", "format_bytes"]


class OutputError(ValueError):
    """An output location that cannot be used (not writable, too little space, already holding results, in use by
    another run); the message names the option, the path and the fix."""

    user_error = True


def format_bytes(n: float) -> str:
    """``n`` bytes as ``"12.3 MB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def timestamp_name() -> str:
    """``YYYY-mm-dd_HH-MM-SS-<6 hex digits>``: sorts by time; the random part keeps names of one second apart."""
    return f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{secrets.token_hex(3)}"


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` itself when it exists, else its nearest existing parent (made absolute)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path: str | os.PathLike, option: str, need_bytes: int = 0, what: str = "the output",
                   fix: str | None = None) -> Path:
    """Check that files can be created in folder ``path`` (or, when it does not exist yet, in its nearest existing
    parent, where it will be made) and that at least ``need_bytes`` are free there; returns that existing folder.

    The check creates and removes a temporary file (permissions, read-only file systems and full disks all show up).
    Raises :class:`OutputError` naming ``option``, the folder and the fix (``fix``: the advice given instead of
    "choose a writable folder for <option>")."""
    base = nearest_existing(path)
    if not base.is_dir():
        raise OutputError(f"{option}={path} cannot be created: {base} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sympe-write-check-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{option}={path}: cannot write in {base} ({exc.strerror or exc}); "
                          + (fix or f"choose a writable folder for {option}")) from None
    if need_bytes > 0:
        free = shutil.disk_usage(base).free
        if free < need_bytes:
            raise OutputError(f"{option}={path}: {format_bytes(free)} free in {base}, but {what} needs about "
                              f"{format_bytes(need_bytes)}; " + (fix or f"free some space or choose another folder for {option}"))
    return base


@dataclass
class ClaimedFolder:
    """A folder a command writes into; ``created``: this command made it (so it may remove it when still empty);
    ``lock``: the :class:`FolderLock` held on a given folder while the command runs (None for a new folder)."""

    path: Path
    created: bool
    lock: "FolderLock | None" = None

    def release(self) -> None:
        """Drop the lock (the command has ended)."""
        if self.lock is not None:
            self.lock.release()

    def remove_if_empty(self) -> bool:
        """Remove the folder when this command created it and nothing was written into it; True if removed. The
        lock is dropped in any case."""
        self.release()
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()
            return True
        return False


def claim_folder(requested: str | os.PathLike | None, default_parent: str | os.PathLike, option: str,
                 overwrite: bool = False, need_bytes: int = 0, what: str = "the output") -> ClaimedFolder:
    """The folder a command writes into (module docstring): ``requested`` when given (absent or empty, or any folder
    with ``overwrite``; locked until :meth:`ClaimedFolder.release`), else a new timestamped folder under
    ``default_parent``. Writability and free space are checked first (:func:`check_writable`). Raises
    :class:`OutputError` naming ``option``."""
    if requested is None or str(requested) == "":
        parent = Path(default_parent)
        check_writable(parent, option, need_bytes, what)
        parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            path = parent / timestamp_name()
            try:
                path.mkdir()
                return ClaimedFolder(path, True)
            except FileExistsError:
                continue
        raise OutputError(f"{option}: no free folder name under {parent}")  # pragma: no cover - 100 collisions
    path = Path(requested)
    check_writable(path, option, need_bytes, what)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option}={requested} is a file; give a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
        created = True
    except FileExistsError:
        created = False
    claimed = ClaimedFolder(path, created, FolderLock(path, option).acquire())
    held = sorted(p.name for p in path.iterdir() if p.name != FolderLock.NAME)
    if held and not overwrite:
        claimed.release()
        shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        raise OutputError(f"{option}={requested} already holds results ({shown}); leave {option} unset for a new "
                          f"timestamped folder, choose an empty folder, or pass overwrite=true to replace them")
    return claimed


def evaluation_output(samples: str | None, out_dir: str | None, default_parent: str | os.PathLike | None,
                      overwrite: bool = False, num_samples: int = 0) -> tuple[ClaimedFolder | None, Path]:
    """``(claimed folder or None, metrics file)`` of an evaluation, checked before anything loads: for a samples file
    without ``out_dir``, ``<stem>.metrics.json`` beside it (writable, 1 MB free; :func:`write_new_json` picks a
    timestamped name when that one is taken); otherwise :func:`claim_folder` of ``out_dir`` or a new folder under
    ``default_parent``, with room for ``num_samples`` samples, and ``metrics.json`` in it."""
    if samples is not None and not out_dir:
        metrics = Path(samples).resolve().parent / f"{Path(samples).stem}.metrics.json"
        check_writable(metrics.parent, "samples", 1_000_000, f"{metrics.name} beside it", "pass out_dir=<a writable folder>")
        return None, metrics
    out = claim_folder(out_dir, default_parent, "out_dir", overwrite, need_bytes=1_000_000 + 2_000 * int(num_samples),
                       what="the evaluation")
    return out, out.path / "metrics.json"


def json_safe(obj):
    """``obj`` made strict JSON: NaN and infinities become None (``null``: e.g. the standard error of one graph),
    numpy / torch scalars their Python values, tuples lists, keys strings and anything else its ``str``."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return json_safe(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def _stamped(path: Path) -> Path:
    return path.with_name(f"{path.stem}-{timestamp_name()}{path.suffix}")


def _link_or_create(staged: Path, target: Path, text: str) -> None:
    """Put ``text`` at ``target`` only if no file has that name (``FileExistsError`` otherwise): a hard link of the
    complete ``staged`` file, or, where the file system has no hard links, an exclusive create and write."""
    try:
        os.link(staged, target)
    except FileExistsError:
        raise
    except OSError:
        with open(target, "x", encoding="utf-8") as f:
            f.write(text)


def write_new_json(path: str | os.PathLike, obj, overwrite: bool = False, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path``, or, when ``path`` exists and not ``overwrite``, to
    ``<stem>-<timestamp><suffix>`` beside it (module docstring: hard link, never replacing a file); returns the
    path written. With ``overwrite`` an existing ``path`` is replaced atomically. The content is :func:`json_safe`
    (strict JSON: non-finite numbers are null)."""
    from sympe.diffusion.files import atomic_write_text

    path = Path(path)
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False)
    if overwrite:
        return atomic_write_text(path, text)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(staged, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        target = path
        for _ in range(100):
            try:
                _link_or_create(staged, target, text)
                return target
            except FileExistsError:
                target = _stamped(path)
        raise OutputError(f"no free file name beside {path}")  # pragma: no cover - 100 collisions
    finally:
        staged.unlink(missing_ok=True)


class FolderLock:
    """An exclusive lock on a folder: ``<folder>/.sympe.lock`` held with ``fcntl.flock`` for as long as the command runs
    (module docstring). The kernel releases it when the process ends in any way (also SIGKILL or a crash), so a
    lock is never stale and process ids are never trusted; the file's content (process id, host, start time) only
    feeds the message. :meth:`acquire` raises :class:`OutputError` naming ``option``, the holder and the lock file
    when another process holds the folder; :meth:`release` removes the file and drops the lock. Where ``fcntl`` does
    not exist (Windows) the folder is not locked. Usable as a context manager."""

    NAME = ".sympe.lock"

    def __init__(self, folder: str | os.PathLike, option: str):
        self.path = Path(folder) / self.NAME
        self.option = option
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _holder(self) -> str:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
            return f"process {owner['pid']} on {owner['host']}, since {owner['since']}"
        except (OSError, ValueError, TypeError, KeyError):
            return "another process"

    def acquire(self) -> "FolderLock":
        if self.held:
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        for _ in range(10):
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputError(f"{self.option}={self.path.parent} is in use by another run ({self._holder()}); wait "
                                  f"for it to end or choose another folder (the lock is {self.path}, held by the "
                                  "kernel while that process runs)") from None
            try:  # the file may have been removed (a holder releasing) between open and flock: lock the current one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
            self._fd = fd
            return self
        raise OutputError(f"{self.option}={self.path.parent}: could not take the lock {self.path}")  # pragma: no cover

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiting process then locks a new file
        except OSError:
            pass
        os.close(self._fd)  # drops the flock
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
