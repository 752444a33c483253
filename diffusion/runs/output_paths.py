"""Where a command writes: checked before any work, claimed atomically, never replacing earlier results.

Every command that writes results (training, ``sample.py``, ``evaluate.py``) goes through this module:

* :func:`check_writable`: before anything is loaded or sampled, a file is created and removed in the output
  folder (or in its nearest existing parent, where the folder is yet to be made) and the free space there is
  compared with what the command expects to write; either failure is one :class:`OutputError` line naming the
  option, the folder and the fix.
* :func:`claim_folder`: the folder a command writes into. Left unset, it is a new folder
  ``<parent>/<YYYY-mm-dd_HH-MM-SS>-<6 hex digits>`` created with ``mkdir(exist_ok=False)`` (atomic: two commands
  started in the same second get two folders). Given, it must be empty or absent; a folder that already holds
  files is refused unless ``overwrite=true``.
* :func:`write_new_json`: a results file that never replaces another: the content goes to a temporary file that
  is then *hard-linked* onto the final name (``os.link`` fails when the name exists, atomically), so of two
  commands finishing at once neither loses its file; a taken name gets a timestamped variant.
* :class:`FolderLock`: a lock file holding the process id and host, created with ``O_CREAT | O_EXCL`` (atomic).
  A run folder is claimed with it, so that a second run started on the same folder is refused with one line.
  A lock left by a process that no longer runs on this host is taken over (said on stderr); a lock of another
  host cannot be checked and is refused with the lock file's path to delete by hand.

No torch, no Lightning: commands call these functions first.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OutputError", "timestamp_name", "nearest_existing", "check_writable", "claim_folder", "ClaimedFolder",
           "write_new_json", "FolderLock", "format_bytes"]


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


def check_writable(path: str | os.PathLike, option: str, need_bytes: int = 0, what: str = "the output") -> Path:
    """Check that files can be created in folder ``path`` (or, when it does not exist yet, in its nearest existing
    parent, where it will be made) and that at least ``need_bytes`` are free there; returns that existing folder.

    The check creates and removes a temporary file (permissions, read-only file systems and full disks all show up).
    Raises :class:`OutputError` naming ``option``, the folder and the fix."""
    base = nearest_existing(path)
    if not base.is_dir():
        raise OutputError(f"{option}={path} cannot be created: {base} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sympe-write-check-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{option}={path}: cannot write in {base} ({exc.strerror or exc}); choose a writable folder "
                          f"for {option}") from None
    if need_bytes > 0:
        free = shutil.disk_usage(base).free
        if free < need_bytes:
            raise OutputError(f"{option}={path}: {format_bytes(free)} free in {base}, but {what} needs about "
                              f"{format_bytes(need_bytes)}; free some space or choose another folder for {option}")
    return base


@dataclass
class ClaimedFolder:
    """A folder a command writes into; ``created``: this command made it (so it may remove it when still empty)."""

    path: Path
    created: bool

    def remove_if_empty(self) -> bool:
        """Remove the folder when this command created it and nothing was written into it; True if removed."""
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()
            return True
        return False


def claim_folder(requested: str | os.PathLike | None, default_parent: str | os.PathLike, option: str,
                 overwrite: bool = False, need_bytes: int = 0, what: str = "the output") -> ClaimedFolder:
    """The folder a command writes into (module docstring): ``requested`` when given (absent or empty, or any folder
    with ``overwrite``), else a new timestamped folder under ``default_parent``. Writability and free space are
    checked first (:func:`check_writable`). Raises :class:`OutputError` naming ``option``."""
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
    held = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        raise OutputError(f"{option}={requested} already holds results ({shown}); leave {option} unset for a new "
                          f"timestamped folder, choose an empty folder, or pass overwrite=true to replace them")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    return ClaimedFolder(path, created)


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
    path written. With ``overwrite`` an existing ``path`` is replaced atomically."""
    from sympe.diffusion.files import atomic_write_text

    path = Path(path)
    text = json.dumps(obj, indent=indent)
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
    """``<folder>/<name>`` created exclusively with this process's id and host (module docstring).

    :meth:`acquire` raises :class:`OutputError` (naming ``option``) when a running process holds the folder;
    :meth:`release` removes the lock if it is still this process's. Usable as a context manager."""

    def __init__(self, folder: str | os.PathLike, option: str, name: str = ".sympe.lock"):
        self.path = Path(folder) / name
        self.option = option
        self.held = False

    def _content(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a process of another user
            return True
        return True

    def acquire(self) -> "FolderLock":
        if self.held:
            return self
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._read()
                if owner is None:  # being written this instant, or damaged: look once more
                    time.sleep(0.2)
                    owner = self._read()
                if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                    self.held = True
                    return self
                same_host = owner is not None and owner.get("host") == socket.gethostname()
                if owner is None or (same_host and not self._alive(int(owner.get("pid", -1)))):
                    print(f"[sympe] taking over {self.path}, left by a process that no longer runs "
                          f"({owner or 'unreadable'})", file=sys.stderr, flush=True)
                    self.path.unlink(missing_ok=True)
                    continue
                where = "" if same_host else f" on host {owner.get('host')} (cannot be checked from here; delete " \
                                             f"{self.path} if no run is going)"
                raise OutputError(f"{self.option}={self.path.parent} is in use by another run: process "
                                  f"{owner.get('pid')}{where}, since {owner.get('since')}; wait for it to end or "
                                  "choose another folder") from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self._content())
            self.held = True
            return self
        raise OutputError(f"{self.option}={self.path.parent}: could not take the lock {self.path}")

    def release(self) -> None:
        if not self.held:
            return
        owner = self._read()
        if owner is None or owner.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
