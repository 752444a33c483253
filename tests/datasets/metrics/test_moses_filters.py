"""MOSES's dataset filters: each reason for failing on a molecule chosen for it."""
import pytest

from support import ANISOLE, BIPHENYL, installed
from sympe.datasets.metrics import moses_filters as mm
from sympe.datasets.metrics.moses_descriptors import moses_mol

needs_molsets = pytest.mark.skipif(not installed("molsets"), reason="filters read molsets's SMARTS files "
                                   "(`pip install --no-deps molsets==0.3.1`)")


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
        assert mm.filter_failure(moses_mol(smiles)) == why, smiles
    assert mm.filter_failure(None) == "invalid"
    assert all(mm.passes_filters(moses_mol(s)) for s in ["CC(=O)Nc1ccc(O)cc1", ANISOLE, BIPHENYL])
