"""Model and trainer construction from a run config (the ``model`` and ``train`` sections).

* :func:`build_model`: the :class:`~sympe.diffusion.runs.model.DiscreteDiffusion` of ``cfg.model`` / ``cfg.train``;
* :func:`build_trainer`: a Lightning ``Trainer`` with the checkpoint callbacks, EMA and loggers of ``cfg.train``;
* :func:`train`: fit in a run folder (new or continued), then test the best checkpoint;
* :func:`load_for_inference`: a checkpoint's model for sampling / evaluation, with one-line errors;
* :data:`MONITOR` / :data:`MONITOR_MODE`: the validation metric that selects the best checkpoint.

Every default lives in the typed configs (:mod:`sympe.diffusion.runs.schema`); this module reads each key it
needs and falls back to nothing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sympe.diffusion.runs.checkpoint_files import CheckpointError, check_checkpoint_file, check_finite_weights
from sympe.diffusion.runs.options import ConfigError
from sympe.diffusion.runs.output_paths import check_writable, json_safe
from sympe.diffusion.runs.run_folder import RUN_DIR_ENV, changed_train_settings, compare_with_saved_config, resume_command
from sympe.diffusion.runs.schema import NETWORK_KEYS, model_arguments

# Lightning (and every module of sympe.diffusion.runs that imports it: model, checkpoint_callbacks, interrupt,
# metrics_log, progress, rng_state) is imported inside the functions below, not here: a command imports this
# module before Hydra configures logging, and Lightning, imported then, would attach its own stderr handler to its
# loggers instead of following the job's logging config (the model summary and Lightning's messages would leave
# stdout).
__all__ = ["MONITOR", "MONITOR_MODE", "network_kwargs", "build_model", "build_trainer", "train",
           "load_for_inference", "sampling_calls", "resolve_device", "checkpoint_bytes"]

MONITOR = "val/nll"  # logged by DiscreteDiffusion.on_validation_epoch_end, nats per graph
MONITOR_MODE = "min"


class FinalTestInterrupted(Exception):
    """Ctrl-C during the test after training (:func:`train` prints the ``evaluate.py`` command and exits 130)."""


def network_kwargs(cfg: DictConfig) -> dict:
    """Keyword arguments of :class:`~sympe.diffusion.nn.denoiser.DenoisingNetwork` from ``cfg.model``."""
    m = OmegaConf.to_container(cfg.model, resolve=True)
    return {k: m[k] for k in NETWORK_KEYS}


def build_model(cfg: DictConfig, info, condition: dict | None = None):
    """The diffusion model of ``cfg`` for a dataset with statistics ``info`` (a ``DatasetInfo``).

    ``condition``: the fitted ``ConditionSpec.to_dict()`` of ``cfg.model.condition`` (required when it names
    properties; ``ValueError`` otherwise).

    The dataset config (``cfg.dataset``) is recorded in the hyperparameters, so that evaluation can rebuild
    the same splits from a checkpoint. ``train.compile`` wraps the transformer in ``torch.compile``.
    """

    from sympe.diffusion.runs.model import DiscreteDiffusion

    dataset = {"name": cfg.dataset.name, "params": OmegaConf.to_container(cfg.dataset.params, resolve=True)}
    args = model_arguments(cfg.model, cfg.train, dataset)
    if args["condition"] is not None:
        if condition is None or [p["name"] for p in condition["properties"]] != args["condition"]["names"]:
            raise ValueError(f"model.condition={args['condition']['names']} needs the conditions fitted on the train "
                             "split (sympe.datasets.conditions.attach_conditions)")
        args["condition"] = condition
    model = DiscreteDiffusion(info.to_dict(), **args)
    if cfg.train.compile:
        import torch

        model.network.transformer = torch.compile(model.network.transformer)
    return model


def validation_interval(val_check_interval, batches_per_epoch: int | None):
    """``train.val_check_interval`` as handed to Lightning: an integer larger than an epoch's train batches
    becomes None (validate at each epoch's end) instead of Lightning's error, so that one default (1,000
    batches) serves QM9 (3,055 batches per epoch at batch 32) and datasets of a few batches per epoch."""
    if (isinstance(val_check_interval, int) and not isinstance(val_check_interval, bool)
            and batches_per_epoch is not None and val_check_interval > batches_per_epoch):
        return None
    return val_check_interval


def build_trainer(cfg: DictConfig, out_dir: str | Path, resume_step: int | None = None, resume_command: str = "",
                  extra_callbacks=None, for_test: bool = False, batches_per_epoch: int | None = None):
    """``(trainer, checkpoint_callback)`` writing checkpoints and logs under ``out_dir``.

    Callbacks, in order: :class:`~sympe.diffusion.runs.interrupt.SaveOnInterrupt`'s train-end writer, the EMA of
    weights (``train.ema_decay``), :class:`~sympe.diffusion.runs.interrupt.SaveOnInterrupt` (signals, errors),
    :class:`~sympe.diffusion.runs.rng_state.RNGStateCheckpoint`, the progress bar, ``extra_callbacks``, and the
    checkpoint callbacks of :func:`~sympe.diffusion.runs.checkpoint_callbacks.checkpoint_callbacks` (best on
    :data:`MONITOR`; ``last.ckpt`` every ``train.ckpt_every_n_steps`` steps and ``train.ckpt_every_minutes``
    minutes). ``resume_step``: the step a resumed run continues from (the metrics file is continued from
    there). ``checkpoint_callback`` is the best-checkpoint callback.

    With ``for_test`` the trainer has no checkpointing and no EMA (it tests fixed weights) and logs to
    ``<out_dir>/csv/test``; ``checkpoint_callback`` is then None. ``batches_per_epoch``: train batches per
    epoch, for :func:`validation_interval` (None: ``train.val_check_interval`` goes to Lightning unchanged).
    Progress: a bar when stdout is a terminal, plain lines otherwise (:mod:`sympe.diffusion.runs.progress`).
    """
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from sympe.diffusion.runs.checkpoint_callbacks import checkpoint_callbacks
    from sympe.diffusion.runs.interrupt import SaveOnInterrupt
    from sympe.diffusion.runs.metrics_log import ContinuedCSVLogger
    from sympe.diffusion.runs.progress import RunProgressBar, RunProgressLog, bars_enabled, quiet_lightning
    from sympe.diffusion.runs.rng_state import RNGStateCheckpoint


    quiet_lightning()
    t = cfg.train
    bars = bool(t.progress_bar) and bars_enabled(sys.stdout)  # Lightning's bars write to stdout
    out = Path(out_dir)
    callbacks, ckpt_cb = [], None
    if not for_test:
        ckpts = checkpoint_callbacks(out / "checkpoints", MONITOR, MONITOR_MODE, int(t.ckpt_every_n_steps),
                                     float(t.ckpt_every_minutes))
        ckpt_cb = ckpts[-1]
        saver = SaveOnInterrupt(out / "checkpoints", resume_command)
        callbacks.append(saver.train_end_callback())
        if t.ema_decay and float(t.ema_decay) > 0:
            from pytorch_lightning.callbacks import EMAWeightAveraging

            callbacks.append(EMAWeightAveraging(decay=float(t.ema_decay)))
        callbacks += [saver, RNGStateCheckpoint(int(cfg.seed))]
        if t.progress_bar:  # a bar on a terminal, plain lines in a log (sympe.diffusion.runs.progress)
            callbacks.append(RunProgressBar() if bars else RunProgressLog())
        callbacks += list(extra_callbacks or []) + ckpts
    else:
        callbacks += list(extra_callbacks or [])
    loggers = []
    if t.logger in ("csv", "both"):
        loggers.append(CSVLogger(str(out), name="csv", version="test") if for_test
                       else ContinuedCSVLogger(str(out), name="csv", resume_step=resume_step))
    if t.logger in ("tensorboard", "both"):
        try:
            from pytorch_lightning.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(str(out), name="tb", version="test" if for_test else ""))
        except ModuleNotFoundError:
            print("[sympe] tensorboard is not installed; logging to CSV only")
            if not loggers:
                loggers.append(ContinuedCSVLogger(str(out), name="csv", resume_step=resume_step))
    trainer = pl.Trainer(
        max_epochs=t.max_epochs, max_steps=t.max_steps, max_time=t.max_time, accelerator=t.accelerator,
        devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision,
        gradient_clip_val=t.gradient_clip_val, check_val_every_n_epoch=t.check_val_every_n_epoch,
        val_check_interval=validation_interval(t.val_check_interval, batches_per_epoch), limit_val_batches=t.limit_val_batches,
        limit_test_batches=t.limit_test_batches, log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=bars, enable_model_summary=bool(t.model_summary), logger=loggers, callbacks=callbacks, deterministic=t.deterministic,
        default_root_dir=str(out),
    )
    return trainer, ckpt_cb


def load_for_inference(path: str, device: str):
    """The model of checkpoint ``path`` on ``device`` in eval mode; a file that is not a readable sympe
    checkpoint raises :class:`~sympe.diffusion.runs.checkpoint_files.CheckpointError` naming it and the likely cause."""
    from sympe.diffusion.runs.model import load_model

    check_checkpoint_file(path, "checkpoint")
    try:
        model = load_model(str(path), map_location=device)
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint={path} cannot be loaded as a sympe model ({first}): a checkpoint of "
                              "another program or version, or a damaged file") from None
    check_finite_weights(model.state_dict(), path)
    return model.to(device).eval()


def sampling_calls(model, num_graphs: int, batch_size: int, steps: int | None, guided: bool = False) -> int:
    """Denoiser calls of ``model.sample(num_graphs, batch_size, steps=steps)``: per batch, one call per reverse
    step and one for the final decode, times the breaker draws per step, times 2 with classifier-free guidance
    (``guided``: a condition and w != 0) (for progress bars)."""
    batches = -(-int(num_graphs) // int(batch_size))
    return batches * (int(steps or model.T) + 1) * int(model.num_draws) * (2 if guided else 1)


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; any other value is returned as is."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def checkpoint_bytes(model, train_cfg) -> int:
    """The expected size in bytes of one training checkpoint of ``model``: float32 weights, Adam's two moments,
    AMSGrad's running maximum (``train.amsgrad``) and the EMA copy (``train.ema_decay`` > 0), plus 1 MB for the rest
    (measured: 65.5 MB for the default QM9 model's 3.25 M parameters, 5.03 x the weights)."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    copies = 3 + bool(train_cfg.amsgrad) + bool(train_cfg.ema_decay and float(train_cfg.ema_decay) > 0)
    return int(weights * copies + 1_000_000)


def train(cfg: DictConfig, info, datamodule, run, extra_callbacks=None, condition: dict | None = None) -> dict:
    """Train the model of ``cfg`` in run folder ``run`` (a :class:`~sympe.diffusion.runs.run_folder.RunFolder`),
    continuing from ``run.ckpt_path`` when set; then, with ``train.test_after_fit``, test the best (else
    last) checkpoint's weights on the test split.

    A continued run must share ``model``, ``dataset`` and ``seed`` with the run folder's ``config.yaml``
    and be trained on the same dataset statistics (:func:`~sympe.diffusion.runs.model.check_checkpoint_matches`);
    otherwise :class:`~sympe.diffusion.runs.options.ConfigError` / ``ValueError`` names the differences before
    training starts. The folder is created and locked (:meth:`~sympe.diffusion.runs.run_folder.RunFolder.claim`) unless
    the caller claimed it already, and the lock is dropped on return if it was taken here; a new run that stops
    before its first checkpoint removes the folder again. SIGINT / SIGTERM stop the run after writing ``last.ckpt``
    (:class:`~sympe.diffusion.runs.interrupt.TrainingInterrupted`, a ``SystemExit``).

    Returns ``{"run_dir", "best", "last", "checkpoints", "test": {...} | None, "multi_process", "rank_zero",
    "resume_command"}``; the test metrics are also written to ``<run>/test_metrics.json``. The test uses a
    fresh trainer without the EMA callback: the fit trainer's callback would swap the raw weights back in.
    """
    from sympe.diffusion.runs.model import check_checkpoint_matches

    command = resume_command(run)
    resume_step = None
    if run.ckpt_path is not None:
        diffs = compare_with_saved_config(cfg, run)
        if diffs:
            saved = run.path / "resume_command.txt"
            hint = f"; the run's own command is in {saved}" if saved.exists() else ""
            raise ConfigError(f"train.resume: the run in {run.path} was trained with other settings: " + "; ".join(diffs)
                              + hint)
        ckpt = check_checkpoint_matches(run.ckpt_path, info)
        check_finite_weights(ckpt.get("state_dict", {}), run.ckpt_path,
                             "train.ckpt_path" if cfg.train.ckpt_path is not None else "train.resume")
        resume_step = int(ckpt.get("global_step", 0))
        del ckpt
        changed = changed_train_settings(cfg, run)
        if changed:
            print("[sympe] training settings that differ from the run's config.yaml (the new values apply; give "
                  "the old ones on the command line to keep them): " + "; ".join(changed), flush=True)
    model = build_model(cfg, info, condition)
    if run.claims:  # room for a new last.ckpt and best checkpoint beside the old ones, before any step is taken
        check_writable(run.path, run.option, 2 * checkpoint_bytes(model, cfg.train), "writing last.ckpt and a best checkpoint")
    per_epoch = None
    if getattr(datamodule, "train_set", None) is not None:
        per_epoch = -(-len(datamodule.train_set) // int(cfg.train.batch_size))
    trainer, ckpt_cb = build_trainer(cfg, run.path, resume_step=resume_step, resume_command=command,
                                     extra_callbacks=extra_callbacks, batches_per_epoch=per_epoch)
    claimed_here = not (run.lock is not None and run.lock.held)  # a command claims its folder before loading
    run.create()
    try:
        return _fit_and_test(cfg, run, model, datamodule, trainer, ckpt_cb, command, resume_step)
    finally:
        if claimed_here:
            run.release()


def _fit_and_test(cfg: DictConfig, run, model, datamodule, trainer, ckpt_cb, command: str, resume_step) -> dict:
    import json

    from sympe.diffusion.runs.model import load_model

    rank_zero = trainer.is_global_zero
    if trainer.world_size > 1:
        os.environ[RUN_DIR_ENV] = str(run.path)  # the processes Lightning starts for DDP write into the same folder
    if rank_zero:
        run.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        if run.fresh or not (run.path / "resume_command.txt").exists():
            run.write_text("resume_command.txt", command + "\n")
        what = f"continuing from {run.ckpt_path} (step {resume_step})" if run.ckpt_path else "new run"
        params = sum(p.numel() for p in model.network.parameters())
        print(f"[sympe] run folder: {run.path} ({what})\n[sympe] model: {params:,} parameters in the denoiser "
              f"(train.model_summary=true for the table)\n[sympe] resume with: {command}", flush=True)
    try:
        trainer.fit(model, datamodule, ckpt_path=run.ckpt_path)
    except BaseException:
        if rank_zero and run.discard_if_untrained():
            print(f"[sympe] nothing was trained; removed the run folder {run.path}", file=sys.stderr)
        raise
    last = run.last if run.last.exists() else None
    result = {"run_dir": str(run.path), "checkpoints": str(run.checkpoints), "best": ckpt_cb.best_model_path or None,
              "last": str(last) if last else None, "test": None, "multi_process": trainer.world_size > 1,
              "rank_zero": rank_zero, "resume_command": command}
    path = result["best"] or result["last"]
    if cfg.train.test_after_fit and path and trainer.world_size == 1:
        from sympe.diffusion.runs.interrupt import sigint_raises

        try:
            with sigint_raises(FinalTestInterrupted):
                tester, _ = build_trainer(cfg, run.path, for_test=True)
                metrics = tester.test(load_model(path), datamodule, verbose=False)
        except FinalTestInterrupted:
            print(f"\n[sympe] the test after training was interrupted; training is complete and its checkpoints are in "
                  f"{run.checkpoints}; the test NLL: python scripts/evaluate.py checkpoint={path} num_samples=0",
                  file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        if metrics:
            result["test"] = {"checkpoint": path, **{k: float(v) for k, v in metrics[0].items()}}
            # strict JSON: the s.e. of one test graph (NaN) is null
            run.write_text("test_metrics.json", json.dumps(json_safe(result["test"]), indent=1, allow_nan=False))
    return result
