"""sympe.datasets.samples.readers: every format read from small files written here, detection, and every bad file
failing with a message that names the file, the graph and the problem."""
from __future__ import annotations

import numpy as np
import pytest

from sympe.datasets.samples.writers import save_graphs_npz
from sympe.datasets.samples.readers import (
    DIGRESS_ATOM_DECODERS,
    detect_format,
    digress_atom_decoder,
    read_samples,
)

PATH3 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])


def digress_dump(graphs) -> str:
    """DiGress's generated_samples.txt layout for (node classes, edge classes) pairs."""
    out = []
    for atoms, bonds in graphs:
        out.append(f"N={len(atoms)}\nX: \n" + "".join(f"{a} " for a in atoms) + "\nE: \n")
        out.append("".join("".join(f"{b} " for b in row) + "\n" for row in bonds) + "\n")
    return "".join(out)


# ---------------------------------------------------------------------------- formats
def test_npz_edges_round_trip(tmp_path):
    graphs = [(np.array([0, 1, 2]), PATH3 * np.array([[0, 2, 0], [2, 0, 1], [0, 1, 0]])),
              (np.zeros(2, np.int64), np.zeros((2, 2), np.int64))]
    save_graphs_npz(tmp_path / "g.npz", graphs)
    s = read_samples(tmp_path / "g.npz", molecular=False)
    assert s.format == "npz_edges" and len(s) == 2 and s.smiles is None
    for (a, b), (a2, b2) in zip(graphs, s.graphs):
        assert np.array_equal(a, a2) and np.array_equal(b, b2)


def test_npz_adjacency_of_digress(tmp_path):
    """np.savez(file, *adjs) as DiGress writes it; arr_10 comes after arr_9."""
    adjs = [np.eye(k + 2, k=1, dtype=bool) | np.eye(k + 2, k=-1, dtype=bool) for k in range(12)]  # paths
    np.savez(tmp_path / "generated_adjs.npz", *adjs)
    s = read_samples(tmp_path / "generated_adjs.npz", molecular=False)
    assert s.format == "npz_adjacency" and len(s) == 12
    assert [len(a) for a, _ in s.graphs] == list(range(2, 14))
    assert all(b.sum() == 2 * (len(a) - 1) for a, b in s.graphs)
    with pytest.raises(ValueError, match="carry no atom or bond types"):
        read_samples(tmp_path / "generated_adjs.npz", molecular=True)


def test_digress_text_dump_graphs_and_molecules(tmp_path):
    f = tmp_path / "generated_samples1.txt"
    # QM9 with H in DiGress's class order (H, C, N, O, F): water (O, H, H) and methanol's skeleton
    water = ([3, 0, 0], [[0, 1, 1], [1, 0, 0], [1, 0, 0]])
    co = ([1, 3], [[0, 2], [2, 0]])
    f.write_text(digress_dump([water, co]))
    assert detect_format(f) == "digress_txt"
    g = read_samples(f, molecular=False)
    assert g.format == "digress_txt" and [a.tolist() for a, _ in g.graphs] == [[3, 0, 0], [1, 3]]
    m = read_samples(f, molecular=True, atom_decoder=DIGRESS_ATOM_DECODERS["qm9_h"])
    assert [a.tolist() for a, _ in m.graphs] == [["O", "H", "H"], ["C", "O"]]
    assert np.array_equal(m.graphs[1][1], [[0, 2], [2, 0]])
    with pytest.raises(ValueError, match="atom_decoder"):
        read_samples(f, molecular=True)


def test_csv_with_smiles_column(tmp_path):
    f = tmp_path / "qm9.csv"
    f.write_text("gdb_index,smiles\n1,C\n2,N\n3,O\n")  # the project's own format
    s = read_samples(f, molecular=True)
    assert s.format == "csv" and s.smiles == ["C", "N", "O"] and s.notes == ["column 'smiles' of a CSV"]
    f.write_text("name,SMILES,score\na,CCO,1\nb,,2\nc,c1ccccc1,3\n")
    assert read_samples(f, molecular=True).smiles == ["CCO", "", "c1ccccc1"]  # an empty cell is an invalid sample
    assert read_samples(f, molecular=True, column="name").smiles == ["a", "b", "c"]
    f.write_text("1,CC\n2,CN\n")
    with pytest.raises(ValueError, match="names no SMILES column.*column=NAME"):
        read_samples(f, molecular=True)
    s = read_samples(f, molecular=True, column=1)
    assert s.smiles == ["CC", "CN"] and "without header" in s.notes[0]


@pytest.mark.parametrize("text, expected, header_note", [
    ("CCO\nC\n\n\n", ["CCO", "C"], False),
    ("SMILES\nCCO\nC\n", ["CCO", "C"], True),
    ("smiles name\nCCO ethanol\n\nC methane\n", ["CCO", "", "C"], True),   # a blank inner line is one sample
    ("None\nCCO\n", ["None", "CCO"], False),
])
def test_plain_smiles_with_or_without_header(tmp_path, text, expected, header_note):
    f = tmp_path / "s.smi"
    f.write_text(text)
    s = read_samples(f, molecular=True)
    assert s.format == "smiles" and s.smiles == expected and bool(s.notes) == header_note


def test_header_can_be_forced(tmp_path):
    f = tmp_path / "s.smi"
    f.write_text("CO\nCCO\n")
    assert read_samples(f, molecular=True).smiles == ["CO", "CCO"]  # a SMILES is never guessed to be a header
    assert read_samples(f, molecular=True, header=True).smiles == ["CCO"]
    f.write_text("SMILES\nCCO\n")
    s = read_samples(f, molecular=True, header=False)
    assert s.smiles == ["SMILES", "CCO"]
    assert s.warnings == ["1 of 2 samples do not parse as SMILES and are scored as invalid molecules: line 1 'SMILES'"]


@pytest.mark.parametrize("name", ["molecule", "smi", "mol_id", "Structure name", "SMILES_string"])
def test_a_first_line_that_looks_like_a_column_name_is_a_header_and_a_warning_says_so(tmp_path, name):
    f = tmp_path / "s.smi"
    f.write_text(f"{name}\nCCO\nC\n")
    s = read_samples(f, molecular=True)
    first = name.split()[0]
    assert s.smiles == ["CCO", "C"]
    if "SMILES" in name:  # a header naming SMILES is no guess: a note, as before
        assert s.notes == [f"header line {name!r} skipped"] and s.warnings == []
    else:
        assert s.notes == [] and s.warnings == [
            f"line 1 {first!r} was read as a header (it is not a SMILES and looks like a column name); "
            "pass header=false to score it as a sample"]
    forced = read_samples(f, molecular=True, header=False)
    assert forced.smiles == [first, "CCO", "C"] and f"line 1 {first!r}" in forced.warnings[0]


@pytest.mark.parametrize("first", ["None", "C1CC", "c1ccccc1X", "X"])
def test_an_invalid_first_sample_that_is_no_column_name_stays_a_sample(tmp_path, first):
    f = tmp_path / "s.smi"
    f.write_text(f"{first}\nCCO\n")
    s = read_samples(f, molecular=True)
    assert s.smiles == [first, "CCO"]
    assert not any("header" in w for w in s.warnings)


def test_unparsable_lines_are_counted_and_named_wherever_they_are(tmp_path):
    f = tmp_path / "s.smi"
    lines = ["CCO", "C", "C1CC(", "N", "", "None", "CC(C)O", "xyz"] + ["O"] * 3 + ["Q", "R", "C#", "O=", "[Zz]"]
    f.write_text("\n".join(lines) + "\n\n")
    s = read_samples(f, molecular=True)
    assert s.smiles == lines  # every line stays one sample: validity keeps its denominator
    bad = ["line 3 'C1CC('", "line 5 (blank)", "line 8 'xyz'", "line 12 'Q'", "line 13 'R'"]
    assert s.warnings == [f"8 of 16 samples do not parse as SMILES and are scored as invalid molecules: "
                          f"{', '.join(bad)} and 3 more"]  # None, the mark of an invalid graph, is not counted
    f.write_text("smiles name\nCCO ethanol\nfoo bar\n")
    s = read_samples(f, molecular=True)
    assert s.smiles == ["CCO", "foo"] and s.notes == ["header line 'smiles name' skipped"]
    assert s.warnings == ["1 of 2 samples do not parse as SMILES and are scored as invalid molecules: line 3 'foo'"]


def test_unparsable_csv_rows_are_named_by_their_line(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text('id,smiles\n1,CCO\n2,"C1C\nC"\n3,nope\n4,C\n')  # a quoted field over lines 3 and 4
    s = read_samples(f, molecular=True)
    assert s.smiles == ["CCO", "C1C\nC", "nope", "C"]
    assert s.warnings == ["2 of 4 samples do not parse as SMILES in column 'smiles' and are scored as invalid "
                          "molecules: line 3 'C1C\\nC', line 5 'nope'"]


def test_a_csv_column_chosen_by_index_under_a_column_name_header(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("id,molecule\n1,CCO\n2,CN\n")
    s = read_samples(f, molecular=True, column=1)
    assert s.smiles == ["CCO", "CN"] and s.notes == ["column 'molecule' of a CSV"]
    assert s.warnings == ["line 1 'id,molecule' was read as a header (it is not a SMILES and looks like a column "
                          "name); pass header=false to score it as a sample"]
    assert read_samples(f, molecular=True, column="1", header=False).smiles == ["molecule", "CCO", "CN"]


@pytest.mark.parametrize("fmt, text, kwargs, message", [
    ("smi", "aspirin\nibuprofen\nparacetamol\n", {}, r"has no sample that parses as SMILES \(the first of 2, "
     r"line 2, is 'ibuprofen'\); expected one SMILES per line"),  # line 1 was taken for a header
    ("smi", "12\n13\n", {}, r"has no sample that parses as SMILES \(the first of 2, line 1, is '12'\)"),
    ("csv", "name,smiles,n\nethanol,CCO,1\nmethane,C,2\n", {"column": "n"},
     r"has no sample that parses as SMILES in column 'n' \(the first of 2, line 2, is '1'\); expected a SMILES "
     r"column: choose it with column=NAME or column=INDEX"),
    ("csv", "a,12\nb,13\n", {"column": 1}, r"in column 1 \(the first of 2, line 1, is '12'\)"),
])
def test_a_file_where_no_sample_parses_is_refused(tmp_path, fmt, text, kwargs, message):
    from sympe.datasets.samples.readers import SampleFileError

    f = tmp_path / f"s.{fmt}"
    f.write_text(text)
    with pytest.raises(SampleFileError, match=message) as err:
        read_samples(f, molecular=True, **kwargs)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_a_file_of_invalid_marks_only_is_scored_not_refused(tmp_path):
    f = tmp_path / "s.smi"
    f.write_text("None\nNone\n\nNone\n")  # a model whose every graph was invalid (writers.write_lines)
    s = read_samples(f, molecular=True)
    assert s.smiles == ["None", "None", "", "None"]
    assert s.warnings == ["1 of 4 samples do not parse as SMILES and are scored as invalid molecules: line 3 (blank)"]


def test_an_npz_of_molecules_needs_node_classes(tmp_path):
    graphs = [(np.array([0, 1, 2]), PATH3), (np.array([0, 0]), np.array([[0, 2], [2, 0]]))]
    save_graphs_npz(tmp_path / "m.npz", graphs)
    assert read_samples(tmp_path / "m.npz", molecular=True).warnings == []
    _edges_npz(tmp_path / "bare.npz", [3, 2], [[0, 1], [1, 2], [0, 1]], [0, 2, 3])
    assert len(read_samples(tmp_path / "bare.npz", molecular=False).graphs) == 2  # plain graphs need no classes
    from sympe.datasets.samples.readers import SampleFileError

    with pytest.raises(SampleFileError, match=r"bare.npz.*without node_classes.*expected node_classes"):
        read_samples(tmp_path / "bare.npz", molecular=True)
    _edges_npz(tmp_path / "atoms.npz", [3, 2], [[0, 1], [1, 2], [0, 1]], [0, 2, 3], node_classes=np.zeros(5, np.int64))
    s = read_samples(tmp_path / "atoms.npz", molecular=True)
    assert s.warnings == [f"samples file {str(tmp_path / 'atoms.npz')!r} has no edge_classes: every edge is read as "
                          "class 1 (a single bond)"]
    assert all(set(np.unique(b)) <= {0, 1} for _, b in s.graphs)


def test_explicit_format_overrides_detection(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("CC,O\nCCO\n")  # detected as CSV (a comma), but the user says plain SMILES lines
    assert read_samples(f, molecular=True, format="smiles").smiles == ["CC,O", "CCO"]
    with pytest.raises(ValueError, match="format='sdf' is unknown"):
        read_samples(f, molecular=True, format="sdf")


def test_digress_decoders():
    assert digress_atom_decoder(("C", "N", "O", "F", "H")) == ("H", "C", "N", "O", "F")
    assert digress_atom_decoder(("C", "N", "O", "F")) == ("C", "N", "O", "F")
    assert digress_atom_decoder(("C", "N", "S", "O", "F", "Cl", "Br"))[:7] == ("C", "N", "S", "O", "F", "Cl", "Br")
    assert digress_atom_decoder(("C", "B")) is None


# ---------------------------------------------------------------------------- bad files
def _edges_npz(path, num_nodes, edges, ptr, **extra):
    np.savez(path, num_nodes=np.asarray(num_nodes), edges=np.asarray(edges), edge_ptr=np.asarray(ptr), **extra)


@pytest.mark.parametrize("make, message", [
    (lambda p: _edges_npz(p, [3, 3], [[0, 1], [1, 1]], [0, 1, 2]), r"graph 1 has a self-loop at node 1"),
    (lambda p: _edges_npz(p, [3], np.array([[0.0, 1.0]]), [0, 1]), r"edges has dtype float64.*float ids are refused"),
    (lambda p: _edges_npz(p, [3], [0, 1], [0, 1]), r"edges has shape \(2,\).*\(M, 2\)"),
    (lambda p: _edges_npz(p, [], np.zeros((0, 2), np.int64), [0]), r"holds no graphs"),
    (lambda p: _edges_npz(p, [3, 2], [[0, 1], [0, 5]], [0, 1, 2]), r"graph 1 has an edge endpoint 5 outside its nodes 0..1"),
    (lambda p: _edges_npz(p, [3], [[0, 1]], [0, 2]), r"edge_ptr"),
    (lambda p: _edges_npz(p, [3], [[0, 1], [1, 0]], [0, 2]), r"graph 0 lists an edge twice"),
    (lambda p: np.savez(p, *[np.ones((3, 3), bool)]), r"graph 0 has a self-loop at node 0"),
    (lambda p: np.savez(p, PATH3, np.zeros((2, 3))), r"graph 1 has an adjacency of shape \(2, 3\)"),
    (lambda p: np.savez(p, PATH3, np.triu(np.ones((3, 3)), 1)), r"graph 1 has an asymmetric adjacency"),
    (lambda p: np.savez(p, 2 * PATH3), r"graph 0 has an adjacency entry 2"),
    (lambda p: np.savez(p, adj=PATH3), r"arrays \['adj'\].*num_nodes, edges, edge_ptr"),
    (lambda p: np.save(p, PATH3), r"single .npy array"),
])
def test_bad_graph_files(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    if not path.exists():  # np.save appends .npy
        path = tmp_path / "bad.npz.npy"
    with pytest.raises(ValueError, match=message) as err:
        read_samples(path, molecular=False)
    assert path.name in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("", r"is empty"),
    ("\n\n", r"is empty"),
    ("N=2\nX: \n0 0\nE: \n0 1\n1 1\n\n", r"graph 0 has a self-loop at node 1"),
    ("N=2\nX: \n0 0\nE: \n0 1\n1 0\n\nN=3\nX: \n0 0 0\nE: \n0 1 0\n1 0 1\n", r"graph 1 .*truncated"),
    ("N=2\nX: \n0 0\nE: \n0 1.0\n1 0\n\n", r"graph 0 \(line 5\): '0 1.0' is not a list of integers"),
    ("N=2\nX: \n0\nE: \n0 1\n1 0\n\n", r"graph 0 \(line 3\) has 1 node classes for N=2"),
    ("N=2\nX: \n0 0\nE: \n0 1 0\n1 0\n\n", r"graph 0 \(line 5\): edge row 0 has 3 entries"),
    ("N=2\nX: \n0 0\nE: \n0 1\n0 0\n\n", r"graph 0 has an asymmetric E"),
    ("N=2.5\nX: \n", r"N='2.5' is not an integer"),
])
def test_bad_text_files(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        read_samples(path, molecular=False)
    assert "bad.txt" in str(err.value)


def test_text_for_a_graph_dataset_and_binary_for_smiles(tmp_path):
    f = tmp_path / "s.smi"
    f.write_text("CCO\n")
    with pytest.raises(ValueError, match=r"reads as smiles text.*not molecular.*N=/X:/E:"):
        read_samples(f, molecular=False)
    g = tmp_path / "x.bin"
    g.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="is binary"):
        read_samples(g, molecular=True)
    h = tmp_path / "header_only.smi"
    h.write_text("smiles\n")
    with pytest.raises(ValueError, match="header line and no samples"):
        read_samples(h, molecular=True)
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        read_samples(tmp_path / "missing.smi", molecular=True)
    assert err.value.user_error  # printed by the commands as one line


def test_reader_errors_are_user_errors(tmp_path):
    """Every reader failure is a SampleFileError (a ValueError with user_error set), shown without a traceback."""
    from sympe.datasets.samples.readers import SampleFileError

    f = tmp_path / "loops.npz"
    np.savez(f, np.ones((2, 2)))
    with pytest.raises(SampleFileError, match="self-loop") as err:
        read_samples(f, molecular=False)
    assert isinstance(err.value, ValueError) and err.value.user_error

