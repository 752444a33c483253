"""Atomic file writes: a file is either absent, its old content, or its complete new content.

Every file the project writes that a later command reads (checkpoints, run configs, metrics, processed datasets,
cached statistics, samples, reports) goes through :func:`atomic_path`: the content is written to a temporary file
in the same directory, flushed to disk (``fsync``) and renamed onto the final name (``os.replace``, atomic on
POSIX and Windows within one file system). An interrupted write (Ctrl-C, a full disk, a killed job) leaves the
previous file untouched and no temporary file behind.

    with atomic_path(out / "samples.npz", keep_suffix=True) as tmp:
        np.savez_compressed(tmp, **arrays)      # numpy appends .npz to names without it: keep_suffix
    atomic_write_json(out / "metrics.json", metrics)

No Lightning, no torch: ``sympe.datasets`` may import this module (as it imports the data types).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "temporary_name", "atomic_write_text", "atomic_write_bytes", "atomic_write_json"]


def temporary_name(path: str | os.PathLike, keep_suffix: bool = False, unique: bool = False) -> Path:
    """The temporary file of ``path``: ``<name>.tmp`` in the same directory, or ``<stem>.tmp<suffix>`` with
    ``keep_suffix`` (for writers that add or check an extension, such as ``numpy.savez``). ``unique`` puts the
    process id before ``.tmp`` (``<name>.<pid>.tmp``), for caches that several processes may write at once."""
    path = Path(path)
    tag = f".{os.getpid()}.tmp" if unique else ".tmp"
    return path.with_name(path.stem + tag + path.suffix) if keep_suffix else path.with_name(path.name + tag)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on read-only descriptors: the rename is still atomic
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, keep_suffix: bool = False, sync: bool = True, unique: bool = False):
    """Yield a temporary path (:func:`temporary_name` with ``keep_suffix`` and ``unique``) to write to; on a normal exit it is flushed to disk
    (``sync``) and renamed onto ``path``, on an exception it is removed and the exception propagates. The
    parent directory must exist. Raises ``FileNotFoundError`` when the block wrote nothing at the temporary
    path."""
    path = Path(path)
    tmp = temporary_name(path, keep_suffix, unique)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} (the temporary file of {path})")
        if sync:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns ``path`` as a ``Path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`); returns ``path`` as a ``Path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj, indent: int | None = 1, newline: bool = False) -> Path:
    """Write ``json.dumps(obj, indent=indent)`` (and a final newline with ``newline``) to ``path`` atomically;
    returns ``path``."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + ("\n" if newline else ""))
