"""The Fréchet ChemNet Distance of scripts/evaluate.py (molecules, against the test split): the statistics functions
of sympe.datasets.metrics.fcd, their cache beside the processed split, one end-to-end run on QM9, and the option
``fcd=auto|true|false`` with and without the optional package fcd-torch."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from support import DRUGS, REPO
from sympe.datasets.metrics import fcd as mol_fcd
from sympe.datasets.metrics.fcd import (ChemNetStats, GaussianAccumulator, chemnet_activations, chemnet_stats, fcd,
                                        fcd_from_stats, split_chemnet_stats, split_smiles)
from sympe.datasets.molecules import canonical_smiles
from sympe.datasets.sources.qm9 import QM9Dataset, qm9_split_indices

needs_fcd = pytest.mark.skipif(importlib.util.find_spec("fcd_torch") is None,
                               reason="optional extra fcd-torch not installed (pip install fcd-torch)")

# Valid for QM9's atom types (C, N, O, F) and far from its molecules (<= 9 heavy atoms, many rings):
# long chains, long alcohols, perfluoroalkanes.
FAR = (["C" * k for k in range(12, 20)] + ["O" + "C" * k for k in range(12, 20)]
       + ["F" + "C(F)(F)" * k + "F" for k in range(4, 12)])


def evaluate(args, cwd, data_root, check=True, hide_fcd_torch=False):
    env = {**os.environ, "SYMPE_DATA_ROOT": str(data_root), "PYTHONWARNINGS": "ignore"}
    if hide_fcd_torch:  # a module on PYTHONPATH that shadows the installed fcd_torch and cannot be imported
        stub = cwd / "hide_fcd_torch"
        stub.mkdir(exist_ok=True)
        (stub / "fcd_torch.py").write_text('raise ImportError("fcd_torch is hidden by this test")\n')
        env["PYTHONPATH"] = os.pathsep.join([str(stub)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"evaluate.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def last_json(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def qm9_by_gdb(qm9_index_csv) -> dict[int, str]:
    """gdb_index -> SMILES as written in QM9's own table (not by sympe's graph -> SMILES conversion)."""
    with gzip.open(qm9_index_csv, "rt", newline="") as f:
        return {int(r["gdb_index"]): r["smiles"] for r in csv.DictReader(f)}


def small_qm9_csv(path, qm9_by_gdb, test_slice: slice):
    """A gdb_index,smiles CSV with 20 train, 5 val and the ``test_slice`` test molecules of DiGress's split."""
    idx = qm9_split_indices()
    present = {s: [int(g) for g in idx[s] if int(g) in qm9_by_gdb] for s in idx}
    rows = present["train"][:20] + present["val"][:5] + present["test"][test_slice]
    path.write_text("gdb_index,smiles\n" + "".join(f"{g},{qm9_by_gdb[g]}\n" for g in rows))
    return str(path)


# ---------------------------------------------------------------------- the library functions
def test_gaussian_accumulator_matches_numpy():
    x = np.random.default_rng(0).normal(size=(103, 6)) * [1, 2, 3, 4, 5, 6] + 7
    acc = GaussianAccumulator(6)
    for lo, hi in [(0, 1), (1, 40), (40, 40), (40, 103)]:
        acc.update(x[lo:hi])
    assert acc.n == 103
    np.testing.assert_allclose(acc.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(acc.covariance, np.cov(x.T), rtol=1e-10)


@needs_fcd
def test_fcd_of_a_set_with_itself_is_zero():
    """MOSES's path (fcd-torch canonicalizes; the reference fitted in a stream) against the set itself."""
    smiles = DRUGS * 4
    acts = chemnet_activations(smiles, canonize=True)
    assert acts.shape == (len(smiles), 512)
    acc = GaussianAccumulator(512)
    acc.update(acts)
    assert fcd_from_stats(ChemNetStats.of(acts), (acc.mean, acc.covariance)) == pytest.approx(0.0, abs=1e-4)
    assert fcd_from_stats(ChemNetStats.of(acts), ChemNetStats.of(acts)) >= 0.0  # clipped


@needs_fcd
def test_chemnet_stats_give_the_fcd(qm9_by_gdb):
    """fcd(a, b) is fcd_from_stats of the two sides' statistics; invalid entries are dropped and counted out;
    a set is at distance 0 from itself. (Far molecules scoring far: test_evaluate_fcd_against_the_qm9_test_split,
    against the full test split: with two sets of a few dozen molecules the small-sample bias dominates.)"""
    qm9 = list(qm9_by_gdb.values())
    a, b = qm9[1000:1024], qm9[2000:2024]
    sa = chemnet_stats(a + ["None", "not_a_smiles(", None, "  "])
    sb = chemnet_stats(b)
    assert sa.mu.shape == (512,) and sa.sigma.shape == (512, 512) and sa.n == 24 and sb.n == 24
    np.testing.assert_allclose(sa.sigma, sa.sigma.T, atol=1e-12)
    d = fcd_from_stats(sa, sb)
    assert d > 1 and d == pytest.approx(fcd(a, b), rel=1e-9)
    assert fcd_from_stats(sa, sa) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="the valid samples has 1 valid molecules"):
        chemnet_stats(["CCO", "None"], name="the valid samples")


@needs_fcd
def test_split_statistics_cache_round_trip_and_invalidation(tmp_path, qm9_by_gdb, monkeypatch, capsys):
    """The cached statistics equal freshly computed ones and are served without a ChemNet pass; a split whose
    processed content changed, and a cache file written for other content, are recomputed, never served."""
    csv_a = small_qm9_csv(tmp_path / "a.csv", qm9_by_gdb, slice(0, 40))
    csv_b = small_qm9_csv(tmp_path / "b.csv", qm9_by_gdb, slice(40, 80))
    test_a = QM9Dataset(tmp_path / "a", split="test", source="csv", csv_path=csv_a)
    test_b = QM9Dataset(tmp_path / "b", split="test", source="csv", csv_path=csv_b)
    assert len(test_a) == len(test_b) == 40
    capsys.readouterr()

    stats_a, path_a = split_chemnet_stats(test_a)
    line = capsys.readouterr().err.strip()
    assert line == (f"[sympe] FCD: computing the ChemNet statistics of 40 test molecules (once; about 1 s on a 2-core "
                    f"CPU; then cached in {path_a})")
    assert path_a.parent == tmp_path / "a" / "processed" / os.path.basename(test_a.processed_dir)
    assert path_a.name.startswith("fcd_chemnet_test-40-") and path_a.is_file()
    assert not list(path_a.parent.glob("*.tmp"))  # written atomically
    fresh_a = chemnet_stats(split_smiles(test_a))
    assert stats_a.n == fresh_a.n == 40
    np.testing.assert_allclose(stats_a.mu, fresh_a.mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats_a.sigma, fresh_a.sigma, rtol=1e-12, atol=1e-12)
    # the reference molecules are the split's own: sympe's graph -> SMILES gives QM9's molecules back
    assert split_smiles(test_a) == [canonical_smiles(qm9_by_gdb[int(g)]) for g in test_a._data.gdb_index]

    def no_chemnet(*args, **kwargs):
        raise AssertionError("a ChemNet pass although the statistics are cached")

    with monkeypatch.context() as m:
        m.setattr(mol_fcd, "chemnet_stats", no_chemnet)
        again, path = split_chemnet_stats(test_a)
    assert path == path_a and capsys.readouterr().err == ""
    assert np.array_equal(again.mu, stats_a.mu) and np.array_equal(again.sigma, stats_a.sigma) and again.n == 40

    # the processed split changes under the same folder: B's graphs in A's test.pt, recorded in the folder's
    # manifest as a rebuild would record them (an unrecorded change is rebuilt: tests/datasets/sources/test_base.py)
    shutil.copyfile(test_b.processed_paths[2], test_a.processed_paths[2])
    test_a.write_manifest()
    changed = QM9Dataset(tmp_path / "a", split="test", source="csv", csv_path=csv_a)
    assert changed.processed_dir == test_a.processed_dir and split_smiles(changed) == split_smiles(test_b)
    stats_c, path_c = split_chemnet_stats(changed)
    assert path_c != path_a and "the ChemNet statistics of 40 test molecules" in capsys.readouterr().err
    fresh_b = chemnet_stats(split_smiles(test_b))
    np.testing.assert_allclose(stats_c.mu, fresh_b.mu, rtol=1e-12, atol=1e-12)
    assert not np.allclose(stats_c.mu, stats_a.mu)

    # a cache file under the right name holding statistics of other content (A's) is checked on load, not served
    shutil.copyfile(path_a, path_c)
    stats_d, _ = split_chemnet_stats(changed, progress=False)
    np.testing.assert_allclose(stats_d.mu, fresh_b.mu, rtol=1e-12, atol=1e-12)
    path_c.write_bytes(path_c.read_bytes()[:100])  # truncated: recomputed too
    np.testing.assert_allclose(split_chemnet_stats(changed, progress=False)[0].sigma, fresh_b.sigma, rtol=1e-12,
                               atol=1e-12)


# ---------------------------------------------------------------------- scripts/evaluate.py
@needs_fcd
def test_evaluate_fcd_against_the_qm9_test_split(tmp_path, qm9_root, qm9_by_gdb):
    """The QM9 test split's own molecules (as QM9's table writes them) score FCD ~ 0 against the reference; far
    molecules score far more than the same number of QM9 molecules; the second run reuses the cached statistics.
    Pays one ChemNet pass over the 13,055 test molecules (~0.5-1 min) and one over the samples."""
    test = QM9Dataset(qm9_root, split="test")
    own = [qm9_by_gdb[int(g)] for g in test._data.gdb_index]
    (tmp_path / "test_split.smi").write_text("\n".join(own) + "\n")
    proc = evaluate(["samples=test_split.smi", "dataset=qm9"], tmp_path, qm9_root)
    m = last_json(proc)
    assert m["num_valid"] == len(own) == 13_055
    assert math.isfinite(m["fcd"]) and 0.0 <= m["fcd"] < 0.05
    assert m["fcd_reference"] == "test split (13,055 molecules)"
    assert not any("fcd" in w for w in m["warnings"])
    cached = list((qm9_root / "processed").glob("*/fcd_chemnet_test-13055-*.npz"))
    assert len(cached) == 1 and str(cached[0]) in proc.stderr

    (tmp_path / "far.smi").write_text("\n".join(FAR) + "\n")
    proc = evaluate(["samples=far.smi", "dataset=qm9", "fcd=true"], tmp_path, qm9_root)
    far = last_json(proc)
    assert "ChemNet statistics" not in proc.stderr  # the reference came from the cache
    reference, path = split_chemnet_stats(test)
    assert path == cached[0]
    control = fcd_from_stats(chemnet_stats(own[:len(FAR)]), reference)  # same size: same small-sample bias
    assert far["num_valid"] == len(FAR) and far["fcd"] > 2 * control > 0


@needs_fcd
def test_fewer_than_two_valid_samples_give_null_with_a_warning(tmp_path, qm9_root):
    (tmp_path / "one.smi").write_text("CCO\nNone\nC[Si]C\nnot_a_smiles(\n")
    m = last_json(evaluate(["samples=one.smi", "dataset=qm9", "fcd=true"], tmp_path, qm9_root))
    assert m["num_valid"] == 1 and m["fcd"] is None and m["fcd_reference"] is None
    assert [w for w in m["warnings"] if w.startswith("fcd:")] == [
        "fcd: not computed: 1 valid sample(s); the Fréchet ChemNet Distance needs at least 2 (a covariance)"]


def test_without_fcd_torch_auto_warns_and_true_fails(tmp_path, qm9_root):
    """fcd-torch hidden (an unimportable module first on PYTHONPATH): fcd=auto reports null with one warning
    naming the extra; fcd=true ends with one error line (status 2) before anything loads."""
    (tmp_path / "s.smi").write_text("CCO\nc1ccccc1\nCC(=O)O\n")
    m = last_json(evaluate(["samples=s.smi", "dataset=qm9"], tmp_path, qm9_root, hide_fcd_torch=True))
    assert m["num_valid"] == 3 and m["fcd"] is None and m["fcd_reference"] is None
    fcd_warnings = [w for w in m["warnings"] if "fcd" in w]
    assert len(fcd_warnings) == 1 and 'pip install "sympe[metrics]"' in fcd_warnings[0]
    assert "pip install fcd-torch" in fcd_warnings[0]

    proc = evaluate(["samples=s.smi", "dataset=qm9", "fcd=true"], tmp_path, tmp_path / "no_data", check=False,
                    hide_fcd_torch=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fcd=true needs the optional package fcd-torch")
    assert 'pip install "sympe[metrics]"' in lines[0]
    assert not (tmp_path / "no_data").exists()  # refused before any dataset was built
