"""Where a training run writes, and how an interrupted run is continued in the same place.

A run folder holds everything of one run: ``config.yaml`` (the resolved config), ``resume_command.txt``,
``checkpoints/`` (``last.ckpt``, ``best-*.ckpt``), ``csv/metrics.csv`` (one file over all resumptions)
and ``test_metrics.json``. :func:`resolve_run` decides the folder from the config:

* ``train.resume=<run folder>``: that folder; training continues from ``<folder>/checkpoints/last.ckpt``
  (or from ``train.ckpt_path`` when given too);
* ``train.ckpt_path=<file>``: continue from that checkpoint, in the run folder it lies in
  (``<run>/checkpoints/<file>``), or in a new folder when the file is elsewhere;
* ``paths.out_dir=<folder>`` (or the older ``hydra.run.dir=<folder>``): that folder for a new run; it must
  not hold a run already (resume that one with ``train.resume``);
* otherwise a new folder ``<paths.runs_root>/<dataset>/<YYYY-mm-dd_HH-MM-SS>-<6 hex digits>``: the random
  suffix keeps runs started in the same second apart, and the folder is created with ``exist_ok=False``.

The folder is created only when training starts (:meth:`RunFolder.create`), so a command that only prints
a summary or fails before training leaves nothing behind (:meth:`RunFolder.discard_if_untrained`).
Under several processes (DDP) the launching process exports the folder in ``SYMPE_RUN_DIR`` so that
the processes Lightning starts write into the same one.
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.files import atomic_write_text
from sympe.diffusion.runs.checkpoint_files import LAST_NAME, check_checkpoint_file
from sympe.diffusion.runs.options import ConfigError
from sympe.diffusion.runs.schema import FREE_ON_RESUME

__all__ = ["RunFolder", "resolve_run", "resume_command", "compare_with_saved_config", "changed_train_settings",
           "RUN_DIR_ENV",
           "RESUME_KEYS"]

RUN_DIR_ENV = "SYMPE_RUN_DIR"
# overrides that say where the run goes or what it resumes from; replaced in the resume command
RESUME_KEYS = ("train.resume", "train.ckpt_path", "paths.out_dir", "hydra.run.dir")
# what a resumed run must share with the run it continues (train.* may change, e.g. a larger max_steps)
SHARED_SECTIONS = ("model", "dataset", "seed")
# keys inside those sections that change neither values, gradients nor the saved state (how much memory a step
# keeps): a resumed run may set them differently, and a run saved before such a key existed resumes


@dataclass
class RunFolder:
    """A run folder (module docstring). ``ckpt_path``: the checkpoint training continues from, or None."""

    path: Path
    ckpt_path: str | None = None
    fresh: bool = True  # a new run (not a continuation)
    created_here: bool = False

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / f"{LAST_NAME}.ckpt"

    def create(self) -> None:
        """Create the folder (a new automatic folder must not exist yet)."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(exist_ok=False)
        self.created_here = True

    def discard_if_untrained(self) -> bool:
        """Remove a folder this process created if no checkpoint was written into it; True if removed."""
        if self.created_here and self.path.exists() and not any(self.checkpoints.glob("*.ckpt")):
            shutil.rmtree(self.path, ignore_errors=True)
            return True
        return False

    def write_text(self, name: str, text: str) -> None:
        """Write ``<folder>/<name>`` atomically."""
        atomic_write_text(self.path / name, text)


def _hydra_run_dir() -> str | None:
    """``hydra.run.dir`` when it was set to a folder other than the working directory."""
    try:
        from hydra.core.hydra_config import HydraConfig

        run_dir = HydraConfig.get().run.dir
    except (ImportError, ValueError):
        return None
    if run_dir in (None, "", ".") or Path(run_dir).resolve() == Path.cwd().resolve():
        return None
    return run_dir


def _new_folder(root: Path, dataset: str) -> Path:
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for _ in range(100):
        path = root / dataset / f"{stamp}-{secrets.token_hex(3)}"
        if not path.exists():
            return path
    raise RuntimeError(f"could not find a free run folder name under {root / dataset}")


def resolve_run(cfg: DictConfig, resolve_path=lambda p: str(Path(p).absolute())) -> RunFolder:
    """The :class:`RunFolder` of ``cfg`` (module docstring). Checks the paths it is given and raises
    :class:`ConfigError` / ``FileNotFoundError`` naming the option before anything is loaded."""
    t = cfg.train
    env = os.environ.get(RUN_DIR_ENV)
    ckpt = t.ckpt_path
    if ckpt is not None:
        ckpt = check_checkpoint_file(resolve_path(str(ckpt)), "train.ckpt_path")
    if t.resume is not None:
        folder = Path(resolve_path(str(t.resume)))
        if not folder.is_dir():
            raise ConfigError(f"train.resume={t.resume} is not a folder; give the run folder printed by the run "
                              f"(e.g. outputs/<dataset>/<time>-<id>)")
        if ckpt is None:
            last = folder / "checkpoints" / f"{LAST_NAME}.ckpt"
            if not last.exists():
                raise ConfigError(f"train.resume={t.resume} holds no checkpoints/{LAST_NAME}.ckpt: the run stopped "
                                  "before its first checkpoint; start it again without train.resume")
            ckpt = check_checkpoint_file(str(last), "train.resume")
        return RunFolder(folder, ckpt_path=ckpt, fresh=False)
    if ckpt is not None:
        p = Path(ckpt)
        if p.parent.name == "checkpoints" and (p.parent.parent / "config.yaml").exists():
            return RunFolder(p.parent.parent, ckpt_path=ckpt, fresh=False)
        if env:
            return RunFolder(Path(env), ckpt_path=ckpt, fresh=False)
        return RunFolder(_new_folder(Path(resolve_path(cfg.paths.runs_root)), cfg.dataset.name), ckpt_path=ckpt,
                         fresh=False)
    if env:  # a process started by Lightning for multi-process training: the launcher chose the folder
        return RunFolder(Path(env))
    explicit = cfg.paths.out_dir if cfg.paths.out_dir is not None else _hydra_run_dir()
    if explicit is not None:
        folder = Path(resolve_path(str(explicit)))
        if (folder / "checkpoints").is_dir() and any((folder / "checkpoints").glob("*.ckpt")):
            raise ConfigError(f"paths.out_dir={explicit} already holds a run; continue it with train.resume={explicit} "
                              "or choose another folder")
        return RunFolder(folder)
    return RunFolder(_new_folder(Path(resolve_path(cfg.paths.runs_root)), cfg.dataset.name))


def resume_command(run: RunFolder, script: str | None = None) -> str:
    """The shell command that continues ``run``: this command's Hydra overrides, with the ones that choose
    the folder or checkpoint (:data:`RESUME_KEYS`) replaced by ``train.resume=<run folder>``."""
    overrides: list[str] = []
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        pass
    keep = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in RESUME_KEYS]
    script = script or sys.argv[0]
    try:
        folder = os.path.relpath(run.path)
        folder = folder if not folder.startswith("..") else str(run.path)
    except ValueError:
        folder = str(run.path)
    return " ".join(["python", shlex.quote(script), *map(shlex.quote, keep), shlex.quote(f"train.resume={folder}")])


def _flatten(d, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def changed_train_settings(cfg: DictConfig, run: RunFolder) -> list[str]:
    """``train.*`` settings of ``cfg`` that differ from the run's ``config.yaml`` (they may change on resume, e.g.
    a larger ``train.max_steps``, or because a default changed since the run started), as
    ``"key: run <saved> -> now <given>"``; the keys that choose what to resume from are left out."""
    saved_path = run.path / "config.yaml"
    if not saved_path.exists():
        return []
    saved = _flatten(OmegaConf.to_container(OmegaConf.load(saved_path), resolve=False).get("train"), "train")
    now = _flatten(OmegaConf.to_container(cfg, resolve=True).get("train"), "train")
    return [f"{key}: run {saved.get(key)!r} -> now {now.get(key)!r}" for key in sorted(set(saved) | set(now))
            if key not in RESUME_KEYS and saved.get(key) != now.get(key)]


def _added_model_keys() -> dict:
    """``model.*`` config keys added after the first release, with the value of :data:`~sympe.diffusion.runs.model.ADDED_KEYS`
    (the hyperparameter groups ``network``, ``eval``, ``objective`` are ``model``, ``model.eval``, ``model.train``)."""
    from sympe.diffusion.runs.model import ADDED_KEYS  # imports Lightning: only when a run is continued

    prefix = {"network": "model", "eval": "model.eval", "objective": "model.train"}
    return {f"{prefix[group]}.{key}": value for (group, key), value in ADDED_KEYS.items()}


def compare_with_saved_config(cfg: DictConfig, run: RunFolder) -> list[str]:
    """Keys of :data:`SHARED_SECTIONS` whose value in ``cfg`` differs from the run's ``config.yaml``, as
    ``"key: run <saved> vs now <given>"`` (empty when the run folder has no ``config.yaml``); the keys of
    :data:`~sympe.diffusion.runs.schema.FREE_ON_RESUME` are not compared; a ``model`` key the saved config lacks
    (added later) counts as the value the code used before it existed."""
    saved_path = run.path / "config.yaml"
    if not saved_path.exists():
        return []
    saved = OmegaConf.to_container(OmegaConf.load(saved_path), resolve=False)
    now = OmegaConf.to_container(cfg, resolve=True)
    diffs = []
    for section in SHARED_SECTIONS:
        a, b = _flatten(saved.get(section), section), _flatten(now.get(section), section)
        if section == "model":  # a key added after the run was written: the value the code used before it existed
            for key, value in _added_model_keys().items():
                a.setdefault(key, value)
        for key in sorted((set(a) | set(b)) - set(FREE_ON_RESUME)):
            if a.get(key) != b.get(key):
                diffs.append(f"{key}: run {a.get(key)!r} vs now {b.get(key)!r}")
    return diffs
