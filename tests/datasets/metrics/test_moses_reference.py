"""MOSES reference statistics: one streaming pass, saved and loaded, cached per CSV."""
import numpy as np
import pytest

from support import BENZENE, DRUGS
from sympe.datasets.metrics import moses_reference as mm
from sympe.datasets.metrics.moses_descriptors import morgan_fingerprints, moses_mol


def fps_of(smiles):
    return morgan_fingerprints([moses_mol(s) for s in smiles])


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
