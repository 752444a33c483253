"""MOSES metric suite: each metric against values computed by hand (or by an independent RDKit routine) on a
handful of molecules."""
import importlib.metadata
import math

import numpy as np
import pytest
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator

from sympe.datasets.metrics import moses_metrics as mm

ANISOLE, BENZENE, TOLUENE = "COc1ccccc1", "c1ccccc1", "Cc1ccccc1"
NAPHTHALENE, BIPHENYL = "c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1"
DRUGS = ["CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "CN1CCC[C@H]1c1cccnc1", "O=C(O)c1ccccc1O",
         "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "CCOC(=O)c1ccccc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "OCC1OC(O)C(O)C(O)C1O"]


def _installed(pkg):
    try:
        importlib.metadata.distribution(pkg)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_molsets = pytest.mark.skipif(not _installed("molsets"), reason="filters read molsets's SMARTS files "
                                   "(`pip install --no-deps molsets==0.3.1`)")
needs_fcd = pytest.mark.skipif(not _installed("fcd-torch"), reason="FCD needs fcd-torch")


def packed(*bit_sets):
    rows = np.zeros((len(bit_sets), mm.MORGAN_BITS), dtype=np.uint8)
    for i, bits in enumerate(bit_sets):
        rows[i, list(bits)] = 1
    return np.packbits(rows, axis=1)


def fps_of(smiles):
    return mm.morgan_fingerprints([mm.moses_mol(s) for s in smiles])


def test_tanimoto_by_hand():
    g = packed({0, 1, 2}, set())
    r = packed({0, 1}, {2, 3, 4}, set())
    # T({0,1,2},{0,1}) = 2/3, T({0,1,2},{2,3,4}) = 1/5, T(x, {}) = 0 for x nonempty, T({}, {}) = 1 (0/0)
    assert mm.tanimoto_aggregate(g, r, "max") == pytest.approx([2 / 3, 1.0])
    assert mm.tanimoto_aggregate(g, r, "mean") == pytest.approx([(2 / 3 + 1 / 5) / 3, 1 / 3])
    assert mm.tanimoto_aggregate(g, r, "mean", p=2) == pytest.approx([math.sqrt((4 / 9 + 1 / 25) / 3), math.sqrt(1 / 3)])
    # chunking does not change the result
    assert mm.tanimoto_aggregate(g, r, "mean", batch_size=1) == pytest.approx(mm.tanimoto_aggregate(g, r, "mean"))
    with pytest.raises(ValueError, match="agg"):
        mm.tanimoto_aggregate(g, r, "min")


def test_fingerprints_and_snn_against_rdkit():
    fps = fps_of(DRUGS)
    assert fps.shape == (len(DRUGS), 128) and fps.dtype == np.uint8
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    bv = [gen.GetFingerprint(mm.moses_mol(s)) for s in DRUGS]
    sim = np.array([DataStructs.BulkTanimotoSimilarity(b, bv) for b in bv])  # RDKit's own Tanimoto
    assert mm.snn(fps, fps) == pytest.approx(1.0)  # every molecule is its own nearest neighbour
    gen_half, ref_half = fps[:4], fps[4:]
    assert mm.snn(gen_half, ref_half) == pytest.approx(sim[:4, 4:].max(1).mean())
    assert mm.internal_diversity(fps) == pytest.approx(1 - sim.mean())
    assert mm.internal_diversity(fps, p=2) == pytest.approx(1 - np.sqrt((sim ** 2).mean(1)).mean())


def test_internal_diversity_of_identical_and_of_two_molecules():
    assert mm.internal_diversity(fps_of([BIPHENYL] * 5)) == pytest.approx(0.0, abs=1e-12)
    assert mm.internal_diversity(fps_of([BIPHENYL] * 5), p=2) == pytest.approx(0.0, abs=1e-12)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    t = DataStructs.TanimotoSimilarity(gen.GetFingerprint(mm.moses_mol(ANISOLE)), gen.GetFingerprint(mm.moses_mol(TOLUENE)))
    fps = fps_of([ANISOLE, TOLUENE])  # pairs (a,a), (a,t), (t,a), (t,t)
    assert mm.internal_diversity(fps) == pytest.approx(1 - (2 + 2 * t) / 4)
    assert mm.internal_diversity(fps, p=2) == pytest.approx(1 - math.sqrt((1 + t * t) / 2))


def test_fragments_by_hand():
    # BRICS cuts the aryl ether O-c bond of anisole (L3-L16); benzene has no BRICS bond
    assert sorted(mm.brics_fragments(mm.moses_mol(ANISOLE))) == ["[16*]c1ccccc1", "[3*]OC"]
    assert mm.brics_fragments(mm.moses_mol(BENZENE)) == ["c1ccccc1"]
    gen = mm.fragment_counts(mm.moses_mol(s) for s in [ANISOLE, ANISOLE, BENZENE])
    assert gen == {"[16*]c1ccccc1": 2, "[3*]OC": 2, "c1ccccc1": 1}
    ref = mm.fragment_counts([mm.moses_mol(ANISOLE)])
    assert mm.cosine_similarity(ref, gen) == pytest.approx(4 / (3 * math.sqrt(2)))  # <(1,1,0),(2,2,1)> / (√2 · 3)


def test_scaffolds_by_hand():
    # toluene's scaffold (benzene) has one ring: MOSES leaves it out (min_rings=2)
    assert mm.murcko_scaffold(mm.moses_mol(TOLUENE)) is None
    assert mm.murcko_scaffold(mm.moses_mol(TOLUENE), min_rings=1) == BENZENE
    assert mm.murcko_scaffold(mm.moses_mol("CCc1ccc(-c2ccccc2)cc1")) == BIPHENYL
    gen = mm.scaffold_counts(mm.moses_mol(s) for s in [NAPHTHALENE, "CCc1ccc(-c2ccccc2)cc1", TOLUENE])
    assert gen == {NAPHTHALENE: 1, BIPHENYL: 1}
    ref = mm.scaffold_counts(mm.moses_mol(s) for s in [BIPHENYL, "Oc1ccc(-c2ccccc2)cc1"])
    assert ref == {BIPHENYL: 2}
    assert mm.cosine_similarity(ref, gen) == pytest.approx(2 / (2 * math.sqrt(2)))
    assert math.isnan(mm.cosine_similarity(ref, mm.scaffold_counts([mm.moses_mol(TOLUENE)])))


@needs_molsets
def test_filters():
    names = [n for n, _ in mm.filter_patterns()]
    assert len(names) == 22 + 480 and names[0] == "MCF1"
    cases = {
        "O=C1NC(=S)SC1=Cc1ccccc1": "<regId=ene_rhod_A(235)>",  # 5-benzylidene rhodanine, a textbook PAINS
        "CCCl": "MCF4",  # CH2 between a carbon and a halogen (alkylating agent)
        "C[N+](C)(C)C": "charge",
        "C1CCCCCCC1": "ring>=8",
        "CCP": "atom P",
        "C1CCCCCC1": None,  # a 7-ring is allowed
    }
    for smiles, why in cases.items():
        assert mm.filter_failure(mm.moses_mol(smiles)) == why, smiles
    assert mm.filter_failure(None) == "invalid"
    assert all(mm.passes_filters(mm.moses_mol(s)) for s in ["CC(=O)Nc1ccc(O)cc1", ANISOLE, BIPHENYL])


def test_gaussian_accumulator_matches_numpy():
    x = np.random.default_rng(0).normal(size=(103, 6)) * [1, 2, 3, 4, 5, 6] + 7
    acc = mm.GaussianAccumulator(6)
    for lo, hi in [(0, 1), (1, 40), (40, 40), (40, 103)]:
        acc.update(x[lo:hi])
    assert acc.n == 103
    np.testing.assert_allclose(acc.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(acc.covariance, np.cov(x.T), rtol=1e-10)


def test_reference_save_load_roundtrip(tmp_path):
    with pytest.warns(UserWarning, match="skipped 1 SMILES"):
        ref = mm.MosesReference.from_smiles(DRUGS + ["not a smiles"], fcd=False, chunk=3)
    assert ref.n == len(DRUGS) and ref.fcd_mu is None
    np.testing.assert_array_equal(ref.fps, fps_of(DRUGS))
    ref.save(tmp_path / "r.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]  # no temporary left behind
    back = mm.MosesReference.load(tmp_path / "r.npz")
    assert back.n == ref.n and back.frag == ref.frag and back.scaf == ref.scaf
    np.testing.assert_array_equal(back.fps, ref.fps)
    with pytest.raises(ValueError, match="at least 2"):
        mm.MosesReference.from_smiles([BENZENE], fcd=False)


def test_reference_statistics_cache(tmp_path):
    csv = tmp_path / "test.csv"
    csv.write_text("SMILES\n" + "\n".join(DRUGS) + "\n")
    a = mm.reference_statistics(csv, tmp_path / "cache", fcd=False, progress=False)
    cached = list((tmp_path / "cache").glob("test-*.npz"))
    assert len(cached) == 1
    b = mm.reference_statistics(csv, tmp_path / "cache", fcd=False, progress=False)
    assert b.frag == a.frag and (b.fps == a.fps).all()
    (tmp_path / "bad.csv").write_text("smiles\nC\n")
    with pytest.raises(ValueError, match="'SMILES' column"):
        mm.reference_statistics(tmp_path / "bad.csv", tmp_path / "cache", fcd=False, progress=False)


@needs_molsets
def test_suite_by_hand(tmp_path):
    ref = mm.MosesReference.from_smiles(DRUGS[:4], fcd=False)
    train = {mm.canonical(s) for s in DRUGS[4:]}
    # 8 samples: 2 invalid, 6 valid of which 5 unique (salicylic acid is written two ways);
    # DRUGS[4] and DRUGS[5] are train molecules, so 3 of the 5 unique molecules are novel
    samples = [DRUGS[0], "C1CC", DRUGS[0], "None", DRUGS[4], "OC(=O)c1ccccc1O", DRUGS[5], DRUGS[1]]
    out = mm.moses_metrics(samples, {"Test": ref}, train, unique_at=(2, 10))
    assert out["valid"] == pytest.approx(6 / 8) and out["num_valid"] == 6
    assert out["unique@2"] == pytest.approx(1 / 2)  # the first two valid samples are the same molecule
    assert out["unique@10"] == pytest.approx(5 / 6)
    assert any("unique@10: only 6" in w for w in out["warnings"])
    assert out["Novelty"] == pytest.approx(3 / 5)
    valid = [s for s in samples if mm.moses_mol(s) is not None]
    assert out["Filters"] == 1.0 and "FCD/Test" not in out
    mols = [mm.moses_mol(s) for s in valid]
    assert out["Frag/Test"] == pytest.approx(mm.cosine_similarity(ref.frag, mm.fragment_counts(mols)))
    assert out["SNN/Test"] == pytest.approx(mm.snn(mm.morgan_fingerprints(mols), ref.fps))
    # the reference against itself
    self_out = mm.moses_metrics(DRUGS[:4], {"Test": ref})
    assert self_out["SNN/Test"] == pytest.approx(1.0) and self_out["Frag/Test"] == pytest.approx(1.0)
    assert "Novelty" not in self_out
    none_valid = mm.moses_metrics(["xx", ""], {"Test": ref})
    assert none_valid["valid"] == 0.0 and math.isnan(none_valid["SNN/Test"]) and math.isnan(none_valid["IntDiv"])
    with pytest.raises(ValueError, match="non-empty list"):
        mm.moses_metrics("CCO", {"Test": ref})


@needs_fcd
def test_fcd_of_a_set_with_itself_is_zero():
    smiles = DRUGS * 4
    acts = mm.chemnet_activations(smiles)
    assert acts.shape == (len(smiles), 512)
    acc = mm.GaussianAccumulator(512)
    acc.update(acts)
    assert mm.frechet(acts.mean(0), np.cov(acts.T), acc.mean, acc.covariance) == pytest.approx(0.0, abs=1e-4)
    assert mm.frechet(acts.mean(0), np.cov(acts.T), acts.mean(0), np.cov(acts.T)) >= 0.0  # clipped


@needs_molsets  # moses_metrics scores MOSES's filters too, whose SMARTS are molsets's data files
@needs_fcd
def test_fcd_of_the_suite_against_a_reference_of_the_same_set_is_zero():
    smiles = DRUGS * 4
    ref = mm.MosesReference.from_smiles(smiles, fcd=True)
    out = mm.moses_metrics(smiles, {"Test": ref})
    assert 0.0 <= out["FCD/Test"] < 1e-3
    other = mm.moses_metrics(["CCCCCCCC", "CCCCCCO", "CCCCCC(C)C", "OCCCCO"] * 3, {"Test": ref})
    assert other["FCD/Test"] > 1.0  # alkanes and diols are far from the drugs


@needs_molsets
@needs_fcd
def test_evaluate_script_scores_a_moses_smiles_file(tmp_path):
    """scripts/evaluate.py dataset=moses: MOSES's suite from the CSVs alone (no graph processing)."""
    import json
    import os
    import subprocess
    import sys

    from support import REPO

    data = tmp_path / "moses_csv"
    data.mkdir()
    for name, rows in {"train": DRUGS[:4], "test": DRUGS[2:6], "test_scaffolds": DRUGS[4:]}.items():
        (data / f"{name}.csv").write_text("SMILES\n" + "\n".join(rows) + "\n")
    (tmp_path / "gen.smi").write_text("\n".join([DRUGS[0], DRUGS[5], "C1CC", BIPHENYL]) + "\n")
    env = {**os.environ, "SYMPE_DATA_ROOT": str(tmp_path / "root"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), "samples=gen.smi", "dataset=moses",
                           f"dataset_params={{source: local, data_dir: {data}}}", "device=cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["num_samples"] == 4 and m["valid"] == pytest.approx(3 / 4)
    assert m["Novelty"] == pytest.approx(2 / 3)  # DRUGS[0] is a train molecule
    for key in ("FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test", "Scaf/TestSF", "IntDiv", "IntDiv2"):
        assert key in m, key
    assert m["FCD/Test"] >= 0.0 and m["Filters"] == 1.0
    assert not (tmp_path / "root" / "processed").exists()  # the graphs were never built
    assert len(list((tmp_path / "root" / "moses_metrics").glob("test-*.npz"))) == 1
