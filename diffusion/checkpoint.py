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

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Also write ``last.ckpt`` at the step where ``max_steps`` stops training (mid-epoch), so that a
        run stopped by its step budget can be resumed from exactly where it ended."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if (self.save_last and trainer.max_steps is not None and trainer.max_steps > 0
                and trainer.global_step >= trainer.max_steps and self._last_global_step_saved < trainer.global_step):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        """A run stopped by ``max_time`` or an interrupt mid-epoch still leaves its final state in ``last.ckpt``.

        Lightning runs checkpoint callbacks last, so with EMA this save comes after ``EMAWeightAveraging`` has
        copied the average into the model: such a ``last.ckpt`` resumes from the EMA weights (``max_steps``
        stops are saved earlier, in :meth:`on_train_batch_end`, with the raw weights kept for resuming).
        """
        if self.save_last and self._last_global_step_saved < trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        else:
            super().on_train_end(trainer, pl_module)
