"""MOSES: split mapping, filtering, sources (local CSVs written here; the molsets package when installed)."""
import gzip
import importlib.metadata

import pytest
import torch

from sympe.datasets.sources import moses as mosesmod
from sympe.datasets.molecules import MOSES_SPEC, canonical_smiles, graph_to_smiles
from sympe.datasets.samples.smiles_files import read_csv_column
from sympe.datasets.sources.moses import MOSESDataset, SPLIT_FILES

BIG = "C" * 28  # 28 heavy atoms: above the MOSES limit of 27
FILES = {
    "train": ["CCOc1ccc(Cl)cc1", "O=C(O)c1ccccc1Br", "not_a_smiles", BIG, "CSc1nc(N)cc(F)n1", "CC(C)N1CCOCC1"],
    "test": ["c1ccc2[nH]ccc2c1", "CCN(CC)C(=O)c1ccccc1", "C" * 27],
    "test_scaffolds": ["O=S(=O)(N)c1ccc(C)cc1", "FC(F)(F)c1ccncc1"],
}


def _write(folder, files, gz=("test",)):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        text = "SMILES\n" + "".join(r + "\n" for r in rows)
        if name in gz:
            with gzip.open(folder / f"{name}.csv.gz", "wt") as f:
                f.write(text)
        else:
            (folder / f"{name}.csv").write_text(text)
    return folder


@pytest.fixture()
def local(tmp_path):
    return _write(tmp_path / "data", FILES)


def test_split_mapping_and_filtering(tmp_path, local):
    with pytest.warns(UserWarning, match=r"MOSES train: skipped 1 unparsable SMILES \(rows \[2\]\) and 1 molecules with more than 27"):
        train = MOSESDataset(tmp_path / "root", split="train", source="local", data_dir=local)
    val = MOSESDataset(tmp_path / "root", split="val", source="local", data_dir=local)
    test = MOSESDataset(tmp_path / "root", split="test", source="local", data_dir=local)
    assert SPLIT_FILES == {"train": "train", "val": "test", "test": "test_scaffolds"}
    assert [len(train), len(val), len(test)] == [4, 3, 2]
    assert train._data.mol_index.tolist() == [0, 1, 4, 5]
    for ds, rows in [(train, FILES["train"]), (val, FILES["test"]), (test, FILES["test_scaffolds"])]:
        for i in range(len(ds)):
            g = ds[i]
            assert g.x.shape == (g.num_nodes, 7) and g.y.shape == (1, 0) and g.num_nodes <= 27
            assert graph_to_smiles(g, MOSES_SPEC) == canonical_smiles(rows[int(g.mol_index)])
    assert train.train_smiles() == [canonical_smiles(FILES["train"][i]) for i in (0, 1, 4, 5)]
    info = train.info
    assert info.node_classes == ["C", "N", "S", "O", "F", "Cl", "Br"]
    assert info.max_nodes == max(train[i].num_nodes for i in range(len(train))) == 10
    assert info.atom_valencies == [4, 3, 2, 2, 1, 1, 1]
    assert sum(info.node_marginals) == pytest.approx(1.0) and sum(info.edge_marginals) == pytest.approx(1.0)


def test_fast_processing_equals_mol_to_graph_and_pyg_collate(tmp_path, monkeypatch):
    """The chunked converter + direct collation give exactly InMemoryDataset.collate of mol_to_graph graphs,
    whatever the chunk boundaries and the number of worker processes."""
    from torch_geometric.data import InMemoryDataset

    from sympe.datasets.molecules import mol_to_graph

    rows = ["CCOc1ccc(Cl)cc1", "c1ccc2[nH]ccc2c1", "xx", "O=S(=O)(N)c1ccc(C)cc1", "C#CC(=O)N", "Brc1cccs1",
            "FC(F)(F)c1ccncc1", "C", BIG, "O=C(O)c1ccccc1Br"] * 3
    expected = []
    for i, smi in enumerate(rows):
        if smi in ("xx", BIG):
            continue
        d = mol_to_graph(smi, MOSES_SPEC, remove_h=True)
        d.mol_index, d.y = torch.tensor([i]), torch.zeros(1, 0)
        expected.append(d)
    ref_data, ref_slices = InMemoryDataset.collate(expected)
    parts = [mosesmod.convert_chunk((rows[a:a + 7], a, "x", 27, True)) for a in range(0, len(rows), 7)]
    data, slices = mosesmod.collate_chunks(parts, 7)
    ref = ref_data.to_dict()
    assert set(data) == set(ref) and set(slices) == set(ref_slices)
    for k, v in ref.items():
        assert (torch.equal(data[k], v) and data[k].dtype == v.dtype) if isinstance(v, torch.Tensor) else data[k] == v, k
    for k, v in ref_slices.items():
        assert torch.equal(slices[k], v), k
    assert [s for p in parts for s in p["smiles"]] == [canonical_smiles(r) for r in rows if r not in ("xx", BIG)]
    assert [r for p in parts for r in p["unparsable"]] == [2, 12, 22]
    # the dataset built by worker processes (chunks of 4 rows, 2 of them in-process) equals the expected one
    monkeypatch.setattr(mosesmod, "CHUNK", 4)
    monkeypatch.setattr(mosesmod, "IN_PROCESS_CHUNKS", 2)
    folder = _write(tmp_path / "data", {"train": rows, "test": rows[:5], "test_scaffolds": rows[5:]})
    with pytest.warns(UserWarning):
        two = MOSESDataset(tmp_path / "b", source="local", data_dir=folder, num_workers=2)
    for k in ("x", "edge_index", "edge_attr", "charge", "mol_index"):
        assert torch.equal(getattr(two._data, k), getattr(ref_data, k)), k
    assert two.train_smiles() == [canonical_smiles(r) for r in rows if r not in ("xx", BIG)]
    assert [two[i].num_nodes for i in range(len(two))] == [d.num_nodes for d in expected]


def test_max_atoms_and_limit_change_cache(tmp_path, local):
    with pytest.warns(UserWarning):
        a = MOSESDataset(tmp_path / "root", split="val", source="local", data_dir=local)
    with pytest.warns(UserWarning):
        b = MOSESDataset(tmp_path / "root", split="val", source="local", data_dir=local, max_atoms=26)
    c = MOSESDataset(tmp_path / "root", split="val", source="local", data_dir=local, limit=2)
    assert len({a.processed_dir, b.processed_dir, c.processed_dir}) == 3
    assert (len(a), len(b), len(c)) == (3, 2, 2)


def test_unknown_element(tmp_path):
    files = dict(FILES, test_scaffolds=["CCP(C)C"])
    data = _write(tmp_path / "data", files)
    with pytest.raises(ValueError, match=r"'P'.*test_scaffolds row 0"):
        with pytest.warns(UserWarning):
            MOSESDataset(tmp_path / "root", source="local", data_dir=data)


def test_bad_arguments(tmp_path, local):
    with pytest.raises(ValueError, match="unknown source"):
        MOSESDataset(tmp_path, source="zinc")
    with pytest.raises(ValueError, match="data_dir"):
        MOSESDataset(tmp_path, source="local")
    with pytest.raises(ValueError, match="limit"):
        MOSESDataset(tmp_path, source="local", data_dir=local, limit=0)
    with pytest.raises(FileNotFoundError, match="test_scaffolds"):
        MOSESDataset(tmp_path, source="local", data_dir=_write(tmp_path / "partial", {"train": ["C"], "test": ["C"]}))
    (tmp_path / "cols").mkdir()
    (tmp_path / "cols" / "x.csv").write_text("smiles\nC\n")
    with pytest.raises(ValueError, match="SMILES"):
        list(read_csv_column(str(tmp_path / "cols" / "x.csv")))


def test_download_uses_canonical_urls(tmp_path, monkeypatch):
    calls = []

    def fake(url, folder, log=True, filename=None):
        calls.append((url, filename))
        _write(tmp_path / "root" / "raw", {filename[:-4]: FILES[filename[:-4]]}, gz=())
        return str(tmp_path / "root" / "raw" / filename)

    monkeypatch.setattr(mosesmod, "download_url", fake)
    with pytest.warns(UserWarning):
        ds = MOSESDataset(tmp_path / "root", split="test", source="download")
    assert [f for _, f in calls] == ["train.csv", "test.csv", "test_scaffolds.csv"]
    assert all(u.startswith("https://media.githubusercontent.com/media/molecularsets/moses/master/data/") for u, _ in calls)
    assert len(ds) == 2


def test_missing_molsets_message(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mosesmod.importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match="pip install --no-deps molsets==0.3.1"):
        mosesmod.molsets_paths()


def _molsets_installed():
    try:
        importlib.metadata.distribution("molsets")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _molsets_installed(), reason="molsets not installed (`pip install --no-deps molsets==0.3.1`)")
def test_molsets_package_source(tmp_path):
    paths = mosesmod.molsets_paths()
    ds = {s: MOSESDataset(tmp_path, split=s, limit=300) for s in ("train", "val", "test")}
    for s, d in ds.items():
        rows = list(read_csv_column(paths[SPLIT_FILES[s]], "SMILES", 300))
        assert len(d) == 300  # MOSES molecules all parse and have at most 27 heavy atoms
        assert torch.equal(d._data.mol_index, torch.arange(300))
        for i in (0, 150, 299):
            assert graph_to_smiles(d[i], MOSES_SPEC) == canonical_smiles(rows[i])
    assert ds["train"].info.num_train_graphs == 300
