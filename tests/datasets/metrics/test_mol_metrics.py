"""Molecule sample-quality metrics: exact counts on crafted lists, real QM9 round trips, stability, FCD."""
import csv
import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem

from sympe.datasets.metrics.mol_metrics import (
    ALLOWED_BONDS,
    MoleculeMetrics,
    evaluate_smiles_file,
    fcd,
    frechet_distance,
    read_smiles_file,
    stable_atoms,
)
from sympe.datasets.molecules import (QM9_SPEC, QM9_SPEC_WITH_H, MoleculeSpec, canonical_smiles, graph_classes,
                                     mol_to_graph)

C, N, O, F, H = range(5)  # class indices of QM9_SPEC_WITH_H (the first four also of QM9_SPEC)


@pytest.fixture(scope="module")
def qm9_smiles(qm9_index_csv):
    with gzip.open(qm9_index_csv, "rt", newline="") as f:
        rows = [r["smiles"] for _, r in zip(range(500), csv.DictReader(f))]
    assert len(rows) == 500
    return rows


def _graphs(smiles_list, spec, remove_h, with_charges=False):
    out = []
    for s in smiles_list:
        atoms, bonds, charges = graph_classes(mol_to_graph(s, spec, remove_h=remove_h))
        out.append((atoms, bonds, charges) if with_charges else (atoms, bonds))
    return out


def _chain(atom_classes, bond_class=1):
    """A path graph over the given atoms, all bonds of one class."""
    n = len(atom_classes)
    bonds = np.zeros((n, n), dtype=np.int64)
    for i in range(n - 1):
        bonds[i, i + 1] = bonds[i + 1, i] = bond_class
    return np.asarray(atom_classes, dtype=np.int64), bonds


# ---------------------------------------------------------------------- SMILES input, exact counts
def test_valid_qm9_smiles_have_validity_one(qm9_smiles):
    r = MoleculeMetrics(QM9_SPEC, None).from_smiles(qm9_smiles[:200])
    assert r["num_samples"] == 200 and r["num_valid"] == 200 and r["validity"] == 1.0
    assert r["relaxed_validity"] == 1.0 and r["connected"] == 1.0 and r["validity_connected"] == 1.0
    assert r["novelty"] is None and r["vun"] is None  # no training set
    assert r["atom_stability"] is None and r["molecule_stability"] is None  # implicit H: undefined


def test_uniqueness_novelty_and_invalid_lines_exact():
    train = ["OCC", "C"]  # non-canonical on purpose: CCO is in the train set
    lines = ["CCO", "C(O)C", "CCN", "None", "garbage(", "", "c1ccccc1", "C1=CC=CC=C1", "CC.O", "C", "CN(C)(C)C",
             "", "  "]  # the last two (trailing blank) lines are not samples
    r = MoleculeMetrics(QM9_SPEC, train).from_smiles(lines)
    assert r["num_samples"] == 11
    # valid: CCO x2, CCN, benzene x2, CC.O (largest fragment CC), C -> 7
    assert r["num_valid"] == 7 and r["validity"] == pytest.approx(7 / 11)
    assert r["num_unique"] == 5 and r["uniqueness"] == pytest.approx(5 / 7)  # CCO, CCN, c1ccccc1, CC, C
    assert r["num_novel"] == 3 and r["novelty"] == pytest.approx(3 / 5)  # CCN, c1ccccc1, CC
    assert r["vun"] == pytest.approx(3 / 11)
    assert r["vun"] == pytest.approx(r["validity"] * r["uniqueness"] * r["novelty"])
    # disconnected CC.O: valid by DiGress's convention, not "valid and connected", not connected
    assert r["num_valid_connected"] == 6 and r["validity_connected"] == pytest.approx(6 / 11)
    # connected: all valid except CC.O (6) + CN(C)(C)C (parses unsanitized, one fragment) = 7
    assert r["num_connected"] == 7
    # a SMILES states its charges: nothing to relax
    assert r["num_relaxed_valid"] == 7 and r["uniqueness_relaxed"] == r["uniqueness"]


def test_disconnected_largest_fragment_convention():
    m = MoleculeMetrics(QM9_SPEC, ["CC"])
    r = m.from_smiles(["CC.O"])
    assert r["validity"] == 1.0 and r["validity_connected"] == 0.0 and r["connected"] == 0.0
    assert r["novelty"] == 0.0  # its largest fragment CC is in the training set
    # ties in size are broken by the smallest SMILES, whatever the atom order
    assert m.smiles_record("CO.CC").smiles == m.smiles_record("CC.OC").smiles == "CC"
    # a ring closure across '.' is one fragment
    assert m.smiles_record("C1.C1").connected


def test_blank_lines_and_none_objects():
    m = MoleculeMetrics(QM9_SPEC, None)
    assert m.from_smiles(["CCO", "", "CCO"])["num_samples"] == 3  # inner blank line: an invalid sample
    r = m.from_smiles(["CCO", None, "CCO ethanol"])  # None object: invalid; "SMILES name" lines read the SMILES
    assert r["num_samples"] == 3 and r["num_valid"] == 2
    with pytest.raises(ValueError, match="no samples"):
        m.from_smiles(["", " "])
    with pytest.raises(ValueError, match="not one string"):
        m.from_smiles("CCO")


def test_radical_smiles_is_invalid_like_a_graph():
    m = MoleculeMetrics(QM9_SPEC_WITH_H, None)
    assert m.smiles_record("[CH3]").smiles is None
    atoms, bonds = _chain([C, H, H, H])  # CH3 as an explicit-H graph: a radical
    bonds[:] = 0
    bonds[0, 1:] = bonds[1:, 0] = 1
    assert m.graph_record(atoms, bonds).smiles is None
    # DiGress fills missing hydrogens instead: then it is methane
    assert MoleculeMetrics(QM9_SPEC_WITH_H, None, fill_hydrogens=True).graph_record(atoms, bonds).smiles == "C"


def test_train_set_errors():
    with pytest.raises(ValueError, match="cannot be parsed"):
        MoleculeMetrics(QM9_SPEC, ["CCO", "xx("])
    with pytest.raises(ValueError, match="not one string"):
        MoleculeMetrics(QM9_SPEC, "CCO")


def test_elements_outside_spec_are_invalid_counted_and_named():
    r = MoleculeMetrics(QM9_SPEC, ["CCO"]).from_smiles(["CC[Si]C", "CCCl", "CCS.CCCl", "CCO", "[H]OCC"])
    # RDKit accepts all five; the first three use elements QM9 has not, so they are invalid for QM9;
    # written hydrogens are notation for an implicit-H dataset ([H]OCC is ethanol)
    assert r["num_valid"] == 2 and r["num_unique"] == 1 and r["num_novel"] == 0
    assert r["num_outside_spec"] == 3 and r["outside_spec_elements"] == {"Cl": 2, "S": 1, "Si": 1}
    assert len(r["warnings"]) == 1 and "Cl (2), S (1), Si (1)" in r["warnings"][0]
    assert r["relaxed_validity"] == 2 / 5
    # graphs given with element symbols (a DiGress dump) follow the same rule
    b = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    g = MoleculeMetrics(QM9_SPEC_WITH_H).from_graphs([(np.array(["C", "Si", "C"], dtype=object), b),
                                                      (np.array(["F", "F"], dtype=object), b[:2, :2])])
    assert g["num_valid"] == 1 and g["num_outside_spec"] == 1 and g["outside_spec_elements"] == {"Si": 1}
    assert g["num_atoms"] == 5 and g["num_stable_atoms"] == 2  # F-F stable; C, Si, C with 1-2 bonds are not
    assert MoleculeMetrics(QM9_SPEC).from_smiles(["CCO"])["warnings"] == []



def test_charged_classes_score_charges_as_classes():
    spec = MoleculeSpec(("C", "N", "N+", "O", "O-"), ("none", "single", "double"))
    m = MoleculeMetrics(spec, ["C[N+](C)(C)C"])
    # a charge the spec has no class for is foreign (the model could not write it); neutral atoms are not
    r = m.from_smiles(["C[N+](C)(C)C", "CC(=O)[O-]", "C[O+](C)C", "CCN"])
    assert r["num_valid"] == 3 and r["num_novel"] == 2 and r["outside_spec_elements"] == {"O+": 1}
    # a graph of class indices: N+ with four bonds is valid with no charge array (the class says +1)
    b = np.zeros((5, 5), dtype=np.int64)
    b[1, [0, 2, 3, 4]] = b[[0, 2, 3, 4], 1] = 1
    g = m.from_graphs([(np.array([0, 2, 0, 0, 0]), b), (np.array([0, 1, 0, 0, 0]), b)])
    assert g["num_valid"] == 1 and g["num_novel"] == 0  # neutral N with four bonds is not a molecule (strict)
    assert g["num_relaxed_valid"] == 2  # relaxed: the neutral one gets its +1 inferred


# ---------------------------------------------------------------------- graph input
def test_qm9_graph_round_trip_implicit_h(qm9_smiles):
    graphs = _graphs(qm9_smiles, QM9_SPEC, remove_h=True)
    r = MoleculeMetrics(QM9_SPEC, None).from_graphs(graphs)
    assert r["num_samples"] == 500
    assert r["validity"] == 1.0 and r["relaxed_validity"] == 1.0 and r["connected"] == 1.0
    # without charges and without explicit H a zwitterion ([NH2+]...[O-]) reads back as its neutral form
    m0 = MoleculeMetrics(QM9_SPEC, None)
    charged = [i for i, s in enumerate(qm9_smiles)
               if any(a.GetFormalCharge() for a in Chem.MolFromSmiles(s).GetAtoms())]
    assert charged
    for i in charged:
        got = m0.graph_record(*graphs[i]).smiles
        assert got != canonical_smiles(qm9_smiles[i]) and "+" not in got and "-" not in got
    # with their charges every molecule is valid and gives back its canonical SMILES
    m = MoleculeMetrics(QM9_SPEC, qm9_smiles)
    graphs_q = _graphs(qm9_smiles, QM9_SPEC, remove_h=True, with_charges=True)
    r = m.from_graphs(graphs_q)
    assert r["validity"] == 1.0 and r["connected"] == 1.0
    assert [m.graph_record(*g).smiles for g in graphs_q[:50]] == [canonical_smiles(s) for s in qm9_smiles[:50]]
    # real molecules against themselves: nothing is novel
    assert r["novelty"] == 0.0 and r["vun"] == 0.0 and r["novelty_relaxed"] == 0.0
    assert r["uniqueness"] == len({canonical_smiles(s) for s in qm9_smiles}) / 500


def test_qm9_graph_round_trip_explicit_h_stability(qm9_smiles):
    graphs = _graphs(qm9_smiles, QM9_SPEC_WITH_H, remove_h=False, with_charges=True)
    r = MoleculeMetrics(QM9_SPEC_WITH_H, None).from_graphs(graphs)
    assert r["validity"] == 1.0
    # direct count: the unstable atoms are exactly the charged ones (N+ with 4 bonds, O- with 1, C- with 3)
    n_atoms = sum(len(a) for a, _, _ in graphs)
    n_charged_atoms = sum(int((q != 0).sum()) for _, _, q in graphs)
    n_charged_mols = sum(bool((q != 0).any()) for _, _, q in graphs)
    assert n_charged_mols > 0
    assert r["num_atoms"] == n_atoms and r["num_stable_atoms"] == n_atoms - n_charged_atoms
    assert r["num_stable_molecules"] == 500 - n_charged_mols
    assert r["molecule_stability"] == pytest.approx((500 - n_charged_mols) / 500)
    # uncharged molecules alone: stability exactly 1
    neutral = [g for g in graphs if not (g[2] != 0).any()]
    r0 = MoleculeMetrics(QM9_SPEC_WITH_H, None).from_graphs(neutral)
    assert r0["atom_stability"] == 1.0 and r0["molecule_stability"] == 1.0
    # with use_charges the charged atoms satisfy CHARGED_ALLOWED_BONDS
    rq = MoleculeMetrics(QM9_SPEC_WITH_H, None, use_charges=True).from_graphs(graphs)
    assert rq["atom_stability"] == 1.0 and rq["molecule_stability"] == 1.0


def test_smiles_and_graph_inputs_agree(qm9_smiles):
    """The same molecules scored from SMILES and from graphs give identical metrics."""
    sample = qm9_smiles[:150] + qm9_smiles[:20] + ["CC.O", "C.C"]  # duplicates and disconnected ones
    train = qm9_smiles[100:300]
    with_h = [Chem.MolToSmiles(Chem.AddHs(Chem.MolFromSmiles(s))) for s in sample]  # every H written as [H]
    assert sum("[H]" in s for s in with_h) >= 165  # a few QM9 molecules have no H (e.g. O=C=O)
    for spec, remove_h, lines in ((QM9_SPEC, True, sample), (QM9_SPEC, True, with_h), (QM9_SPEC_WITH_H, False, with_h)):
        m = MoleculeMetrics(spec, train)
        from_graphs = m.from_graphs(_graphs(sample, spec, remove_h, with_charges=True))
        assert m.from_smiles(lines) == from_graphs
        assert from_graphs["num_valid_connected"] == len(sample) - 2


def test_explicit_h_smiles_count_only_written_hydrogens():
    """QM9 with H: a SMILES is the graph of its atoms and its written H; RDKit's implicit H are not added."""
    m = MoleculeMetrics(QM9_SPEC_WITH_H, None)
    r = m.from_smiles(["[H]C([H])([H])[H]", "[CH4]", "C", "[H]OC([H])([H])[H]", "[H]C([H])[H]"])
    # methane twice (two spellings, one molecule), bare C (no H: a carbon with no bonds), methanol with
    # CH3 missing nothing, CH3 radical
    assert r["num_valid"] == 3 and r["num_unique"] == 2
    assert r["num_atoms"] == 5 + 5 + 1 + 6 + 4
    assert r["num_stable_atoms"] == 5 + 5 + 0 + 6 + 3  # the CH3 carbon (sum 3) is unstable, its H are stable
    assert r["num_stable_molecules"] == 3 and r["molecule_stability"] == 3 / 5
    assert r["warnings"] == []
    # a file with no written H at all: everything is a radical, and a warning says what to do
    bare = m.from_smiles(["CCO", "C"])
    assert bare["validity"] == 0.0 and bare["molecule_stability"] == 0.0
    assert any("fill_hydrogens=true" in w for w in bare["warnings"])
    # fill_hydrogens lets RDKit complete the valences for validity only; stability stays on the written graph
    f = MoleculeMetrics(QM9_SPEC_WITH_H, None, fill_hydrogens=True).from_smiles(["CCO", "C", "[H]C([H])([H])[H]"])
    assert f["num_valid"] == 3 and f["num_unique"] == 2 and f["num_stable_molecules"] == 1


def test_pentavalent_carbon_invalid_and_tetravalent_nitrogen_relaxed():
    m = MoleculeMetrics(QM9_SPEC, None)
    # neopentane-like star with 5 carbons around a carbon: pentavalent centre
    atoms = np.zeros(6, dtype=np.int64)
    bonds = np.zeros((6, 6), dtype=np.int64)
    bonds[0, 1:] = bonds[1:, 0] = 1
    rec = m.graph_record(atoms, bonds)
    assert rec.smiles is None and rec.relaxed_smiles is None and rec.connected
    # nitrogen with four carbon neighbours: invalid strictly, valid relaxed (N+)
    atoms[0] = N
    bonds = bonds[:5, :5]
    atoms = atoms[:5]
    rec = m.graph_record(atoms, bonds)
    assert rec.smiles is None and rec.relaxed_smiles == "C[N+](C)(C)C"
    r = m.from_graphs([(atoms, bonds), (torch.from_numpy(atoms), torch.from_numpy(bonds))])
    assert r["validity"] == 0.0 and r["relaxed_validity"] == 1.0
    assert r["uniqueness"] is None and r["uniqueness_relaxed"] == 0.5  # no valid sample: undefined, not 0


def test_stability_explicit_h_graph_counts():
    m = MoleculeMetrics(QM9_SPEC_WITH_H, None)
    # CH3-CH3 with one H missing on the second carbon: that carbon is unstable (and the molecule a radical)
    atoms = np.array([C, C, H, H, H, H, H], dtype=np.int64)
    bonds = np.zeros((7, 7), dtype=np.int64)
    for u, v in [(0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6)]:
        bonds[u, v] = bonds[v, u] = 1
    r = m.from_graphs([(atoms, bonds)])
    assert r["num_atoms"] == 7 and r["num_stable_atoms"] == 6 and r["molecule_stability"] == 0.0
    assert r["validity"] == 0.0
    # aromatic class counts 1.5: a carbon with two aromatic bonds and one H sums to 4
    assert stable_atoms(["C", "C"], [1.5 + 1.5 + 1, 1.5 + 1.5]).tolist() == [True, False]
    assert stable_atoms(["P", "P", "P", "Xe"], [3, 5, 4, 0]).tolist() == [True, True, False, False]
    assert stable_atoms(["N", "N"], [4, 4], charges=[1, 0]).tolist() == [True, False]
    assert ALLOWED_BONDS["S"] == (4,)  # DiGress's table, kept as is


def test_unparsable_smiles_is_unstable_molecule_without_atoms():
    r = MoleculeMetrics(QM9_SPEC_WITH_H, None).from_smiles(["[CH4]", "garbage(", "None"])
    assert r["num_atoms"] == 5 and r["num_stable_atoms"] == 5
    assert r["num_stable_molecules"] == 1 and r["molecule_stability"] == pytest.approx(1 / 3)


def test_malformed_graphs_raise():
    m = MoleculeMetrics(QM9_SPEC, None)
    atoms, bonds = _chain([C, C, O])
    bad = bonds.copy()
    bad[0, 1] = 2  # asymmetric
    with pytest.raises(ValueError, match="sample 1.*symmetric"):
        m.from_graphs([(atoms, bonds), (atoms, bad)])
    with pytest.raises(ValueError, match="sample 0"):
        m.from_graphs([(atoms, bonds[:2, :2])])
    with pytest.raises(ValueError, match="must be a tuple"):
        m.from_graphs([atoms])
    with pytest.raises(ValueError, match="atom_classes must lie"):
        m.graph_record(np.array([C, 7]), np.zeros((2, 2), dtype=np.int64))


def test_permutation_invariance_of_records(qm9_smiles):
    m = MoleculeMetrics(QM9_SPEC_WITH_H, None)
    rng = np.random.default_rng(0)
    extra = [(np.array([C, O, C, C], dtype=np.int64),) + _chain([C, O, C, C])[1:]]  # not a molecule (no H)
    for atoms, bonds, q in _graphs(qm9_smiles[:40:4], QM9_SPEC_WITH_H, False, True) + [e + (None,) for e in extra]:
        atoms, bonds = np.asarray(atoms), np.asarray(bonds)
        p = rng.permutation(len(atoms))
        a = m.graph_record(atoms, bonds, q)
        b = m.graph_record(atoms[p], bonds[np.ix_(p, p)], None if q is None else np.asarray(q)[p])
        assert (a.smiles, a.relaxed_smiles, a.connected, a.single_fragment) == \
            (b.smiles, b.relaxed_smiles, b.connected, b.single_fragment)
        assert sorted(a.atom_stable.tolist()) == sorted(b.atom_stable.tolist())


# ---------------------------------------------------------------------- files
def test_evaluate_smiles_file(tmp_path, qm9_smiles):
    path = tmp_path / "samples.smi"
    path.write_text("\n".join(qm9_smiles[:30] + ["None", "CC.O"]) + "\n\n")
    r = evaluate_smiles_file(path, QM9_SPEC, qm9_smiles[:10])
    assert r["num_samples"] == 32 and r["num_valid"] == 31
    train = {canonical_smiles(s) for s in qm9_smiles[:10]}
    assert "CC" in train  # so the largest fragment of CC.O is not novel
    assert r["num_novel"] == len({canonical_smiles(s) for s in qm9_smiles[:30]} - train) == 20
    assert read_smiles_file(path)[-1] == "CC.O"
    empty = tmp_path / "empty.smi"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.smi.*empty"):
        evaluate_smiles_file(empty, QM9_SPEC, None)
    npz = tmp_path / "graphs.npz"
    np.savez(npz, a=np.arange(3))
    with pytest.raises(ValueError, match="graphs.npz.*arrays"):
        evaluate_smiles_file(npz, QM9_SPEC, None)
    latin = tmp_path / "latin.smi"
    latin.write_bytes("CCO \xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_smiles_file(latin)


# ---------------------------------------------------------------------- FCD
def test_frechet_distance_matches_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=3), rng.normal(size=3)
    # commuting (diagonal) covariances: Tr((S1 S2)^1/2) = sum sqrt(d1 d2)
    d1, d2 = rng.uniform(0.5, 2, size=3), rng.uniform(0.5, 2, size=3)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-10)
    a = rng.normal(size=(4, 4))
    s = a @ a.T + np.eye(4)
    assert frechet_distance(mu1[:1].repeat(4), s, mu1[:1].repeat(4), s) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(mu1, np.eye(3), mu2[:2], np.eye(2))


def test_fcd_missing_package_names_pip(monkeypatch):
    monkeypatch.setitem(sys.modules, "fcd_torch", None)  # makes `import fcd_torch` raise ImportError
    with pytest.raises(ImportError, match="pip install fcd-torch"):
        fcd(["CCO", "CCN"], ["CCO", "CCN"])


HAS_FCD = importlib.util.find_spec("fcd_torch") is not None


@pytest.mark.skipif(not HAS_FCD, reason="optional extra fcd-torch not installed (pip install fcd-torch)")
def test_fcd_agrees_with_fcd_torch(qm9_smiles):
    from fcd_torch import FCD

    a = [canonical_smiles(s) for s in qm9_smiles[:12]]
    b = [canonical_smiles(s) for s in qm9_smiles[300:312]]
    ours = fcd(a, b)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = FCD(device="cpu", n_jobs=1, canonize=False)(a, b)
    assert ours > 0 and ours == pytest.approx(ref, rel=1e-5)
    assert fcd(a, a) == pytest.approx(0.0, abs=1e-3)
    # invalid entries are dropped, valid ones canonicalized
    assert fcd(a + ["None", "garbage(", None], [Chem.MolToSmiles(Chem.MolFromSmiles(s), doRandom=True)
                                              for s in b]) == pytest.approx(ours, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        fcd(["CCO", "None"], b)


def test_fcd_is_clipped_at_zero(monkeypatch):
    """Round-off can make the Fréchet distance of a set with itself slightly negative; fcd() reports 0."""
    import types

    from sympe.datasets.metrics import fcd as mol_fcd

    class Fake:
        def get_predictions(self, smiles):
            return np.arange(len(smiles) * 3, dtype=float).reshape(len(smiles), 3) % 5

    monkeypatch.setitem(sys.modules, "fcd_torch", types.ModuleType("fcd_torch"))
    monkeypatch.setattr(mol_fcd, "_chemnet_model", lambda device, batch, canonize: Fake())
    monkeypatch.setattr(mol_fcd, "frechet_distance", lambda *a: -2e-6)
    assert fcd(["CCO", "CCN", "CCC"], ["CCO", "CCN", "CCC"]) == 0.0
    monkeypatch.setattr(mol_fcd, "frechet_distance", lambda *a: 1.25)
    assert fcd(["CCO", "CCN", "CCC"], ["CCO", "CCN", "CCC"]) == 1.25
