"""Common base of every sympe dataset: a PyG ``InMemoryDataset`` with content-keyed, verified caching.

A concrete dataset implements

* ``name`` (class attribute), ``splits`` (default train/val/test),
* ``cache_params()``: a JSON-able dict of every parameter that changes the processed content
  (source, remove_h, generation seed, ...). The processed folder is
  ``root/processed/<name>-<sha1(params)[:10]>/``, so flipping any of them never reuses stale data,
* ``build_splits()``: ``{split: [Data, ...]}`` with one-hot ``x`` (N, dx), ``edge_index`` (2, M)
  holding both directions, one-hot ``edge_attr`` (M, de) over the full edge-class list
  (column 0 = no edge, always 0 in sparse form),
* ``make_info(train_graphs)``: the :class:`~sympe.diffusion.info.DatasetInfo` of the train split,
* optionally ``extra_file_names`` with ``extra_files(splits)`` (text files stored beside the data), and
  ``raw_source_problem()`` (why the source to rebuild from cannot be read, or ``None``).

Processed files are written with ``InMemoryDataset.save`` (``torch.load`` of a raw pickle fails
under torch >= 2.6) through :func:`sympe.diffusion.files.atomic_path` (a temporary name, then a rename), so
an interrupted process leaves no half file. ``params.json`` (the cache parameters) is written first, ``manifest.json``
(size and SHA-256 of every file written, :mod:`sympe.datasets.sources.cache_manifest`) last.

Opening a split verifies the folder: ``params.json`` must equal ``cache_params()``, the split's ``.pt``, ``info.json``
and the extra files must match the manifest, and the split and ``info.json`` must load. Damage (a mismatched
``params.json``, a missing file, a size or SHA-256 that differs from the manifest, or a file of a folder without
manifest that does not load) empties the folder (derived caches such as ``log_aut_<split>.pt`` included) and builds it
again, after one line on stderr naming the file. :class:`~sympe.datasets.sources.cache_manifest.ProcessedCacheError`
is raised instead, leaving the folder untouched, when

* the files match the manifest but do not load: the cache is intact and the environment cannot read it (a torch /
  PyG upgrade, ``torch.load``'s ``weights_only`` policy, ``MemoryError``), so a rebuild would not help;
* the source cannot be read (``raw_source_problem()``);
* the folder cannot be emptied (read-only): the message names the folder, the file and the fix.

A folder written by an older sympe (no ``manifest.json``) is accepted when its ``params.json`` matches and its files
load; their hashes are then recorded (unless the folder is read-only). A folder without ``params.json`` cannot be
checked (older versions wrote it last: an interrupted build) and is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import sys
from pathlib import Path

import torch
from torch_geometric.data import InMemoryDataset

from sympe.datasets.sources.cache_manifest import (MANIFEST, ProcessedCacheError, describe_error, find_problem,
                                                   has_manifest, write_manifest, write_params)
from sympe.diffusion.files import atomic_path, atomic_write_text
from sympe.diffusion.info import DatasetInfo

PYG_MARKERS = ("pre_transform.pt", "pre_filter.pt")  # PyG's records of its pre_transform / pre_filter (unused here)


def params_key(name: str, params: dict) -> str:
    blob = json.dumps(params, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


class GraphDataset(InMemoryDataset):
    """Base class; see the module docstring for what subclasses provide and how the cache is verified.

    Raises ``ValueError`` for an unknown split, and
    :class:`~sympe.datasets.sources.cache_manifest.ProcessedCacheError` for a processed folder whose files match
    their manifest but do not load, a damaged one whose source cannot be read or that cannot be emptied (read-only),
    or one still damaged after a rebuild.
    """

    name: str = "graphs"
    splits: tuple[str, ...] = ("train", "val", "test")
    #: names of the text files :meth:`extra_files` writes (part of the verified record)
    extra_file_names: tuple[str, ...] = ()

    def __init__(self, root: str, split: str = "train", transform=None, force_reload: bool = False):
        if split not in self.splits:
            raise ValueError(f"{type(self).__name__}: unknown split {split!r}; choose one of {list(self.splits)}")
        self.split = split
        super().__init__(str(root), transform=transform, force_reload=force_reload)
        self._open_verified()

    # ------------------------------------------------------------------ to implement
    def cache_params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def build_splits(self) -> dict[str, list]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_info(self, train_graphs: list) -> DatasetInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_files(self, splits: dict[str, list]) -> dict[str, str]:
        """Optional extra text files to store beside the processed data (name -> content); every name must be
        in :attr:`extra_file_names`."""
        return {}

    def raw_source_problem(self) -> str | None:
        """Why the source a rebuild reads is unavailable (one phrase), or ``None`` when it can be read.
        Default: the files of ``raw_file_names`` must exist under ``root/raw``."""
        missing = [p for p in self.raw_paths if not osp.exists(p)]
        return f"its raw files {missing} are missing" if missing else None

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

    def recorded_file_names(self) -> list[str]:
        """The files a build writes and ``manifest.json`` records: the splits' ``.pt``, ``info.json``, the extras."""
        return list(self.processed_file_names) + list(self.extra_file_names)

    def process(self) -> None:
        splits = self.build_splits()
        missing = [s for s in self.splits if s not in splits]
        if missing:
            raise RuntimeError(f"{self.name}: build_splits() did not return the splits {missing}")
        extras = self.extra_files(splits)
        undeclared = sorted(set(extras) - set(self.extra_file_names))
        if undeclared:
            raise RuntimeError(f"{type(self).__name__}.extra_files() wrote {undeclared}, not in extra_file_names")
        os.makedirs(self.processed_dir, exist_ok=True)
        write_params(self.processed_dir, self.cache_params())
        for name, content in extras.items():
            atomic_write_text(Path(self.processed_dir) / name, content)
        self.make_info(splits[self.splits[0]]).save(osp.join(self.processed_dir, "info.json"))
        for s in self.splits:
            with atomic_path(osp.join(self.processed_dir, f"{s}.pt")) as tmp:
                self.save(splits[s], str(tmp))
        self.write_manifest()

    def write_manifest(self) -> None:
        """Write ``manifest.json``, the size and SHA-256 of :meth:`recorded_file_names`: the last step of every
        :meth:`process` (whose first write is ``params.json``)."""
        write_manifest(self.processed_dir, self.recorded_file_names())

    def processed_text(self, name: str) -> str:
        """Read one of the extra text files written by :meth:`extra_files`."""
        return (Path(self.processed_dir) / name).read_text()

    # ------------------------------------------------------------------ verification
    def _process(self) -> None:
        """PyG's processing step (called by ``Dataset.__init__``), after removing a PyG marker that cannot be
        read (PyG would raise on it; it is written again after the next build). Raises :class:`ProcessedCacheError`
        when that marker cannot be removed (a read-only folder)."""
        for marker in PYG_MARKERS:
            path = osp.join(self.processed_dir, marker)
            if not osp.exists(path):
                continue
            try:
                torch.load(path, weights_only=False)
            except Exception as exc:  # noqa: BLE001 - any unreadable marker is dropped the same way
                why = f"{marker} cannot be read ({describe_error(exc)})"
                try:
                    os.remove(path)
                except OSError as err:
                    raise ProcessedCacheError(unwritable_message(
                        self.processed_dir, f"{why}; removing it failed ({describe_error(err)})")) from None
                print(f"[sympe] processed dataset {self.processed_dir}: {why}; removed it (PyG's record of a "
                      "pre_transform, unused by sympe)", file=sys.stderr)
        super()._process()

    def _load_split(self) -> str | None:
        """Load this split and ``info.json``; the failure as one phrase naming the file, or ``None``."""
        name = f"{self.split}.pt"
        try:
            self.load(osp.join(self.processed_dir, name))
        except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways (pickle, zip, assertion)
            return f"{name} cannot be loaded ({describe_error(exc)})"
        try:
            self.info: DatasetInfo = DatasetInfo.load(osp.join(self.processed_dir, "info.json"))
        except Exception as exc:  # noqa: BLE001
            return f"info.json cannot be loaded ({describe_error(exc)})"
        return None

    def _open_verified(self) -> None:
        """Verify the folder and load the split; rebuild a damaged folder (see the module docstring).
        Raises :class:`ProcessedCacheError` when intact files do not load, or a damaged folder cannot be rebuilt."""
        folder = self.processed_dir
        checked = [f"{self.split}.pt", "info.json", *self.extra_file_names]
        problem = find_problem(folder, self.cache_params(), checked, self.recorded_file_names())
        if problem is None:
            problem = self._load_split()
            if problem is None:
                if not has_manifest(folder):
                    self._record_older_folder()
                return
            if has_manifest(folder):  # the bytes are the ones written: the environment cannot read them
                raise ProcessedCacheError(
                    f"processed dataset folder {folder!r}: {problem}, although its files match the size and sha256 "
                    f"recorded in {MANIFEST}: the cache is intact (likely a torch / torch_geometric version problem) "
                    f"and was left untouched; load it with the versions that wrote it, or delete {folder!r} to "
                    "rebuild it with these (hours for MOSES)")
        source = self.raw_source_problem()
        if source:
            raise ProcessedCacheError(
                f"processed dataset folder {folder!r} is damaged: {problem}; it cannot be rebuilt here because "
                f"{source}: make the source available and delete {folder!r} (or restore an intact copy of it)")
        self._empty_folder(problem)
        print(f"[sympe] processed dataset {folder}: {problem}; rebuilding it from its source", file=sys.stderr)
        self.process()
        problem = self._load_split()
        if problem:
            raise ProcessedCacheError(f"processed dataset folder {folder!r}: {problem} even after a rebuild; "
                                      "check the disk and the source, then delete the folder")

    def _empty_folder(self, problem: str) -> None:
        """Remove the files of the damaged processed folder (``problem``: why, one phrase naming the file).
        Raises :class:`ProcessedCacheError` naming the folder, the file and the fix when it is not writable."""
        folder = self.processed_dir
        if not os.access(folder, os.W_OK):
            raise ProcessedCacheError(unwritable_message(folder, problem))
        for entry in list(os.scandir(folder)):
            if entry.is_file() or entry.is_symlink():
                try:
                    os.remove(entry.path)
                except OSError as err:
                    raise ProcessedCacheError(unwritable_message(
                        folder, f"{problem}; removing {entry.name} failed ({describe_error(err)})")) from None

    def _record_older_folder(self) -> None:
        """Record the hashes of a folder written by an older sympe (accepted: it matched and loaded)."""
        try:
            write_manifest(self.processed_dir, self.recorded_file_names())
        except OSError:  # a read-only folder stays unrecorded: its files are still checked by loading them
            return
        print(f"[sympe] processed dataset {self.processed_dir}: written by an older sympe without file hashes; "
              "its files load, their sha256 is now recorded in manifest.json", file=sys.stderr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, {len(self)} graphs)"


def unwritable_message(folder: str, why: str) -> str:
    """The one-line error for a processed ``folder`` that must be repaired but cannot be written; ``why`` is a
    phrase naming the file that failed."""
    return (f"processed dataset folder {folder!r} is damaged but not writable: {why}; delete the folder or make it "
            "writable, or point paths.data_root ($SYMPE_DATA_ROOT) at a writable folder")


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
