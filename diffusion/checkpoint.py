"""Checkpointing that never leaves a half-written file.

`AtomicModelCheckpoint` is Lightning's ``ModelCheckpoint`` whose writes go to ``<file>.tmp`` first and
are renamed onto the final name (``os.replace`` is atomic on POSIX), so a run killed while saving
keeps the previous ``last.ckpt`` / best checkpoint readable.
"""
from __future__ import annotations

import os
from weakref import proxy

from pytorch_lightning.callbacks import ModelCheckpoint


class AtomicModelCheckpoint(ModelCheckpoint):
    def _save_checkpoint(self, trainer, filepath: str) -> None:
        tmp = filepath + ".tmp"
        trainer.save_checkpoint(tmp, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("atomic_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
