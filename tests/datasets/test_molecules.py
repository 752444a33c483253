"""Molecule <-> graph conversion: sizes, one-hot layout, charges, explicit hydrogens, validity."""
import numpy as np
import pytest
import torch
from rdkit import Chem

from sympe.datasets.molecules import (
    BOND_CLASSES,
    BOND_ORDERS,
    MOSES_SPEC,
    QM9_SPEC,
    QM9_SPEC_WITH_H,
    MoleculeSpec,
    bond_order_sums,
    build_molecule,
    canonical_smiles,
    graph_classes,
    graph_to_mol,
    graph_to_smiles,
    infer_formal_charges,
    mol_to_graph,
    mol_to_smiles,
    sanitized_mol_to_smiles,
)

TRICKY = [
    "C", "CC#N", "c1ccccc1", "c1cc[nH]c1", "O=c1cc[nH]cn1", "[NH3+]CCC([O-])=O", "NC(=[NH2+])C([O-])=O",
    "[C-]#[N+]C", "C[NH+]=C(N)C([O-])=O", "FC(F)(F)C1CC1", "OC1COC1", "C1=CC2CC1O2", "N#CC#N", "c1cnoc1",
    "[CH-]=C=O", "CC(=O)[N-]C",
]


def _ref(smiles):
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=False)


# ---------------------------------------------------------------------- spec
def test_spec_tables_follow_classes():
    spec = MoleculeSpec(("F", "C", "H"))
    assert spec.valencies == (1, 4, 1)
    assert spec.weights == pytest.approx((18.998, 12.011, 1.008), abs=1e-3)
    assert spec.explicit_h and not QM9_SPEC.explicit_h
    assert spec.bond_orders == BOND_ORDERS == (0.0, 1.0, 2.0, 3.0, 1.5)
    assert MOSES_SPEC.valencies == (4, 3, 2, 2, 1, 1, 1)
    with pytest.raises(ValueError, match="duplicates"):
        MoleculeSpec(("C", "C"))
    with pytest.raises(ValueError, match="Xx"):
        MoleculeSpec(("C", "Xx"))
    with pytest.raises(ValueError, match="not one of the atom classes"):
        QM9_SPEC.atom_index("S")


def test_charged_classes_and_bond_prefixes():
    spec = MoleculeSpec(("C", "N", "N+", "O", "O-", "S", "Cl"), ("none", "single", "double"))
    assert spec.elements == ("C", "N", "N", "O", "O", "S", "Cl")
    assert spec.class_charges == (0, 0, 1, 0, -1, 0, 0)
    assert spec.valencies == (4, 3, 4, 2, 1, 2, 1)  # a charged atom: the valence of its isoelectronic element
    assert spec.weights[1] == spec.weights[2] and spec.bond_orders == (0.0, 1.0, 2.0)
    assert spec.class_index("N", 1) == 2 and spec.class_index("O", -1) == 4 and spec.class_index("S", 1) is None
    assert QM9_SPEC.class_index("N", 1) == 1  # neutral names only: any charge goes to the element's class
    info = type("Info", (), {"node_classes": list(spec.atom_classes), "edge_classes": list(spec.bond_classes)})
    assert MoleculeSpec.from_info(info) == spec
    assert MoleculeSpec(("Se", "Na+")).valencies == (2, 0)  # RDKit's default valences (Na+ like Ne)
    for classes, bonds, match in [(("C", "N+1"), BOND_CLASSES, "not an element symbol with an optional charge"),
                                  (("C", "Zn"), BOND_CLASSES, r"no valence known for atom classes \['Zn'\]"),
                                  (("C",), ("none", "double"), "must be a prefix"), (("C",), ("none",), "prefix")]:
        with pytest.raises(ValueError, match=match):
            MoleculeSpec(classes, bonds)


def test_charged_classes_carry_the_charge_through_graphs():
    spec = MoleculeSpec(("C", "N+", "O", "O-"), BOND_CLASSES[:3])
    for smiles in ["[NH3+]CCC([O-])=O", "C[N+](C)(C)C", "O=[N+]([O-])C=C"]:
        g = mol_to_graph(smiles, spec, remove_h=True)
        assert g.edge_attr.shape[1] == 3
        names = [spec.atom_classes[k] for k in g.x.argmax(1).tolist()]
        assert [spec.class_charges[spec.atom_classes.index(a)] for a in names] == g.charge.tolist()
        atoms, bonds, _ = graph_classes(g)
        # without the charge array the classes give the charges back: the same molecule
        assert mol_to_smiles(graph_to_mol(atoms, bonds, spec)) == _ref(smiles)
        assert infer_formal_charges(atoms, bonds, spec).tolist() == g.charge.tolist()
    with pytest.raises(ValueError, match=r"atom class 'N\+' of molecule C\[N\+\]"):
        mol_to_graph("C[N+](C)(C)C", MoleculeSpec(("C", "N", "O-")), remove_h=True)
    with pytest.raises(ValueError, match="bond type TRIPLE .* not one of \\['single', 'double'\\]"):
        mol_to_graph("C#C", spec, remove_h=True)


# ---------------------------------------------------------------------- mol -> graph
@pytest.mark.parametrize("smiles", ["CC(=O)O", "c1ccccc1", "[NH3+]CCC([O-])=O", "C#N"])
def test_graph_layout(smiles):
    mol = Chem.MolFromSmiles(smiles)
    g = mol_to_graph(mol, QM9_SPEC, remove_h=True)
    n, m = mol.GetNumAtoms(), mol.GetNumBonds()
    assert g.num_nodes == n and g.x.shape == (n, 4) and g.charge.shape == (n,)
    assert g.edge_index.shape == (2, 2 * m) and g.edge_attr.shape == (2 * m, 5)
    assert torch.equal(g.x.sum(1), torch.ones(n)) and torch.equal(g.edge_attr.sum(1), torch.ones(2 * m))
    assert g.edge_attr[:, 0].sum() == 0  # "no bond" never appears in sparse form
    assert g.edge_attr[:, 4].sum() == 0  # kekulized: aromatic class unused
    # both directions, same class, no self loops
    pairs = {(int(u), int(v)): int(c) for (u, v), c in zip(g.edge_index.t(), g.edge_attr.argmax(1))}
    assert all(pairs[(v, u)] == c for (u, v), c in pairs.items()) and all(u != v for u, v in pairs)
    # bond order sums equal RDKit's explicit valence of the kekulized molecule
    atoms, bonds, _ = graph_classes(g)
    kek = Chem.Mol(mol)
    Chem.Kekulize(kek, clearAromaticFlags=True)
    assert bond_order_sums(atoms, bonds, QM9_SPEC).tolist() == [
        sum(b.GetBondTypeAsDouble() for b in a.GetBonds()) for a in kek.GetAtoms()]


def test_benzene_kekule_counts_and_charges():
    g = mol_to_graph("c1ccccc1", QM9_SPEC, remove_h=True)
    assert g.edge_attr.sum(0).tolist() == [0, 6, 6, 0, 0]  # 3 single + 3 double bonds, both directions
    g = mol_to_graph("[NH3+]CCC([O-])=O", QM9_SPEC, remove_h=True)
    sym = [QM9_SPEC.atom_classes[k] for k in g.x.argmax(1).tolist()]
    assert dict(zip(sym, g.charge.tolist()))["N"] == 1
    assert sorted(g.charge.tolist()) == [-1, 0, 0, 0, 0, 1]  # N C C C O O


@pytest.mark.parametrize("smiles", TRICKY)
def test_explicit_hydrogen_counts(smiles):
    mol = Chem.MolFromSmiles(smiles)
    g = mol_to_graph(mol, QM9_SPEC_WITH_H, remove_h=False)
    h = QM9_SPEC_WITH_H.atom_index("H")
    cls = g.x.argmax(1)
    heavy = (cls != h).nonzero().flatten()
    assert len(heavy) == mol.GetNumAtoms()  # AddHs appends hydrogens after the heavy atoms
    assert int((cls == h).sum()) == sum(a.GetTotalNumHs() for a in mol.GetAtoms())
    for i, atom in zip(heavy.tolist(), mol.GetAtoms()):
        nbrs = g.edge_index[1][g.edge_index[0] == i]
        assert int((cls[nbrs] == h).sum()) == atom.GetTotalNumHs()
        assert int(g.charge[i]) == atom.GetFormalCharge()


def test_mol_to_graph_does_not_modify_input():
    mol = Chem.MolFromSmiles("c1ccccc1")
    before = Chem.MolToSmiles(mol)
    mol_to_graph(mol, QM9_SPEC, remove_h=True)
    assert Chem.MolToSmiles(mol) == before and mol.GetBondWithIdx(0).GetIsAromatic()


def test_mol_to_graph_errors():
    with pytest.raises(ValueError, match=r"'S'.*CCS"):
        mol_to_graph("CCS", QM9_SPEC, remove_h=True)
    with pytest.raises(ValueError, match=r"'Cl'.*molecule 17"):
        mol_to_graph(Chem.MolFromSmiles("CCl"), QM9_SPEC, remove_h=True, name="molecule 17")
    with pytest.raises(ValueError, match="cannot parse"):
        mol_to_graph("C1CC(", QM9_SPEC, remove_h=True)
    with pytest.raises(ValueError, match="needs an 'H' atom class"):
        mol_to_graph("CC", QM9_SPEC, remove_h=False)


# ---------------------------------------------------------------------- round trip
@pytest.mark.parametrize("smiles", TRICKY)
@pytest.mark.parametrize("spec,remove_h", [(QM9_SPEC, True), (QM9_SPEC_WITH_H, False)])
def test_round_trip(smiles, spec, remove_h):
    g = mol_to_graph(smiles, spec, remove_h=remove_h)
    assert graph_to_smiles(g, spec) == _ref(smiles)


def test_round_trip_needs_charges():
    g = mol_to_graph("[NH3+]CCC([O-])=O", QM9_SPEC, remove_h=True)
    atoms, bonds, charges = graph_classes(g)
    assert mol_to_smiles(graph_to_mol(atoms, bonds, QM9_SPEC, charges=charges)) == _ref("[NH3+]CCC([O-])=O")
    # without charges the implicit-H molecule is the neutral amino acid, a different molecule
    assert mol_to_smiles(graph_to_mol(atoms, bonds, QM9_SPEC)) == _ref("NCCC(O)=O")


def test_smiles_invariant_under_node_permutation():
    gen = torch.Generator().manual_seed(0)
    for smiles in TRICKY:
        for spec, remove_h in [(QM9_SPEC, True), (QM9_SPEC_WITH_H, False)]:
            atoms, bonds, charges = graph_classes(mol_to_graph(smiles, spec, remove_h=remove_h))
            p = torch.randperm(len(atoms), generator=gen)
            mol = graph_to_mol(atoms[p], bonds[p][:, p], spec, charges=charges[p])
            assert mol_to_smiles(mol) == _ref(smiles)


# ---------------------------------------------------------------------- graph -> mol
def _chain(classes, bond_class=1):
    n = len(classes)
    bonds = np.zeros((n, n), dtype=np.int64)
    for i in range(n - 1):
        bonds[i, i + 1] = bonds[i + 1, i] = bond_class
    return np.array(classes), bonds


def test_bond_type_from_class_name():
    for k, expected in [(1, "CC"), (2, "C=C"), (3, "C#C")]:
        atoms, bonds = _chain([0, 0], bond_class=k)
        assert mol_to_smiles(graph_to_mol(atoms, bonds, QM9_SPEC)) == expected
    # aromatic class = bond order 1.5: a benzene ring of aromatic bonds sanitizes, a chain does not
    ring = np.zeros((6, 6), dtype=np.int64)
    for i in range(6):
        ring[i, (i + 1) % 6] = ring[(i + 1) % 6, i] = 4
    assert mol_to_smiles(graph_to_mol(np.zeros(6, dtype=np.int64), ring, QM9_SPEC)) == "c1ccccc1"
    assert bond_order_sums(np.zeros(6, dtype=np.int64), ring, QM9_SPEC).tolist() == [3.0] * 6
    atoms, bonds = _chain([0, 0, 0], bond_class=4)
    assert graph_to_mol(atoms, bonds, QM9_SPEC) is None


def test_invalid_valence_gives_none():
    star = np.zeros((6, 6), dtype=np.int64)
    star[0, 1:] = star[1:, 0] = 1  # carbon with five single bonds
    assert graph_to_mol(np.zeros(6, dtype=np.int64), star, QM9_SPEC) is None
    raw = graph_to_mol(np.zeros(6, dtype=np.int64), star, QM9_SPEC, sanitize=False)
    assert raw is not None and raw.GetNumAtoms() == 6
    assert mol_to_smiles(raw) is None and mol_to_smiles(None) is None
    atoms, bonds = _chain([0, 3, 0])  # F with two bonds
    assert graph_to_mol(atoms, bonds, QM9_SPEC) is None
    assert build_molecule(atoms, bonds, QM9_SPEC) is None
    assert build_molecule(atoms, bonds, QM9_SPEC, relaxed=True) is None


def test_relaxed_adds_positive_charge():
    star = np.zeros((5, 5), dtype=np.int64)
    star[0, 1:] = star[1:, 0] = 1
    atoms = np.array([1, 0, 0, 0, 0])  # N with four carbon neighbours
    assert build_molecule(atoms, star, QM9_SPEC) is None
    assert infer_formal_charges(atoms, star, QM9_SPEC).tolist() == [1, 0, 0, 0, 0]
    assert mol_to_smiles(build_molecule(atoms, star, QM9_SPEC, relaxed=True)) == "C[N+](C)(C)C"


def test_relaxed_zwitterion_with_explicit_h():
    smiles = "[NH3+]CCC([O-])=O"
    atoms, bonds, charges = graph_classes(mol_to_graph(smiles, QM9_SPEC_WITH_H, remove_h=False))
    assert build_molecule(atoms, bonds, QM9_SPEC_WITH_H) is None  # neutral N with four bonds
    inferred = infer_formal_charges(atoms, bonds, QM9_SPEC_WITH_H)
    assert torch.equal(torch.from_numpy(inferred), charges)
    assert mol_to_smiles(build_molecule(atoms, bonds, QM9_SPEC_WITH_H, relaxed=True)) == _ref(smiles)
    # implicit-H graphs: an under-bonded O just gets a hydrogen, so no negative charge is inferred
    atoms, bonds, _ = graph_classes(mol_to_graph(smiles, QM9_SPEC, remove_h=True))
    assert infer_formal_charges(atoms, bonds, QM9_SPEC).tolist().count(-1) == 0


def test_radicals_rejected_unless_allowed():
    h = QM9_SPEC_WITH_H.atom_index("H")
    atoms = np.array([0, h, h, h])  # CH3: the explicit-H graph leaves carbon one bond short
    bonds = np.zeros((4, 4), dtype=np.int64)
    bonds[0, 1:] = bonds[1:, 0] = 1
    assert build_molecule(atoms, bonds, QM9_SPEC_WITH_H) is None
    assert build_molecule(atoms, bonds, QM9_SPEC_WITH_H, allow_radicals=True) is not None
    # the same heavy atom in implicit-H mode is methane
    assert mol_to_smiles(build_molecule(np.array([0]), np.zeros((1, 1), dtype=np.int64), QM9_SPEC)) == "C"


def test_graph_to_mol_bad_input():
    atoms, bonds = _chain([0, 0, 1])
    with pytest.raises(ValueError, match="symmetric"):
        bad = bonds.copy()
        bad[0, 1] = 2
        graph_to_mol(atoms, bad, QM9_SPEC)
    with pytest.raises(ValueError, match="shape"):
        graph_to_mol(atoms, bonds[:2, :2], QM9_SPEC)
    with pytest.raises(ValueError, match="node_mask"):
        graph_to_mol(np.array([0, -1, 1]), bonds, QM9_SPEC)
    with pytest.raises(ValueError, match="0..4"):
        bad = bonds.copy()
        bad[0, 1] = bad[1, 0] = 7
        graph_to_mol(atoms, bad, QM9_SPEC)
    with pytest.raises(ValueError, match="integer"):
        graph_to_mol(atoms.astype(float), bonds, QM9_SPEC)
    with pytest.raises(ValueError, match="charges"):
        graph_to_mol(atoms, bonds, QM9_SPEC, charges=[0, 0])


def test_canonical_smiles():
    for smiles in TRICKY:
        mol = Chem.MolFromSmiles(smiles)
        assert mol_to_smiles(mol) == canonical_smiles(smiles) == sanitized_mol_to_smiles(mol) == _ref(smiles)
        assert mol_to_smiles(Chem.AddHs(mol)) == sanitized_mol_to_smiles(Chem.AddHs(mol)) == _ref(smiles)
    assert canonical_smiles("OCC") == "CCO" and canonical_smiles("C1CC(") is None
    assert canonical_smiles("[H]OC([H])([H])[H]") == "CO"
