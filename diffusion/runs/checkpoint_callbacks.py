"""Checkpoints that are always recent and never half-written.

A run folder's ``checkpoints/`` holds

* ``last.ckpt``: the latest training state. Written every ``every_n_steps`` optimizer steps and every
  ``every_minutes`` minutes of training (two :class:`AtomicModelCheckpoint` instances, Lightning's
  ``every_n_train_steps`` and ``train_time_interval`` triggers, independent of validation), before each
  validation, when training ends, and on an interrupt or error (:mod:`~sympe.diffusion.runs.interrupt`).
* ``best-epoch=E-step=S.ckpt``: the weights with the lowest validation NLL so far, written after every
  validation that improves it (also a validation at ``max_steps``).

Every write goes through :func:`~sympe.diffusion.runs.checkpoint_files.atomic_save`: a temporary file, checked
and flushed, renamed onto the final name. A run killed while writing, a full disk or a truncated write
therefore never replaces a good ``last.ckpt`` or best checkpoint.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from weakref import proxy

from pytorch_lightning.callbacks import ModelCheckpoint

from sympe.diffusion.runs.checkpoint_files import (LAST_NAME, CheckpointError, MissingCheckpointError, atomic_save,
                                              check_checkpoint_file)

__all__ = ["AtomicModelCheckpoint", "CheckpointError", "MissingCheckpointError", "atomic_save", "check_checkpoint_file",
           "checkpoint_callbacks", "LAST_NAME"]


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
    """``[last every N steps, last every M minutes, best]`` writing into ``dirpath`` (module docstring).

    ``every_n_steps = 0`` / ``every_minutes = 0`` leave that trigger out. The best-checkpoint callback is last
    (its ``best_model_path`` is the best file); a ``last.ckpt`` writer comes first, so that Lightning's
    ``trainer.checkpoint_callback`` (the first one) reports ``last.ckpt`` as its ``last_model_path``.
    """
    dirpath = str(dirpath)
    callbacks = []
    if every_n_steps > 0:
        callbacks.append(AtomicModelCheckpoint(dirpath=dirpath, save_top_k=0, save_last=True,
                                               every_n_train_steps=int(every_n_steps)))
    if every_minutes > 0:
        callbacks.append(AtomicModelCheckpoint(dirpath=dirpath, save_top_k=0, save_last=True,
                                               train_time_interval=timedelta(minutes=float(every_minutes))))
    callbacks.append(AtomicModelCheckpoint(dirpath=dirpath, filename="best-{epoch}-{step}", monitor=monitor, mode=mode,
                                           save_top_k=1, save_last=False, auto_insert_metric_name=True))
    return callbacks
