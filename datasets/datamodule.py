"""`GraphDataModule`: a Lightning DataModule over the train/val/test splits of any sympe dataset.

Batches are PyG ``Batch`` objects (sparse); the model converts them to a
:class:`~sympe.diffusion.graph.DenseGraph`. Shuffling of the train split uses a ``torch.Generator``
seeded with ``seed``, so the order of batches is the same in every run with the same seed. The train
loader is a :class:`~sympe.datasets.train_sampler.ResumableDataLoader`: its state (the permutation of the
current epoch and how many of its graphs were trained on) goes into every checkpoint through
Lightning's stateful-dataloader protocol, and a run resumed mid-epoch sees exactly the batches that the
uninterrupted run would have seen. (On one process; under DDP, Lightning's distributed sampler shards
the split instead.)
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch_geometric.loader import DataLoader

from sympe.datasets.train_sampler import ResumableDataLoader


class GraphDataModule(pl.LightningDataModule):
    def __init__(self, train, val, test, *, batch_size: int, eval_batch_size: int | None, num_workers: int,
                 seed: int, limit_train_graphs: int | None, limit_eval_graphs: int | None, pin_memory: bool = False):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"GraphDataModule: batch_size must be >= 1, got {batch_size}")
        self._info = train.info  # statistics of the FULL train split, also when a subset is used
        for name, limit in (("limit_train_graphs", limit_train_graphs), ("limit_eval_graphs", limit_eval_graphs)):
            if limit is not None and limit < 1:
                raise ValueError(f"GraphDataModule: {name} must be a positive number of graphs or None, got {limit}")
        # subsets are the first graphs of each split (the splits are already in a random, seeded order)
        if limit_train_graphs is not None:
            train = train[: int(limit_train_graphs)]
        if limit_eval_graphs is not None:
            val, test = val[: int(limit_eval_graphs)], test[: int(limit_eval_graphs)]
        self.train_set, self.val_set, self.test_set = train, val, test
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = pin_memory
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def info(self):
        """The `DatasetInfo` of the (full) train split."""
        return self._info

    def _loader(self, ds, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          generator=self._generator if shuffle else None, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            # several processes: Lightning shards the split with its DistributedSampler (reshuffled per epoch);
            # a resumed multi-process run restarts the interrupted epoch's order from its beginning
            return self._loader(self.train_set, self.batch_size, shuffle=True)
        # under a Trainer, "consumed" = batches whose optimizer step is done (Lightning fetches one ahead);
        # without one (plain iteration) the loader counts the batches it handed out
        consumed = self._batches_trained_this_epoch if trainer is not None else None
        return ResumableDataLoader(self.train_set, self.batch_size, self._generator,
                                   consumed_batches=consumed, num_workers=self.num_workers,
                                   pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def _batches_trained_this_epoch(self) -> int:
        """Train batches of the current epoch whose optimizer step is done (Lightning's loop progress)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            raise RuntimeError("GraphDataModule: the train loader's state needs the trainer (attach the data module "
                               "to a Trainer, or build a ResumableDataLoader without consumed_batches)")
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)
