"""End-to-end: the training script trains, checkpoints, resumes, tests and samples; DDP on two CPU
processes; bad input (NaN loss, foreign checkpoint, too many nodes) fails with clear messages."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo
from sympe.diffusion.model import DiscreteDiffusion, NonFiniteLossError, check_checkpoint_matches

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = [
    "model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
    "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
    "model.diffusion.T=20", "model.features=cycles",
]
TINY_DATA = ["dataset=symmetric", "+dataset.params.num_graphs={train: 24, val: 8, test: 8}",
             "+dataset.params.max_nodes=12"]


def run_script(script: str, args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\nSTDOUT\n{proc.stdout[-4000:]}\nSTDERR\n{proc.stderr[-6000:]}")
    return proc


def test_train_resume_test_and_sample(tmp_path):
    common = TINY_DATA + TINY_MODEL + ["train.batch_size=8", "train.progress_bar=false",
                                       "train.log_every_n_steps=1", "hydra.run.dir=run"]
    run_script("train_diffusion.py", common + ["train.max_steps=6"], tmp_path)
    ckpt_dir = tmp_path / "run" / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    assert last.exists()
    assert not list(ckpt_dir.glob("*.tmp")), "a temporary checkpoint file was left behind"
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["global_step"] == 6
    assert state["sympe"]["info"]["name"] == "symmetric"
    rows = list(csv.DictReader(open(tmp_path / "run" / "csv" / "metrics.csv")))
    nll = [float(r["val/nll"]) for r in rows if r.get("val/nll")]
    assert nll and all(np.isfinite(nll)) and all(v > 0 for v in nll)

    # resume from last.ckpt and continue to step 9
    out = run_script("train_diffusion.py", common + ["train.max_steps=9", f"train.ckpt_path={last}"], tmp_path)
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 9
    assert "test NLL" in out.stdout

    # sample graphs, strided
    out = run_script("sample.py", [f"checkpoint={last}", "num_samples=5", "steps=4", "out_dir=samples"], tmp_path)
    data = np.load(tmp_path / "samples" / "samples.npz")
    assert len(data["num_nodes"]) == 5 and data["edge_ptr"][-1] == len(data["edges"])
    assert (tmp_path / "samples" / "samples.png").stat().st_size > 0

    # evaluate the checkpoint: both NLL estimators and sample metrics, JSON on the last line
    out = run_script("evaluate.py", [f"checkpoint={last}", "num_samples=4", "steps=2", "nll_estimator=both",
                                     "exact_nll_graphs=2", "out_dir=eval"], tmp_path)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["num_test_graphs"] == 8 and m["nll_exact_graphs"] == 2 and m["num_samples"] == 4
    for key in ("nll_mc", "nll_exact"):
        assert np.isfinite(m[key]) and m[key] > 0
        terms = m[f"{key}_terms"]
        parts = -terms["log_pN"] + terms["kl_prior"] + terms["diffusion"] + terms["reconstruction"]
        assert m[key] == pytest.approx(parts, rel=1e-4)
    assert m["validity"] is None  # the symmetric families have no validity test
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == m


def test_ddp_two_cpu_processes(tmp_path):
    args = TINY_DATA + TINY_MODEL + ["train.batch_size=4", "train.max_steps=3", "train.accelerator=cpu",
                                     "train.devices=2", "train.strategy=ddp", "train.progress_bar=false",
                                     "train.limit_val_batches=1", "hydra.run.dir=run"]
    out = run_script("train_diffusion.py", args, tmp_path)
    assert "multi-process run: test with `python scripts/evaluate.py" in out.stdout
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 3


def test_unknown_config_key_fails(tmp_path):
    with pytest.raises(AssertionError, match="not_a_key"):
        run_script("train_diffusion.py", ["train.not_a_key=1", "train.summary_only=true"], tmp_path, timeout=120)


# ---------------------------------------------------------------------- in-process checks
def tiny_info(name="toy", max_nodes=6) -> DatasetInfo:
    dist = [0.0] * (max_nodes + 1)
    dist[max_nodes] = 0.5
    dist[max_nodes - 1] = 0.5
    return DatasetInfo(name=name, node_classes=["a", "b"], edge_classes=["none", "edge"], node_marginals=[0.6, 0.4],
                       edge_marginals=[0.7, 0.3], n_nodes_dist=dist, max_nodes=max_nodes, num_train_graphs=2)


def tiny_model(info=None, **net) -> DiscreteDiffusion:
    network = {"n_layers": 1, "hidden_mlp_dims": {"X": 8, "E": 8, "y": 8},
               "hidden_dims": {"dx": 8, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 8, "dim_ffE": 8, "dim_ffy": 8},
               "features": "cycles", **net}
    return DiscreteDiffusion((info or tiny_info()).to_dict(), network=network, diffusion={"T": 10})


def test_nan_loss_stops_training_with_step_and_checkpoint(tmp_path):
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    model = tiny_model()
    calls = {"n": 0}
    real_forward = model.network.forward

    def poisoned(z_t, t_int):
        calls["n"] += 1
        lx, le = real_forward(z_t, t_int)
        return (lx * float("nan"), le) if calls["n"] >= 3 else (lx, le)

    model.network.forward = poisoned
    g = Data(x=torch.eye(2)[[0, 1, 0, 1, 0]], edge_index=torch.tensor([[0, 1], [1, 0]]),
             edge_attr=torch.tensor([[0.0, 1.0], [0.0, 1.0]]), num_nodes=5)
    loader = DataLoader([g] * 4, batch_size=2)
    trainer = pl.Trainer(max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         limit_val_batches=0, default_root_dir=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match=r"global step 2 .*last good checkpoint"):
        trainer.fit(model, loader)


def test_checkpoint_of_another_dataset_is_refused(tmp_path):
    model = tiny_model()
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(str(path))
    check_checkpoint_matches(str(path), tiny_info())  # same dataset: accepted
    with pytest.raises(ValueError, match="name: checkpoint 'toy' vs dataset 'other'"):
        check_checkpoint_matches(str(path), tiny_info(name="other"))
    with pytest.raises(ValueError, match="max_nodes"):
        check_checkpoint_matches(str(path), tiny_info(max_nodes=9))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        check_checkpoint_matches(str(tmp_path / "junk.ckpt"), tiny_info())


def test_sampling_refuses_more_nodes_than_trained():
    model = tiny_model()
    with pytest.raises(ValueError, match="at most 6 nodes"):
        model.sample(2, n_nodes=7)
    out = model.sample(3, n_nodes=4, steps=3)
    g = out[0].validate()
    assert g.num_nodes.tolist() == [4, 4, 4]


@pytest.mark.parametrize("symbreak", ["none", "noise", "sympe_nodes", "sympe"])
def test_network_runs_with_each_breaker_and_is_equivariant_without(symbreak):
    torch.manual_seed(0)
    model = tiny_model(symbreak=symbreak)
    B, n = 3, 6
    gen = torch.Generator().manual_seed(1)
    X = torch.randint(0, 2, (B, n), generator=gen)
    E = torch.randint(0, 2, (B, n, n), generator=gen)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, 4:] = False
    g = DenseGraph.from_indices(X, E, mask, 2, 2)
    t = torch.tensor([1, 5, 10])
    lx, le = model.network(g, t)
    assert lx.shape == (B, n, 2) and le.shape == (B, n, n, 2)
    assert torch.isfinite(lx[mask]).all()
    if symbreak == "none":
        perm = torch.stack([torch.randperm(n, generator=gen) for _ in range(B)])
        perm[0] = torch.cat([torch.randperm(4, generator=gen), torch.tensor([4, 5])])  # keep padding at the end
        lx2, le2 = model.network(g.permute(perm), t)
        b = torch.arange(B).unsqueeze(1)
        assert torch.allclose(lx2, lx[b, perm], atol=1e-4)
        assert torch.allclose(le2, le[b.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)], atol=1e-4)
