"""Train a discrete graph diffusion model.

    python scripts/train_diffusion.py                                  # QM9 (no H), default model
    python scripts/train_diffusion.py experiment=qm9_h model.symbreak=sympe
    python scripts/train_diffusion.py dataset=planar train.max_steps=300 train.batch_size=16
    python scripts/train_diffusion.py train.ckpt_path=outputs/qm9/<run>/checkpoints/last.ckpt   # resume
    python scripts/train_diffusion.py train.summary_only=true          # dataset summary only

Outputs go to the Hydra run folder (``outputs/<dataset>/<time>/``): ``checkpoints/`` (best on
validation NLL, and ``last.ckpt``), ``csv/`` metrics, the resolved ``config.yaml``.
"""
from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig, OmegaConf

from sympe.datasets.config import build_datamodule, build_splits_from_cfg, summary_text
from sympe.diffusion.training import fit_and_test


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    import pytorch_lightning as pl

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    splits = build_splits_from_cfg(cfg)
    print(summary_text(cfg.dataset.name, OmegaConf.to_container(cfg.dataset.params, resolve=True), splits))
    if cfg.train.summary_only:
        return
    from pathlib import Path

    out = Path(cfg.paths.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    result = fit_and_test(cfg, splits["train"].info, build_datamodule(cfg, splits), out)
    print(f"checkpoints: {result['checkpoints']} (best: {result['best'] or 'none'}, last: {result['last'] or 'none'})")
    if result["multi_process"] and result["rank_zero"]:
        print(f"multi-process run: test with `python scripts/evaluate.py checkpoint={result['best'] or result['last']}`")
    elif result["test"]:
        r = result["test"]
        print(f"test NLL ({os.path.basename(r['checkpoint'])}): {r['test/nll']:.2f} ± {r['test/nll_sem']:.2f} nats per "
              f"graph ({'DiGress edge convention' if cfg.model.eval.digress_compat else 'each undirected edge once'})")


if __name__ == "__main__":
    main()
