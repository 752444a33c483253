"""A shuffling train loader that resumes mid-epoch exactly.

:class:`ResumableRandomSampler` draws one permutation of the train split per epoch from a
``torch.Generator`` (``torch.randperm(n, generator)``, the draw of torch's ``RandomSampler``), and
remembers the generator state just before that draw. :class:`ResumableDataLoader` is PyG's
``DataLoader`` with Lightning's stateful-dataloader protocol (``state_dict`` / ``load_state_dict``):
its state is that generator state and the number of graphs of the current permutation already
*trained on*. A loader restored from that state replays the same permutation from the first graph not
yet trained on, and leaves the generator where the uninterrupted run leaves it at the end of the epoch,
so later epochs match too.

"Trained on" is not "handed out": Lightning fetches one batch ahead of the training step. The loader
therefore counts consumed graphs with ``consumed_batches()``, a function the owner provides (the
:class:`~sympe.datasets.datamodule.GraphDataModule` passes the trainer's optimizer steps taken in the
current epoch); without one it counts the batches handed out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler
from torch_geometric.loader import DataLoader

__all__ = ["ResumableRandomSampler", "ResumableDataLoader"]


class ResumableRandomSampler(Sampler[int]):
    """A uniformly random permutation of ``range(n)`` per epoch, drawn from ``generator``.

    ``resume_from(state, skip)`` makes the next epoch replay the permutation drawn from generator state
    ``state`` starting at position ``skip``; ``epoch_state`` is the generator state the current epoch's
    permutation was drawn from.
    """

    def __init__(self, n: int, generator: torch.Generator):
        self.n = int(n)
        self.generator = generator
        self.epoch_state: torch.Tensor | None = None
        self.yielded = 0
        self._resume: tuple[torch.Tensor, int] | None = None

    def __len__(self) -> int:
        return self.n

    def resume_from(self, state: torch.Tensor, skip: int) -> None:
        if not 0 <= skip <= self.n:
            raise ValueError(f"ResumableRandomSampler: cannot skip {skip} of {self.n} indices")
        self._resume = (state, int(skip))

    def __iter__(self) -> Iterator[int]:
        skip = 0
        if self._resume is not None:
            state, skip = self._resume
            self._resume = None
            self.generator.set_state(state)
        self.epoch_state = self.generator.get_state()
        perm = torch.randperm(self.n, generator=self.generator).tolist()
        self.yielded = skip
        for i in perm[skip:]:
            self.yielded += 1
            yield i
        # torch's RandomSampler draws one more (empty) permutation when exhausted; so does this one, so that
        # a seed gives the batches it gave with ``DataLoader(shuffle=True, generator=...)``
        torch.randperm(self.n, generator=self.generator)


class ResumableDataLoader(DataLoader):
    """PyG ``DataLoader`` over a :class:`ResumableRandomSampler`, with ``state_dict`` / ``load_state_dict``.

    Args:
        dataset: the train split (any PyG dataset or list of ``Data``).
        batch_size: graphs per batch.
        generator: the shuffling generator (seeded by the owner).
        consumed_batches: ``() -> int``, the batches of the current epoch already trained on (module docstring);
            None counts batches handed out.
        **kwargs: further ``DataLoader`` arguments (``num_workers``, ``pin_memory``, ...).
    """

    def __init__(self, dataset, batch_size: int, generator: torch.Generator,
                 consumed_batches: Callable[[], int] | None = None, **kwargs):
        self.resumable_sampler = ResumableRandomSampler(len(dataset), generator)
        self.consumed_batches = consumed_batches
        super().__init__(dataset, batch_size=batch_size, sampler=self.resumable_sampler, generator=generator, **kwargs)

    def state_dict(self) -> dict:
        s = self.resumable_sampler
        if s.epoch_state is None:  # no epoch started yet: the next epoch draws from the current state
            return {"generator_state": self.generator.get_state(), "consumed": 0}
        if self.consumed_batches is not None:
            consumed = min(s.n, int(self.consumed_batches()) * self.batch_size)
        else:
            consumed = s.yielded
        return {"generator_state": s.epoch_state, "consumed": consumed}

    def load_state_dict(self, state: dict) -> None:
        consumed = int(state["consumed"])
        if consumed >= self.resumable_sampler.n:  # the epoch was complete: start the next one afresh
            self.generator.set_state(state["generator_state"])
            for _ in range(2):  # the epoch's permutation and the trailing draw (ResumableRandomSampler.__iter__)
                torch.randperm(self.resumable_sampler.n, generator=self.generator)
            return
        self.resumable_sampler.resume_from(state["generator_state"], consumed)
