"""dataset=smiles: classes inferred from the train split, rows left out with their reason, splits by column or at
random, the cache keyed by the file's content, bad input named in one line, and train -> sample -> evaluate."""
from __future__ import annotations

import csv
import gzip
import inspect
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from rdkit import Chem

from support import REPO
from sympe.datasets.config import check_dataset_config, dataset_config, summary_text
from sympe.datasets.molecules import canonical_smiles, graph_to_smiles
from sympe.datasets.sources.smiles import SmilesDataset
from sympe.datasets.sources.smiles_input import SmilesInputError, check_params
from sympe.datasets.sources.smiles_molecules import REASONS

SPLITS = ("train", "val", "test")


def splits_of(root, path, **params) -> dict:
    return {s: SmilesDataset(root, split=s, path=str(path), **params) for s in SPLITS}


def rejected_rows(ds) -> list[tuple[int, str, str]]:
    with open(ds.rejected_path(), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "smiles", "reason"]
    return [(int(a), b, c) for a, b, c in rows[1:]]


# ---------------------------------------------------------------------- classes
LABELLED = [("CCS", "train"), ("CC[N+](C)(C)C", "train"), ("CC(=O)[O-]", "train"), ("ClCCO", "train"),
            ("CCCCl", "train"), ("CCBr", "val"), ("CCO", "val"), ("CC", "val"), ("C#CC", "test"), ("OCCS", "test"),
            ("CCCCCCCC", "test")]


def test_classes_bonds_and_statistics_come_from_the_train_split(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,SMILES,Split\n" + "".join(f"m{k},{s},{lab}\n" for k, (s, lab) in enumerate(LABELLED)))
    splits = splits_of(tmp_path / "data", path)
    train, info = splits["train"], splits["train"].info
    # (element, charge) pairs of the train split, by atomic number; bonds up to its highest (no triple there)
    assert info.node_classes == ["C", "N+", "O", "O-", "S", "Cl"]
    assert info.edge_classes == ["none", "single", "double"] and info.bond_orders == [0.0, 1.0, 2.0]
    assert info.atom_valencies == [4, 4, 2, 1, 2, 1] and info.is_molecular
    assert info.max_nodes == 6 and info.n_nodes_dist == pytest.approx([0, 0, 0, 0.2, 0.6, 0, 0.2])
    assert info.node_marginals[info.node_classes.index("N+")] == pytest.approx(1 / 21)
    assert info.max_weight == 80.0  # ClCCO: 75.5 u of heavy atoms, rounded up to 10 u
    # a val / test molecule the train split cannot model is left out, with its reason
    assert rejected_rows(train) == [(7, "CCBr", "atom class not in train: Br"), (9, "CC", "size not in train: 2 atoms"),
                                    (10, "C#CC", "bond not in train: triple"),
                                    (12, "CCCCCCCC", "larger than train: 8 > 6 atoms")]
    assert [len(splits[s]) for s in SPLITS] == [5, 1, 1]
    # every graph gives its row's molecule back (charges from the classes), in the row order of the file
    spec = train.spec
    for split in SPLITS:
        for g in splits[split]:
            row = LABELLED[int(g.line) - 2]
            assert row[1] == split and graph_to_smiles(g, spec) == canonical_smiles(row[0])
            assert g.edge_attr.shape[1] == 3 and g.y.shape == (1, 0)
    assert train.train_smiles() == [canonical_smiles(s) for s, lab in LABELLED if lab == "train"]
    text = summary_text("smiles", {"path": str(path)}, splits, floor=False)
    assert "(CSV, column 'SMILES', split column 'Split'; sha256 " in text
    assert "11 rows, 7 kept, 4 left out (atom class not in train 1; size not in train 1; bond not in train 1; " \
           "larger than train 1); listed in " in text
    assert "split 5 / 1 / 1 (by the split column)" in text
    assert "atom classes (train split): C, N+, O, O-, S, Cl; bond classes: none, single, double (kekulized); " \
           "hydrogens implicit" in text and "max atoms per molecule: 6 (from the data)" in text


def test_explicit_hydrogens_are_nodes_of_the_last_class(tmp_path):
    path = tmp_path / "mine.smi"
    path.write_text("".join(s + "\n" for s in ["C[NH3+]", "CO", "OC", "CO", "C[NH3+]", "OC"] * 2))
    splits = splits_of(tmp_path / "data", path, remove_h=False)
    info = splits["train"].info
    assert info.node_classes == ["C", "N+", "O", "H"] and set(info.extra["rejected"]) <= {"atom class not in train"}
    for g in itertools.chain(*splits.values()):
        mol = Chem.AddHs(Chem.MolFromSmiles(graph_to_smiles(g, splits["train"].spec)))
        hydrogens = sum(a.GetAtomicNum() == 1 for a in mol.GetAtoms())
        assert g.num_nodes == mol.GetNumAtoms() and int(g.x[:, 3].sum()) == hydrogens


# ---------------------------------------------------------------------- rows left out
def test_rows_left_out_are_listed_with_their_line_and_reason(tmp_path):
    good = ["CCCO", "OCCO"] * 8
    lines = ["SMILES", "CCCO propanol", "c1cccc1", "", "[CH2]C", "CC[Se]C", "CCCCCCCCCCCC", "C1CC(", "C->[Si](C)(C)C",
             "CC(C)(C)(C)C", *good]
    path = tmp_path / "mine.smi.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    ds = SmilesDataset(tmp_path / "data", path=str(path), elements=["C", "O", "Si"], max_atoms=10)
    assert rejected_rows(ds) == [
        (3, "c1cccc1", "cannot kekulize: Can't kekulize mol.  Unkekulized atoms: 0 1 2 3 4"),
        (5, "[CH2]C", "radical: C"), (6, "CC[Se]C", "element not allowed: Se"),
        (7, "CCCCCCCCCCCC", "too many atoms: 12 > max_atoms=10"), (8, "C1CC(", "cannot parse"),
        (9, "C->[Si](C)(C)C", "unsupported bond: DATIVE"),
        (10, "CC(C)(C)(C)C", "cannot sanitize: Explicit valence for atom # 1 C, 5, is greater than permitted")]
    assert all(r.split(":")[0] in REASONS for _, _, r in rejected_rows(ds))
    assert ds.info.extra["rows"] == 8 + len(good) and ds.info.extra["kept"] == 1 + len(good)  # a blank line is no row
    assert ds.info.extra["read_as"] == "one SMILES per line, a header line"
    assert ds.info.node_classes == ["C", "O"]  # no Si left: the only Si molecule was dative


def test_a_file_most_of_whose_rows_fail_stops_naming_the_most_common_reason(tmp_path):
    path = tmp_path / "wrong_column.csv"
    path.write_text("name,smiles\n" + "".join(f"{s},mol{k}\n" for k, s in enumerate(["CCO", "OCC", "CCO", "OCC"]))
                    + "CCO,CCO\n")
    with pytest.raises(SmilesInputError, match=r"^dataset.params.path=.*wrong_column.csv: 4 of 5 molecules cannot be "
                                               r"used, most for 'cannot parse' \(4; first at line 2: 'mol0', cannot "
                                               r"parse\); all are listed in .*rejected.csv; check the file, "
                                               r"dataset.params.column") as err:
        SmilesDataset(tmp_path / "data", path=str(path))
    listed = Path(str(err.value).split("listed in ")[1].split(";")[0])
    assert listed.read_text().splitlines()[1:] == [f"{k + 2},mol{k},cannot parse" for k in range(4)]
    assert len(SmilesDataset(tmp_path / "data", path=str(path), column="name", split_fractions=[0.6, 0.2, 0.2])) == 3


# ---------------------------------------------------------------------- splits
def test_random_splits_are_reproducible_and_a_split_column_decides(tmp_path):
    path = tmp_path / "mine.smi"
    path.write_text("".join(f"{s}\n" for s in ["CCO", "OCC", "CCN", "NCC"] * 25))
    lines = {seed: {s: sorted(int(g.line) for g in ds) for s, ds in splits_of(tmp_path / "data", path,
                                                                                split_seed=seed).items()}
             for seed in (0, 1)}
    again = {s: sorted(int(g.line) for g in ds) for s, ds in splits_of(tmp_path / "other", path).items()}
    assert again == lines[0] != lines[1]
    assert [len(lines[0][s]) for s in SPLITS] == [80, 10, 10]
    assert sorted(sum(lines[0].values(), [])) == list(range(1, 101))
    labelled = tmp_path / "labelled.csv"
    labels = ["train", "TRAIN", "valid", "test"] * 5
    labelled.write_text("smiles,split\n" + "".join(f"CCO,{lab}\n" for lab in labels))
    by_column = splits_of(tmp_path / "data", labelled)
    for split, ds in by_column.items():
        assert {labels[int(g.line) - 2].lower().replace("valid", "val") for g in ds} == {split}
    assert by_column["train"].info.extra["split"] == "split 10 / 5 / 5 (by the split column)"
    labelled.write_text("smiles,split\nCCO,train\nCCO,tset\nCCO,val\nCCO,\n")
    with pytest.raises(SmilesInputError, match=r"labelled.csv: 2 values of the split column are not train / val / test "
                                               r"\(line 3: 'tset', line 5: ''\); fix them"):
        SmilesDataset(tmp_path / "data", path=str(labelled))


# ---------------------------------------------------------------------- cache
def test_the_cache_is_keyed_by_the_file_content_and_every_option(tmp_path):
    path = tmp_path / "mine.smi"
    path.write_text("".join(f"{s}\n" for s in ["CCO", "OCC", "CCN", "NCC"] * 5))
    root = tmp_path / "data"
    first = SmilesDataset(root, path=str(path))
    built = os.stat(Path(first.processed_dir) / "train.pt").st_mtime_ns
    copy = tmp_path / "elsewhere" / "copy.smi"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    same = SmilesDataset(root, path=str(copy))  # the same bytes: the same folder, not processed again
    assert same.processed_dir == first.processed_dir
    assert os.stat(Path(same.processed_dir) / "train.pt").st_mtime_ns == built
    assert json.loads((Path(first.processed_dir) / "params.json").read_text())["sha256"] == first.sha256
    with path.open("a") as f:
        f.write("CCCl\n" * 20)  # an edited file is processed again, into a folder of its own
    edited = SmilesDataset(root, path=str(path))
    assert edited.processed_dir != first.processed_dir and "Cl" in edited.info.node_classes
    folders = {SmilesDataset(root, path=str(path), **opt).processed_dir
               for opt in [{}, {"remove_h": False}, {"max_atoms": 3}, {"elements": ["C", "O", "N", "Cl"]},
                           {"split_seed": 1}, {"split_fractions": [0.5, 0.25, 0.25]}]}
    assert len(folders) == 6 and edited.processed_dir in folders


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def files(tmp_path):
    (tmp_path / "ok.csv").write_text("name,SMILES\na,CCO\n")
    (tmp_path / "two.csv").write_text("smiles_a,Smiles_b\nCCO,CCN\n")
    (tmp_path / "none.csv").write_text("name,formula\na,C2H6O\n")
    (tmp_path / "empty.smi").write_text("\n \n")
    (tmp_path / "header.csv").write_text("SMILES\n\n")
    (tmp_path / "ok.smi").write_text("CCO\n")
    return tmp_path


@pytest.mark.parametrize("params,message", [
    ({}, r"dataset.params.path is missing: dataset=smiles reads your molecules from dataset.params.path=FILE"),
    ({"path": "???"}, r"dataset.params.path is missing"),
    ({"path": "nothing.csv"}, r"dataset.params.path=.*nothing.csv does not exist: give a CSV"),
    ({"path": "."}, r"dataset.params.path=.* is a folder"),
    ({"path": "ok.csv", "column": "smile"}, r"dataset.params.column=smile: .*ok.csv has no such column; its columns "
                                            r"are \['name', 'SMILES'\]"),
    ({"path": "none.csv"}, r"none.csv has no column named like 'smiles' \(its columns are \['name', 'formula'\]\); "
                           r"name the SMILES column with dataset.params.column=NAME"),
    ({"path": "two.csv"}, r"two.csv has several columns named like 'smiles' \['smiles_a', 'Smiles_b'\]"),
    ({"path": "ok.smi", "column": "smiles"}, r"dataset.params.column=smiles is only for CSV files"),
    ({"path": "empty.smi"}, r"dataset.params.path=.*empty.smi is empty: give one molecule per line"),
    ({"path": "header.csv"}, r"header.csv holds a header row and no molecules"),
    ({"path": "ok.csv", "split_fractions": [0.8, 0.2]}, r"dataset.params.split_fractions=\[0.8, 0.2\] is not accepted"),
    ({"path": "ok.csv", "split_fractions": [0.8, 0.2, 0.1]}, r"summing to 1"),
    ({"path": "ok.csv", "elements": "C"}, r"dataset.params.elements=C is not accepted: not a non-empty list; give a "
                                          r"list of element symbols such as \[C, N, O, S, Cl\]"),
    ({"path": "ok.csv", "elements": ["C", "CL", 7]}, r"elements=\['C', 'CL', 7\] is not accepted: \['CL', 7\] are not "
                                                     r"element symbols \(symbols are case-sensitive: Cl, Br\)"),
    ({"path": "ok.csv", "max_atoms": 0}, r"dataset.params.max_atoms=0 is not accepted: expected an integer >= 1"),
    ({"path": "ok.csv", "remove_h": "no"}, r"dataset.params.remove_h=no is not accepted: expected true"),
])
def test_bad_input_is_one_line_naming_the_option(files, monkeypatch, params, message):
    monkeypatch.chdir(files)
    with pytest.raises(SmilesInputError, match=message) as err:
        check_params(params)
    assert "\n" not in str(err.value) and err.value.user_error


def test_bad_input_stops_before_any_loading(files, monkeypatch):
    monkeypatch.chdir(files)
    with pytest.raises(SmilesInputError, match="no such column"):  # the dataset checks the same way
        SmilesDataset(files / "data", path="ok.csv", column="smile")
    assert not (files / "data").exists()
    cfg = OmegaConf.create({"dataset": {"name": "smiles", "params": {"path": "???", "column": None}}})
    with pytest.raises(SmilesInputError, match="^dataset.params.path is missing"):  # train_diffusion.py's check
        check_dataset_config(cfg)
    cfg.dataset.params.path = "none.csv"
    with pytest.raises(SmilesInputError, match="none.csv has no column named like 'smiles'"):
        check_dataset_config(cfg)
    with pytest.raises(SmilesInputError, match=r"^dataset_params.path is missing: .* from dataset_params=\{path: FILE\}"):
        dataset_config(REPO / "configs", "smiles")  # evaluate.py samples=F dataset=smiles, no dataset_params
    name, params = dataset_config(REPO / "configs", "smiles", {"path": "ok.csv"})
    assert name == "smiles" and params["path"] == str(files / "ok.csv")


def test_a_command_given_bad_input_prints_one_line_and_leaves_no_folder(files):
    env = {**os.environ, "SYMPE_DATA_ROOT": str(files / "data"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_diffusion.py"), "dataset=smiles",
                           "dataset.params.path=ok.csv", "dataset.params.column=smile"], cwd=files, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"error: dataset.params.column=smile: {files / 'ok.csv'} has no such "
                                                   "column; its columns are ['name', 'SMILES']")
    assert not (files / "outputs").exists() and not (files / "data").exists()


def test_the_config_lists_the_constructor_defaults():
    cfg = yaml.safe_load((REPO / "configs" / "dataset" / "smiles.yaml").read_text())
    defaults = {k: p.default for k, p in inspect.signature(SmilesDataset.__init__).parameters.items()
                if k not in ("self", "root", "split", "transform", "force_reload")}
    assert cfg["name"] == "smiles" and cfg["params"].pop("path") == "???" and defaults.pop("path") is None
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()} == cfg["params"]


# ---------------------------------------------------------------------- end to end
def small_molecules(n: int = 200) -> list[str]:
    """``n`` distinct small molecules with S, Cl, Br and charged N / O (canonical SMILES, fixed order)."""
    heads = ["C", "CC", "CCC", "CC(C)", "C1CC1", "OC", "NC", "SC"]
    mids = ["", "C", "CC", "O", "N", "C(=O)", "S"]
    tails = ["O", "N", "Cl", "S", "C(=O)O", "C#N", "[N+](C)(C)C", "C(=O)[O-]", "OC", "Br", "F", "C=C", "N(C)C"]
    out = sorted({canonical_smiles(h + m + t) for h, m, t in itertools.product(heads, mids, tails)} - {None})
    return [out[k] for k in np.random.default_rng(0).permutation(len(out))[:n]]


def run_script(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYMPE_DATA_ROOT": str(cwd / "data"), "PYTHONWARNINGS": "ignore", "SYMPE_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


TINY = ["model.n_layers=1", "model.hidden_mlp_dims={X: 16, E: 8, y: 16}",
        "model.hidden_dims={dx: 16, de: 8, dy: 8, n_head: 2, dim_ffX: 16, dim_ffE: 8, dim_ffy: 16}",
        "model.diffusion.T=20", "train.batch_size=16", "train.progress_bar=false", "train.max_steps=20",
        "train.lr=0.1", "train.test_after_fit=false"]


def test_train_sample_and_evaluate_on_a_users_csv(tmp_path):
    mols = small_molecules()
    (tmp_path / "mine.csv").write_text("id,smiles\n" + "".join(f"m{k},{s}\n" for k, s in enumerate(mols)))
    out = run_script("train_diffusion.py", ["dataset=smiles", "dataset.params.path=mine.csv", *TINY,
                                            "paths.out_dir=run"], tmp_path)
    assert "atom classes (train split): C, N, N+, O, O-, F, S, Cl, Br" in out.stdout
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    sampled = json.loads(run_script("sample.py", [f"checkpoint={ckpt}", "num_samples=24", "out_dir=samples"],
                                    tmp_path).stdout.strip().splitlines()[-1])
    assert len((tmp_path / "samples" / "samples.smi").read_text().splitlines()) == 24 == sampled["num_samples"]
    # checkpoint mode: the dataset is rebuilt from the path the run recorded (absolute), from another folder
    (tmp_path / "elsewhere").mkdir()
    m = json.loads(run_script("evaluate.py", [f"checkpoint={ckpt}", "num_samples=24", "fcd=false", "out_dir=eval",
                                              f"data_root={tmp_path / 'data'}"],
                              tmp_path / "elsewhere").stdout.strip().splitlines()[-1])
    assert m["dataset"] == "smiles" and m["dataset_params"]["path"] == str(tmp_path / "mine.csv")
    assert m["num_samples"] == 24 and 0 <= m["validity"] <= 1 and m["connected"] is not None
    assert m["exchangeable_nll_floor"] > 0 and np.isfinite(m["nll_ours_plain_mc"])
    # a high learning rate teaches the tiny model the marginals in 20 steps: some samples are molecules
    assert m["num_valid"] > 0 and m["uniqueness"] > 0 and m["novelty"] is not None and m["vun"] is not None
    # samples mode: the train molecules scored against the dataset are all valid and none is novel
    train = SmilesDataset(tmp_path / "data", path=str(tmp_path / "mine.csv"))
    (tmp_path / "train.smi").write_text("\n".join(train.train_smiles()) + "\n")
    s = json.loads(run_script("evaluate.py", ["samples=train.smi", "dataset=smiles", "dataset_params={path: mine.csv}",
                                              "fcd=false"], tmp_path).stdout.strip().splitlines()[-1])
    assert s["validity"] == 1.0 and s["novelty"] == 0.0 and s["num_samples"] == len(train) and s["uniqueness"] == 1.0


def test_stability_of_explicit_h_molecules_scores_the_charges_of_charged_classes(tmp_path):
    """With explicit H and a charged class (N+), stability must read the class's charge: a quaternary ammonium
    is a stable molecule, as is every molecule of the train split."""
    from sympe.datasets.evaluation import sample_metrics

    path = tmp_path / "ions.smi"
    mols = ["C[N+](C)(C)C", "CC[N+](C)(C)C", "CCO", "CCN", "CC(C)O", "C[N+](C)(C)CC", "CCCO", "CCC[N+](C)(C)C"]
    path.write_text("".join(m + "\n" for m in mols * 3))
    splits = splits_of(tmp_path / "data", path, remove_h=False)
    assert any(c.endswith("+") for c in splits["train"].info.node_classes)
    graphs = []  # the train molecules as generated graphs: (atom classes, bond-class matrix)
    for d in splits["train"]:
        atoms = d.x.argmax(-1).numpy()
        bonds = np.zeros((len(atoms), len(atoms)), dtype=np.int64)
        bonds[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = d.edge_attr.argmax(-1).numpy()
        graphs.append((atoms, bonds))
    m = sample_metrics(splits, generated=graphs, fcd=False)
    assert m["validity"] == 1.0 and m["molecule_stability"] == 1.0 and m["atom_stability"] == 1.0


def test_a_field_over_the_csv_limit_is_one_line_naming_the_file(tmp_path):
    head = tmp_path / "head.csv"  # the over-long field in the header row: check_params reads it
    head.write_text("smiles,note" + "x" * 140_000 + "\nCCO,a\n")
    with pytest.raises(SmilesInputError, match=r"head.csv is not a readable CSV \(field larger than field limit") as e:
        check_params({"path": str(head)})
    assert "\n" not in str(e.value)
    body = tmp_path / "body.csv"  # further down: read while processing
    body.write_text("smiles,note\nCCO,a\nCCN," + "x" * 140_000 + "\n")
    with pytest.raises(SmilesInputError, match=r"body.csv is not a readable CSV \(field larger than field limit"):
        SmilesDataset(str(tmp_path / "root"), path=str(body))
