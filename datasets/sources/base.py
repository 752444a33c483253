"""Common base of every sympe dataset: a PyG ``InMemoryDataset`` with content-keyed caching.

A concrete dataset implements

* ``name`` (class attribute), ``splits`` (default train/val/test),
* ``cache_params()``: a JSON-able dict of every parameter that changes the processed content
  (source, remove_h, generation seed, ...). The processed folder is
  ``root/processed/<name>-<sha1(params)[:10]>/``, so flipping any of them never reuses stale data,
* ``build_splits()``: ``{split: [Data, ...]}`` with one-hot ``x`` (N, dx), ``edge_index`` (2, M)
  holding both directions, one-hot ``edge_attr`` (M, de) over the full edge-class list
  (column 0 = no edge, always 0 in sparse form),
* ``make_info(train_graphs)``: the :class:`~sympe.diffusion.info.DatasetInfo` of the train split.

Processed files are written with ``InMemoryDataset.save`` (``torch.load`` of a raw pickle fails
under torch >= 2.6) through :func:`sympe.diffusion.files.atomic_path` (a temporary name, then a rename), so
an interrupted process leaves no half file.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from pathlib import Path

from torch_geometric.data import InMemoryDataset

from sympe.diffusion.files import atomic_path, atomic_write_text
from sympe.diffusion.info import DatasetInfo


def params_key(name: str, params: dict) -> str:
    blob = json.dumps(params, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


class GraphDataset(InMemoryDataset):
    """Base class; see the module docstring for what subclasses provide."""

    name: str = "graphs"
    splits: tuple[str, ...] = ("train", "val", "test")

    def __init__(self, root: str, split: str = "train", transform=None, force_reload: bool = False):
        if split not in self.splits:
            raise ValueError(f"{type(self).__name__}: unknown split {split!r}; choose one of {list(self.splits)}")
        self.split = split
        super().__init__(str(root), transform=transform, force_reload=force_reload)
        self.load(self.processed_paths[self.splits.index(split)])
        self.info: DatasetInfo = DatasetInfo.load(osp.join(self.processed_dir, "info.json"))

    # ------------------------------------------------------------------ to implement
    def cache_params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def build_splits(self) -> dict[str, list]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_info(self, train_graphs: list) -> DatasetInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_files(self, splits: dict[str, list]) -> dict[str, str]:
        """Optional extra text files to store beside the processed data (name -> content)."""
        return {}

    # ------------------------------------------------------------------ PyG plumbing
    @property
    def raw_file_names(self) -> list[str]:
        return []

    def download(self) -> None:
        pass

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, "processed", params_key(self.name, self.cache_params()))

    @property
    def processed_file_names(self) -> list[str]:
        return [f"{s}.pt" for s in self.splits] + ["info.json"]

    def process(self) -> None:
        splits = self.build_splits()
        missing = [s for s in self.splits if s not in splits]
        if missing:
            raise RuntimeError(f"{self.name}: build_splits() did not return the splits {missing}")
        os.makedirs(self.processed_dir, exist_ok=True)
        for name, content in self.extra_files(splits).items():
            atomic_write_text(Path(self.processed_dir) / name, content)
        self.make_info(splits[self.splits[0]]).save(osp.join(self.processed_dir, "info.json"))
        for s in self.splits:
            with atomic_path(osp.join(self.processed_dir, f"{s}.pt")) as tmp:
                self.save(splits[s], str(tmp))
        atomic_write_text(Path(self.processed_dir) / "params.json", json.dumps(self.cache_params(), indent=1, default=str))

    def processed_text(self, name: str) -> str:
        """Read one of the extra text files written by :meth:`extra_files`."""
        return (Path(self.processed_dir) / name).read_text()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, {len(self)} graphs)"


def split_counts(num_graphs, splits, default: dict[str, int]) -> dict[str, int]:
    """Graphs per split of a generated dataset: ``None`` -> ``default``; an int -> that count for every split;
    a dict must name every split. Raises ``ValueError`` for a missing split or a count < 1."""
    if num_graphs is None:
        num_graphs = default
    if isinstance(num_graphs, int) or (hasattr(num_graphs, "__index__") and not isinstance(num_graphs, dict)):
        num_graphs = {s: int(num_graphs) for s in splits}
    num_graphs = dict(num_graphs)
    if set(num_graphs) != set(splits) or any(int(v) < 1 for v in num_graphs.values()):
        raise ValueError(f"num_graphs must be an int >= 1 or a dict with positive counts for {list(splits)}, "
                         f"got {num_graphs}")
    return {s: int(num_graphs[s]) for s in splits}
