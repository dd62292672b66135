import pytest
import torch

from lightning_adapruner.core import functional as F


def reference_top(scores, k, perm):
    """Sort-based top-k with ties broken by a given permutation (the v0.1 rule), for comparison."""
    order = perm[torch.argsort(scores[perm], descending=True, stable=True)]
    return torch.sort(order[:k]).values


def test_select_top_takes_the_exact_top_k():
    scores = torch.tensor([0.5, 3.0, -1.0, 2.0, 0.0, 1.0])
    assert F.select_top(scores, 3, F.generator(0, 0)).tolist() == [1, 3, 5]
    assert F.select_top(scores, 0, F.generator(0, 0)).numel() == 0
    assert F.select_top(scores, 6, F.generator(0, 0)).tolist() == list(range(6))
    with pytest.raises(ValueError, match="k must be"):
        F.select_top(scores, 7, F.generator(0, 0))


def test_select_top_agrees_with_a_full_sort_whenever_the_cut_has_no_tie():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        scores = torch.randint(0, 50, (300,), generator=g).float()
        k = int(torch.randint(1, 300, (1,), generator=g))
        kept = F.select_top(scores, k, F.generator(1, 2))
        assert kept.numel() == k and kept.unique().numel() == k
        threshold = torch.sort(scores, descending=True).values[k - 1]
        assert bool((scores[kept] >= threshold).all()) and bool(scores[scores > threshold].numel() <= k)
        if (scores == threshold).sum() == 1 or scores[kept].min() > torch.sort(scores, descending=True).values[k]:
            assert torch.equal(kept, reference_top(scores, k, torch.arange(300)))


def test_ties_at_the_cut_are_drawn_from_the_seed():
    scores = torch.ones(1000)
    a, b = F.select_top(scores, 500, F.generator(1, 3)), F.select_top(scores, 500, F.generator(1, 3))
    c = F.select_top(scores, 500, F.generator(1, 4))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.unique().numel() == 500


def test_nan_ranks_last():
    scores = torch.tensor([float("nan"), 1.0, 2.0, float("nan")])
    assert F.select_top(scores, 2, F.generator(0, 0)).tolist() == [1, 2]


def test_class_floor():
    scores = torch.tensor([5.0, 4, 3, 2, 1, -1, -2, -3, -4, -5])
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    assert F.select_top(scores, 4, F.generator(0, 0), labels).tolist() == [0, 1, 2, 3]
    assert F.select_top(scores, 4, F.generator(0, 0), labels, class_floor=2).tolist() == [0, 1, 5, 6]
    with pytest.raises(ValueError, match="class_floor"):
        F.select_top(scores, 3, F.generator(0, 0), labels, class_floor=2)


def test_evidence_quota_keeps_unseen_at_the_cut_rate():
    assert F.evidence_quota(700, 1000, 200) == 140
    for budget, cands, unseen in [(10, 10, 10), (1, 10, 9), (9, 10, 1), (0, 5, 5)]:
        q = F.evidence_quota(budget, cands, unseen)
        assert 0 <= q <= unseen and budget - q <= cands - unseen


def test_epoch_order_shards_cover_the_set_and_only_top_ups_repeat():
    kept = torch.arange(100, 133)
    order = F.epoch_order(kept, 4, seed=1, epoch=2)
    assert order.numel() == 36 and set(order.tolist()) == set(kept.tolist())
    assert torch.equal(order[33:], order[:3])  # the top-up repeats the first samples of the order
    assert torch.equal(order, F.epoch_order(kept, 4, seed=1, epoch=2))
    assert not torch.equal(order, F.epoch_order(kept, 4, seed=1, epoch=3))
    assert F.epoch_order(kept, 4, 1, 2, drop_last=True).numel() == 32


def test_random_subset():
    for count, total in [(0, 5), (3, 100), (90, 100), (100, 100)]:
        s = F.random_subset(count, total, F.generator(0, 0))
        assert s.numel() == count and s.unique().numel() == count and (count == 0 or s.max() < total)
