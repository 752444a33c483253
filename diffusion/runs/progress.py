"""Progress of long phases, and console output that does not break it.

* :class:`RunProgressBar`: Lightning's tqdm bar over the whole run instead of one epoch: optimizer steps
  done / total steps of the run (``max_steps``, else ``max_epochs`` x batches per epoch), with the rate and
  the time left measured over this process's steps. A resumed run starts the bar at its restored step,
  so the total and the time left stay right.
* :func:`quiet_lightning`: Lightning's start-up notices that are not the user's business (accelerator
  availability, tips about other products) are not printed, and warnings that are printed go through
  ``tqdm.write`` so that they appear above a bar instead of inside it. Lightning's warnings about choices
  this project makes on purpose (no data-loading workers on CPU, resuming into a folder that holds
  checkpoints) are not shown.
* :class:`RunProgressLog`: what replaces the bars when the output is not a terminal (a log file, a pipe):
  one plain line per ``every_seconds`` (60) of training and one after each validation, with the step,
  the rate, the time left and the latest metrics; no carriage returns, nothing redrawn.
* :func:`network_call_progress`: a bar over the denoiser calls of a sampling run (a forward hook on the
  network counts them), for the sampling loops of ``scripts/sample.py`` and ``scripts/evaluate.py``.
Whether bars are drawn at all is :func:`sympe.diffusion.bars.bars_enabled`: on a terminal only, unless
``SYMPE_PROGRESS=1`` (always) or ``SYMPE_PROGRESS=0`` (never) says otherwise.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings

from pytorch_lightning.callbacks import Callback, TQDMProgressBar

from sympe.diffusion.bars import bars_enabled, progress_bar

__all__ = ["RunProgressBar", "RunProgressLog", "quiet_lightning", "network_call_progress", "run_total_steps",
           "bars_enabled", "close_progress_bars"]  # bars_enabled: re-exported from sympe.diffusion.bars

# Lightning warnings about deliberate choices of this project (matched against the start of the message)
IGNORED_WARNINGS = (
    r".*does not have many workers which may be a bottleneck",
    r"Checkpoint directory .* exists and is not empty",
    r"Experiment logs directory .* exists and is not empty",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated",
)


def run_total_steps(trainer) -> int | None:
    """Optimizer steps the run will take in all: ``max_steps``, bounded by ``max_epochs`` x batches per epoch;
    None when unbounded or unknown (``max_time`` alone)."""
    bounds = []
    if trainer.max_steps is not None and trainer.max_steps > 0:
        bounds.append(int(trainer.max_steps))
    per_epoch = trainer.num_training_batches
    if trainer.max_epochs is not None and trainer.max_epochs > 0 and per_epoch != float("inf"):
        accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1)))
        bounds.append(int(trainer.max_epochs) * -(-int(per_epoch) // accumulate))
    return min(bounds) if bounds else None


class RunProgressBar(TQDMProgressBar):
    """One bar for the whole run (module docstring); validation keeps Lightning's own bar below it."""

    @property
    def train_description(self) -> str:
        return "train steps"

    def init_train_tqdm(self):
        from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

        trainer = self.trainer
        return Tqdm(desc=self.train_description, total=run_total_steps(trainer), initial=trainer.global_step,
                    position=2 * self.process_position, disable=self.is_disabled, leave=True, dynamic_ncols=True,
                    file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        if self._train_progress_bar is not None:  # a resumed run is mid-epoch: name its epoch at once
            self.train_progress_bar.set_description(f"train steps (epoch {trainer.current_epoch})")

    def on_train_epoch_start(self, trainer, *_) -> None:
        if self._train_progress_bar is not None:
            self.train_progress_bar.set_description(f"train steps (epoch {trainer.current_epoch})")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self._train_progress_bar
        n = trainer.global_step
        if bar is not None and not bar.disable and (n % self.refresh_rate == 0 or n == bar.total):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._train_progress_bar is not None and not self._train_progress_bar.disable:
            self.train_progress_bar.n = trainer.global_step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _format_metric(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.4g}"


class RunProgressLog(Callback):
    """Training progress as plain lines on stdout, for output that is not a terminal (module docstring).

    A line reads ``[sympe] step 1200/20000 (6.0%), epoch 0 | 0.245 s/step | 1:16:45 left | loss 2.31,
    val/nll 30.1``: steps done / steps planned (:func:`run_total_steps`; no total when only ``max_time``
    bounds the run), the mean seconds per optimizer step of this process, the time left at that rate, and
    Lightning's progress-bar metrics. Written every ``every_seconds`` seconds of training, after each
    validation and when training ends.
    """

    def __init__(self, every_seconds: float = 60.0, stream=None):
        self.every_seconds = float(every_seconds)
        self.stream = stream
        self._start_time = 0.0
        self._start_step = 0
        self._last_line = 0.0

    def _write(self, text: str) -> None:
        print(text, file=self.stream if self.stream is not None else sys.stdout, flush=True)

    def line(self, trainer, what: str = "step") -> str:
        step = int(trainer.global_step)
        total = run_total_steps(trainer)
        parts = [f"[sympe] {what} {step}" + (f"/{total} ({100.0 * step / total:.1f}%)" if total else "")
                 + f", epoch {trainer.current_epoch}"]
        done = step - self._start_step
        if done > 0:
            per_step = (time.monotonic() - self._start_time) / done
            parts.append(f"{per_step:.3g} s/step")
            if total:
                parts.append(f"{_duration(per_step * max(0, total - step))} left")
        metrics = {k: v for k, v in trainer.progress_bar_metrics.items() if k != "v_num"}
        if metrics:
            parts.append(", ".join(f"{k} {_format_metric(v)}" for k, v in metrics.items()))
        return " | ".join(parts)

    def on_train_start(self, trainer, pl_module) -> None:
        self._start_time = self._last_line = time.monotonic()
        self._start_step = int(trainer.global_step)
        if trainer.is_global_zero:
            total = run_total_steps(trainer)
            self._write(f"[sympe] training from step {self._start_step}" + (f" to {total}" if total else "")
                        + f"; a progress line every {self.every_seconds:g} s and after each validation")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if trainer.is_global_zero and now - self._last_line >= self.every_seconds:
            self._last_line = now
            self._write(self.line(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._last_line = time.monotonic()
            self._write(self.line(trainer, what="validated at step"))

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._write(self.line(trainer, what="training ended at step"))


def close_progress_bars(trainer) -> None:
    """Bring the run's bar to the current step and close it (so that nothing redraws it below a final message
    such as the resume command). Safe when there is no bar."""
    bar_cb = getattr(trainer, "progress_bar_callback", None)
    if bar_cb is None:
        return
    for name in ("_train_progress_bar", "_val_progress_bar", "_test_progress_bar", "_predict_progress_bar"):
        bar = getattr(bar_cb, name, None)
        if bar is None or getattr(bar, "disable", True):
            continue
        if name == "_train_progress_bar":
            bar.n = trainer.global_step
            bar.refresh()
        bar.close()


def _tqdm_showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    from tqdm import tqdm

    tqdm.write(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"), file=sys.stderr)


def quiet_lightning() -> None:
    """Apply the console settings of the module docstring (idempotent; affects this process)."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.showwarning = _tqdm_showwarning


@contextlib.contextmanager
def network_call_progress(network, total: int | None, desc: str, unit: str = "step", enable: bool | None = None):
    """A tqdm bar advanced by each forward call of ``network`` (a ``torch.nn.Module``) inside the block.

    ``total``: the calls expected (e.g. batches x (reverse steps + 1) x draws); the bar is closed at the
    count reached. ``enable=None`` follows :func:`bars_enabled` (a terminal only, or ``SYMPE_PROGRESS``).
    """
    bar = progress_bar(total=total, desc=desc, unit=unit, leave=True, enable=enable)

    def count_call(module, args, output) -> None:
        # A forward hook that returns anything but None replaces the module's output; tqdm's update()
        # returns True whenever it redraws (on a terminal), so its value must not leak out of the hook.
        bar.update(1)

    handle = network.register_forward_hook(count_call)
    try:
        yield bar
    finally:
        handle.remove()
        bar.close()
