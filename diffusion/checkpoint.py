"""Checkpoints that are always recent and never half-written.

A run folder's ``checkpoints/`` holds

* ``last.ckpt``: the latest training state. Written every ``every_n_steps`` optimizer steps and every
  ``every_minutes`` minutes of training (two :class:`AtomicModelCheckpoint` instances, Lightning's
  ``every_n_train_steps`` and ``train_time_interval`` triggers, independent of validation), before each
  validation, when training ends, and on an interrupt or error (:mod:`~sympe.diffusion.interrupt`).
* ``best-epoch=E-step=S.ckpt``: the weights with the lowest validation NLL so far, written after every
  validation that improves it (also a validation at ``max_steps``).

Every write goes to ``<file>.tmp``, is flushed to disk (``fsync``), checked to be a complete torch
archive (its zip central directory, which torch writes last, is readable), and only then renamed onto the
final name (``os.replace``, atomic on POSIX). A run killed while writing, a full disk or a truncated
write therefore never replaces a good ``last.ckpt`` or best checkpoint.

:func:`check_checkpoint_file` gives the one-line error of a checkpoint that cannot be read.
"""
from __future__ import annotations

import os
import zipfile
from datetime import timedelta
from pathlib import Path
from weakref import proxy

from pytorch_lightning.callbacks import ModelCheckpoint

__all__ = ["AtomicModelCheckpoint", "CheckpointError", "atomic_save", "check_checkpoint_file",
           "checkpoint_callbacks", "LAST_NAME", "MissingCheckpointError"]

LAST_NAME = "last"  # -> checkpoints/last.ckpt


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or written; the message names the file and the likely cause."""

    user_error = True


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist."""


def _is_complete_archive(path: str) -> bool:
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
    tmp = filepath + ".tmp"
    trainer.save_checkpoint(tmp, weights_only)
    if trainer.is_global_zero:
        try:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            if not _is_complete_archive(tmp):
                raise CheckpointError(f"the checkpoint written to {tmp} is incomplete (disk full?); "
                                      f"{filepath} was left as it was")
            os.replace(tmp, filepath)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    trainer.strategy.barrier("atomic_checkpoint")


class AtomicModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose files are written by :func:`atomic_save`.

    ``enable_version_counter`` is off: ``last.ckpt`` and the best file keep their names (no ``-v1``
    copies) when several instances write into one folder or a resumed run writes into its own folder.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(*args, **kwargs)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        atomic_save(trainer, filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _remove_checkpoint(self, trainer, filepath: str) -> None:
        # never delete the file another instance has just written under the same name
        if os.path.abspath(filepath) != os.path.abspath(os.path.join(self.dirpath or "", LAST_NAME + self.FILE_EXTENSION)):
            super()._remove_checkpoint(trainer, filepath)


def checkpoint_callbacks(dirpath: str | Path, monitor: str, mode: str, every_n_steps: int,
                         every_minutes: float) -> list[AtomicModelCheckpoint]:
    """``[best, last every N steps, last every M minutes]`` writing into ``dirpath`` (module docstring).

    ``every_n_steps = 0`` / ``every_minutes = 0`` turn that trigger off. The first callback is the best
    checkpoint (``trainer.checkpoint_callback``): its ``best_model_path`` is the best file.
    """
    dirpath = str(dirpath)
    callbacks = [AtomicModelCheckpoint(dirpath=dirpath, filename="best-{epoch}-{step}", monitor=monitor, mode=mode,
                                       save_top_k=1, save_last=False, auto_insert_metric_name=True)]
    if every_n_steps > 0:
        callbacks.append(AtomicModelCheckpoint(dirpath=dirpath, save_top_k=0, save_last=True,
                                               every_n_train_steps=int(every_n_steps)))
    if every_minutes > 0:
        callbacks.append(AtomicModelCheckpoint(dirpath=dirpath, save_top_k=0, save_last=True,
                                               train_time_interval=timedelta(minutes=float(every_minutes))))
    return callbacks


def check_checkpoint_file(path: str | os.PathLike, option: str = "checkpoint") -> str:
    """Return ``path`` if it is a readable, complete checkpoint archive; raise :class:`CheckpointError`
    (:class:`MissingCheckpointError`, also a ``FileNotFoundError``, when it does not exist) with one line naming ``option``, the file and the likely cause otherwise.

    Reads only the archive's directory (fast for any size); whether the content is a sympe checkpoint is
    checked when it is loaded.
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
    if not _is_complete_archive(str(p)):
        raise CheckpointError(f"{option}={path} is a zip archive but not a torch checkpoint (no data.pkl inside)")
    return str(p)
