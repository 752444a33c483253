"""Data-side construction from a run config: paths, splits and the :class:`GraphDataModule`.

The entry points (``scripts/``) compose a Hydra config; this module turns its ``dataset``, ``paths`` and
``train`` sections into data objects, so that scripts and tests build data the same way:

* :func:`resolve_path`: relative paths in configs are relative to the folder the command was started from;
* :func:`build_splits_from_cfg`: ``{"train", "val", "test"}`` datasets of ``cfg.dataset``;
* :func:`build_datamodule`: the :class:`~sympe.datasets.datamodule.GraphDataModule` of ``cfg.train``;
* :func:`dataset_config`: ``(registry name, params)`` of ``configs/dataset/<name>.yaml`` (for commands that
  take a dataset name rather than a composed config, e.g. ``scripts/evaluate.py samples=...``).

Every default lives in the config files; nothing here falls back to a value of its own.
"""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sympe.datasets.registry import DATASETS, NAMES_REQUIRED, build_splits, check_parameters

__all__ = ["DatasetConfigError", "absolute_dataset_paths", "check_dataset_config", "check_dataset_params", "original_cwd", "resolve_path", "data_root", "dataset_params", "build_splits_from_cfg", "build_datamodule",
           "dataset_config", "summary_text"]

PATH_PARAMS = ("csv_path", "path", "data_dir")  # dataset parameters that name files or folders
# sources that read a local file or folder, and the parameter that must name it (QM9, SPECTRE, MOSES)
SOURCE_NEEDS = {"csv": ("csv_path", "a CSV with columns gdb_index,smiles"),
                "npz": ("path", "an .npz of graphs with arrays num_nodes, edges, edge_ptr"),
                "local": ("data_dir", "a folder with MOSES's train / test / test_scaffolds CSVs")}

# what a required parameter (``???`` in configs/dataset/*.yaml) must name, for the error that says it is missing
REQUIRED_HINTS = {("graphs", "path"): "an .npz of graphs, a folder of GraphML / GML / edge-list files, or a CSV with "
                                      "columns graph_id,source,target"}


class DatasetConfigError(ValueError):
    """A dataset option that is not accepted; the message names the option (commands print it as one line)."""

    user_error = True


def check_dataset_config(cfg: DictConfig) -> None:
    """Check ``cfg.dataset`` before anything loads: a known dataset name, a mapping of parameters, and files
    named by ``csv_path`` / ``path`` that exist. Raises :class:`DatasetConfigError`."""
    name = cfg.dataset.name
    if name not in DATASETS:
        raise DatasetConfigError(f"dataset.name={name} is not accepted: expected one of {', '.join(sorted(DATASETS))}")
    params = cfg.dataset.params
    if params is not None and not isinstance(params, DictConfig):
        raise DatasetConfigError(f"dataset.params={params} is not accepted: expected a mapping of dataset parameters")
    check_dataset_params(OmegaConf.to_container(params, resolve=True) if params is not None else {}, "dataset.params",
                         name)


def check_dataset_params(params: dict, prefix: str, name: str | None = None) -> None:
    """Raise :class:`DatasetConfigError` naming ``<prefix>.<key>`` when a required parameter (``???`` in its config)
    was not given, when a source that reads local files has no path for them (``source=csv`` without ``csv_path``,
    ``source=npz`` without ``path``, ``source=local`` without ``data_dir``) or a named file or folder does not exist.
    Relative paths are taken from the folder the command was started in. With the registry ``name``, the dataset's
    own parameter check runs too (:func:`~sympe.datasets.registry.check_parameters`; ``dataset=smiles``: its file
    and options)."""
    # OmegaConf's mark of a required value; a dataset with a check of its own (dataset=smiles) names it itself
    required = [key for key, value in params.items() if value == "???"] if name not in NAMES_REQUIRED else []
    if required:
        key = required[0]
        hint = f" ({REQUIRED_HINTS[name, key]})" if (name, key) in REQUIRED_HINTS else ""
        given = f"{prefix}={{{key}: <value>}}" if "." not in prefix and prefix.endswith("_params") else \
            f"{prefix}.{key}=<value>"  # evaluate.py's dataset_params={...} / train_diffusion.py's dataset.params.key=
        raise DatasetConfigError(f"{prefix}.{key} is required and was not given: add {given} to the command{hint}")
    source = params.get("source")
    if source in SOURCE_NEEDS:
        key, what = SOURCE_NEEDS[source]
        if not params.get(key):
            raise DatasetConfigError(f"{prefix}.source={source} needs {prefix}.{key}=<path>: {what}")
    for key in PATH_PARAMS:
        value = params.get(key)
        if value and value != "???" and not Path(resolve_path(value)).exists():
            raise DatasetConfigError(f"{prefix}.{key}={value} does not exist (relative paths are taken from "
                                     f"{original_cwd()})")
    if name is not None:
        check_parameters(name, {k: resolve_path(v) if k in PATH_PARAMS and v not in (None, "", "???") else v
                                for k, v in params.items()}, prefix)


def original_cwd() -> str:
    """The folder the command was started from (Hydra's original cwd when running under Hydra)."""
    try:
        from hydra.utils import get_original_cwd

        return get_original_cwd()
    except (ImportError, ValueError):  # not running under @hydra.main
        return os.getcwd()


def resolve_path(p: str | os.PathLike | None) -> str | None:
    """Absolute path of ``p``; a relative one is taken relative to :func:`original_cwd`."""
    if p is None:
        return None
    path = Path(p)
    return str(path if path.is_absolute() else Path(original_cwd()) / path)


def data_root(cfg: DictConfig) -> str:
    """``cfg.paths.data_root`` as an absolute path (processed datasets are cached there)."""
    return resolve_path(cfg.paths.data_root)


def dataset_params(params) -> dict:
    """A plain dict of dataset parameters whose file parameters (``csv_path``, ``path``) are absolute."""
    params = OmegaConf.to_container(params, resolve=True) if isinstance(params, DictConfig) else dict(params or {})
    params = dict(params or {})
    for key in PATH_PARAMS:
        if params.get(key):
            params[key] = resolve_path(params[key])
    return params


def absolute_dataset_paths(cfg: DictConfig) -> None:
    """Replace the file parameters of ``cfg.dataset.params`` (``csv_path``, ``path``, ``data_dir``) by absolute paths
    in place, so that the run's ``config.yaml`` and its checkpoints name the files wherever they are read from."""
    params = cfg.dataset.params
    if params is None:
        return
    for key in PATH_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value not in ("", "???"):
            params[key] = resolve_path(value)


def build_splits_from_cfg(cfg: DictConfig) -> dict:
    """``{"train", "val", "test"}`` of dataset ``cfg.dataset.name`` with ``cfg.dataset.params`` under
    ``cfg.paths.data_root`` (processed once, then cached)."""
    return build_splits(cfg.dataset.name, data_root(cfg), **dataset_params(cfg.dataset.params))


def build_datamodule(cfg: DictConfig, splits: dict):
    """The :class:`GraphDataModule` over ``splits`` with the batch sizes, workers, subsets and seed of ``cfg``."""
    from sympe.datasets.datamodule import GraphDataModule

    t = cfg.train
    return GraphDataModule(splits["train"], splits["val"], splits["test"], batch_size=t.batch_size,
                           eval_batch_size=t.eval_batch_size, num_workers=t.num_workers, seed=cfg.seed,
                           limit_train_graphs=t.limit_train_graphs, limit_eval_graphs=t.limit_eval_graphs)


def dataset_config(configs_dir: str | os.PathLike, name: str, overrides: dict | None = None) -> tuple[str, dict]:
    """``(registry name, params)`` of ``<configs_dir>/dataset/<name>.yaml`` with ``overrides`` applied.

    Raises :class:`DatasetConfigError` (a ``ValueError``) naming the known dataset configs when ``name`` has none.
    """
    folder = Path(configs_dir) / "dataset"
    path = folder / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise DatasetConfigError(f"dataset={name!r} is unknown; choose one of {known}")
    cfg = OmegaConf.load(path)
    params = {**(OmegaConf.to_container(cfg.params) or {}), **(overrides or {})}
    check_dataset_params(params, "dataset_params", cfg.name)
    return cfg.name, dataset_params(params)


def summary_text(name: str, params: dict, splits: dict, floor: bool = True) -> str:
    """Multi-line summary of a dataset: its config, split sizes, the lines of the train split's ``summary_lines()``
    when it has one (what ``dataset=smiles`` / ``dataset=graphs`` read from the user's files and how they were split),
    the train split's statistics and (``floor``) the exchangeable NLL floor of the val and test splits
    (:mod:`sympe.datasets.floor.exchangeable`; exact |Aut| per graph, computed once and cached beside the processed
    data)."""
    sizes = ", ".join(f"{k}={len(v)}" for k, v in splits.items())
    lines = [f"[sympe] dataset {name} {dict(params)}", f"[sympe] splits: {sizes}"]
    described = getattr(splits["train"], "summary_lines", None)  # what a dataset says of its source
    lines += described() if described is not None else []
    lines.append(splits["train"].info.summary())
    if floor:
        from sympe.datasets.floor.exchangeable import exchangeable_floor

        for split in ("val", "test"):
            if split in splits and len(splits[split]):
                f = exchangeable_floor(splits[split], splits["train"].info.n_nodes_dist)
                lines.append(f"[sympe] {split}: {f}")
        lines.append("[sympe] (no permutation-invariant model can score below the floor; p(N) of the train split)")
    return "\n".join(lines)
