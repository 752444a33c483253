"""find_problem: every way a processed folder's record can disagree with its files is one phrase naming the file."""
from __future__ import annotations

import hashlib
import json

import pytest

from sympe.datasets.sources.cache_manifest import (MANIFEST, PARAMS, describe_error, file_sha256, find_problem,
                                                   write_manifest, write_params)

PARAMS_IN = {"family": "star", "sizes": (6, 6), "seed": 3}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"alpha" * 1000)
    (tmp_path / "info.json").write_text('{"x": 1}')
    write_params(str(tmp_path), PARAMS_IN)
    write_manifest(str(tmp_path), ["a.pt", "info.json"])
    return tmp_path


def problem(folder, params=PARAMS_IN):
    return find_problem(str(folder), params, ["a.pt", "info.json"], ["a.pt", "info.json"])


def test_an_intact_folder_has_no_problem_and_its_record_is_the_sha256(folder):
    assert problem(folder) is None
    files = json.loads((folder / MANIFEST).read_text())["files"]
    assert files["a.pt"] == {"bytes": 5000, "sha256": hashlib.sha256(b"alpha" * 1000).hexdigest()}
    assert file_sha256(str(folder / "info.json")) == hashlib.sha256(b'{"x": 1}').hexdigest()


def test_parameters_are_compared_as_json_and_the_first_differing_key_is_named(folder):
    assert problem(folder, {"seed": 3, "family": "star", "sizes": [6, 6]}) is None  # key order, tuple vs list
    assert problem(folder, {**PARAMS_IN, "seed": 5}) == (
        f"{PARAMS} records other parameters than this dataset's (seed: stored 3, expected 5)")
    assert "(k: stored <absent>, expected 1)" in problem(folder, {**PARAMS_IN, "k": 1})
    (folder / PARAMS).write_text("[1, 2]")
    assert problem(folder) == f"{PARAMS} holds list, not the object of the cache parameters"


@pytest.mark.parametrize("manifest, phrase", [
    ("", f"{MANIFEST} cannot be read (JSONDecodeError: Expecting value"),
    ('{"format": 2, "files": {}}', f"{MANIFEST} is not a format-1 manifest"),
    ('{"format": 1, "files": {"a.pt": {"bytes": 5000, "sha256": "00"}}}', f"{MANIFEST} does not list info.json"),
    ('{"format": 1, "files": {"a.pt": {"bytes": 5000}, "info.json": {}}}', f"{MANIFEST} has no size and sha256 for a.pt"),
])
def test_a_damaged_manifest_is_named(folder, manifest, phrase):
    (folder / MANIFEST).write_text(manifest)
    assert problem(folder).startswith(phrase)


def test_missing_truncated_and_changed_files_are_named(folder):
    data = (folder / "a.pt").read_bytes()
    (folder / "a.pt").write_bytes(data[:-1] + b"b")
    assert problem(folder) == f"a.pt does not match its sha256 in {MANIFEST} (changed after it was written)"
    (folder / "a.pt").write_bytes(data[:10])
    assert problem(folder) == f"a.pt has 10 bytes where {MANIFEST} records 5000 (truncated or replaced)"
    (folder / "a.pt").unlink()
    assert problem(folder) == "a.pt is missing"


def test_without_a_manifest_only_the_parameters_and_the_files_presence_are_checked(folder):
    (folder / MANIFEST).unlink()
    (folder / "a.pt").write_bytes(b"")  # not detectable without hashes: loading it is the check
    assert problem(folder) is None
    (folder / "info.json").unlink()
    assert problem(folder) == "info.json is missing"
    (folder / PARAMS).unlink()
    assert problem(folder) == f"{PARAMS} is missing (its build was interrupted)"


def test_describe_error_is_one_short_line():
    assert describe_error(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert describe_error(KeyError()) == "KeyError"
    assert len(describe_error(RuntimeError("x" * 500))) <= 160
