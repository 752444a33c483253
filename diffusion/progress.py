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
* :func:`network_call_progress`: a bar over the denoiser calls of a sampling run (a forward hook on the
  network counts them), for the sampling loops of ``scripts/sample.py`` and ``scripts/evaluate.py``.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings

from pytorch_lightning.callbacks import TQDMProgressBar

__all__ = ["RunProgressBar", "quiet_lightning", "network_call_progress", "run_total_steps"]

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
    count reached. ``enable=None`` shows the bar only on a terminal.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=(None if enable is None else not enable), file=sys.stderr,
               dynamic_ncols=True)
    handle = network.register_forward_hook(lambda *_: bar.update(1))
    try:
        yield bar
    finally:
        handle.remove()
        bar.close()
