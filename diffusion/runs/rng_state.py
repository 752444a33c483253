"""Random-number state that travels with a checkpoint, and validation that does not consume it.

A run resumed from a checkpoint continues bit for bit (on CPU) only if every random draw after the
restore point is the same draw the uninterrupted run made. Two things break that otherwise:

* the global generators (torch CPU and CUDA, NumPy, Python ``random``) are not in Lightning's
  checkpoints: :class:`RNGStateCheckpoint` stores them (``state_dict``, called when a checkpoint is
  written) and puts them back at the start of the resumed training, after Lightning's sanity check;
* validation draws from the same global generators (the Monte Carlo NLL draws t and the noise), and
  whether a validation runs between the restore point and the next training step differs between the
  two runs. So every validation runs on its own generator state, seeded from ``(seed, global_step)``,
  and the training state is put back when it ends: validation never changes the training's draws, and
  the validation NLL at a given step is the same in a resumed and an uninterrupted run.
"""
from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch

__all__ = ["RNGStateCheckpoint", "capture_rng", "restore_rng"]


def capture_rng() -> dict:
    """The states of torch (CPU, every CUDA device), NumPy and Python ``random``, as tensors and plain Python
    values (loadable with ``torch.load(weights_only=True)``, as Lightning loads checkpoints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGStateCheckpoint(pl.Callback):
    """Checkpointed global RNG state; validation on a generator state of its own (module docstring).

    Args:
        seed: the run's seed; validation at global step k draws from ``seed * 1_000_003 + k``.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._to_restore: dict | None = None
        self._training_state: dict | None = None

    @property
    def state_key(self) -> str:
        return "RNGStateCheckpoint"

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        # during validation the training state is the one put aside at its start
        return {"rng": self._training_state if self._training_state is not None else capture_rng()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._to_restore = state_dict.get("rng")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._to_restore is not None:
            restore_rng(self._to_restore)
            self._to_restore = None

    # ------------------------------------------------------------------ validation
    def on_validation_start(self, trainer, pl_module) -> None:
        self._training_state = capture_rng()
        torch.manual_seed(self.seed * 1_000_003 + trainer.global_step)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._training_state is not None:
            restore_rng(self._training_state)
            self._training_state = None
