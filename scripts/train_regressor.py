"""Train the property regressor that scores samples on dataset columns RDKit cannot compute (QM9's μ and HOMO).

    python scripts/train_regressor.py --dataset qm9 --property mu --property homo --steps 3000 \
        --out outputs/regressors/qm9_mu_homo.pt

Trains on the clean graphs of the train split (targets standardised with its statistics), keeps the weights of the
best validation MAE, prints and stores the test MAE in each property's unit, and writes the file atomically (never
over an existing one). Use it with ``sample.py ... oracle=FILE`` and ``evaluate.py samples=... targets=...
oracle=FILE``. Library: sympe.diffusion.runs.property_regressor, sympe.diffusion.nn.regressor.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="qm9", help="a dataset config name (configs/dataset/NAME.yaml)")
    p.add_argument("--property", action="append", required=True, help="a continuous column of the dataset (repeat)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--limit-val-graphs", type=int, default=2000, help="validation graphs scored every 500 steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=os.environ.get("SYMPE_DATA_ROOT", "data"))
    p.add_argument("--out", required=True, help="the regressor file to write (must not exist)")
    a = p.parse_args(argv)
    if a.steps < 1 or a.batch_size < 1:
        p.error("--steps and --batch-size must be >= 1")
    if Path(a.out).exists():
        p.error(f"--out {a.out} exists; sympe never replaces a result: give a new path")
    from sympe.diffusion.runs.options import user_errors

    user_errors(_train)(a)
    return 0


def _train(a) -> None:
    from torch_geometric.loader import DataLoader

    from sympe.datasets.conditions import attach_conditions
    from sympe.datasets.config import dataset_config
    from sympe.datasets.registry import build_splits
    from sympe.diffusion.runs.output_paths import check_writable
    from sympe.diffusion.runs.property_regressor import NETWORK, fit_regressor, mean_abs_error, save_regressor

    check_writable(Path(a.out).resolve().parent, "--out", 50_000_000, "the regressor file")
    name, params = dataset_config(REPO / "configs", a.dataset)
    splits = build_splits(name, a.data_root, **params)
    splits, spec = attach_conditions(splits, a.property, 0.0)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    log(f"[sympe] regressor of {spec}")
    train = DataLoader(splits["train"], batch_size=a.batch_size, shuffle=True)
    val = DataLoader(splits["val"][: a.limit_val_graphs], batch_size=512)
    model = fit_regressor(splits["train"].info, spec, train, val, steps=a.steps, lr=a.lr, log=log, seed=a.seed)
    test_mae = mean_abs_error(model, DataLoader(splits["test"], batch_size=512), spec)
    test_values = splits["test"].values  # the MAE of always predicting the train mean, for scale
    baseline = {p.name: float(sum(abs(v - p.mean) for v in test_values[p.name] if v is not None)
                              / max(1, sum(v is not None for v in test_values[p.name]))) for p in spec.properties}
    report = {"dataset": a.dataset, "steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed,
              "test_graphs": len(splits["test"]),
              "test_mae": {p.name: m for p, m in zip(spec.properties, test_mae)},
              "units": {p.name: p.unit for p in spec.properties},
              "test_mae_of_train_mean": baseline}
    Path(a.out).resolve().parent.mkdir(parents=True, exist_ok=True)
    save_regressor(a.out, model, splits["train"].info, spec, NETWORK, report)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
