"""sympe.datasets.samples.smiles_files: the data sets' CSV files, streamed (plain or gzipped), and their header
checks (the SMILES formats of sample files are tested through read_samples in test_readers.py)."""
from __future__ import annotations

import pytest

from sympe.datasets.samples.smiles_files import open_csv_table, read_csv_column


def test_dataset_csv_columns_streamed_plain_or_gzipped(tmp_path):
    import gzip

    text = "id,SMILES,extra\n1,CCO,x\n2,c1ccccc1,y\n3,CC,z\n"
    (tmp_path / "a.csv").write_text(text)
    with gzip.open(tmp_path / "b.csv.gz", "wt") as f:
        f.write(text)
    for name in ("a.csv", "b.csv.gz"):
        assert list(read_csv_column(tmp_path / name)) == ["CCO", "c1ccccc1", "CC"]
        assert list(read_csv_column(tmp_path / name, "SMILES", limit=2)) == ["CCO", "c1ccccc1"]
        with open_csv_table(tmp_path / name, ("SMILES", "id")) as (cols, rows):
            assert cols == [1, 0] and [r[cols[1]] for r in rows] == ["1", "2", "3"]
    with pytest.raises(ValueError, match=r"MOSES CSV .*a.csv: needs a 'smiles' column, found \['id', 'SMILES', 'extra'\]"):
        list(read_csv_column(tmp_path / "a.csv", "smiles"))
    with pytest.raises(ValueError, match="QM9 CSV .*: needs columns 'gdb_index' and 'smiles', found"):
        with open_csv_table(tmp_path / "a.csv", ("gdb_index", "smiles"), "QM9 CSV"):
            pass
