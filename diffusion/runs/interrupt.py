"""Stopping a training run without losing work: SIGINT, SIGTERM, errors, and the end of training.

:class:`SaveOnInterrupt` is a Lightning callback that, from ``on_train_start`` to the end of training,

* turns SIGINT (Ctrl-C) and SIGTERM into a request: the signal handler only sets a flag, and the run stops
  at the next point where the training state is consistent (after the optimizer step, EMA update and
  Lightning's bookkeeping of the current batch, i.e. in ``on_train_batch_end``, or at once during
  validation, whose start is such a point). There it writes ``last.ckpt`` atomically
  (:func:`~sympe.diffusion.runs.checkpoint_callbacks.atomic_save`), prints the step it stopped at and the exact command
  that resumes the run, and exits with status 128 + signal number (130 for SIGINT, 143 for SIGTERM).
  A second Ctrl-C while it is stopping prints one line (the latest checkpoint, the resume command) and raises
  ``KeyboardInterrupt`` at once;
* writes ``last.ckpt`` when any other error stops training (Lightning's ``on_exception``), if the
  training advanced since the last write, the weights are finite and training runs in one process, and
  prints the resume command;
* writes ``last.ckpt`` before each validation (validation can take minutes; an interrupt during it then
  exits at once, and the interrupted validation is not repeated when the run resumes: Lightning continues
  with the next training step), and when training ends.

Order with the EMA callback matters twice: a write at a batch end must come after ``EMAWeightAveraging``
has folded that step into the average (so this callback goes after it in the callback list), and the
write at train end must come before the EMA callback copies the average into the model (so it is done
by :meth:`SaveOnInterrupt.train_end_callback`, which goes before it). ``last.ckpt`` therefore always
holds the raw weights and optimizer state training resumes from, with the average beside them.

Under several processes (DDP) the stop decision is agreed on at every step (one small all-reduce), so that
every rank takes part in the last write.
"""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import pytorch_lightning as pl
import torch

from sympe.diffusion.runs.checkpoint_files import LAST_NAME, atomic_save
from sympe.diffusion.runs.progress import close_progress_bars

__all__ = ["SaveOnInterrupt", "TrainingInterrupted", "sigint_raises"]


class TrainingInterrupted(SystemExit):
    """Raised after ``last.ckpt`` was written on SIGINT / SIGTERM; the exit status is 128 + signal number."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.message = message


@contextmanager
def sigint_raises(exc_type: type[BaseException]):
    """Within the block, SIGINT (Ctrl-C) raises ``exc_type()`` instead of ``KeyboardInterrupt``; Lightning turns a
    ``KeyboardInterrupt`` into ``sys.exit(1)`` without a word, but lets other exceptions through. Outside the main
    thread (where signals cannot be set) the block runs unchanged."""
    def handler(signum, frame):
        raise exc_type()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


class SaveOnInterrupt(pl.Callback):
    """See the module docstring.

    Args:
        dirpath: the run's ``checkpoints/`` folder (``last.ckpt`` goes there).
        resume_command: the shell command that resumes this run (printed on every stop).
        signals: the signals handled (default SIGINT and SIGTERM).
    """

    def __init__(self, dirpath: str | Path, resume_command: str, signals=(signal.SIGINT, signal.SIGTERM)):
        self.dirpath = Path(dirpath)
        self.resume_command = resume_command
        self.signals = tuple(signals)
        self.requested: int | None = None
        self._previous: dict = {}
        self._saved_step: int | None = None
        self._in_validation = False
        self._active = False
        self._forced = False

    @property
    def last_path(self) -> Path:
        return self.dirpath / f"{LAST_NAME}.ckpt"

    # ------------------------------------------------------------------ signals
    def _handler(self, signum, frame) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            self._forced = True  # second Ctrl-C: stop now, without writing a checkpoint
            latest = f"the latest checkpoint is {self.last_path}" if self.last_path.exists() else "no checkpoint was written"
            print(f"\n[sympe] second Ctrl-C: stopped at once, without writing a checkpoint; {latest}; resume with: "
                  f"{self.resume_command}", file=sys.stderr, flush=True)
            raise KeyboardInterrupt
        self.requested = signum
        name = signal.Signals(signum).name
        print(f"\n[sympe] {name} received: stopping after the current step and writing {self.last_path} "
              f"(press Ctrl-C again to stop at once without it)", file=sys.stderr, flush=True)

    def _install(self) -> None:
        if self._active:
            return
        for s in self.signals:
            try:
                self._previous[s] = signal.signal(s, self._handler)
            except ValueError:  # not the main thread: leave the signals alone
                pass
        self._active = True

    def _uninstall(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous = {}
        self._active = False

    def _stop_requested(self, trainer) -> bool:
        if self.requested is None and getattr(trainer, "received_sigterm", False):  # Lightning's handler saw it first
            self.requested = signal.SIGTERM
        flag = self.requested is not None
        if trainer.world_size > 1:
            flag = bool(trainer.strategy.reduce_boolean_decision(flag, all=False))
            if flag and self.requested is None:
                self.requested = signal.SIGTERM
        return flag

    # ------------------------------------------------------------------ writing
    def _saved_at_this_step(self, trainer) -> bool:
        if self._saved_step == trainer.global_step:
            return self.last_path.exists()
        for cb in trainer.checkpoint_callbacks:  # a periodic ModelCheckpoint may have just written it
            if (getattr(cb, "save_last", False) and getattr(cb, "_last_global_step_saved", None) == trainer.global_step
                    and Path(cb.last_model_path or "") == self.last_path):
                return True
        return False

    def _save(self, trainer) -> bool:
        if self._saved_at_this_step(trainer):
            return False
        self.dirpath.mkdir(parents=True, exist_ok=True)
        atomic_save(trainer, str(self.last_path))
        self._saved_step = trainer.global_step
        return True

    def _stop(self, trainer) -> None:
        self._save(trainer)
        signum = self.requested
        msg = (f"[sympe] stopped by {signal.Signals(signum).name} at step {trainer.global_step} "
               f"(epoch {trainer.current_epoch}); saved {self.last_path}\n"
               f"[sympe] resume with:\n  {self.resume_command}")
        self._uninstall()
        if trainer.is_global_zero:
            close_progress_bars(trainer)  # the bar ends at this step and is not redrawn below the message
            print("\n" + msg, file=sys.stderr, flush=True)
        raise TrainingInterrupted(signum, msg)

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer, pl_module) -> None:
        self._install()
        self._saved_step = trainer.global_step if self.last_path.exists() else None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._stop_requested(trainer):
            self._stop(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self._active:
            return
        self._save(trainer)
        self._in_validation = True

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._in_validation and self._stop_requested(trainer):
            self._stop(trainer)  # last.ckpt was written at the start of this validation

    def on_validation_end(self, trainer, pl_module) -> None:
        self._in_validation = False

    def train_end_callback(self) -> pl.Callback:
        """The companion callback that writes ``last.ckpt`` when training ends; put it before the EMA callback."""
        return _SaveAtTrainEnd(self)

    def on_train_end(self, trainer, pl_module) -> None:
        self._uninstall()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        active = self._active
        self._uninstall()
        if isinstance(exception, TrainingInterrupted) or not active or self._forced:
            return
        saved = False
        reason = type(exception).__name__
        # not during validation (the weights are the EMA's then; last.ckpt was written at its start), and not
        # under several processes (an error on one rank would leave the others waiting in the collective write)
        if not self._in_validation and trainer.global_step > 0 and trainer.world_size == 1:
            finite = all(torch.isfinite(p).all() for p in pl_module.parameters())
            if finite:
                try:
                    saved = self._save(trainer)
                except Exception as exc:  # the error that stopped training is the one to report
                    print(f"[sympe] could not write {self.last_path} after {reason}: {exc}", file=sys.stderr)
            else:
                print(f"[sympe] not writing {self.last_path}: the weights are not finite", file=sys.stderr)
        if trainer.is_global_zero and self.last_path.exists():
            close_progress_bars(trainer)
            what = "saved" if saved else "the latest checkpoint is"
            print(f"\n[sympe] training stopped by {reason} at step {trainer.global_step}; {what} {self.last_path}\n"
                  f"[sympe] resume with:\n  {self.resume_command}", file=sys.stderr, flush=True)


class _SaveAtTrainEnd(pl.Callback):
    def __init__(self, owner: SaveOnInterrupt):
        self.owner = owner

    @property
    def state_key(self) -> str:
        return "SaveAtTrainEnd"

    def on_train_end(self, trainer, pl_module) -> None:
        if self.owner._active:
            self.owner._save(trainer)
