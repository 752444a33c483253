"""A run written before the house reorganisation (tests/fixtures/run_e537846, see its README) still loads, samples,
evaluates and resumes, and gives the numbers that code gave for the same seed."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from support import FIXTURES, REPO

from sympe.diffusion.runs.model import load_model, upgrade_hparams

RUN = FIXTURES / "run_e537846"
CKPT = RUN / "checkpoints" / "last.ckpt"
TRAIN_ARGS = ["dataset=symmetric", "+dataset.params.num_graphs={train: 24, val: 8, test: 8}", "+dataset.params.max_nodes=12",
              "model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
              "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
              "model.diffusion.T=20", "model.features=cycles", "train.batch_size=8", "model.symbreak=sympe",
              "train.val_check_interval=null"]


def run_script(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    out = subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_the_checkpoint_loads_with_its_recorded_settings():
    hparams = torch.load(CKPT, map_location="cpu", weights_only=False)["hyper_parameters"]
    model = load_model(str(CKPT))
    assert model.T == 20 and model.network.breaker.__class__.__name__ == "SymPE"
    assert model.hparams["network"] == upgrade_hparams(hparams)["network"]
    assert len(model.network.transformer.layers) == 1


def test_sampling_gives_the_samples_of_the_old_code(tmp_path):
    run_script("sample.py", [f"checkpoint={CKPT}", "num_samples=16", "steps=5", f"out_dir={tmp_path / 's'}"], tmp_path)
    new, old = np.load(tmp_path / "s" / "samples.npz"), np.load(RUN / "expected" / "samples.npz")
    assert sorted(new.files) == sorted(old.files)
    for key in old.files:
        assert np.array_equal(new[key], old[key]), key


def test_evaluation_gives_the_numbers_of_the_old_code(tmp_path):
    run_script("evaluate.py", [f"checkpoint={CKPT}", "num_samples=16", "steps=5", "nll_estimator=all",
                               "exact_nll_graphs=4", "leak_test_permutations=2", "leak_test_graphs=2",
                               f"out_dir={tmp_path / 'e'}"], tmp_path)
    new = json.loads((tmp_path / "e" / "metrics.json").read_text())
    old = json.loads((RUN / "expected" / "eval_metrics.json").read_text())
    numbers = [k for k, v in old.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and "time" not in k and not k.endswith("_s")]
    assert "nll_ours_plain_exact" in numbers and "uniqueness" in numbers
    for key in numbers:
        assert math.isclose(new[key], old[key], rel_tol=1e-9, abs_tol=1e-12), (key, new[key], old[key])


def test_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN, run, ignore=shutil.ignore_patterns("expected", "README.md"))
    out = run_script("train_diffusion.py", [*TRAIN_ARGS, "train.max_steps=32", f"train.resume={run}",
                                            "train.test_after_fit=false", "train.progress_bar=false"], tmp_path)
    assert "(step 30)" in out.stdout and "training settings that differ" in out.stdout  # max_steps 30 -> 32
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 32


@pytest.mark.parametrize("missing", ["objective", "x0_kernel", "eval"])
def test_a_checkpoint_without_later_keys_loads(tmp_path, missing):
    """Checkpoints of the first release lacked ``objective`` and ``x0_kernel`` (and some ``eval`` keys):
    upgrade_hparams fills them with the values that code used."""
    ckpt = torch.load(CKPT, map_location="cpu", weights_only=False)
    if missing == "eval":
        for key in ("mixture_draws", "num_bins"):
            ckpt["hyper_parameters"]["eval"].pop(key)
    else:
        ckpt["hyper_parameters"].pop(missing)
    path = tmp_path / "old.ckpt"
    torch.save(ckpt, path)
    model = load_model(str(path))
    assert model.mixture_train_draws == 0 and model.x0_kernel == "plain" and model.mixture_draws == 0
    reference = load_model(str(CKPT))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


def test_loading_with_the_dataset_it_was_trained_on_only():
    from dataclasses import replace

    from sympe.diffusion.info import DatasetInfo

    info = DatasetInfo.from_dict(torch.load(CKPT, map_location="cpu", weights_only=False)["sympe"]["info"])
    assert load_model(str(CKPT), expected_info=info).T == 20
    with pytest.raises(ValueError, match="trained on a different dataset: name"):
        load_model(str(CKPT), expected_info=replace(info, name="other"))
