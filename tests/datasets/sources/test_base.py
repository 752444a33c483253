"""The verified processed-dataset cache of GraphDataset: a good folder loads without processing; a damaged one
(truncated split, empty info.json, changed params.json, a flipped byte, no params.json) is rebuilt with one line
naming the file, or refused with one line naming the folder when the source is unavailable or the folder is not
writable; files that match their manifest but do not load are an error that leaves the folder as it is; a folder of
an older sympe (no manifest.json) is accepted and recorded."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from sympe.datasets.sources import base
from sympe.datasets.sources.breaking import SymmetryBreakingDataset
from sympe.datasets.sources.cache_manifest import MANIFEST, PARAMS, ProcessedCacheError

KW = {"family": "star", "n": 6, "num_graphs": 12, "seed": 3}


def open_split(root, split="train", cls=SymmetryBreakingDataset):
    return cls(str(root), split, **KW)


def edges_of(ds) -> list[torch.Tensor]:
    return [ds[i].edge_index for i in range(len(ds))]


@pytest.fixture
def built(tmp_path):
    """A freshly built folder: (root, processed folder, the train split's edges)."""
    ds = open_split(tmp_path)
    return tmp_path, Path(ds.processed_dir), edges_of(ds)


@pytest.fixture
def process_calls(monkeypatch):
    """Counts the builds (calls of process) made after the fixture starts."""
    calls = []
    original = SymmetryBreakingDataset.process

    def counting(self):
        calls.append(self.split)
        original(self)

    monkeypatch.setattr(SymmetryBreakingDataset, "process", counting)
    return calls


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, failed_file, phrase, split="train"):
    capsys.readouterr()
    ds = open_split(root, split)
    err = capsys.readouterr().err
    assert len(process_calls) == 1
    lines = [ln for ln in err.splitlines() if "rebuilding" in ln]
    assert len(lines) == 1 and str(folder) in lines[0] and failed_file in lines[0] and phrase in lines[0], err
    if split == "train":
        assert all(torch.equal(a, b) for a, b in zip(edges_of(ds), edges, strict=True))
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, record in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == record["sha256"]
    return ds


def test_a_build_records_the_parameters_and_the_hash_of_every_file(built):
    root, folder, _ = built
    ds = open_split(root)
    assert json.loads((folder / PARAMS).read_text()) == json.loads(json.dumps(ds.cache_params()))
    files = json.loads((folder / MANIFEST).read_text())["files"]
    assert sorted(files) == sorted(["train.pt", "val.pt", "test.pt", "info.json"])
    for name, record in files.items():
        data = (folder / name).read_bytes()
        assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_an_intact_folder_loads_every_split_without_processing(built, process_calls, capsys):
    root, folder, edges = built
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    capsys.readouterr()
    for split in ("train", "val", "test"):
        ds = open_split(root, split)
        assert len(ds) == 12 and ds.info.num_train_graphs == 12
    assert process_calls == [] and capsys.readouterr().err == ""
    assert all(torch.equal(a, b) for a, b in zip(edges_of(open_split(root)), edges, strict=True))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_a_truncated_split_file_is_rebuilt(built, process_calls, capsys):
    root, folder, edges = built
    data = (folder / "train.pt").read_bytes()
    (folder / "train.pt").write_bytes(data[: len(data) // 2])
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, "train.pt", "truncated")
    assert (folder / "train.pt").read_bytes() == data


def test_an_empty_info_json_is_rebuilt(built, process_calls, capsys):
    root, folder, edges = built
    (folder / "info.json").write_text("")
    ds = reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, "info.json", "bytes where")
    assert ds.info.num_train_graphs == 12


def test_a_garbled_info_json_without_manifest_fails_to_load_and_is_rebuilt(built, process_calls, capsys):
    root, folder, edges = built
    (folder / MANIFEST).unlink()
    (folder / "info.json").write_text("{not json")
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, "info.json", "JSONDecodeError")


def test_changed_parameters_in_params_json_are_detected(built, process_calls, capsys):
    root, folder, edges = built
    params = json.loads((folder / PARAMS).read_text())
    params["seed"] = 4
    (folder / PARAMS).write_text(json.dumps(params))
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, PARAMS, "seed: stored 4, expected 3")
    assert json.loads((folder / PARAMS).read_text())["seed"] == 3


def test_a_flipped_byte_inside_a_split_is_caught_by_its_hash(built, process_calls, capsys):
    root, folder, edges = built
    path = folder / "val.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, "val.pt", "sha256", split="val")


def test_a_missing_params_json_is_an_interrupted_build_and_is_rebuilt(built, process_calls, capsys):
    root, folder, edges = built
    (folder / PARAMS).unlink()
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, PARAMS, "missing")


def test_a_rebuild_removes_caches_derived_from_the_damaged_files(built, process_calls, capsys):
    root, folder, edges = built
    torch.save(torch.zeros(12), folder / "log_aut_train.pt")
    (folder / "test.pt").write_bytes(b"")
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, "test.pt", "0 bytes", split="test")
    assert not (folder / "log_aut_train.pt").exists()


class NoSource(SymmetryBreakingDataset):
    """The same dataset whose source cannot be read (as a removed CSV or an uninstalled package)."""

    def raw_source_problem(self):
        return "the test removed its source"


def test_damage_without_a_source_is_one_error_naming_the_folder_and_the_file(built, process_calls):
    root, folder, _ = built
    (folder / "train.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ProcessedCacheError) as err:
        open_split(root, cls=NoSource)
    msg = str(err.value)
    assert "\n" not in msg and err.value.user_error
    assert f"delete {str(folder)!r}" in msg and "train.pt has 10 bytes" in msg and "the test removed its source" in msg
    assert process_calls == [] and (folder / "train.pt").read_bytes() == b"\x00" * 10  # nothing was removed


def fail_split_load(monkeypatch):
    def load(self, path, *args, **kwargs):
        raise RuntimeError("Weights only load failed. This file can still be loaded...\nsecond line of the message")
    monkeypatch.setattr(SymmetryBreakingDataset, "load", load)


def fail_info_load(monkeypatch):
    def load(*args, **kwargs):
        raise MemoryError()
    monkeypatch.setattr(base.DatasetInfo, "load", load)


@pytest.mark.parametrize("fail, failed", [(fail_split_load, "train.pt cannot be loaded (RuntimeError: Weights only "
                                                            "load failed. This file can still be loaded...)"),
                                          (fail_info_load, "info.json cannot be loaded (MemoryError)")])
def test_files_that_match_their_manifest_but_do_not_load_are_an_error_and_left_intact(
        built, process_calls, capsys, monkeypatch, fail, failed):
    root, folder, _ = built
    torch.save(torch.zeros(12), folder / "log_aut_train.pt")  # a derived cache must survive too
    before = snapshot(folder)
    fail(monkeypatch)
    capsys.readouterr()
    with pytest.raises(ProcessedCacheError) as err:
        open_split(root)
    msg = str(err.value)
    assert "\n" not in msg and err.value.user_error and "second line" not in msg
    assert repr(str(folder)) in msg and failed in msg and "the cache is intact" in msg and "version" in msg
    assert process_calls == [] and snapshot(folder) == before and "rebuilding" not in capsys.readouterr().err
    monkeypatch.undo()  # the environment is fixed: the same folder opens without a rebuild
    assert len(open_split(root)) == 12 and snapshot(folder) == before


def damage_train_split(folder: Path) -> None:
    data = (folder / "train.pt").read_bytes()
    (folder / "train.pt").write_bytes(data[: len(data) // 2])


def check_unwritable_error(msg: str, folder: Path, failed: str) -> None:
    assert "\n" not in msg and repr(str(folder)) in msg and failed in msg
    assert "not writable" in msg and "make it writable" in msg and "paths.data_root ($SYMPE_DATA_ROOT)" in msg


def test_a_damaged_folder_without_write_access_is_one_error_and_left_as_it_is(built, process_calls, monkeypatch):
    root, folder, _ = built
    damage_train_split(folder)
    before = snapshot(folder)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if Path(path) == folder and mode & os.W_OK else real_access(path, mode, **kw)))
    with pytest.raises(ProcessedCacheError) as err:
        open_split(root)
    check_unwritable_error(str(err.value), folder, "train.pt has")
    assert process_calls == [] and snapshot(folder) == before


def test_a_wipe_refused_by_the_file_system_is_one_error_naming_the_file(built, process_calls, monkeypatch):
    root, folder, _ = built
    damage_train_split(folder)
    before = snapshot(folder)
    real_remove = os.remove

    def remove(path, *args, **kwargs):
        if Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        real_remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "remove", remove)
    with pytest.raises(ProcessedCacheError) as err:
        open_split(root)
    msg = str(err.value)
    check_unwritable_error(msg, folder, "train.pt has")
    assert "failed (PermissionError: [Errno 13] Permission denied" in msg
    assert process_calls == [] and snapshot(folder) == before


def test_an_unreadable_pyg_marker_in_a_read_only_folder_is_one_error(built, process_calls, monkeypatch):
    root, folder, _ = built
    (folder / "pre_transform.pt").write_bytes(b"garbage")
    monkeypatch.setattr(os, "remove", lambda path, *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
    with pytest.raises(ProcessedCacheError) as err:
        open_split(root)
    check_unwritable_error(str(err.value), folder, "pre_transform.pt cannot be read")
    assert process_calls == [] and (folder / "pre_transform.pt").read_bytes() == b"garbage"


def test_a_folder_still_damaged_after_its_rebuild_is_an_error(built, monkeypatch):
    root, folder, _ = built
    (folder / "info.json").write_text("")
    original = SymmetryBreakingDataset.process

    def broken_build(self):
        original(self)
        (Path(self.processed_dir) / "info.json").write_text("[]")  # the build itself writes a bad file

    monkeypatch.setattr(SymmetryBreakingDataset, "process", broken_build)
    with pytest.raises(ProcessedCacheError, match=r"info.json cannot be loaded .* even after a rebuild"):
        open_split(root)


def test_a_folder_of_an_older_version_is_accepted_and_its_hashes_recorded(built, process_calls, capsys):
    root, folder, edges = built
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).unlink()
    capsys.readouterr()
    ds = open_split(root, "val")
    assert process_calls == [] and len(ds) == 12
    assert "older sympe" in capsys.readouterr().err
    assert json.loads((folder / MANIFEST).read_text()) == manifest


def test_an_older_folder_with_a_damaged_split_is_rebuilt_when_that_split_is_opened(built, process_calls, capsys):
    root, folder, edges = built
    (folder / MANIFEST).unlink()
    (folder / "train.pt").write_bytes(b"PK\x03\x04 not a zip")
    reopen_and_check_rebuilt(root, folder, edges, process_calls, capsys, "train.pt", "cannot be loaded")


def test_an_unreadable_pyg_marker_is_removed_instead_of_failing(built, process_calls, capsys):
    root, folder, _ = built
    (folder / "pre_transform.pt").write_bytes(b"garbage")
    capsys.readouterr()
    ds = open_split(root)
    assert len(ds) == 12 and process_calls == []
    assert "pre_transform.pt cannot be read" in capsys.readouterr().err
    assert not (folder / "pre_transform.pt").exists()


def test_extra_files_must_be_declared_to_be_recorded(tmp_path):
    class Undeclared(SymmetryBreakingDataset):
        def extra_files(self, splits):
            return {"notes.txt": "x"}

    with pytest.raises(RuntimeError, match=r"extra_files\(\) wrote \['notes.txt'\], not in extra_file_names"):
        open_split(tmp_path, cls=Undeclared)

    class Declared(Undeclared):
        extra_file_names = ("notes.txt",)

    ds = open_split(tmp_path / "b", cls=Declared)
    assert ds.processed_text("notes.txt") == "x"
    assert "notes.txt" in json.loads((Path(ds.processed_dir) / MANIFEST).read_text())["files"]
    os.remove(Path(ds.processed_dir) / "notes.txt")
    with pytest.raises(ProcessedCacheError, match="notes.txt is missing"):
        type("DeclaredNoSource", (Declared, NoSource), {})(str(tmp_path / "b"), "train", **KW)

