"""The record of a processed-dataset folder: the parameters it was built from and a hash of every file it holds.

A processed folder ``root/processed/<name>-<key>/`` (see :mod:`sympe.datasets.sources.base`) holds

* ``params.json``: the dataset's ``cache_params()`` (a JSON object), written before the data files;
* ``manifest.json``: ``{"format": 1, "files": {name: {"bytes": int, "sha256": hex}}}`` for every file the build
  wrote (the split ``.pt`` files, ``info.json``, the dataset's extra files), written last.

:func:`find_problem` compares both with what is on disk and returns the first problem as one phrase (``None`` when
the folder is intact); a folder without ``manifest.json`` was written by an older sympe (see
:func:`has_manifest`). Files that later code caches beside the data (``log_aut_<split>.pt``, FCD statistics, PyG's
``pre_transform.pt``) are not part of the record. Hashing reads the whole file once: about 0.1-0.4 s for the
250 MB of QM9 with hydrogens, against 1.7 s for ``torch.load`` of its train split.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from typing import Iterable

from sympe.diffusion.files import atomic_path

__all__ = ["MANIFEST", "PARAMS", "ProcessedCacheError", "describe_error", "file_sha256", "find_problem",
           "has_manifest", "write_manifest", "write_params"]

PARAMS = "params.json"
MANIFEST = "manifest.json"
FORMAT = 1


class ProcessedCacheError(RuntimeError):
    """A processed-dataset folder that is damaged or was built from other parameters, and cannot be rebuilt
    here; the message names the folder, the file and the fix. ``user_error``: the commands print it as one line
    (``sympe.diffusion.runs.options.user_errors``)."""

    user_error = True


def describe_error(exc: BaseException) -> str:
    """``"<ExceptionType>: <first line of its message>"``, at most 160 characters (for one-line reports)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file's bytes (read in 1 MiB blocks). Raises ``OSError`` when it cannot be read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _plain_json(params: dict) -> object:
    """``params`` as it reads back from JSON (tuples -> lists, other objects -> ``str``), for comparison."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def write_params(folder: str, params: dict) -> None:
    """Write ``params.json`` (the cache parameters) atomically."""
    with atomic_path(osp.join(folder, PARAMS), unique=True) as tmp:
        tmp.write_text(json.dumps(params, indent=1, default=str))


def write_manifest(folder: str, names: Iterable[str]) -> None:
    """Hash the files ``names`` of ``folder`` and write ``manifest.json`` atomically (several processes may
    record the same folder at once). Raises ``OSError`` when a file cannot be read or the folder written."""
    files = {}
    for name in names:
        path = osp.join(folder, name)
        files[name] = {"bytes": os.path.getsize(path), "sha256": file_sha256(path)}
    with atomic_path(osp.join(folder, MANIFEST), unique=True) as tmp:
        tmp.write_text(json.dumps({"format": FORMAT, "files": files}, indent=1))


def has_manifest(folder: str) -> bool:
    """Whether ``folder`` holds a ``manifest.json`` (folders written before sympe recorded hashes do not)."""
    return osp.isfile(osp.join(folder, MANIFEST))


def _read_json(folder: str, name: str) -> tuple[object, str | None]:
    try:
        with open(osp.join(folder, name), encoding="utf-8") as f:
            return json.load(f), None
    except (OSError, ValueError) as exc:
        return None, f"{name} cannot be read ({describe_error(exc)})"


def _params_problem(folder: str, params: dict) -> str | None:
    if not osp.isfile(osp.join(folder, PARAMS)):
        return f"{PARAMS} is missing (its build was interrupted)"
    stored, problem = _read_json(folder, PARAMS)
    if problem:
        return problem
    expected = _plain_json(params)
    if stored == expected:
        return None
    if not isinstance(stored, dict):
        return f"{PARAMS} holds {type(stored).__name__}, not the object of the cache parameters"
    absent = object()
    key = next(k for k in sorted(set(stored) | set(expected)) if stored.get(k, absent) != expected.get(k, absent))

    def show(table: dict) -> str:
        return json.dumps(table[key]) if key in table else "<absent>"

    return f"{PARAMS} records other parameters than this dataset's ({key}: stored {show(stored)}, expected {show(expected)})"


def _file_problem(folder: str, name: str, record: object) -> str | None:
    if not (isinstance(record, dict) and isinstance(record.get("bytes"), int) and isinstance(record.get("sha256"), str)):
        return f"{MANIFEST} has no size and sha256 for {name}"
    path = osp.join(folder, name)
    if not osp.isfile(path):
        return f"{name} is missing"
    size = os.path.getsize(path)
    if size != record["bytes"]:
        return f"{name} has {size} bytes where {MANIFEST} records {record['bytes']} (truncated or replaced)"
    try:
        digest = file_sha256(path)
    except OSError as exc:
        return f"{name} cannot be read ({describe_error(exc)})"
    if digest != record["sha256"]:
        return f"{name} does not match its sha256 in {MANIFEST} (changed after it was written)"
    return None


def find_problem(folder: str, params: dict, check: Iterable[str], required: Iterable[str]) -> str | None:
    """The first reason why ``folder`` cannot be trusted, as one phrase naming the file, or ``None``.

    ``params.json`` must exist and equal ``params`` (compared as JSON). When ``manifest.json`` exists it must be
    readable and list every name of ``required``; each name of ``check`` must then exist with the recorded size
    and SHA-256. Without ``manifest.json`` (a folder of an older sympe) ``params.json`` is compared and every name
    of ``required`` must exist.
    Never raises for a damaged folder: every failure is returned as the phrase.
    """
    problem = _params_problem(folder, params)
    if problem:
        return problem
    if not has_manifest(folder):
        absent = [n for n in required if not osp.isfile(osp.join(folder, n))]
        return f"{absent[0]} is missing" if absent else None
    manifest, problem = _read_json(folder, MANIFEST)
    if problem:
        return problem
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or manifest.get("format") != FORMAT:
        return f"{MANIFEST} is not a format-{FORMAT} manifest (no 'files' table)"
    unlisted = [n for n in required if n not in files]
    if unlisted:
        return f"{MANIFEST} does not list {unlisted[0]}"
    for name in check:
        problem = _file_problem(folder, name, files.get(name))
        if problem:
            return problem
    return None
