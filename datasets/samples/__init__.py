"""sympe.datasets.samples: files of generated samples in (``readers``: sympe's and other systems' formats, with
``smiles_files``, the one reader of SMILES files, also of the data sets' CSV files; ``errors``) and out (``writers``:
SMILES files, ``.npz`` edge lists, PNG grids).
"""
from __future__ import annotations

from importlib import import_module

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # readers
    "FORMATS": "readers", "Samples": "readers", "detect_format": "readers", "digress_atom_decoder": "readers",
    "read_samples": "readers",
    # smiles_files
    "open_csv_table": "smiles_files", "read_csv_column": "smiles_files", "read_csv_smiles": "smiles_files",
    "read_smiles_lines": "smiles_files",
    # errors
    "SampleFileError": "errors", "SampleFileMissing": "errors",
    # writers
    "dense_to_class_lists": "writers", "draw_grid": "writers", "graphs_to_smiles": "writers",
    "save_graphs_npz": "writers", "write_lines": "writers", "write_samples": "writers",
}
__all__ = [*_EXPORTS]


def __getattr__(name: str):
    """Import the module that defines ``name`` on first use (PEP 562), so that importing this package stays light."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
