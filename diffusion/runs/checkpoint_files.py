"""Checkpoint files: written atomically, and checked before they are loaded.

* :func:`atomic_save` writes a Lightning checkpoint to ``<file>.tmp``
  (:func:`sympe.diffusion.files.atomic_path`), checks that it is a complete torch archive (its zip central
  directory, which torch writes last, is readable and lists ``data.pkl``), and only then flushes it to disk
  (``fsync``) and renames it onto the final name (atomic on POSIX). An interrupted or truncated write never
  replaces the previous file and leaves no temporary file.
* :func:`check_checkpoint_file` gives one line naming the option, the file and the likely cause for a
  checkpoint that is missing, empty, truncated, not a torch archive, or damaged: every member's CRC-32 is
  compared with the one the archive stores (``zipfile.ZipFile.testzip``; torch itself does not compare them, so
  a checkpoint with overwritten bytes would otherwise load). This reads the whole file once (about 0.1 s for the
  65 MB default QM9 checkpoint).
* :func:`check_finite_weights` gives one line naming the file and the first tensor holding NaN or inf.

Nothing here imports torch or Lightning, so commands check their checkpoint options at once.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from sympe.diffusion.files import atomic_path, temporary_name

__all__ = ["LAST_NAME", "CheckpointError", "MissingCheckpointError", "atomic_save", "check_checkpoint_file",
           "check_finite_weights", "is_complete_archive"]

LAST_NAME = "last"  # -> checkpoints/last.ckpt


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or written; the message names the file and the likely cause."""

    user_error = True


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist."""


def is_complete_archive(path: str) -> bool:
    """True when ``path`` is a zip archive whose directory lists a ``data.pkl`` (a complete ``torch.save`` file)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("data.pkl") for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def atomic_save(trainer, filepath: str, weights_only: bool = False) -> None:
    """``trainer.save_checkpoint`` to ``filepath`` through a checked temporary file (module docstring).

    Raises :class:`CheckpointError` (the previous file is left untouched) when the written file is not a
    complete archive. Collective under multi-process strategies: every rank must call it.
    """
    if trainer.is_global_zero:
        with atomic_path(filepath) as tmp:
            trainer.save_checkpoint(str(tmp), weights_only)
            if not is_complete_archive(str(tmp)):
                raise CheckpointError(f"the checkpoint written to {tmp} is incomplete (disk full?); "
                                      f"{filepath} was left as it was")
    else:  # the call is collective; only rank 0 writes the file
        trainer.save_checkpoint(str(temporary_name(filepath)), weights_only)
    trainer.strategy.barrier("atomic_checkpoint")


def check_checkpoint_file(path: str | os.PathLike, option: str = "checkpoint") -> str:
    """Return ``path`` if it is a readable, complete checkpoint archive; raise :class:`CheckpointError`
    (:class:`MissingCheckpointError`, also a ``FileNotFoundError``, when it does not exist) with one line naming ``option``, the file and the likely cause otherwise.

    Reads the whole file once per process (the CRC-32 of every member; about 0.1 s for the 65 MB default QM9
    checkpoint); whether the content is a sympe checkpoint is checked when it is loaded.
    """
    p = Path(path)
    if not p.exists():
        hint = ""
        if p.name == LAST_NAME + ".ckpt" and p.parent.exists():
            others = sorted(x.name for x in p.parent.glob("*.ckpt"))
            hint = f"; that folder holds {others}" if others else "; that folder holds no checkpoint yet"
        raise MissingCheckpointError(f"{option}={path} does not exist{hint}")
    if p.is_dir():
        raise CheckpointError(f"{option}={path} is a folder; give a .ckpt file (e.g. {p / 'checkpoints' / 'last.ckpt'})")
    if not os.access(p, os.R_OK):
        raise CheckpointError(f"{option}={path} is not readable (file permissions)")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(f"{option}={path} is empty (0 bytes): an interrupted copy or write")
    if not zipfile.is_zipfile(p):
        raise CheckpointError(f"{option}={path} cannot be read as a checkpoint ({size} bytes, no complete torch archive):"
                              " the file is truncated (an interrupted copy or write) or is not a .ckpt file")
    if not is_complete_archive(str(p)):
        raise CheckpointError(f"{option}={path} is a zip archive but not a torch checkpoint (no data.pkl inside)")
    key = (str(p.resolve()), size, p.stat().st_mtime_ns)
    if key not in _VERIFIED:
        bad = _damaged_member(p)
        if bad is not None:
            raise CheckpointError(f"{option}={path} is damaged: its member {bad[0]} {bad[1]} (the bytes changed after "
                                  "the file was written: a bad copy, disk or edit); copy it again or use another "
                                  "checkpoint of the run")
        _VERIFIED.add(key)
    return str(p)


_VERIFIED: set = set()  # (path, size, mtime) of archives whose CRCs were checked in this process


def _damaged_member(path: Path) -> tuple[str, str] | None:
    """``(member, what is wrong)`` of the first member whose bytes do not match the CRC-32 the archive stores, or
    that cannot be read; None when all match. Members with a stored CRC of 0 (``torch.serialization.set_crc32_options
    (False)`` writes no CRCs) are read but not compared."""
    import zlib

    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            try:
                if info.CRC == 0:
                    continue
                with z.open(info) as f:  # zipfile compares the CRC when the member has been read to its end
                    while f.read(1 << 22):
                        pass
            except zipfile.BadZipFile as exc:
                return info.filename, ("fails the archive's CRC check" if "CRC" in str(exc) else f"cannot be read ({exc})")
            except (OSError, EOFError, ValueError, zlib.error, NotImplementedError) as exc:
                return info.filename, f"cannot be read ({type(exc).__name__}: {exc})"
    return None


def check_finite_weights(state_dict: dict, path: str | os.PathLike, option: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming ``option``, ``path`` and the first floating-point tensor of
    ``state_dict`` (a checkpoint's ``state_dict``: name -> tensor) that holds NaN or inf values."""
    import torch

    for name, value in state_dict.items():
        if torch.is_tensor(value) and value.is_floating_point():
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                raise CheckpointError(f"{option}={path}: the weight {name} holds {int((~finite).sum())} non-finite "
                                      f"values (NaN or inf) of {value.numel()}: the run diverged before this checkpoint "
                                      "or the file is damaged; use an earlier checkpoint (e.g. the run's best-*.ckpt)")
