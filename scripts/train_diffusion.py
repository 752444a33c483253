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

import json
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_data, build_model, build_trainer, print_summary  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    import pytorch_lightning as pl

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    splits, dm = build_data(cfg)
    print_summary(cfg, splits)
    if cfg.train.summary_only:
        return
    model = build_model(cfg, splits["train"].info)
    trainer, ckpt_cb = build_trainer(cfg)
    ckpt_path = cfg.train.ckpt_path
    if ckpt_path is not None and not os.path.exists(ckpt_path):
        raise FileNotFoundError(f"train.ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file to resume from")
    if ckpt_path is not None:
        from sympe.diffusion.model import check_checkpoint_matches

        check_checkpoint_matches(ckpt_path, splits["train"].info)
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    print(f"checkpoints: {ckpt_cb.dirpath} (best: {ckpt_cb.best_model_path or 'none'}, last: {ckpt_cb.last_model_path or 'none'})")
    if cfg.train.test_after_fit:
        # Test the weights stored in the checkpoint's state_dict (the EMA weights when EMA is on). A fresh
        # trainer without the EMA callback is used: the fit trainer's callback would reload the raw weights.
        path = ckpt_cb.best_model_path or ckpt_cb.last_model_path
        if path and trainer.world_size > 1:
            if trainer.is_global_zero:
                print(f"multi-process run: test with `python scripts/evaluate.py checkpoint={path}`")
        elif path:
            from sympe.diffusion.model import load_model

            best = load_model(path)
            tester, _ = build_trainer(cfg, for_test=True)
            results = tester.test(best, dm, verbose=False)
            if results:
                r = results[0]
                (Path(cfg.paths.out_dir) / "test_metrics.json").write_text(
                    json.dumps({"checkpoint": path, **{k: float(v) for k, v in r.items()}}, indent=1))
                print(f"test NLL ({os.path.basename(path)}): {r['test/nll']:.2f} ± {r['test/nll_sem']:.2f} nats per graph "
                      f"({'DiGress edge convention' if cfg.model.eval.digress_compat else 'each undirected edge once'})")

if __name__ == "__main__":
    main()
