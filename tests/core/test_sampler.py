import pytest
import torch
from torch.utils.data import DistributedSampler

from lightning_adapruner import PruningSampler


def shards(indices, world, **kw):
    out = []
    for rank in range(world):
        s = PruningSampler(indices, num_replicas=world, rank=rank, seed=3, **kw)
        s.set_epoch(5)
        out.append(list(s))
    return out


def test_is_a_distributed_sampler_so_lightning_does_not_rewrap_it():
    assert isinstance(PruningSampler(range(4)), DistributedSampler)


def test_shards_are_disjoint_equal_and_cover_the_kept_set():
    kept = torch.randperm(1000)[:600]
    parts = shards(kept, 3)
    assert [len(p) for p in parts] == [200, 200, 200]
    flat = [i for p in parts for i in p]
    assert len(set(flat)) == 600 and set(flat) == set(kept.tolist())


def test_uneven_kept_set_is_topped_up_to_equal_counts_not_padded_to_dataset_size():
    kept = list(range(0, 1000, 3))  # 334 samples
    parts = shards(kept, 4)
    assert [len(p) for p in parts] == [84] * 4  # ceil(334 / 4), far below 1000 / 4
    flat = [i for p in parts for i in p]
    assert set(flat) == set(kept)
    assert len(flat) - len(set(flat)) == 2  # only the top-up repeats


def test_drop_last_leaves_out_the_remainder():
    parts = shards(list(range(10)), 4, drop_last=True)
    assert [len(p) for p in parts] == [2] * 4
    flat = [i for p in parts for i in p]
    assert len(set(flat)) == 8


def test_set_epoch_reshuffles_deterministically():
    s = PruningSampler(range(50), seed=1)
    s.set_epoch(0)
    a = list(s)
    s.set_epoch(1)
    b = list(s)
    s.set_epoch(0)
    assert list(s) == a and a != b and sorted(a) == sorted(b) == list(range(50))
    assert list(PruningSampler(range(5), shuffle=False)) == [0, 1, 2, 3, 4]


def test_set_indices_changes_length():
    s = PruningSampler(range(100), num_replicas=2, rank=1)
    assert len(s) == 50
    s.set_indices(torch.arange(30))
    assert len(s) == 15 and set(s) <= set(range(30))


def test_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        PruningSampler(range(4), num_replicas=2, rank=2)


def test_int32_indices_stay_int32():
    s = PruningSampler(torch.arange(10, dtype=torch.int32))
    s.set_indices(torch.arange(5, dtype=torch.int32))
    assert s.indices.dtype == torch.int32 and sorted(s) == [0, 1, 2, 3, 4]
    s.set_indices([1, 2])
    assert s.indices.dtype == torch.int64


def test_a_resumed_pass_continues_at_its_position():
    s = PruningSampler(range(40), num_replicas=2, rank=1, seed=0)
    s.set_epoch(3)
    full = list(s)
    s.set_order(s.order(), epoch=3, start=7)
    assert list(s) == full[7:] and len(s) == 20  # the length stays the epoch's, as Lightning counts it
    s.set_epoch(4)
    assert list(s) == full[7:]  # a given order is not reshuffled by set_epoch (the harness sets every epoch's)
    s.set_indices(range(40))
    s.set_epoch(4)
    assert len(list(s)) == 20 and list(s) != full  # its own shuffle again, from the start
