"""sympe.datasets.samples: files of generated samples in (``readers``: sympe's and other systems' formats, with
``smiles_files``, the one reader of SMILES files, also of the data sets' CSV files; ``errors``) and out (``writers``:
SMILES files, ``.npz`` edge lists, PNG grids).
"""
from __future__ import annotations

from sympe.datasets.lazy_exports import lazy_exports

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    # readers
    "FORMATS": "readers", "Samples": "readers", "detect_format": "readers", "digress_atom_decoder": "readers",
    "read_samples": "readers",
    # smiles_files
    "SmilesSamples": "smiles_files", "open_csv_table": "smiles_files", "parse_flags": "smiles_files",
    "read_csv_column": "smiles_files", "read_csv_samples": "smiles_files", "read_csv_smiles": "smiles_files",
    "read_smiles_lines": "smiles_files", "read_smiles_samples": "smiles_files",
    # errors
    "SampleFileError": "errors", "SampleFileMissing": "errors",
    # writers
    "dense_to_class_lists": "writers", "draw_grid": "writers", "graphs_to_smiles": "writers",
    "save_graphs_npz": "writers", "write_lines": "writers", "write_samples": "writers",
}
__all__ = [*_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
