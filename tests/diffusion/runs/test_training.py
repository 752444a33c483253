"""End-to-end: the training script trains, checkpoints, resumes, tests and samples; DDP on two CPU
processes; bad input (NaN loss, foreign checkpoint, too many nodes) fails with clear messages."""
from __future__ import annotations

import csv
import math
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
from sympe.diffusion.runs.model import DiscreteDiffusion, NonFiniteLossError, check_checkpoint_matches
from sympe.diffusion.runs.schema import model_arguments

from support import REPO  # noqa: E402
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
    # the changed training settings are named (train.ckpt_path, which picks the checkpoint, is not)
    changed = next(line for line in out.stdout.splitlines() if "differ from the run's config.yaml" in line)
    assert changed.endswith("train.max_steps: run 6 -> now 9"), changed

    # sample graphs, strided
    out = run_script("sample.py", [f"checkpoint={last}", "num_samples=5", "steps=4", "out_dir=samples",
                                   "chain_snapshots=2"], tmp_path)
    data = np.load(tmp_path / "samples" / "samples.npz")
    assert len(data["num_nodes"]) == 5 and data["edge_ptr"][-1] == len(data["edges"])
    assert (tmp_path / "samples" / "samples.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "samples").glob("chain_*.png")) == ["chain_00.png", "chain_01.png"]
    assert json.loads(out.stdout.strip().splitlines()[-1])["file"] == "samples/samples.npz"  # out_dir as given

    # evaluate the checkpoint: both NLL estimators and sample metrics, JSON on the last line
    out = run_script("evaluate.py", [f"checkpoint={last}", "num_samples=4", "steps=2", "nll_estimator=both",
                                     "exact_nll_graphs=2", "out_dir=eval"], tmp_path)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["num_test_graphs"] == 8 and m["nll_ours_plain_exact_graphs"] == 2 and m["num_samples"] == 4
    for key in ("nll_ours_plain_mc", "nll_ours_plain_exact"):
        assert np.isfinite(m[key]) and m[key] > 0  # the values themselves: test_nll_against_brute_force_enumeration
        assert m[key + "_floor"] > 0 and m[key] > m[key + "_floor"]  # an untrained model is far above the floor
    assert m["exchangeable_nll_floor_num_graphs"] == 8
    assert "nll" not in m and "nll_mc" not in m  # every NLL key names its convention
    assert m["validity"] is None  # the symmetric families have no validity test
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == m

    # inference options of an existing checkpoint switched at evaluation; several conventions; leak test
    out = run_script("evaluate.py", [f"checkpoint={last}", "num_samples=2", "steps=2", "nll_estimator=stratified",
                                     "exact_nll_graphs=3", "model.eval.digress_compat=true", "model.x0_kernel=reweighted",
                                     "nll_conventions=[digress,ours_reweighted,ours_reweighted_mix2_prior]",
                                     "leak_test_permutations=2", "leak_test_graphs=3", "out_dir=eval2"], tmp_path)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["x0_kernel"] == "reweighted" and set(m["nll_conventions"]) == {"digress", "ours_reweighted",
                                                                           "ours_reweighted_mix2_prior"}
    for c in m["nll_conventions"]:
        assert np.isfinite(m[f"nll_{c}_stratified"]) and m[f"nll_{c}_stratified_graphs"] == 3
        bins = m[f"nll_{c}_stratified_bins"]
        assert [b["t_min"] for b in bins][0] == 1 and bins[-1]["t_max"] == 20 and len(bins) == 10
    leak = m["leak_test_digress_exact"]
    assert leak["num_graphs"] == 3 and leak["num_permutations"] == 2 and "flagged" in leak
    assert "exchangeable NLL floor" in out.stderr


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
    return DiscreteDiffusion((info or tiny_info()).to_dict(), **model_arguments({**network, "diffusion": {"T": 10}}))


def test_nan_loss_stops_training_with_step_and_checkpoint(tmp_path):
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    model = tiny_model()
    calls = {"n": 0}
    real_forward = model.network.forward

    def poisoned(z_t, t_int, generator=None):
        calls["n"] += 1
        lx, le = real_forward(z_t, t_int, generator=generator)
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


# ---------------------------------------------------------------------- the NLL against an independent computation
def _qfam(a: float, m: torch.Tensor) -> torch.Tensor:
    """Q(a) = a I + (1 - a) 1 mᵀ, built here from the definition (float64)."""
    return a * torch.eye(m.numel(), dtype=torch.float64) + (1 - a) * m.unsqueeze(0)


def _kl(q: torch.Tensor, p: torch.Tensor) -> float:
    keep = q > 0
    return float((q[keep] * (q[keep].log() - p[keep].log())).sum())


def test_nll_against_brute_force_enumeration():
    """The NLL of a real (tiny, untrained) DiscreteDiffusion against the bound enumerated by hand.

    Graphs of N = 3 nodes, 2 node and 2 edge classes: 3 node and 3 pair variables, 64 joint states. Here,
    independently of the library: explicit matrices Q̄_t = Q(ᾱ_t), Q_{t|t-1} = Q(ᾱ_t / ᾱ_{t-1}); the exact
    posterior and the model's reverse kernel by Bayes' rule class by class; every L_t as the expectation
    over all 64 states z_t of Σ_v KL; L_0 likewise over z_0. The network is queried once per time on the
    batch of all 64 states. The library's estimators (mc, exact) must average to that number; the prior KL
    and log p(N) must match per graph.
    """
    T = 3
    info = DatasetInfo(name="toy3", node_classes=["a", "b"], edge_classes=["none", "edge"], node_marginals=[0.6, 0.4],
                       edge_marginals=[0.7, 0.3], n_nodes_dist=[0.0, 0.2, 0.3, 0.5], max_nodes=3, num_train_graphs=2)
    torch.manual_seed(0)
    network = {"n_layers": 1, "hidden_mlp_dims": {"X": 16, "E": 16, "y": 16},
               "hidden_dims": {"dx": 16, "de": 16, "dy": 16, "n_head": 2, "dim_ffX": 16, "dim_ffE": 16, "dim_ffy": 16},
               "features": "cycles"}
    model = DiscreteDiffusion(info.to_dict(), **model_arguments({**network, "diffusion": {"T": T}})).eval()
    for p in model.parameters():  # larger weights: a model with opinions, so that the KLs are far from 0
        p.data.mul_(3.0)

    pairs = [(0, 1), (0, 2), (1, 2)]
    m_x = model.transition.m_X.double() / model.transition.m_X.double().sum()
    m_e = model.transition.m_E.double() / model.transition.m_E.double().sum()
    ms = [m_x] * 3 + [m_e] * 3
    ab = model.schedule.alpha_bars.double()
    states = torch.tensor([[(s >> (5 - v)) & 1 for v in range(6)] for s in range(64)])  # (64, 6) classes
    Xi = states[:, :3]
    Ei = torch.zeros(64, 3, 3, dtype=torch.long)
    for c, (i, j) in enumerate(pairs):
        Ei[:, i, j] = Ei[:, j, i] = states[:, 3 + c]
    all_states = DenseGraph.from_indices(Xi, Ei, torch.ones(64, 3, dtype=torch.bool), 2, 2)

    def p_hat(t: int) -> torch.Tensor:
        """(64, 6, 2) model probabilities of x0 for every state z_t; pairs symmetrised (the model's definition)."""
        with torch.no_grad():
            lx, le = model.model_fn(all_states, torch.full((64,), t, dtype=torch.long))
        px, pe = lx.double().softmax(-1), le.double().softmax(-1)
        pe = (pe + pe.transpose(1, 2)) / 2
        return torch.cat([px, torch.stack([pe[:, i, j] for i, j in pairs], 1)], 1)

    x_vals = [0, 1, 1, 1, 0, 1]  # node classes, then pairs (0,1), (0,2), (1,2)
    log_pN = math.log(0.5)
    kl_prior = sum(_kl(_qfam(float(ab[T]), m)[xv], m) for xv, m in zip(x_vals, ms))

    def q_state(t: int) -> torch.Tensor:
        """q(z_t = s | x) for the 64 states: a product over variables."""
        probs = torch.ones(64, dtype=torch.float64)
        for v, (xv, m) in enumerate(zip(x_vals, ms)):
            probs = probs * _qfam(float(ab[t]), m)[xv][states[:, v]]
        return probs

    diffusion = 0.0
    for t in range(1, T + 1):
        qt, ph = q_state(t), p_hat(t)
        for s_idx in range(64):
            for v, (xv, m) in enumerate(zip(x_vals, ms)):
                Qs, Qt, Qts = _qfam(float(ab[t - 1]), m), _qfam(float(ab[t]), m), _qfam(float(ab[t] / ab[t - 1]), m)
                zt = int(states[s_idx, v])
                bayes = lambda k: torch.stack([Qts[a, zt] * Qs[k, a] / Qt[k, zt] for a in range(2)])  # noqa: E731
                p_model = sum(ph[s_idx, v, k] * bayes(k) for k in range(2))
                diffusion += float(qt[s_idx]) * _kl(bayes(xv), p_model)
    q0, ph0 = q_state(0), p_hat(0)
    reconstruction = -sum(float(q0[s]) * sum(math.log(float(ph0[s, v, xv])) for v, xv in enumerate(x_vals))
                          for s in range(64))
    bound = -log_pN + kl_prior + diffusion + reconstruction

    B = 600
    x_state = sum(xv << (5 - v) for v, xv in enumerate(x_vals))  # its row in `states`
    x = DenseGraph.from_indices(Xi[x_state].expand(B, 3), Ei[x_state].expand(B, 3, 3),
                                torch.ones(B, 3, dtype=torch.bool), 2, 2)
    for estimator in ("exact", "mc"):
        with torch.no_grad():
            out = model.nll(x, estimator=estimator, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(out["log_pN"].double(), torch.full((B,), log_pN, dtype=torch.float64))
        torch.testing.assert_close(out["kl_prior"].double(), torch.full((B,), kl_prior, dtype=torch.float64),
                                   rtol=1e-4, atol=1e-5)
        for key, target in (("diffusion", diffusion), ("reconstruction", reconstruction), ("nll", bound)):
            v = out[key].double()
            se = float(v.std() / math.sqrt(B))
            assert abs(float(v.mean()) - target) < 4.5 * se + 1e-4 * abs(target), \
                f"{estimator} {key}: {float(v.mean()):.4f} ± {se:.4f} vs enumerated {target:.4f}"
    assert diffusion > 0.5 and reconstruction > 0.5  # the check has teeth: the terms are far from 0


# ---------------------------------------------------------------------- the t = 0 convention
def test_decoder_time_is_a_training_time():
    """Training draws t from U{0..T}; every time at which the NLL (both estimators) and the sampler query the
    model, the reconstruction term and the final decode (t = 0) included, is one of those training times."""
    T = 3
    model = DiscreteDiffusion(tiny_info().to_dict(), **model_arguments({
        "n_layers": 1, "hidden_mlp_dims": {"X": 8, "E": 8, "y": 8},
        "hidden_dims": {"dx": 8, "de": 8, "dy": 8, "n_head": 2, "dim_ffX": 8, "dim_ffE": 8, "dim_ffy": 8},
        "features": "none", "diffusion": {"T": T}}))
    seen: list[int] = []
    real_forward = model.network.forward

    def spy(z_t, t_int, generator=None):
        seen.extend(int(v) for v in t_int)
        return real_forward(z_t, t_int, generator=generator)

    model.network.forward = spy
    from torch_geometric.data import Batch, Data

    data = Data(x=torch.eye(2)[[0, 1, 0, 1, 0]], edge_index=torch.tensor([[0, 1], [1, 0]]),
                edge_attr=torch.tensor([[0.0, 1.0], [0.0, 1.0]]), num_nodes=5)
    batch = Batch.from_data_list([data] * 8)
    torch.manual_seed(0)
    for _ in range(30):
        model.training_step(batch, 0)
    trained = set(seen)
    assert trained == set(range(T + 1)), f"training drew times {sorted(trained)}"

    x = DenseGraph.from_pyg(batch)
    for estimator in ("mc", "exact"):
        seen.clear()
        with torch.no_grad():
            model.nll(x, estimator=estimator, generator=torch.Generator().manual_seed(0))
        assert seen and set(seen) <= trained and seen[-1] == 0  # the last call is the reconstruction term
    for steps in (None, 2):
        seen.clear()
        model.sample(3, n_nodes=5, steps=steps, generator=torch.Generator().manual_seed(0))
        assert seen and set(seen) <= trained and seen[-1] == 0  # the last call is the final decode


# ---------------------------------------------------------------------- the mixture training objective
def _toy_batch():
    from torch_geometric.data import Batch, Data

    data = []
    for n in (5, 6, 6, 5):  # paths with alternating classes: learnable in a few steps
        X = torch.eye(2)[torch.arange(n) % 2]
        ei = torch.tensor([[i for i in range(n - 1)] + [i + 1 for i in range(n - 1)],
                           [i + 1 for i in range(n - 1)] + [i for i in range(n - 1)]])
        data.append(Data(x=X, edge_index=ei, edge_attr=torch.tensor([[0.0, 1.0]]).repeat(ei.shape[1], 1), num_nodes=n))
    return Batch.from_data_list(data)


def _mixture_model(K: int, T: int = 10) -> DiscreteDiffusion:
    network = {"n_layers": 2, "hidden_mlp_dims": {"X": 32, "E": 16, "y": 16},
               "hidden_dims": {"dx": 32, "de": 16, "dy": 16, "n_head": 2, "dim_ffX": 32, "dim_ffE": 16, "dim_ffy": 16},
               "features": "none", "symbreak": "sympe", "symbreak_kwargs": {"k": 4}}
    torch.manual_seed(0)
    return DiscreteDiffusion(tiny_info().to_dict(), **model_arguments({**network, "diffusion": {"T": T},
                                                                       "train": {"mixture_draws": K}}))


def test_mixture_objective_at_K1_is_the_default_loss():
    batch = _toy_batch()
    default, mix1 = _mixture_model(0), _mixture_model(1)
    mix1.load_state_dict(default.state_dict())
    for seed in range(3):
        torch.manual_seed(seed)
        a = default.training_step(batch, 0)
        torch.manual_seed(seed)
        b = mix1.training_step(batch, 0)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_mixture_objective_K2_trains():
    batch = _toy_batch()
    model = _mixture_model(2, T=2)  # few steps: z_t keeps much of x0, so there is much to learn
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def held_out_loss():  # the objective at fixed draws (t, z_t, g̃), averaged over 8 of them
        torch.manual_seed(123)
        with torch.no_grad():
            return sum(float(model.training_step(batch, 0)) for _ in range(8)) / 8

    before = held_out_loss()
    torch.manual_seed(0)
    for _ in range(60):
        loss = model.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
    assert model.network.breaker.V.grad is not None and model.network.breaker.V.grad.abs().sum() > 0
    after = held_out_loss()
    assert after < before - 0.15, (before, after)  # (the objective at the same draws; 0.3 measured)


def test_objective_and_eval_options_are_checked():
    with pytest.raises(ValueError, match="model.train"):
        DiscreteDiffusion(tiny_info().to_dict(), **{**model_arguments({"n_layers": 1}), "objective": {"draws": 2}})
    with pytest.raises(ValueError, match="model.eval"):
        DiscreteDiffusion(tiny_info().to_dict(), **{**model_arguments({"n_layers": 1}), "eval": {"digress": True}})
    model = tiny_model()
    with pytest.raises(ValueError, match="x0_kernel"):
        model.set_eval_options(x0_kernel="fancy")
    with pytest.raises(ValueError, match="num_bins"):
        model.set_eval_options(num_bins=11)
    model.set_eval_options(x0_kernel="reweighted", mixture_draws=4, num_bins=5)
    assert model.process.kernel_name == "reweighted" and model.nll_convention == "ours_reweighted_mix4_prior"
    with pytest.raises(ValueError, match="mixture_draws"):
        model.set_eval_options(digress_compat=True)


def test_summary_prints_the_exchangeable_floor(tmp_path):
    out = run_script("train_diffusion.py", ["dataset=marked_cycle", "train.summary_only=true",
                                            "+dataset.params.num_graphs={train: 20, val: 8, test: 8}",
                                            "hydra.run.dir=run"], tmp_path, timeout=300)
    # a cycle of 8 nodes with one marked node has |Aut| = 2: floor log(8!/2) = log 20160 (p(N = 8) = 1)
    assert f"test: exchangeable NLL floor {math.log(20160):.3f}" in out.stdout


def test_validation_interval_falls_back_to_epoch_ends():
    """An integer interval longer than an epoch validates at each epoch's end (Lightning would refuse it);
    fractions, None and intervals within an epoch go through unchanged."""
    from sympe.diffusion.runs.training import validation_interval

    assert validation_interval(1000, 3) is None
    assert validation_interval(1000, 3055) == 1000
    assert validation_interval(3, 3) == 3
    assert validation_interval(0.5, 3) == 0.5
    assert validation_interval(None, 3) is None
    assert validation_interval(1000, None) == 1000
