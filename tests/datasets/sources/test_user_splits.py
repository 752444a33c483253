"""sympe.datasets.sources.user_splits: splits of a user's own data, by column or at random with a seed."""
from __future__ import annotations

import pytest

from sympe.datasets.sources.user_splits import assign_splits, check_fractions, describe_splits


def test_random_splits_partition_the_items_reproducibly():
    a = assign_splits(1000, seed=3)
    assert [len(a[s]) for s in ("train", "val", "test")] == [800, 100, 100]
    assert sorted(a["train"] + a["val"] + a["test"]) == list(range(1000))
    assert a == assign_splits(1000, seed=3) and a != assign_splits(1000, seed=4)
    assert describe_splits({s: len(v) for s, v in a.items()}, False, seed=3) == \
        "split 800 / 100 / 100 (random, fractions 0.8 / 0.1 / 0.1, seed 3)"


def test_a_split_column_decides_and_bad_labels_are_named():
    labels = ["train", "TEST", "valid", "Train", "validation", "test"]
    assert assign_splits(6, labels) == {"train": [0, 3], "val": [2, 4], "test": [1, 5]}
    with pytest.raises(ValueError, match=r"2 split labels are not train / val / test \(item 1: 'tset', item 3: ''\)"):
        assign_splits(4, ["train", "tset", "val", ""], where="f.csv")
    with pytest.raises(ValueError, match=r"f.csv: the val split would be empty"):
        assign_splits(3, ["train", "test", "test"], where="f.csv")


def test_fractions_and_sizes_are_checked():
    with pytest.raises(ValueError, match=r"split_fractions=\[0.5, 0.5\] is not accepted"):
        check_fractions([0.5, 0.5])
    with pytest.raises(ValueError, match="summing to 1"):
        check_fractions([0.8, 0.1, 0.2])
    with pytest.raises(ValueError, match="2 items cannot fill"):
        assign_splits(2)
    with pytest.raises(ValueError, match="the val split would be empty"):
        assign_splits(4, fractions=(0.8, 0.1, 0.1))


def test_split_options_of_a_user_dataset_are_checked_together():
    from sympe.datasets.sources.user_splits import check_split_options

    assert check_split_options({}, "dataset.params") == (0.8, 0.1, 0.1)
    assert check_split_options({"split_seed": 3, "split_fractions": [0.5, 0.25, 0.25]}, "p") == (0.5, 0.25, 0.25)
    for seed in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match=rf"dataset.params.split_seed={seed} is not accepted: expected an integer"):
            check_split_options({"split_seed": seed}, "dataset.params")
    with pytest.raises(ValueError, match=r"p.split_fractions=\[1, 0, 0\] is not accepted"):
        check_split_options({"split_fractions": [1, 0, 0]}, "p")
