"""The trained QM9 model that ships with the package: it loads, samples valid molecules, matches its model card,
and ``checkpoint=pretrained:qm9`` works in the commands without writing into the installed package."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from support import REPO
from sympe.datasets.molecules import MoleculeSpec
from sympe.datasets.samples.writers import dense_to_class_lists, graphs_to_smiles
from sympe.diffusion.runs import pretrained
from sympe.diffusion.runs.checkpoint_files import CheckpointError


def test_the_shipped_model_matches_its_card_and_samples_valid_molecules():
    import torch

    from sympe.diffusion import load_pretrained

    card = pretrained.model_card("qm9")
    assert pretrained.available() == ["qm9"] and (pretrained.PRETRAINED_DIR / card["file"]).stat().st_size == card["bytes"]
    assert card["bytes"] <= 20_000_000
    model = load_pretrained("qm9")
    assert not model.training and model.info.name == "qm9" and model.T == card["model"]["T"]
    assert next(model.parameters()).dtype == torch.float32
    assert sum(p.numel() for p in model.network.parameters()) == card["model"]["parameters"]
    # the process is the one trained: its buffers (stored float32) match those a fresh model of the same
    # hyperparameters builds (to 2e-5: the run was trained by an earlier version whose last beta differs by 1e-5);
    # float16 would move alpha-bar_1 = 0.99981 to 1.0 and the marginals off the simplex
    from sympe.diffusion.runs.model import DiscreteDiffusion

    fresh = DiscreteDiffusion(**model.hparams).state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("network."):
            assert value.dtype == fresh[key].dtype and torch.allclose(value, fresh[key], rtol=0, atol=2e-5), key
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    batches = model.sample(16, batch_size=16, steps=20, generator=gen, time_distortion="polydec")
    graphs = [g for b in batches for g in dense_to_class_lists(b)]
    smiles = graphs_to_smiles(graphs, MoleculeSpec(tuple(model.info.node_classes)))
    valid = [s for s in smiles if s is not None]
    assert len(smiles) == 16 and len(valid) >= 14, smiles  # the card: about 98 % valid at 20 polydec steps
    assert all(set(s) & set("CNOF") for s in valid)  # QM9 heavy atoms only


def test_a_damaged_or_unknown_shipped_model_is_refused(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match=r"checkpoint=pretrained:zinc: no such shipped model; available: "
                                              r"pretrained:qm9"):
        pretrained.resolve_checkpoint("pretrained:zinc")
    copy = tmp_path / "models"
    shutil.copytree(pretrained.PRETRAINED_DIR, copy)
    with open(copy / "qm9.pt", "r+b") as f:
        f.seek(100_000)
        byte = f.read(1)
        f.seek(100_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", copy)
    with pytest.raises(CheckpointError, match=r"qm9.pt has sha256 .* its model card says .*reinstall sympe"):
        pretrained.resolve_checkpoint("pretrained:qm9")
    assert pretrained.resolve_checkpoint("outputs/x/checkpoints/last.ckpt") == "outputs/x/checkpoints/last.ckpt"


def test_sample_py_with_the_shipped_model_writes_under_the_working_directory(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sample.py"), "checkpoint=pretrained:qm9",
                           "num_samples=4", "steps=5", "grid=0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    (folder,) = (tmp_path / "outputs" / "pretrained-qm9" / "samples").iterdir()
    assert summary["file"] == str(folder / "samples.smi") and summary["num_samples"] == 4
    assert not list(pretrained.PRETRAINED_DIR.glob("*/"))  # nothing written beside the shipped files
