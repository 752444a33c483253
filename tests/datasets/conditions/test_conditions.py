"""Conditions on data: each property against RDKit / networkx values computed by hand, a user's CSV columns read as
continuous or categorical conditions and matched to molecules by line, the fitted encoding on every split, the cache,
and bad names refused in one line naming what the dataset offers."""
from __future__ import annotations

import math

import networkx as nx
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors

from sympe.datasets.conditions import PROPERTIES, attach_conditions, available_properties, split_values
from sympe.datasets.conditions.attach import check_condition_option
from sympe.datasets.conditions.scoring import condition_metrics, graph_values, molecule_values, score_targets_file
from sympe.datasets.conditions.targets import parse_targets, read_targets_csv, draw_split_targets
from sympe.datasets.sources.smiles import SmilesDataset
from sympe.diffusion.conditioning import ConditionError

MOLS = ["CCO", "c1ccccc1O", "CC(=O)O", "CCN", "C1CC1", "CCCl", "OCCO", "CC#N", "CCC(C)O", "NCC(=O)O", "C1CCCCC1",
        "CC(C)C", "COC", "CCOC", "ClCCCl", "CCCCO", "OC1CC1", "CC=CC", "CN(C)C", "CCS"] * 3


def test_molecular_properties_are_rdkits():
    smiles = ["CCO", "c1ccccc1O", None, "not a smiles"]
    want = {"logp": Crippen.MolLogP, "qed": QED.qed, "mol_weight": Descriptors.MolWt}
    for name, fn in want.items():
        got = molecule_values(smiles, PROPERTIES[name])
        assert got[0] == pytest.approx(fn(Chem.MolFromSmiles("CCO"))) and got[2] is None and got[3] is None
    assert molecule_values(["CCO"], PROPERTIES["mol_weight"])[0] == pytest.approx(46.069, abs=1e-3)
    assert molecule_values(["c1ccccc1O", "C1CC1C1CC1", "CCO"], PROPERTIES["num_rings"]) == [1, 2, 0]
    assert molecule_values(["CCO"], PROPERTIES["tpsa"])[0] == pytest.approx(20.23, abs=1e-2)


def test_graph_properties_count_edges_and_triangles():
    k4 = nx.to_numpy_array(nx.complete_graph(4))
    path = nx.to_numpy_array(nx.path_graph(5))
    graphs = [(None, k4), (None, path)]
    assert graph_values(graphs, PROPERTIES["num_edges"]) == [6, 4]
    assert graph_values(graphs, PROPERTIES["num_triangles"]) == [4, 0]


@pytest.fixture
def user_csv(tmp_path):
    rows = ["smiles,activity,family,split"]
    for k, s in enumerate(MOLS):
        split = "train" if k % 5 < 3 else ("val" if k % 5 == 3 else "test")
        activity = "" if k == 7 else f"{0.1 * k:.2f}"
        rows.append(f"{s},{activity},{'acid' if 'O)O' in s else 'other'},{split}")
    path = tmp_path / "mols.csv"
    path.write_text("\n".join(rows) + "\n")
    splits = {s: SmilesDataset(tmp_path / "data", split=s, path=str(path)) for s in ("train", "val", "test")}
    return path, splits


def test_a_users_columns_are_conditions_matched_by_line(user_csv):
    path, splits = user_csv
    offered = available_properties(splits["train"])
    assert offered["activity"].kind == "continuous" and offered["family"].kind == "categorical"
    assert "split" not in offered and "smiles" not in offered and "logp" in offered and "num_edges" not in offered
    lines = path.read_text().splitlines()
    train = splits["train"]
    for i in range(len(train)):
        fields = lines[int(train[i].line) - 1].split(",")
        want = None if fields[1] == "" else float(fields[1])
        assert split_values(train, "activity")[i] == want
        assert split_values(train, "family")[i] == fields[2]
        mol = Chem.MolFromSmiles(fields[0])
        assert split_values(train, "logp")[i] == pytest.approx(Crippen.MolLogP(mol))


def test_attach_fits_on_train_and_every_graph_carries_its_condition(user_csv):
    _, splits = user_csv
    out, spec = attach_conditions(splits, ["logp", "family", "activity"], 0.1)
    train_logp = [v for v in split_values(splits["train"], "logp")]
    mean = sum(train_logp) / len(train_logp)
    assert spec.property("logp").mean == pytest.approx(mean) and spec.property("family").categories == ["acid", "other"]
    for name in ("train", "val", "test"):
        ds = out[name]
        assert len(ds) == len(splits[name])
        rows = [{k: ds.values[k][i] for k in spec.names} for i in range(len(ds))]
        assert torch.equal(torch.cat([ds[i].y for i in range(len(ds))]), spec.encode(rows, strict=False))
    # the graph without an activity has that property marked absent, the others present
    absent = [i for i, v in enumerate(out["train"].values["activity"]) if v is None]
    assert all(out["train"][i].y[0, -1] == 0 for i in absent) and out["train"][0].y[0, -3:-1].tolist() == [1, 1]
    # slices keep the conditions; the wrapped split's attributes are reachable
    assert torch.equal(out["train"][:3][2].y, out["train"][2].y) and out["train"].info is splits["train"].info
    # a checkpoint's spec encodes other splits the same way
    again, same = attach_conditions({"test": splits["test"]}, spec.names, spec.dropout, spec=spec)
    assert same is spec and torch.equal(again["test"].Y, out["test"].Y)


def test_values_are_cached_beside_the_processed_split(user_csv, monkeypatch):
    _, splits = user_csv
    first = split_values(splits["val"], "qed")
    import sys

    sv = sys.modules["sympe.datasets.conditions.split_values"]  # the package exports a function of that name

    monkeypatch.setattr(sv, "compute", lambda *a, **k: pytest.fail("recomputed a cached property"))
    assert split_values(splits["val"], "qed") == first


def test_names_a_dataset_cannot_provide_are_one_line(user_csv):
    path, splits = user_csv
    with pytest.raises(ConditionError, match=r"'num_triangles' is a graph property .* offers \[.*'activity'"):
        attach_conditions(splits, ["num_triangles"], 0.1)
    with pytest.raises(ConditionError, match="'mu' is a column this dataset does not carry"):
        attach_conditions(splits, ["mu"], 0.1)
    with pytest.raises(ConditionError, match="twice"):
        attach_conditions(splits, ["logp", "logp"], 0.1)
    # before loading: from the dataset's name, its source and the CSV's header
    check_condition_option("smiles", {"path": str(path)}, ["activity", "qed"])
    check_condition_option("qm9", {"source": "qm9pack"}, ["mu", "homo", "logp"])
    with pytest.raises(ConditionError, match=r"'mu' cannot be computed for dataset=qm9 .* offers"):
        check_condition_option("qm9", {"source": "csv"}, ["mu"])
    with pytest.raises(ConditionError, match="'logp' cannot be computed for dataset=planar"):
        check_condition_option("planar", {}, ["logp"])
    with pytest.raises(ConditionError, match="'potency' is no known property and no column of the CSV"):
        check_condition_option("smiles", {"path": str(path)}, ["potency"])


def test_targets_from_a_mapping_or_a_csv_are_checked_before_sampling(user_csv, tmp_path):
    _, splits = user_csv
    _, spec = attach_conditions(splits, ["logp", "family"], 0.1)
    assert parse_targets({"logp": 0.5}, spec, 3) == [{"logp": 0.5}] * 3
    (tmp_path / "t.csv").write_text("logp,family\n0.5,acid\n,other\n\n")
    assert read_targets_csv(str(tmp_path / "t.csv")) == [{"logp": 0.5, "family": "acid"}, {"logp": None, "family": "other"}]
    assert len(parse_targets(str(tmp_path / "t.csv"), spec, None)) == 2
    with pytest.raises(ConditionError, match=r"holds 2 rows but num_samples=5"):
        parse_targets(str(tmp_path / "t.csv"), spec, 5)
    with pytest.raises(ConditionError, match=r"condition: logp=40.0 is outside the range"):
        parse_targets({"logp": 40.0}, spec, 1)
    with pytest.raises(ConditionError, match=r"condition \(row 1\): family='base'"):
        (tmp_path / "u.csv").write_text("family\nbase\n")
        parse_targets(str(tmp_path / "u.csv"), spec, None)
    with pytest.raises(ConditionError, match="'qed' is not a property this model was trained on"):
        parse_targets({"qed": 0.5}, spec, 1)
    with pytest.raises(ConditionError, match="no such file"):
        parse_targets(str(tmp_path / "missing.csv"), spec, None)
    values = {"logp": [1.0, None, 3.0], "family": ["a", "b", "c"]}
    rows = draw_split_targets(values, ["logp", "family"], 50, seed=0)
    assert len(rows) == 50 and {r["family"] for r in rows} <= {"a", "c"}


def test_metrics_against_a_hand_computation(user_csv):
    _, splits = user_csv
    targets = [{"logp": 0.0}, {"logp": 1.0}, {"logp": 2.0}, {}]
    smiles = ["CCO", None, "c1ccccc1O", "CCO"]
    got = score_targets_file(targets, splits, smiles, None)
    a = [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in ("CCO", "c1ccccc1O")]
    err = [abs(a[0] - 0.0), abs(a[1] - 2.0)]
    p = got["properties"]["logp"]
    assert p["num_scored"] == 2 and p["mae"] == pytest.approx(sum(err) / 2)
    assert p["within_tolerance"] == pytest.approx(sum(e <= 0.5 for e in err) / 2)
    assert got["validity"] == 0.75 and got["uniqueness"] == pytest.approx(2 / 3)
    with pytest.raises(ConditionError, match="4 target rows for 3 samples"):
        score_targets_file(targets, splits, smiles[:3], None)
    cat = condition_metrics([{"f": "a"}, {"f": "b"}], {"f": ["a", "a"]}, {"f": PROPERTIES["num_rings"]},
                            {"f": 0.0}, [True, True], smiles=["C", "CC"])
    assert cat["properties"]["f"]["within_tolerance"] == 0.5 and math.isclose(cat["uniqueness"], 1.0)


def test_a_column_target_without_an_oracle_stops_before_loading(tmp_path, monkeypatch):
    import sympe.datasets.evaluation as ev
    from sympe.datasets.conditions.scoring import PropertyUnavailable

    (tmp_path / "t.csv").write_text("mu,logp\n3.0,1.0\n")
    (tmp_path / "s.smi").write_text("CCO\n")
    monkeypatch.setattr(ev, "build_splits", lambda *a, **k: pytest.fail("loaded the dataset"))
    with pytest.raises(PropertyUnavailable, match=r"\['mu'\] cannot be computed on samples .* oracle=FILE"):
        ev.score_sample_file(tmp_path / "s.smi", "qm9", {}, tmp_path, targets=str(tmp_path / "t.csv"))
    assert PropertyUnavailable.user_error
