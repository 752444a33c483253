"""Train, save and load the property regressor (:class:`~sympe.diffusion.nn.regressor.PropertyRegressor`) that
scores samples on dataset columns no exact tool computes (QM9's μ and HOMO).

Training is a plain loop (a few thousand steps; nothing to resume): AdamW on the mean squared error of the
standardised targets that are present (the encoding of :class:`~sympe.diffusion.conditioning.ConditionSpec`: block j
is property j standardised with the train split's mean and std, the presence bits follow), the weights of the best
validation MAE kept. The file (written atomically) holds the weights, the network's arguments, the dataset's
:class:`~sympe.diffusion.info.DatasetInfo`, the spec and the test MAE in the properties' units.
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np
import torch

from sympe.diffusion.conditioning import ConditionSpec
from sympe.diffusion.files import atomic_path
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.nn.regressor import PropertyRegressor

KIND = "sympe-property-regressor"
#: The regressor's network: 4 layers, narrower than the denoiser (~2.5 min of CPU training per thousand steps).
NETWORK = {"n_layers": 4, "hidden_mlp_dims": {"X": 128, "E": 64, "y": 128},
           "hidden_dims": {"dx": 128, "de": 32, "dy": 64, "n_head": 8, "dim_ffX": 128, "dim_ffE": 64, "dim_ffy": 128},
           "features": "all", "dropout": 0.0}


def _targets(spec: ConditionSpec, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    P = len(spec.properties)
    return y[:, :P], y[:, -P:]  # continuous properties: one column each, then the presence bits


def mean_abs_error(model: PropertyRegressor, loader, spec: ConditionSpec) -> list[float]:
    """Per property, the MAE in the property's unit over the graphs of ``loader`` that have it."""
    std = torch.tensor([p.std for p in spec.properties])
    err, count = torch.zeros(len(std)), torch.zeros(len(std))
    model.eval()
    with torch.no_grad():
        for batch in loader:
            x = DenseGraph.from_pyg(batch)
            target, present = _targets(spec, x.y)
            err += ((model(x) - target).abs() * present).sum(0) * std
            count += present.sum(0)
    return (err / count.clamp_min(1)).tolist()


def fit_regressor(info: DatasetInfo, spec: ConditionSpec, train_loader, val_loader, *, steps: int, lr: float,
                  network: dict | None = None, val_every: int = 500, log: Callable[[str], None] = print,
                  seed: int = 0) -> PropertyRegressor:
    """Train on batches whose ``y`` is the spec's encoding; returns the weights of the lowest validation MAE (mean
    over properties, in units of each property's std). Raises ``ValueError`` for a categorical property."""
    if any(p.kind != "continuous" for p in spec.properties):
        from sympe.diffusion.conditioning import ConditionError

        raise ConditionError("the property regressor predicts continuous properties only; "
                             f"{[p.name for p in spec.properties if p.kind != 'continuous']} are categorical")
    torch.manual_seed(seed)
    model = PropertyRegressor(info, len(spec.properties), **dict(network or NETWORK))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-12)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    best, best_score, step, t0 = copy.deepcopy(model.state_dict()), float("inf"), 0, time.perf_counter()
    std = np.array([p.std for p in spec.properties])
    while step < steps:
        for batch in train_loader:
            model.train()
            x = DenseGraph.from_pyg(batch)
            target, present = _targets(spec, x.y)
            loss = (((model(x) - target) ** 2) * present).sum() / present.sum().clamp_min(1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % val_every == 0 or step == steps:
                mae = mean_abs_error(model, val_loader, spec)
                score = float(np.mean(np.array(mae) / std))
                if score < best_score:
                    best, best_score = copy.deepcopy(model.state_dict()), score
                log(f"[sympe] regressor step {step}/{steps}: train MSE {loss.item():.3f}, val MAE "
                    + ", ".join(f"{p.name} {m:.4f} {p.unit}" for p, m in zip(spec.properties, mae))
                    + f" ({time.perf_counter() - t0:.0f} s)")
            if step >= steps:
                break
    model.load_state_dict(best)
    return model


def save_regressor(path, model: PropertyRegressor, info: DatasetInfo, spec: ConditionSpec, network: dict,
                   report: dict) -> None:
    """Write the regressor file (module docstring) atomically."""
    state = {"kind": KIND, "info": info.to_dict(), "spec": spec.to_dict(), "network": network, "report": report,
             "state_dict": model.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class PropertyOracle:
    """A loaded regressor as the oracle of :func:`sympe.datasets.conditions.scoring.achieved_values`:
    ``oracle(name, smiles, graphs)`` -> the predicted property (in its unit) of each ``(atoms, bonds)`` class-list
    pair, None where the SMILES is None (an invalid sample). ``names``, ``report`` (its test MAE)."""

    def __init__(self, path):
        from pathlib import Path

        from sympe.diffusion.conditioning import ConditionError  # a user error: one line from the commands

        if not Path(path).is_file():
            raise ConditionError(f"oracle={path}: no such file (scripts/train_regressor.py writes a property regressor)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file
            raise ConditionError(f"oracle={path} cannot be read: {exc}") from None
        if not isinstance(state, dict) or state.get("kind") != KIND:
            raise ConditionError(f"oracle={path} is not a sympe property regressor (scripts/train_regressor.py writes them)")
        self.info = DatasetInfo.from_dict(state["info"])
        self.spec = ConditionSpec.from_dict(state["spec"])
        self.report = state["report"]
        self.model = PropertyRegressor(self.info, len(self.spec.properties), **state["network"])
        self.model.load_state_dict(state["state_dict"])
        self.model.eval()

    @property
    def names(self) -> list[str]:
        return self.spec.names

    def predict(self, graphs: list, batch_size: int = 256) -> np.ndarray:
        """(N, P) predictions in the properties' units for ``(atoms, bonds)`` class-list pairs."""
        out = []
        for start in range(0, len(graphs), batch_size):
            chunk = graphs[start:start + batch_size]
            n = max(len(a) for a, _ in chunk)
            X = torch.zeros(len(chunk), n, dtype=torch.long)
            E = torch.zeros(len(chunk), n, n, dtype=torch.long)
            mask = torch.zeros(len(chunk), n, dtype=torch.bool)
            for b, (a, e) in enumerate(chunk):
                k = len(a)
                X[b, :k], E[b, :k, :k], mask[b, :k] = torch.as_tensor(a), torch.as_tensor(e), True
            x = DenseGraph.from_indices(X, E, mask, self.info.num_node_classes, self.info.num_edge_classes)
            with torch.no_grad():
                z = self.model(x).double()
            mean = torch.tensor([p.mean for p in self.spec.properties], dtype=torch.float64)
            std = torch.tensor([p.std for p in self.spec.properties], dtype=torch.float64)
            out.append((z * std + mean).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.spec.properties)))

    def __call__(self, name: str, smiles, graphs) -> list:
        if name not in self.names:
            raise ValueError(f"the regressor predicts {self.names}, not {name!r}")
        j = self.names.index(name)
        keep = [i for i in range(len(graphs)) if smiles is None or smiles[i] is not None]
        pred = self.predict([graphs[i] for i in keep]) if keep else np.zeros((0, len(self.names)))
        out: list = [None] * len(graphs)
        for i, v in zip(keep, pred[:, j]):
            out[i] = float(v)
        return out
