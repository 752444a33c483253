"""Shared construction code of the entry-point scripts: config -> data, model, trainer."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def data_root(cfg: DictConfig) -> str:
    root = Path(cfg.paths.data_root)
    if not root.is_absolute():
        root = Path(hydra_original_cwd()) / root
    return str(root)


def hydra_original_cwd() -> str:
    try:
        from hydra.utils import get_original_cwd

        return get_original_cwd()
    except Exception:
        return os.getcwd()


def resolve_path(p: str | None) -> str | None:
    """Relative paths in configs are relative to the directory the command was started from."""
    if p is None:
        return None
    path = Path(p)
    return str(path if path.is_absolute() else Path(hydra_original_cwd()) / path)


def build_splits_from_cfg(cfg: DictConfig) -> dict:
    from sympe.datasets.registry import build_splits

    params = OmegaConf.to_container(cfg.dataset.params, resolve=True) or {}
    for key in ("csv_path", "path"):
        if params.get(key):
            params[key] = resolve_path(params[key])
    return build_splits(cfg.dataset.name, data_root(cfg), **params)


def build_data(cfg: DictConfig):
    from sympe.datasets.datamodule import GraphDataModule

    splits = build_splits_from_cfg(cfg)
    dm = GraphDataModule(splits["train"], splits["val"], splits["test"], batch_size=cfg.train.batch_size,
                         eval_batch_size=cfg.train.eval_batch_size, num_workers=cfg.train.num_workers, seed=cfg.seed,
                         limit_train_graphs=cfg.train.limit_train_graphs, limit_eval_graphs=cfg.train.limit_eval_graphs)
    return splits, dm


def print_summary(cfg: DictConfig, splits: dict) -> None:
    info = splits["train"].info
    sizes = ", ".join(f"{k}={len(v)}" for k, v in splits.items())
    print(f"[sympe] dataset {cfg.dataset.name} {dict(cfg.dataset.params)}")
    print(f"[sympe] splits: {sizes}")
    print(info.summary())
    if cfg.train.summary_only:
        from sympe.datasets.floor import exchangeable_floor

        for split in ("val", "test"):
            if split in splits:
                print(f"[sympe] {split}: {exchangeable_floor(splits[split], info.n_nodes_tensor())}")


def network_kwargs(cfg: DictConfig) -> dict:
    m = OmegaConf.to_container(cfg.model, resolve=True)
    return {k: m[k] for k in ("n_layers", "hidden_mlp_dims", "hidden_dims", "dropout", "features", "feature_kwargs",
                              "molecular_features", "symbreak", "symbreak_kwargs")}


def build_model(cfg: DictConfig, info):
    from sympe.diffusion.model import DiscreteDiffusion

    m = OmegaConf.to_container(cfg.model, resolve=True)
    t = cfg.train
    optim = {"lr": t.lr, "weight_decay": t.weight_decay, "amsgrad": t.amsgrad, "lambda_E": t.lambda_E}
    dataset = {"name": cfg.dataset.name, "params": OmegaConf.to_container(cfg.dataset.params, resolve=True)}
    model = DiscreteDiffusion(info.to_dict(), network=network_kwargs(cfg), diffusion=m["diffusion"], optim=optim,
                              eval=m["eval"], dataset=dataset, x0_kernel=m.get("x0_kernel", "plain"),
                              objective=m.get("train"))
    if t.compile:
        import torch

        model.network.transformer = torch.compile(model.network.transformer)
    return model


def build_trainer(cfg: DictConfig, extra_callbacks=None, for_test: bool = False):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from sympe.diffusion.checkpoint import AtomicModelCheckpoint

    t = cfg.train
    out = Path(cfg.paths.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not for_test:
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    ckpt_cb = AtomicModelCheckpoint(dirpath=str(out / "checkpoints"), filename="best-{epoch}-{step}",
                                    monitor="val/nll", mode="min", save_last=True, save_top_k=1)
    callbacks = [] if for_test else [ckpt_cb]
    if t.ema_decay and float(t.ema_decay) > 0 and not for_test:
        from pytorch_lightning.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=float(t.ema_decay)))
    callbacks += list(extra_callbacks or [])
    loggers = []
    if t.logger in ("csv", "both"):
        loggers.append(CSVLogger(str(out), name="csv", version="test" if for_test else ""))
    if t.logger in ("tensorboard", "both"):
        try:
            from pytorch_lightning.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(str(out), name="tb", version="test" if for_test else ""))
        except ModuleNotFoundError:
            print("[sympe] tensorboard is not installed; logging to CSV only")
            if not loggers:
                loggers.append(CSVLogger(str(out), name="csv", version=""))
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
