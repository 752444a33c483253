"""Train a discrete graph diffusion model.

    python scripts/train_diffusion.py                                  # QM9 (no H), default model
    python scripts/train_diffusion.py experiment=qm9_h model.symbreak=sympe
    python scripts/train_diffusion.py dataset=planar train.max_steps=300 train.batch_size=16
    python scripts/train_diffusion.py train.resume=outputs/qm9/<run>    # continue a run in its own folder
    python scripts/train_diffusion.py train.summary_only=true          # dataset summary only

Each run gets its own folder ``outputs/<dataset>/<time>-<id>/`` (printed at start): ``checkpoints/``
(``last.ckpt``, refreshed every ``train.ckpt_every_n_steps`` steps / ``train.ckpt_every_minutes`` minutes and
on Ctrl-C or SIGTERM; the best on validation NLL), ``csv/metrics.csv``, ``config.yaml`` and
``resume_command.txt``. Option values are checked before anything is loaded.
"""
from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from sympe.datasets.config import (absolute_dataset_paths, build_datamodule, build_splits_from_cfg, check_dataset_config,
                                   resolve_path, summary_text)
from sympe.diffusion.runs.options import user_errors
from sympe.diffusion.runs.run_folder import resolve_run
from sympe.diffusion.runs.schema import check_model_config, check_train_config, register_configs
from sympe.diffusion.runs.training import train

register_configs()  # the model / train groups: typed defaults (sympe.diffusion.runs.schema)


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
@user_errors
def main(cfg: DictConfig) -> None:
    check_train_config(cfg)
    check_model_config(cfg)
    check_dataset_config(cfg)
    absolute_dataset_paths(cfg)  # the run's config and checkpoints name the dataset's files from anywhere
    if cfg.model.condition:  # a property the dataset cannot provide: one line before any loading
        from sympe.datasets.conditions import check_condition_option

        check_condition_option(cfg.dataset.name, OmegaConf.to_container(cfg.dataset.params, resolve=True),
                               list(cfg.model.condition))
    run = None if cfg.train.summary_only else resolve_run(cfg, resolve_path).claim()  # locked before any loading
    try:
        _train(cfg, run)
    except BaseException:
        if run is not None and run.discard_if_untrained():
            print(f"[sympe] nothing was trained; removed the run folder {run.path}", file=sys.stderr)
        raise
    finally:
        if run is not None:
            run.release()


def _train(cfg: DictConfig, run) -> None:
    import pytorch_lightning as pl

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    splits = build_splits_from_cfg(cfg)
    print(summary_text(cfg.dataset.name, OmegaConf.to_container(cfg.dataset.params, resolve=True), splits,
                       floor=bool(cfg.train.summary_only)))
    condition = None
    if cfg.model.condition:
        from sympe.datasets.conditions import attach_conditions

        splits, spec = attach_conditions(splits, list(cfg.model.condition), float(cfg.model.condition_dropout))
        print(f"[sympe] conditioned on {spec}", flush=True)
        condition = spec.to_dict()
    if run is None:
        return
    result = train(cfg, splits["train"].info, build_datamodule(cfg, splits), run, condition=condition)
    if not result["rank_zero"]:
        return
    print(f"checkpoints: {result['checkpoints']} (best: {result['best'] or 'none'}, last: {result['last'] or 'none'})")
    if result["multi_process"]:
        print(f"multi-process run: test with `python scripts/evaluate.py checkpoint={result['best'] or result['last']}`")
    elif result["test"]:
        from sympe.diffusion.likelihood.bound import convention_name

        r, ev = result["test"], cfg.model.eval
        label = convention_name(bool(ev.digress_compat), str(cfg.model.x0_kernel), int(ev.mixture_draws or 0),
                                int(ev.num_draws or 1))
        key = "test/nll_given_y" if "test/nll_given_y" in r else "test/nll"
        sem = r[f"{key}_sem"]
        sem = "± n/a (one test graph)" if sem != sem else f"± {sem:.2f}"
        what = "test NLL -log p(x | y)" if key.endswith("given_y") else "test NLL"
        print(f"{what} [{label}, mc] ({os.path.basename(r['checkpoint'])}): {r[key]:.2f} {sem} nats per graph")


if __name__ == "__main__":
    main()
