"""sympe.datasets.registry: every registered name builds its three splits (small offline configurations),
every shipped dataset config names a registered dataset with known parameters, and unknown names or
parameters fail with a message that lists the valid choices."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from support import REPO  # noqa: E402
from sympe.datasets.sources.base import GraphDataset
from sympe.datasets.registry import DATASETS, build_splits, dataset_class, dataset_parameters

CONFIGS = REPO / "configs" / "dataset"


def qm9_csv(folder: Path) -> dict:
    """A CSV of 300 small QM9-like molecules under QM9 ids 1..300 (every split gets some)."""
    smiles = ["C", "N", "O", "CC", "CO", "CN", "C=O", "C#N", "CCO", "CC(=O)O", "C1CC1", "OCCF", "c1ccoc1"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qm9_small.csv"
    path.write_text("gdb_index,smiles\n" + "".join(f"{i},{smiles[i % len(smiles)]}\n" for i in range(1, 301)))
    return {"source": "csv", "csv_path": str(path)}


def moses_dir(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rows = {"train": ["CCO", "c1ccccc1", "CC(=O)N", "CCN(CC)CC"], "test": ["CCCl", "OC1CCCC1"],
            "test_scaffolds": ["c1ccncc1", "CC(C)(C)O"]}
    for name, smi in rows.items():
        (folder / f"{name}.csv").write_text("SMILES\n" + "".join(s + "\n" for s in smi))
    return {"source": "local", "data_dir": str(folder)}


def smiles_file(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mine.smi"
    path.write_text("".join(f"{s}\n" for s in ["CCO", "CCN", "CCS", "OCC", "NCC", "SCC", "CCO", "CCN", "CCS", "CCO"]))
    return {"path": str(path)}


def graphml_dir(folder: Path) -> dict:
    import networkx as nx

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(10):
        nx.write_graphml(nx.path_graph(3 + k % 3), folder / f"g{k}.graphml")
    return {"path": str(folder)}


# small, offline parameters for every registered name
SMALL = {
    "qm9": qm9_csv,
    "moses": moses_dir,
    "planar": lambda folder: {"source": "generate", "num_graphs": 10, "seed": 1},
    "sbm": lambda folder: {"source": "generate", "num_graphs": 10, "seed": 1},
    "comm20": lambda folder: {"source": "generate", "num_graphs": 10, "seed": 1},
    "symmetric": lambda folder: {"num_graphs": 6, "max_nodes": 10, "seed": 1},
    "matching": lambda folder: {"m": 3, "num_graphs": 8, "seed": 1},
    "marked_cycle": lambda folder: {"n": 6, "k": 1, "num_graphs": 8, "seed": 1},
    "star": lambda folder: {"n": 5, "num_graphs": 8, "seed": 1},
    "smiles": smiles_file,
    "graphs": graphml_dir,
}


def test_every_registered_name_has_a_small_configuration_here():
    assert set(SMALL) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_registered_name_builds_its_splits(tmp_path, name):
    params = SMALL[name](tmp_path / "source")
    splits = build_splits(name, str(tmp_path / "root"), **params)
    cls, _ = dataset_class(name)
    assert set(splits) == set(cls.splits) == {"train", "val", "test"}
    infos = []
    for split, ds in splits.items():
        assert isinstance(ds, cls) and isinstance(ds, GraphDataset) and ds.split == split
        assert len(ds) > 0, (name, split)
        infos.append(ds.info.to_dict())
        g = ds[0]
        # one-hot node and edge classes of the widths the DatasetInfo announces
        assert g.x.shape[1] == ds.info.num_node_classes and torch.equal(g.x.sum(1), torch.ones(g.num_nodes))
        if g.edge_index.numel():
            assert g.edge_attr.shape[1] == ds.info.num_edge_classes
            assert (g.edge_attr[:, 0] == 0).all()  # class 0 ("no edge") never appears in sparse form
    # one DatasetInfo, computed once from the train split, shared by the splits
    assert all(i == infos[0] for i in infos)
    assert sum(len(ds) for ds in splits.values()) >= 3


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_dataset_config_names_a_registered_dataset_with_known_parameters(config):
    cfg = yaml.safe_load(config.read_text())
    assert cfg["name"] in DATASETS, f"{config.name}: {cfg['name']!r} is not registered"
    allowed = dataset_parameters(cfg["name"])
    assert set(cfg.get("params") or {}) <= set(allowed), (config.name, allowed)


def test_unknown_name_lists_every_valid_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'qm10'") as err:
        build_splits("qm10", str(tmp_path))
    for name in DATASETS:
        assert repr(name) in str(err.value)


def test_unknown_parameter_is_named_before_any_loading(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'planar' has no parameter\(s\) \['num_grpahs'\]") as err:
        build_splits("planar", str(tmp_path / "root"), num_grpahs=10)
    assert "num_graphs" in str(err.value)
    assert not (tmp_path / "root").exists()  # nothing was processed
    # the fixed arguments are not user parameters
    assert "name" not in dataset_parameters("planar") and "split" not in dataset_parameters("qm9")
