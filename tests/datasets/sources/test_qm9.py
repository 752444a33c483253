"""QM9: DiGress's split through the public API, sources, caching, and the molecule round trip.

The full dataset is processed once per session (qm9pack source, implicit H, module fixture);
other checks use small CSV / SDF files written here. Tests marked ``slow`` make full passes.
"""
import gzip
import importlib.metadata
import os.path as osp

import numpy as np
import pytest
import torch
from rdkit import Chem

from sympe.datasets.sources import qm9 as qm9mod
from sympe.datasets.molecules import QM9_SPEC, QM9_SPEC_WITH_H, canonical_smiles, graph_to_smiles, mol_to_graph
from sympe.datasets.sources.qm9 import (
    QM9Dataset,
    qm9_split_indices,
    read_index_smiles_csv,
    read_qm9pack,
    read_uncharacterized,
)


SIZES = {"train": 97_734, "val": 20_042, "test": 13_055}


def _qm9pack_installed():
    try:
        importlib.metadata.distribution("qm9pack")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_qm9pack = pytest.mark.skipif(not _qm9pack_installed(), reason="qm9pack not installed (`pip install qm9pack`)")


@pytest.fixture(scope="module")
def records():
    """All (gdb_index, SMILES) rows of the qm9pack package."""
    if not _qm9pack_installed():
        pytest.skip("qm9pack not installed")
    return list(read_qm9pack())


@pytest.fixture(scope="module")
def qm9(qm9_root):
    if not _qm9pack_installed():
        pytest.skip("qm9pack not installed")
    root = qm9_root
    return {s: QM9Dataset(root, split=s) for s in ("train", "val", "test")}


def _gdb(ds):
    return ds._data.gdb_index if len(ds) else torch.zeros(0, dtype=torch.long)


def _write_csv(path, rows):
    with open(path, "w") as f:
        f.write("gdb_index,smiles\n" + "".join(f"{i},{s}\n" for i, s in rows))
    return str(path)


# ---------------------------------------------------------------------- the split
def test_split_indices_partition_all_molecules():
    sp = qm9_split_indices()
    assert {k: len(v) for k, v in sp.items()} == {"train": 100_000, "val": 20_497, "test": 13_388}
    allidx = np.concatenate(list(sp.values()))
    assert np.array_equal(np.sort(allidx), np.arange(1, 133_886))
    perm = np.random.RandomState(42).permutation(133_885)
    assert np.array_equal(sp["test"], perm[120_497:] + 1)
    assert all(np.array_equal(a, b) for a, b in zip(sp.values(), qm9_split_indices().values()))


@needs_qm9pack
def test_split_sizes_and_order(qm9, records):
    assert {s: len(d) for s, d in qm9.items()} == SIZES
    present = {g for g, _ in records}
    assert len(present) == 130_831
    for s, idx in qm9_split_indices().items():
        expected = [g for g in idx.tolist() if g in present]
        assert _gdb(qm9[s]).tolist() == expected  # permutation order, uncharacterized dropped
    perm = np.random.RandomState(42).permutation(133_885)
    first_test = [int(g) + 1 for g in perm[120_497:120_497 + 40] if int(g) + 1 in present][:10]
    assert [int(qm9["test"][i].gdb_index) for i in range(10)] == first_test


@needs_qm9pack
def test_graph_fields(qm9):
    g = qm9["val"][3]
    n = g.num_nodes
    assert g.x.shape == (n, 4) and g.charge.shape == (n,) and g.y.shape == (1, 0)
    assert g.edge_attr.shape == (g.edge_index.shape[1], 5) and g.edge_attr[:, [0, 4]].sum() == 0
    assert g.gdb_index.dtype == torch.long and g.gdb_index.shape == (1,)
    assert qm9["train"]._data.x.shape[0] == sum(int(n) for n in torch.diff(qm9["train"].slices["x"]))


@needs_qm9pack
def test_info(qm9):
    info = qm9["train"].info
    assert info.node_classes == ["C", "N", "O", "F"]
    assert info.edge_classes == ["none", "single", "double", "triple", "aromatic"]
    assert info.bond_orders == [0, 1, 2, 3, 1.5] and info.atom_valencies == [4, 3, 2, 1]
    assert info.is_molecular and info.num_train_graphs == SIZES["train"] and info.max_nodes == 9
    for v in (info.node_marginals, info.edge_marginals, info.n_nodes_dist):
        assert sum(v) == pytest.approx(1.0, abs=1e-9) and min(v) >= 0
    assert info.edge_marginals[4] == 0.0
    x = qm9["train"]._data.x
    assert info.node_marginals == pytest.approx((x.sum(0) / x.shape[0]).tolist(), abs=1e-6)


@needs_qm9pack
def test_train_smiles_match_graphs(qm9):
    train = qm9["train"]
    smiles = train.train_smiles()
    assert len(smiles) == SIZES["train"]
    for i in np.random.default_rng(0).choice(len(train), 2000, replace=False).tolist():
        assert graph_to_smiles(train[i], QM9_SPEC) == smiles[i]


@needs_qm9pack
def test_reload_uses_cache(qm9):
    ds = QM9Dataset(qm9["train"].root, split="test")
    assert ds.processed_dir == qm9["test"].processed_dir
    assert torch.equal(ds._data.edge_attr, qm9["test"]._data.edge_attr)


# ---------------------------------------------------------------------- sources
@needs_qm9pack
def test_csv_rows_equal_qm9pack(records, qm9_index_csv):
    """The gdb_index,smiles table (the offline reference copy where present, else written from qm9pack) reads
    back as qm9pack's rows, in order."""
    assert list(read_index_smiles_csv(str(qm9_index_csv))) == records


def test_missing_qm9pack_message(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(qm9mod.importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match="pip install qm9pack"):
        qm9mod.qm9pack_paths()


def test_constructor_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown source"):
        QM9Dataset(tmp_path, source="web")
    with pytest.raises(ValueError, match="csv_path"):
        QM9Dataset(tmp_path, source="csv")
    with pytest.raises(ValueError, match="only used with source='csv'"):
        QM9Dataset(tmp_path, source="qm9pack", csv_path="x.csv")
    with pytest.raises(FileNotFoundError):
        QM9Dataset(tmp_path, source="csv", csv_path=tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="unknown split"):
        QM9Dataset(tmp_path, split="dev")


@pytest.fixture(scope="module")
def small_rows(qm9_index_csv):
    """The first 400 molecules (gdb_index 1..): enough for every split to be non-empty."""
    rows = []
    for g, s in read_index_smiles_csv(str(qm9_index_csv)):
        rows.append((g, s))
        if len(rows) == 400:
            break
    assert len(rows) == 400
    return rows


def test_cache_invalidation_on_remove_h(tmp_path, small_rows):
    path = _write_csv(tmp_path / "small.csv", small_rows)
    no_h = QM9Dataset(tmp_path / "root", split="train", source="csv", csv_path=path)
    with_h = QM9Dataset(tmp_path / "root", split="train", source="csv", csv_path=path, remove_h=False)
    assert no_h.processed_dir != with_h.processed_dir
    assert no_h.info.node_classes == ["C", "N", "O", "F"] and with_h.info.node_classes == ["C", "N", "O", "F", "H"]
    assert (no_h.info.max_weight, with_h.info.max_weight) == (150.0, 390.0)  # DiGress's molecular-weight scales
    assert torch.equal(_gdb(no_h), _gdb(with_h))  # same molecules, same order
    assert with_h._data.x.shape[1] == 5 and with_h._data.x.shape[0] > no_h._data.x.shape[0]
    for i in range(0, len(no_h), 37):
        assert graph_to_smiles(no_h[i], QM9_SPEC) == graph_to_smiles(with_h[i], QM9_SPEC_WITH_H)
    assert no_h.train_smiles() == with_h.train_smiles()
    # flipping back reuses the first folder; loading does not reprocess (same tensors)
    again = QM9Dataset(tmp_path / "root", split="train", source="csv", csv_path=path)
    assert again.processed_dir == no_h.processed_dir and torch.equal(again._data.x, no_h._data.x)


def test_deterministic_processing(tmp_path, small_rows):
    path = _write_csv(tmp_path / "small.csv", small_rows)
    a = QM9Dataset(tmp_path / "a", split="val", source="csv", csv_path=path)
    b = QM9Dataset(tmp_path / "b", split="val", source="csv", csv_path=path)
    for key in ("x", "edge_index", "edge_attr", "charge", "gdb_index"):
        assert torch.equal(a._data[key], b._data[key])
    assert a.info == b.info
    present = {g for g, _ in small_rows}
    sp = qm9_split_indices()
    for s in ("train", "val", "test"):
        ds = QM9Dataset(tmp_path / "a", split=s, source="csv", csv_path=path)
        assert _gdb(ds).tolist() == [g for g in sp[s].tolist() if g in present]


def test_unknown_element_error(tmp_path, small_rows):
    path = _write_csv(tmp_path / "bad.csv", small_rows[:50] + [(60_001, "CCS")])
    with pytest.raises(ValueError, match=r"'S'.*gdb_index 60001"):
        QM9Dataset(tmp_path / "root", source="csv", csv_path=path)


def test_unparsable_rows_warn_and_skip(tmp_path, small_rows):
    bad = [(9, "C1CC("), (12, "not-a-smiles"), (300, "C(C)(C)(C)(C)C")]
    bad_ids = {g for g, _ in bad}
    rows = [(g, s) for g, s in small_rows if g not in bad_ids] + bad
    rows.sort()
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.warns(UserWarning, match=r"skipped 3 molecules .*\[9, 12, 300\]"):
        ds = {s: QM9Dataset(tmp_path / "root", split=s, source="csv", csv_path=path) for s in ("train", "val", "test")}
    assert sum(len(d) for d in ds.values()) == len(small_rows) - 3
    assert not bad_ids & set(torch.cat([_gdb(d) for d in ds.values()]).tolist())


def test_gzipped_csv_and_bad_columns(tmp_path, small_rows):
    gz = tmp_path / "small.csv.gz"
    with gzip.open(gz, "wt") as f:
        f.write("gdb_index,smiles\n" + "".join(f"{g},{s}\n" for g, s in small_rows[:30]))
    assert list(read_index_smiles_csv(str(gz))) == small_rows[:30]
    (tmp_path / "cols.csv").write_text("idx,smi\n1,C\n")
    with pytest.raises(ValueError, match="gdb_index"):
        list(read_index_smiles_csv(str(tmp_path / "cols.csv")))


# ---------------------------------------------------------------------- raw source (SDF)
def test_read_uncharacterized_format(tmp_path):
    p = tmp_path / "u.txt"
    p.write_text(" 3054 molecules from the 133885 GDB9 molecules failed a consistency check\n\n"
                 "   Index   SMILES (GDB9)   SMILES (relaxed)\n ----------------------------\n"
                 "     21   C1=CC=CC=C1   CC\n   4321   CO   CC\n ----------------------------\n"
                 " 12 footnote line\n")
    assert read_uncharacterized(str(p)) == {21, 4321}


def test_raw_sdf_source(tmp_path, small_rows):
    rows = small_rows[:150]
    raw = tmp_path / "root" / "raw"
    raw.mkdir(parents=True)
    # gdb9.sdf has one record per gdb index 1..K (explicit H); use SMILES rows and fill gaps with methane
    smiles_of = dict(rows)
    last = rows[-1][0]
    writer = Chem.SDWriter(str(raw / "gdb9.sdf"))
    for g in range(1, last + 1):
        writer.write(Chem.AddHs(Chem.MolFromSmiles(smiles_of.get(g, "C"))))
    writer.close()
    dropped = sorted(set(range(1, last + 1)) - set(smiles_of)) + [rows[3][0]]
    (raw / "uncharacterized.txt").write_text("header\n -----\n" + "".join(f"  {g}  X  Y\n" for g in dropped) + " -----\n")
    kept = {g for g, _ in rows} - set(dropped)
    sp = qm9_split_indices()
    for remove_h, spec in [(True, QM9_SPEC), (False, QM9_SPEC_WITH_H)]:
        for s in ("train", "val", "test"):
            ds = QM9Dataset(tmp_path / "root", split=s, source="raw", remove_h=remove_h)
            assert _gdb(ds).tolist() == [g for g in sp[s].tolist() if g in kept]
            for i in range(len(ds)):
                assert graph_to_smiles(ds[i], spec) == canonical_smiles(smiles_of[int(ds[i].gdb_index)])


def test_raw_download_urls(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, folder, log=True, filename=None):
        calls.append((url, filename))
        raise OSError("network closed in tests")

    monkeypatch.setattr(qm9mod, "download_url", fake_download)
    with pytest.raises(OSError, match="network closed"):
        QM9Dataset(tmp_path, source="raw")
    assert calls == [(qm9mod.QM9_RAW_URL, None)]
    assert qm9mod.QM9_RAW_URL.endswith("molnet_publish/qm9.zip")


# ---------------------------------------------------------------------- round trip
def _round_trip_failures(rows, spec, remove_h):
    bad = []
    for g, s in rows:
        graph = mol_to_graph(Chem.MolFromSmiles(s), spec, remove_h=remove_h)
        if graph_to_smiles(graph, spec) != canonical_smiles(s):
            bad.append((g, s))
    return bad


@needs_qm9pack
@pytest.mark.parametrize("spec,remove_h", [(QM9_SPEC, True), (QM9_SPEC_WITH_H, False)])
def test_round_trip_sample(records, spec, remove_h):
    idx = np.random.default_rng(1234).choice(len(records), 5000, replace=False)
    assert _round_trip_failures([records[i] for i in idx], spec, remove_h) == []


@pytest.mark.slow
@needs_qm9pack
def test_round_trip_full_processed(qm9, records):
    """Every stored graph (all 130,831, implicit H) decodes to its source molecule."""
    source = dict(records)
    for ds in qm9.values():
        for i in range(len(ds)):
            g = ds[i]
            assert graph_to_smiles(g, QM9_SPEC) == canonical_smiles(source[int(g.gdb_index)]), int(g.gdb_index)


@pytest.mark.slow
@needs_qm9pack
def test_round_trip_large_sample_explicit_h(records):
    """Explicit hydrogens on every 6th molecule (21,806); the full pass is the implicit-H one above."""
    assert _round_trip_failures(records[::6], QM9_SPEC_WITH_H, False) == []
