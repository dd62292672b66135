"""Choosing samples: seeded generators, exact top-K with random ties, random subsets, the epoch order."""

from __future__ import annotations

import torch
from torch import Tensor

# independent random streams of one user seed; a new stream never shifts the draws of another
STREAM_ORDER = 0  # the epoch's shuffle
STREAM_TIES = 1  # tie-breaks of top-K selections
STREAM_UNSEEN = 2  # which never-forwarded samples a cut keeps
STREAM_FLOOR = 3  # which samples the class floor adds and drops for a random method
STREAM_METHOD = 4  # first stream free for a method's own draws (RandomPruning, RS2, InfoBatch, SeTa use 4..9)
STREAM_BATCH = 16  # which samples of a batch the random batch rule keeps (BatchSelection)


def generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)``: identical on every rank, no hidden state.

    Example::

        >>> a = torch.rand(2, generator=generator(0, 1))
        >>> same, other = torch.rand(2, generator=generator(0, 1)), torch.rand(2, generator=generator(0, 2))
        >>> torch.equal(a, same), torch.equal(a, other)
        (True, False)
    """
    gen = torch.Generator()
    gen.manual_seed((int(seed) * 1_000_003 + int(epoch) * 7919 + int(stream) * 104_729) % (2**63 - 1))
    return gen


def random_subset(count: int, total: int, gen: torch.Generator) -> Tensor:
    """``count`` distinct positions drawn uniformly from ``range(total)``, sorted (int64).

    Example::

        >>> random_subset(3, 10, generator(0, 0)).numel(), random_subset(10, 10, generator(0, 0)).tolist()[:3]
        (3, [0, 1, 2])
    """
    if not 0 <= count <= total:
        raise ValueError(f"count must be in [0, {total}], got {count}")
    if count == total:
        return torch.arange(total)
    return random_pick(torch.ones(total, dtype=torch.bool), count, gen).nonzero().flatten()


def random_pick(pool: Tensor, count: int, gen: torch.Generator) -> Tensor:
    """A bool mask of ``count`` entries drawn uniformly among the ``True`` ones of ``pool``.

    The ``count`` smallest of one random key per pool entry, found in O(N) without a sort: a threshold at the
    expected quantile takes about ``count`` of them and the few around the cut are added or removed by key
    (keys equal at the cut, which float32 makes possible at millions, are taken in order).

    Raises:
        ValueError: if ``count`` exceeds the pool.

    Example::

        >>> pick = random_pick(torch.tensor([True, False, True, True]), 2, generator(0, 0))
        >>> int(pick.sum()), bool(pick[1])
        (2, False)
    """
    size = int(torch.count_nonzero(pool))  # count_nonzero: a bool sum is an order of magnitude slower
    if not 0 <= count <= size:
        raise ValueError(f"count must be in [0, {size}] (the pool), got {count}")
    keys = torch.rand(pool.numel(), generator=gen)
    chosen = (keys < count / max(size, 1)) & pool
    excess = int(torch.count_nonzero(chosen)) - count
    if excess > 0:  # drop the largest keys among the chosen
        inside = chosen.nonzero().flatten()
        chosen[inside[torch.topk(keys[inside], excess, sorted=False).indices]] = False
    elif excess < 0:  # add the smallest keys among the rest of the pool
        outside = (pool & ~chosen).nonzero().flatten()
        chosen[outside[torch.topk(keys[outside], -excess, largest=False, sorted=False).indices]] = True
    return chosen


def select_top(
    scores: Tensor, k: int, gen: torch.Generator, labels: Tensor | None = None, class_floor: int = 0
) -> Tensor:
    """Positions (sorted, int64) of the ``k`` largest ``scores``; ties at the cut drawn at random from ``gen``.

    Exact in O(N): the ``k``-th largest value is found by a radix search on the scores' float bits (the
    one-process case of :func:`~lightning_adapruner.core.functional.sharded.sharded_select_top`), everything above
    it is kept and the remaining places go to samples drawn at random among those equal to it
    (``random_subset`` over the ties in index order). NaN ranks last; ``inf`` ties with the largest float. With
    ``labels`` and ``class_floor > 0``, each class first keeps its ``min(class_floor, class size)`` best samples
    and the rest of the budget goes to the best remaining samples of any class.

    Raises:
        ValueError: if ``k`` is outside ``[0, N]`` or the class floors alone exceed it.

    Example::

        >>> select_top(torch.tensor([0.5, 3.0, -1.0, 2.0, 0.0, 1.0]), 3, generator(0, 0)).tolist()
        [1, 3, 5]
    """
    n = scores.numel()
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if labels is not None and class_floor > 0:
        return _select_with_floor(scores, k, gen, labels, class_floor)
    if k == n:
        return torch.arange(n)
    if k == 0:
        return torch.empty(0, dtype=torch.long)
    from lightning_adapruner.core.functional.sharded import sharded_select_top  # (it draws ties with random_subset)

    return sharded_select_top(scores, k, gen, 0, _one_process).nonzero().flatten()  # sorted: no O(k log k) sort


def _one_process(tensor: Tensor) -> Tensor:
    return tensor.unsqueeze(0)


def _select_with_floor(scores: Tensor, k: int, gen: torch.Generator, labels: Tensor, class_floor: int) -> Tensor:
    n = scores.numel()
    s = torch.nan_to_num(scores.detach().float().cpu(), nan=float("-inf"))
    perm = torch.randperm(n, generator=gen)
    order = perm[torch.argsort(s[perm], descending=True, stable=True)]  # best first, ties random
    ranked = labels.cpu().long()[order]
    num_classes = int(ranked.max()) + 1 if n else 0
    by_class = torch.argsort(ranked, stable=True)  # keeps the best-first order inside each class
    counts = torch.bincount(ranked, minlength=num_classes)
    class_rank = torch.empty(n, dtype=torch.long)
    class_rank[by_class] = torch.arange(n) - (torch.cumsum(counts, 0) - counts).repeat_interleave(counts)
    floored = class_rank < class_floor
    n_floor = int(torch.count_nonzero(floored))
    if n_floor > k:
        raise ValueError(
            f"class_floor={class_floor} needs {n_floor} samples but only {k} are kept; lower class_floor to at "
            f"most {k // max(num_classes, 1)} or lower prune_ratio"
        )
    rest = order[~floored][: k - n_floor]
    return torch.sort(torch.cat([order[floored], rest])).values


def evidence_quota(budget: int, num_candidates: int, num_unseen: int) -> int:
    """How many never-forwarded candidates a cut keeps: the cut's own keep rate, so they are neither favoured
    nor penalised (``round(budget * unseen / candidates)``, within what the seen candidates allow).

    Example::

        >>> evidence_quota(70, 100, 20), evidence_quota(70, 100, 0), evidence_quota(95, 100, 90)
        (14, 0, 86)
    """
    if num_candidates == 0:
        return 0
    quota = round(budget * num_unseen / num_candidates)
    return min(num_unseen, max(quota, budget - (num_candidates - num_unseen)))


def epoch_order(
    kept: Tensor, world_size: int, seed: int, epoch: int, shuffle: bool = True, drop_last: bool = False
) -> Tensor:
    """The epoch's global order of ``kept``: shuffled from ``(seed, epoch)`` and sized to ``W * L``.

    Rank ``r`` draws positions ``r, r + W, r + 2W, ...`` of it, ``L`` samples each
    (:func:`~lightning_adapruner.core.functional.schedule.shard_length`): the remainder is dropped
    (``drop_last``) or topped up with the first samples of the order, which then occur twice.

    Example::

        >>> epoch_order(torch.tensor([4, 5, 6]), 2, seed=0, epoch=0, shuffle=False).tolist()
        [4, 5, 6, 4]
        >>> epoch_order(torch.tensor([4, 5, 6]), 2, seed=0, epoch=0, shuffle=False, drop_last=True).tolist()
        [4, 5]
    """
    k = kept.numel()
    if shuffle and k > 1:
        perm_dtype = torch.int32 if k < 2**31 else torch.long
        kept = kept[torch.randperm(k, generator=generator(seed, epoch, STREAM_ORDER), dtype=perm_dtype)]
    total = (k // world_size if drop_last else -(-k // world_size)) * world_size
    if total > k:
        kept = torch.cat([kept, kept[: total - k]])
    return kept[:total]


def floor_total(labels: Tensor, class_floor: int) -> int:
    """Samples the class floors take among samples of ``labels``: ``sum_c min(class_floor, |c|)``.

    Example::

        >>> floor_total(torch.tensor([0, 0, 0, 1]), 2)
        3
    """
    if class_floor <= 0 or labels.numel() == 0:
        return 0
    return int(torch.bincount(labels.long()).clamp(max=class_floor).sum())


def enforce_class_floor(
    kept: Tensor, candidates: Tensor, labels: Tensor, class_floor: int, gen: torch.Generator
) -> Tensor:
    """``kept`` changed as little as possible so every class holds ``min(class_floor, its candidates)`` samples.

    A class short of its floor gets its missing samples drawn at random from its candidates; as many samples
    are then dropped at random from classes above their floor, so the count stays the same. Methods that rank
    by a score apply the floor by score themselves (:func:`select_top`); this serves the random ones.

    Example::

        >>> labels = torch.tensor([0, 0, 0, 0, 1, 1])
        >>> kept = enforce_class_floor(torch.tensor([0, 1, 2]), torch.arange(6), labels, 1, generator(0, 0))
        >>> len(kept), int((labels[kept] == 1).sum())
        (3, 1)
    """
    labels = labels.long()
    classes = int(labels.max()) + 1 if labels.numel() else 0
    need = torch.bincount(labels[candidates], minlength=classes).clamp(max=class_floor)
    have = torch.bincount(labels[kept], minlength=classes)
    short = (need - have).clamp(min=0)
    if int(short.sum()) == 0:
        return kept
    inside = torch.zeros(labels.numel(), dtype=torch.bool)
    inside[kept] = True
    added = []
    for c in short.nonzero().flatten().tolist():
        pool = candidates[(labels[candidates] == c) & ~inside[candidates]]
        added.append(pool[random_subset(int(short[c]), pool.numel(), gen)])
    surplus = (have - need).clamp(min=0)
    order = kept[torch.randperm(kept.numel(), generator=gen)]  # a random order; take while a class has surplus
    ranked = labels[order]
    rank_in_class = torch.empty_like(ranked)
    by_class = torch.argsort(ranked, stable=True)
    counts = torch.bincount(ranked, minlength=classes)
    rank_in_class[by_class] = torch.arange(ranked.numel()) - (torch.cumsum(counts, 0) - counts).repeat_interleave(
        counts
    )
    removable = order[rank_in_class < surplus[ranked]]
    drop = torch.zeros(labels.numel(), dtype=torch.bool)
    drop[removable[: int(short.sum())]] = True
    return torch.cat([kept[~drop[kept]], *[a.to(kept.dtype) for a in added]])
