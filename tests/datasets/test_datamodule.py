"""GraphDataModule: split sizes and subsets, batch composition, seeded and reproducible shuffling of the
train split (and only of it), and the shuffling state carried across a restart."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from sympe.datasets.datamodule import GraphDataModule


class Split(list):
    """A split: a list of PyG graphs with the ``info`` attribute every sympe dataset has."""

    def __init__(self, graphs, info):
        super().__init__(graphs)
        self.info = info


#: the train.* options the data module needs, at the values these tests use (defaults: sympe.diffusion.runs.schema)
OPTIONS = {"batch_size": 32, "eval_batch_size": None, "num_workers": 0, "seed": 0, "limit_train_graphs": None,
           "limit_eval_graphs": None}

def graph(gid: int) -> Data:
    n = 2 + gid % 5  # graph gid has 2 + gid % 5 nodes: its size identifies it inside a batch too
    x = torch.nn.functional.one_hot(torch.zeros(n, dtype=torch.long), 2).float()
    ei = torch.tensor([[i for i in range(n - 1)] + [i + 1 for i in range(n - 1)],
                       [i + 1 for i in range(n - 1)] + [i for i in range(n - 1)]])
    ea = torch.nn.functional.one_hot(torch.ones(ei.shape[1], dtype=torch.long), 2).float()
    return Data(x=x, edge_index=ei, edge_attr=ea, gid=torch.tensor([gid]), num_nodes=n)


def splits(n_train=23, n_val=9, n_test=7):
    info = {"name": "toy", "num_train_graphs": n_train}
    ids = iter(range(n_train + n_val + n_test))
    make = lambda k: Split([graph(next(ids)) for _ in range(k)], info)  # noqa: E731
    return make(n_train), make(n_val), make(n_test)


def module(seed=0, **kw) -> GraphDataModule:
    train, val, test = splits()
    return GraphDataModule(train, val, test, **{**OPTIONS, "batch_size": 5, **kw, "seed": seed})


def epoch(loader) -> list[list[int]]:
    """The graph ids of every batch, checking that each batch is a consistent PyG batch."""
    out = []
    for b in loader:
        ids = b.gid.tolist()
        assert b.num_graphs == len(ids)
        sizes = torch.bincount(b.batch, minlength=b.num_graphs).tolist()
        assert sizes == [2 + g % 5 for g in ids]  # nodes of graph k in the batch belong to graph ids[k]
        out.append(ids)
    return out


def flat(batches):
    return [g for b in batches for g in b]


def test_split_sizes_and_subsets():
    dm = module()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (23, 9, 7)
    small = module(limit_train_graphs=6, limit_eval_graphs=4)
    assert [g.gid.item() for g in small.train_set] == list(range(6))          # the first graphs of each split
    assert [g.gid.item() for g in small.val_set] == list(range(23, 27))
    assert [g.gid.item() for g in small.test_set] == list(range(32, 36))
    assert small.info == dm.info and small.info["num_train_graphs"] == 23    # statistics of the FULL train split
    assert len(module(limit_train_graphs=100).train_set) == 23


def test_batches_cover_every_graph_once_with_the_requested_sizes():
    dm = module(eval_batch_size=4)
    train = epoch(dm.train_dataloader())
    assert [len(b) for b in train] == [5, 5, 5, 5, 3]
    assert sorted(flat(train)) == list(range(23))
    val, test = epoch(dm.val_dataloader()), epoch(dm.test_dataloader())
    assert [len(b) for b in val] == [4, 4, 1] and [len(b) for b in test] == [4, 3]
    # evaluation splits keep their order
    assert flat(val) == list(range(23, 32)) and flat(test) == list(range(32, 39))
    assert module().eval_batch_size == 5  # defaults to batch_size


def test_train_shuffling_is_seeded_reproducible_and_fresh_every_epoch():
    a, b, c = module(seed=3), module(seed=3), module(seed=4)
    a1, a2 = flat(epoch(a.train_dataloader())), flat(epoch(a.train_dataloader()))
    b1, b2 = flat(epoch(b.train_dataloader())), flat(epoch(b.train_dataloader()))
    c1 = flat(epoch(c.train_dataloader()))
    assert a1 == b1 and a2 == b2            # same seed: same order, epoch after epoch
    assert a1 != a2                         # a new order every epoch
    assert a1 != c1                         # another seed: another order
    assert a1 != list(range(23))            # shuffled at all (identity has probability 1/23!)


def test_shuffling_state_survives_a_restart():
    """The train loader's state (Lightning's stateful-dataloader protocol) replays the shuffling exactly:
    after a complete epoch the next epoch, and in the middle of an epoch the batches not yet handed out."""
    loader = module(seed=5).train_dataloader()
    epoch(loader)
    state = loader.state_dict()
    second = flat(epoch(loader))
    restarted = module(seed=5).train_dataloader()
    restarted.load_state_dict(state)
    assert flat(epoch(restarted)) == second

    loader = module(seed=6).train_dataloader()
    it = iter(loader)
    head = [next(it).gid.tolist() for _ in range(2)]
    state = loader.state_dict()
    rest = [b.gid.tolist() for b in it]
    restarted = module(seed=6).train_dataloader()
    restarted.load_state_dict(state)
    assert flat(epoch(restarted)) == flat(rest)
    assert sorted(flat(head) + flat(rest)) == list(range(23))


def test_bad_arguments_name_the_option():
    train, val, test = splits()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        GraphDataModule(train, val, test, **{**OPTIONS, "batch_size": 0})
    with pytest.raises(ValueError, match="limit_train_graphs"):
        GraphDataModule(train, val, test, **{**OPTIONS, "limit_train_graphs": 0})
    with pytest.raises(ValueError, match="limit_eval_graphs"):
        GraphDataModule(train, val, test, **{**OPTIONS, "limit_eval_graphs": -2})
