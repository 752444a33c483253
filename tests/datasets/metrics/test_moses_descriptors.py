"""MOSES's molecule descriptors: Tanimoto similarities (SNN, IntDiv), fingerprints, fragments and scaffolds, each
against values computed by hand (or by an independent RDKit routine) on a handful of molecules."""
import math

import numpy as np
import pytest
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator

from support import ANISOLE, BENZENE, BIPHENYL, DRUGS, NAPHTHALENE, TOLUENE
from sympe.datasets.metrics import moses_descriptors as mm


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
