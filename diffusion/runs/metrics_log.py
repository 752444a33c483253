"""One ``metrics.csv`` per run, continued across resumptions.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts. :class:`ContinuedCSVLogger`
keeps it: a resumed run appends its rows to the same file, after dropping the rows the interrupted run
logged after its checkpoint (their ``step`` is at or past the step training resumes from, so the resumed
run logs those steps again). The header is the union of the old and new columns.
"""
from __future__ import annotations

import csv
import os

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from sympe.diffusion.files import atomic_path

__all__ = ["ContinuedCSVLogger"]


class _ContinuedWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self._resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's version deletes metrics.csv
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = list(reader)
        if self._resume_step is None:  # a new run never writes into an old file
            os.remove(self.metrics_file_path)
            return
        kept = [r for r in rows if not r.get("step") or int(float(r["step"])) < self._resume_step]
        self.metrics_keys = sorted(fields)
        with atomic_path(self.metrics_file_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(kept)


class ContinuedCSVLogger(CSVLogger):
    """``CSVLogger`` writing ``<save_dir>/<name>/metrics.csv`` (``version=""``); with ``resume_step`` it continues
    the existing file from that step (module docstring)."""

    def __init__(self, save_dir: str, name: str = "csv", resume_step: int | None = None):
        super().__init__(save_dir, name=name, version="")
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ContinuedWriter(self.log_dir, self._resume_step)
        return self._experiment
