"""MOSES metric suite: the suite on a handful of molecules against values computed by hand, its FCD, and
``scripts/evaluate.py dataset=moses``."""
import math

import pytest

from support import BIPHENYL, DRUGS, installed
from sympe.datasets.metrics import moses_metrics as mm
from sympe.datasets.metrics.moses_descriptors import (canonical, cosine_similarity, fragment_counts, morgan_fingerprints,
                                                      moses_mol, snn)
from sympe.datasets.metrics.moses_reference import MosesReference

needs_molsets = pytest.mark.skipif(not installed("molsets"), reason="filters read molsets's SMARTS files "
                                   "(`pip install --no-deps molsets==0.3.1`)")
needs_fcd = pytest.mark.skipif(not installed("fcd-torch"), reason="FCD needs fcd-torch")


@needs_molsets
def test_suite_by_hand(tmp_path):
    ref = MosesReference.from_smiles(DRUGS[:4], fcd=False)
    train = {canonical(s) for s in DRUGS[4:]}
    # 8 samples: 2 invalid, 6 valid of which 5 unique (salicylic acid is written two ways);
    # DRUGS[4] and DRUGS[5] are train molecules, so 3 of the 5 unique molecules are novel
    samples = [DRUGS[0], "C1CC", DRUGS[0], "None", DRUGS[4], "OC(=O)c1ccccc1O", DRUGS[5], DRUGS[1]]
    out = mm.moses_metrics(samples, {"Test": ref}, train, unique_at=(2, 10))
    assert out["valid"] == pytest.approx(6 / 8) and out["num_valid"] == 6
    assert out["unique@2"] == pytest.approx(1 / 2)  # the first two valid samples are the same molecule
    assert out["unique@10"] == pytest.approx(5 / 6)
    assert any("unique@10: only 6" in w for w in out["warnings"])
    assert out["Novelty"] == pytest.approx(3 / 5)
    valid = [s for s in samples if moses_mol(s) is not None]
    assert out["Filters"] == 1.0 and "FCD/Test" not in out
    mols = [moses_mol(s) for s in valid]
    assert out["Frag/Test"] == pytest.approx(cosine_similarity(ref.frag, fragment_counts(mols)))
    assert out["SNN/Test"] == pytest.approx(snn(morgan_fingerprints(mols), ref.fps))
    # the reference against itself
    self_out = mm.moses_metrics(DRUGS[:4], {"Test": ref})
    assert self_out["SNN/Test"] == pytest.approx(1.0) and self_out["Frag/Test"] == pytest.approx(1.0)
    assert "Novelty" not in self_out
    none_valid = mm.moses_metrics(["xx", ""], {"Test": ref})
    assert none_valid["valid"] == 0.0 and math.isnan(none_valid["SNN/Test"]) and math.isnan(none_valid["IntDiv"])
    with pytest.raises(ValueError, match="non-empty list"):
        mm.moses_metrics("CCO", {"Test": ref})


@needs_molsets  # moses_metrics scores MOSES's filters too, whose SMARTS are molsets's data files
@needs_fcd
def test_fcd_of_the_suite_against_a_reference_of_the_same_set_is_zero():
    smiles = DRUGS * 4
    ref = MosesReference.from_smiles(smiles, fcd=True)
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
