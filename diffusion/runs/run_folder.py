"""Where a training run writes, and how an interrupted run is continued in the same place.

A run folder holds everything of one run: ``config.yaml`` (the resolved config), ``resume_command.txt``,
``checkpoints/`` (``last.ckpt``, ``best-*.ckpt``), ``csv/metrics.csv`` (one file over all resumptions)
and ``test_metrics.json``. :func:`resolve_run` decides the folder from the config:

* ``train.resume=<run folder>``: that folder; training continues from ``<folder>/checkpoints/last.ckpt``
  (or from ``train.ckpt_path`` when given too); ``paths.out_dir`` must then be unset or that folder;
* ``train.ckpt_path=<file>``: continue from that checkpoint, in ``paths.out_dir`` when given (which must not
  hold another run), else in the run folder the file lies in (``<run>/checkpoints/<file>``), else in a new
  folder under ``paths.runs_root``;
* ``paths.out_dir=<folder>`` (or the older ``hydra.run.dir=<folder>``): that folder for a new run; it must
  not hold a run already (resume that one with ``train.resume``);
* otherwise a new folder ``<paths.runs_root>/<dataset>/<YYYY-mm-dd_HH-MM-SS>-<6 hex digits>``.

Every chosen location is checked writable at once (:func:`~sympe.diffusion.runs.output_paths.check_writable`),
before the dataset loads. :meth:`RunFolder.claim` then takes the folder atomically: it is created with
``mkdir`` and locked with :class:`~sympe.diffusion.runs.output_paths.FolderLock` (``.sympe.lock``, the process id),
so that a second run started on the same folder, at the same moment or later while the first runs, is refused
with one line. A command that fails before the first checkpoint removes the folder it created
(:meth:`RunFolder.discard_if_untrained`); the lock is removed when the command ends.
Under several processes (DDP) the launching process exports the folder in ``SYMPE_RUN_DIR`` so that
the processes Lightning starts write into the same one (they do not take the lock).
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.files import atomic_write_text
from sympe.diffusion.runs.checkpoint_files import LAST_NAME, check_checkpoint_file
from sympe.diffusion.runs.options import ConfigError
from sympe.diffusion.runs.output_paths import FolderLock, check_writable, timestamp_name
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
    """A run folder (module docstring). ``ckpt_path``: the checkpoint training continues from, or None;
    ``option``: the option that chose the folder (named in errors); ``claims``: whether this process locks it
    (not the processes Lightning starts for DDP)."""

    path: Path
    ckpt_path: str | None = None
    fresh: bool = True  # a new run (not a continuation)
    created_here: bool = False
    option: str = "paths.runs_root"
    claims: bool = True
    lock: FolderLock | None = None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / f"{LAST_NAME}.ckpt"

    def holds_run(self) -> bool:
        """True when the folder holds a checkpoint (a run that was trained)."""
        return self.checkpoints.is_dir() and any(self.checkpoints.glob("*.ckpt"))

    def claim(self) -> "RunFolder":
        """Create the folder (if needed) and lock it (module docstring); idempotent. Raises
        :class:`~sympe.diffusion.runs.output_paths.OutputError` when another running process holds it, and
        :class:`ConfigError` when a new run's folder turns out to hold a run (started between the check and now)."""
        if self.lock is not None and self.lock.held:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.mkdir()
            self.created_here = True
        except FileExistsError:
            pass
        if not self.claims:
            return self
        self.lock = FolderLock(self.path, self.option).acquire()
        if self.ckpt_path is None and self.fresh and not self.created_here and self.holds_run():
            self.release()
            raise ConfigError(f"{self.option}={self.path} already holds a run; continue it with "
                              f"train.resume={self.path} or choose another folder")
        return self

    def create(self) -> None:
        """Create and lock the folder (:meth:`claim`)."""
        self.claim()

    def release(self) -> None:
        """Remove this process's lock (the run has ended)."""
        if self.lock is not None:
            self.lock.release()

    def discard_if_untrained(self) -> bool:
        """Remove a folder this process created if no checkpoint was written into it; True if removed. The folder is
        first renamed away (atomic) with its lock still held, so a run claiming the same path meanwhile gets a new
        folder, never one being deleted."""
        if self.created_here and self.path.exists() and not self.holds_run():
            trash = self.path.with_name(f".{self.path.name}.discarded-{os.getpid()}")
            try:
                os.replace(self.path, trash)
            except OSError:
                trash = self.path
            self.release()
            shutil.rmtree(trash, ignore_errors=True)
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
    for _ in range(100):
        path = root / dataset / timestamp_name()
        if not path.exists():
            return path
    raise RuntimeError(f"could not find a free run folder name under {root / dataset}")


def _launched_rank() -> int:
    """The global rank a launcher (torchrun: ``RANK``, SLURM: ``SLURM_PROCID``) gave this process; 0 otherwise."""
    try:
        return int(os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or 0)
    except ValueError:
        return 0


def _same(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _explicit_folder(cfg: DictConfig) -> tuple[str, str] | None:
    """``(option, value)`` of the folder the command names for its run (``paths.out_dir`` or ``hydra.run.dir``)."""
    if cfg.paths.out_dir is not None:
        return "paths.out_dir", str(cfg.paths.out_dir)
    run_dir = _hydra_run_dir()
    return ("hydra.run.dir", run_dir) if run_dir is not None else None


def resolve_run(cfg: DictConfig, resolve_path=lambda p: str(Path(p).absolute())) -> RunFolder:
    """The :class:`RunFolder` of ``cfg`` (module docstring). Checks the paths it is given and that the run's location
    is writable, and raises :class:`ConfigError` / ``FileNotFoundError`` /
    :class:`~sympe.diffusion.runs.output_paths.OutputError` naming the option before anything is loaded."""
    run = _resolve(cfg, resolve_path)
    if run.claims:
        check_writable(run.path, run.option, what="the run")
    return run


def _resolve(cfg: DictConfig, resolve_path) -> RunFolder:
    t = cfg.train
    env = os.environ.get(RUN_DIR_ENV)
    follower = bool(env) or _launched_rank() != 0  # ranks other than 0 write where rank 0 claimed, without a lock
    ckpt = t.ckpt_path
    explicit = _explicit_folder(cfg)
    if ckpt is not None:
        ckpt = check_checkpoint_file(resolve_path(str(ckpt)), "train.ckpt_path")
    if t.resume is not None:
        folder = Path(resolve_path(str(t.resume)))
        if not folder.is_dir():
            raise ConfigError(f"train.resume={t.resume} is not a folder; give the run folder printed by the run "
                              f"(e.g. outputs/<dataset>/<time>-<id>)")
        if explicit is not None and not _same(Path(resolve_path(explicit[1])), folder):
            raise ConfigError(f"train.resume={t.resume} continues the run in its own folder, but {explicit[0]}="
                              f"{explicit[1]} names another; drop {explicit[0]}, or continue in a new folder with "
                              f"train.ckpt_path={folder / 'checkpoints' / (LAST_NAME + '.ckpt')} {explicit[0]}={explicit[1]}")
        if ckpt is None:
            last = folder / "checkpoints" / f"{LAST_NAME}.ckpt"
            if not last.exists():
                raise ConfigError(f"train.resume={t.resume} holds no checkpoints/{LAST_NAME}.ckpt: the run stopped "
                                  "before its first checkpoint; start it again without train.resume")
            ckpt = check_checkpoint_file(str(last), "train.resume")
        return RunFolder(folder, ckpt_path=ckpt, fresh=False, option="train.resume", claims=not follower)
    if env:  # a process started by Lightning for multi-process training: the launcher chose and locked the folder
        return RunFolder(Path(env), ckpt_path=ckpt, fresh=ckpt is None, claims=False)
    if explicit is not None:
        option, value = explicit
        folder = Path(resolve_path(value))
        run = RunFolder(folder, ckpt_path=ckpt, fresh=ckpt is None, option=option, claims=not follower)
        own_run = ckpt is not None and _same(Path(ckpt).parent.parent, folder)
        if run.holds_run() and not own_run and not follower:
            raise ConfigError(f"{option}={value} already holds a run; continue it with train.resume={value} "
                              "or choose another folder")
        return run
    if ckpt is not None:
        p = Path(ckpt)
        if p.parent.name == "checkpoints" and (p.parent.parent / "config.yaml").exists():
            return RunFolder(p.parent.parent, ckpt_path=ckpt, fresh=False, option="train.ckpt_path")
        return RunFolder(_new_folder(Path(resolve_path(cfg.paths.runs_root)), cfg.dataset.name), ckpt_path=ckpt,
                         fresh=False)
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
    added = {f"{prefix[group]}.{key}": value for (group, key), value in ADDED_KEYS.items()}
    # conditions came later: every earlier run is unconditional (its dropout option never applied; today's default)
    added.update({"model.condition": [], "model.condition_dropout": 0.1})
    return added


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
