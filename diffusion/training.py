"""Model and trainer construction from a run config (the ``model`` and ``train`` sections).

* :func:`build_model`: the :class:`~sympe.diffusion.model.DiscreteDiffusion` of ``cfg.model`` / ``cfg.train``;
* :func:`build_trainer`: a Lightning ``Trainer`` with the checkpoint callbacks, EMA and loggers of ``cfg.train``;
* :data:`MONITOR` / :data:`MONITOR_MODE`: the validation metric that selects the best checkpoint.

Every default lives in the config files (``configs/model``, ``configs/train``); this module reads each key
it needs and falls back to nothing.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

__all__ = ["MONITOR", "MONITOR_MODE", "NETWORK_KEYS", "network_kwargs", "build_model", "build_trainer",
           "resolve_device"]

MONITOR = "val/nll"  # logged by DiscreteDiffusion.on_validation_epoch_end, nats per graph
MONITOR_MODE = "min"
NETWORK_KEYS = ("n_layers", "hidden_mlp_dims", "hidden_dims", "dropout", "features", "feature_kwargs",
                "molecular_features", "symbreak", "symbreak_kwargs")


def network_kwargs(cfg: DictConfig) -> dict:
    """Keyword arguments of :class:`~sympe.diffusion.network.DenoisingNetwork` from ``cfg.model``."""
    m = OmegaConf.to_container(cfg.model, resolve=True)
    return {k: m[k] for k in NETWORK_KEYS}


def build_model(cfg: DictConfig, info):
    """The diffusion model of ``cfg`` for a dataset with statistics ``info`` (a ``DatasetInfo``).

    The dataset config (``cfg.dataset``) is recorded in the hyperparameters, so that evaluation can rebuild
    the same splits from a checkpoint. ``train.compile`` wraps the transformer in ``torch.compile``.
    """
    from sympe.diffusion.model import DiscreteDiffusion

    m = OmegaConf.to_container(cfg.model, resolve=True)
    t = cfg.train
    optim = {"lr": t.lr, "weight_decay": t.weight_decay, "amsgrad": t.amsgrad, "lambda_E": t.lambda_E}
    dataset = {"name": cfg.dataset.name, "params": OmegaConf.to_container(cfg.dataset.params, resolve=True)}
    model = DiscreteDiffusion(info.to_dict(), network=network_kwargs(cfg), diffusion=m["diffusion"], optim=optim,
                              eval=m["eval"], dataset=dataset)
    if t.compile:
        import torch

        model.network.transformer = torch.compile(model.network.transformer)
    return model


def build_trainer(cfg: DictConfig, out_dir: str | Path, extra_callbacks=None, for_test: bool = False):
    """``(trainer, checkpoint_callback)`` writing checkpoints and logs under ``out_dir``.

    With ``for_test`` the trainer has no checkpointing and no EMA (it tests fixed weights) and logs to
    ``<out_dir>/csv/test``; ``checkpoint_callback`` is then None.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from sympe.diffusion.checkpoint import AtomicModelCheckpoint

    t = cfg.train
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    callbacks, ckpt_cb = [], None
    if not for_test:
        ckpt_cb = AtomicModelCheckpoint(dirpath=str(out / "checkpoints"), filename="best-{epoch}-{step}",
                                        monitor=MONITOR, mode=MONITOR_MODE, save_last=True, save_top_k=1)
        callbacks.append(ckpt_cb)
        if t.ema_decay and float(t.ema_decay) > 0:
            from pytorch_lightning.callbacks import EMAWeightAveraging

            callbacks.append(EMAWeightAveraging(decay=float(t.ema_decay)))
    callbacks += list(extra_callbacks or [])
    loggers = []
    version = "test" if for_test else ""
    if t.logger in ("csv", "both"):
        loggers.append(CSVLogger(str(out), name="csv", version=version))
    if t.logger in ("tensorboard", "both"):
        try:
            from pytorch_lightning.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(str(out), name="tb", version=version))
        except ModuleNotFoundError:
            print("[sympe] tensorboard is not installed; logging to CSV only")
            if not loggers:
                loggers.append(CSVLogger(str(out), name="csv", version=version))
    trainer = pl.Trainer(
        max_epochs=t.max_epochs, max_steps=t.max_steps, max_time=t.max_time, accelerator=t.accelerator,
        devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision,
        gradient_clip_val=t.gradient_clip_val, check_val_every_n_epoch=t.check_val_every_n_epoch,
        val_check_interval=t.val_check_interval, limit_val_batches=t.limit_val_batches,
        limit_test_batches=t.limit_test_batches, log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress_bar, logger=loggers, callbacks=callbacks, deterministic=t.deterministic,
        default_root_dir=str(out),
    )
    return trainer, ckpt_cb


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; any other value is returned as is."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def fit_and_test(cfg: DictConfig, info, datamodule, out_dir: str | Path) -> dict:
    """Train the model of ``cfg`` on ``datamodule`` (resuming from ``cfg.train.ckpt_path`` when set), then,
    with ``train.test_after_fit``, test the best (else last) checkpoint's weights on the test split.

    Returns ``{"best", "last", "checkpoints", "test": {...} | None, "multi_process", "rank_zero"}``; the test
    metrics are also written to ``<out_dir>/test_metrics.json``. The test uses a fresh trainer without the
    EMA callback: the fit trainer's callback would swap the raw weights back in.
    """
    import json
    import os

    from sympe.diffusion.model import check_checkpoint_matches, load_model

    model = build_model(cfg, info)
    trainer, ckpt_cb = build_trainer(cfg, out_dir)
    ckpt_path = cfg.train.ckpt_path
    if ckpt_path is not None:
        if not os.path.exists(ckpt_path):
            raise FileNotFoundError(f"train.ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file to "
                                    "resume from")
        check_checkpoint_matches(ckpt_path, info)
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    result = {"checkpoints": ckpt_cb.dirpath, "best": ckpt_cb.best_model_path or None,
              "last": ckpt_cb.last_model_path or None, "test": None, "multi_process": trainer.world_size > 1,
              "rank_zero": trainer.is_global_zero}
    path = result["best"] or result["last"]
    if cfg.train.test_after_fit and path and trainer.world_size == 1:
        tester, _ = build_trainer(cfg, out_dir, for_test=True)
        metrics = tester.test(load_model(path), datamodule, verbose=False)
        if metrics:
            result["test"] = {"checkpoint": path, **{k: float(v) for k, v in metrics[0].items()}}
            tmp = Path(out_dir) / "test_metrics.json.tmp"
            tmp.write_text(json.dumps(result["test"], indent=1))
            os.replace(tmp, Path(out_dir) / "test_metrics.json")
    return result
