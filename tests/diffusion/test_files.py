"""sympe.diffusion.files: a write is all or nothing, and leaves no temporary file."""
import json

import numpy as np
import pytest

from sympe.diffusion.files import atomic_path, atomic_write_json, atomic_write_text, temporary_name


def test_complete_write_replaces_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_interrupted_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text('{"a": ')  # half written
            raise KeyboardInterrupt
    assert json.loads(path.read_text()) == {"a": 1}
    assert not temporary_name(path).exists()


def test_keep_suffix_serves_numpy_savez(tmp_path):
    path = tmp_path / "s.npz"
    with atomic_path(path, keep_suffix=True) as tmp:
        assert tmp.name == "s.tmp.npz"
        np.savez(tmp, x=np.arange(3))
    assert np.load(path)["x"].tolist() == [0, 1, 2] and not (tmp_path / "s.tmp.npz").exists()


def test_a_block_that_writes_nothing_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "x.bin"):
            pass
    assert not (tmp_path / "x.bin").exists()


def test_json_newline_option(tmp_path):
    assert atomic_write_json(tmp_path / "a.json", [1], newline=True).read_text() == "[\n 1\n]\n"
    assert atomic_write_json(tmp_path / "b.json", [1], indent=None).read_text() == "[1]"


def test_unique_temporary_names_carry_the_process_id(tmp_path):
    import os

    assert temporary_name(tmp_path / "c.npz", unique=True).name == f"c.npz.{os.getpid()}.tmp"
    assert temporary_name(tmp_path / "k.so", keep_suffix=True, unique=True).name == f"k.{os.getpid()}.tmp.so"
    with atomic_path(tmp_path / "c.txt", unique=True) as tmp:
        tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]
