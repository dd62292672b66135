"""Sharded per-sample state: each of ``W`` processes owns a contiguous block of the ``N`` samples, and an epoch's
cut is found without gathering or sorting the scores (a distributed threshold search).

:func:`sharded_select_top` returns, on every rank, that rank's part (a mask) of exactly the set
:func:`~lightning_adapruner.core.functional.selection.select_top` returns for the whole score vector (same ties
broken the same way), while moving two histograms and a few counts between the processes instead of ``N`` scores.
The processes talk through one ``gather`` callable (every rank's tensor, stacked in rank order), the shape of the
harness's ``Collectives.gather_rows``; ``lambda t: t.unsqueeze(0)`` is one process.
What is sent lies on the scores' device (a NCCL group gathers CUDA tensors only); the selection itself runs on
the CPU, a piece of the scores at a time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np  # (installed with torchmetrics, which requires it: no dependency of our own)
import torch
from torch import Tensor

from lightning_adapruner.core.functional.selection import random_subset

Gather = Callable[[Tensor], Tensor]  # every rank's tensor (same shape on all), stacked: [W, *shape]

_BITS = 16  # the 32-bit keys are resolved in two rounds of 16 bits: two histograms of 65 536 counts
_PIECE = 1 << 20  # scores turned into keys at a time: about 20 MB of temporaries at any shard size


def _spans(n: int) -> list[tuple[int, int]]:
    """``[0, n)`` in pieces of ``_PIECE``: ``(low, high)`` of each (none for ``n <= 0``)."""
    return [(low, min(n, low + _PIECE)) for low in range(0, n, _PIECE)]


def shard_span(num_samples: int, world_size: int, rank: int) -> tuple[int, int]:
    """The samples ``[start, stop)`` rank ``rank`` owns: contiguous blocks in rank order, sizes differing by one
    at most.

    Example::

        >>> [shard_span(10, 4, r) for r in range(4)]
        [(0, 2), (2, 5), (5, 7), (7, 10)]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size); got rank={rank}, world_size={world_size}")
    return rank * num_samples // world_size, (rank + 1) * num_samples // world_size


def order_keys(scores: Tensor) -> Tensor:
    """Integer keys (int32) ordered as ``select_top`` orders the scores: as float32 through the same
    ``torch.nan_to_num(nan=-inf)`` (NaN ranks last, ``inf`` ties with the largest finite float), ``-0.0`` equal to
    ``0.0``. The float's bits, with the magnitude bits of negative numbers flipped.

    Example::

        >>> keys = order_keys(torch.tensor([-1.0, float("nan"), -0.0, 0.0, 2.0, float("-inf")]))
        >>> keys.argsort(stable=True).tolist(), bool(keys[2] == keys[3]), bool(keys[1] < keys[5])
        ([1, 5, 0, 2, 3, 4], True, True)
    """
    return _order_keys_into(scores, torch.empty(scores.shape, dtype=torch.int32))


def _order_keys_into(scores: Tensor, out: Tensor) -> Tensor:
    """:func:`order_keys` written into ``out`` (int32, ``scores``' shape), with no temporary beyond ``out``'s size."""
    s = out.view(torch.float32)
    if scores.dtype == torch.float32:
        torch.nan_to_num(scores.detach().cpu(), nan=float("-inf"), out=s)
    else:
        s.copy_(torch.nan_to_num(scores.detach().float().cpu(), nan=float("-inf")))
    s.add_(0.0)  # (+ 0.0: -0.0 becomes 0.0)
    return out.bitwise_xor_((out >> 31).bitwise_and_(0x7FFFFFFF))


def _stacked(gather: Gather, tensor: Tensor, device: torch.device) -> Tensor:
    """``gather(tensor)`` sent from ``device`` (a NCCL group gathers CUDA tensors only), on the CPU, stacked: a result
    without the stacking dimension (Lightning's ``strategy.all_gather`` in one process) is read as one rank's."""
    out = gather(tensor.to(device)).cpu()
    return out if out.dim() > tensor.dim() else out.unsqueeze(0)


def _digit(counts: Tensor, k: int) -> tuple[int, int]:
    """The digit (index into ``counts``) holding the ``k``-th largest key given the global ``counts`` per digit,
    and how many keys lie in higher digits."""
    above = torch.flip(torch.cumsum(torch.flip(counts, (0,)), 0), (0,))  # keys in this digit or higher
    digit = int(torch.nonzero(above >= k).max())
    return digit, int(above[digit] - counts[digit])


def sharded_select_top(local_scores: Tensor, k: int, gen: torch.Generator, rank: int, gather: Gather) -> Tensor:
    """This rank's part of ``select_top(all_scores, k, gen)`` as a mask over its own samples, where ``all_scores``
    is every rank's ``local_scores`` concatenated in rank order (see :func:`shard_span`).

    Every rank calls it with its ``rank``, the same ``k`` and a generator in the same state. The cut is found by
    a radix search on :func:`order_keys`: a histogram of the keys' top 16 bits summed over the ranks names the
    bin of the ``k``-th largest score, a histogram of the low 16 bits of that bin's keys names the score itself.
    Four small gathers (shard sizes, two histograms of 65 536 counts, the tie counts); the scores are read three
    times (once where the shard is one piece), turned into keys a million at a time; beyond the shard, the returned
    mask, 13 MB of piece-sized buffers (keys, digits, marks), 8 bytes per local tie at the cut (3 more from a
    million ties). Scores other than float32 on the CPU are converted once, whole. Ties at the cut are drawn by the
    very call ``select_top`` makes (:func:`tie_draw`), over the ties in global order, so the union over ranks is
    ``select_top``'s result bit for bit at any number of processes; from a million ties each rank draws among its
    own (under a million, every rank draws them all, as one process does).

    ``gather`` stacks every rank's tensor (``Collectives.gather_rows``); a result without the stacking dimension
    (Lightning's ``strategy.all_gather`` in one process) is read as one rank's.

    Returns:
        bool ``[local_scores.numel()]`` on the CPU: which of this rank's samples are kept.

    Raises:
        ValueError: ``k`` outside ``[0, N]`` (on every rank alike).

    Example::

        >>> from lightning_adapruner.core.functional.selection import generator, select_top
        >>> scores = torch.tensor([0.5, 3.0, -1.0, 2.0, 0.0, 1.0])
        >>> mask = sharded_select_top(scores, 3, generator(0, 0), 0, lambda t: t.unsqueeze(0))
        >>> mask.nonzero().flatten().tolist(), select_top(scores, 3, generator(0, 0)).tolist()
        ([1, 3, 5], [1, 3, 5])
    """
    size, device = local_scores.numel(), local_scores.device  # (sent from there: the scores move to the CPU below)

    def gathered(tensor: Tensor) -> Tensor:
        return _stacked(gather, tensor, device)

    sizes = gathered(torch.tensor([size])).flatten()
    n = int(sizes.sum())
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if k in (0, n):  # as select_top: nothing or everything, and the generator untouched
        return torch.full((size,), k == n, dtype=torch.bool)
    if local_scores.dtype != torch.float32 or local_scores.device.type != "cpu":  # (once, not once a pass)
        local_scores = local_scores.detach().float().cpu()
    # a piece of keys, made again for each pass (in cache: cheaper than 4 bytes a sample of fresh memory; once if
    # the shard is one piece), and its 16-bit digits (torch's bincount of int32: under half numpy's time on uint16)
    piece, digits = (torch.empty(min(size, _PIECE), dtype=torch.int32) for _ in range(2))
    made, bins, half = [-1], 1 << _BITS, 1 << (_BITS - 1)  # (made: the first score whose keys the piece holds)

    def keyed(start: int) -> Tensor:
        part = piece[: min(_PIECE, size - start)]
        if made[0] != start:
            _order_keys_into(local_scores[start : start + part.numel()], part)
            made[0] = start
        return part

    def histogram(values: Tensor) -> Tensor:
        return torch.bincount(values, minlength=bins)

    starts = range(0, size, _PIECE)
    counts = torch.zeros(bins, dtype=torch.long)
    for start in starts:  # top digits, signed, as bins: bin d + 2**15 counts top digit d
        part = keyed(start)
        counts += histogram(torch.bitwise_right_shift(part, _BITS, out=digits[: part.numel()]).add_(half))
    digit, above = _digit(gathered(counts).sum(0), k)
    high, dense = digit - half, 2 * int(counts[digit]) > size  # (dense: most of this rank's keys in the cut's bin)
    counts.zero_()
    flags, picked = np.empty(piece.numel(), dtype=bool), torch.empty_like(piece)  # (reused: no fresh pages)
    for start in starts:  # the low 16 bits of the keys in the cut's bin (dense: all but those outside)
        part = keyed(start)
        out, marked = digits[: part.numel()], flags[: part.numel()]
        np.equal(torch.bitwise_right_shift(part, _BITS, out=out).numpy(), high, out=marked)  # in the cut's bin
        if dense:
            np.logical_not(marked, out=marked)
        low_bits = torch.bitwise_and(part, bins - 1, out=out)
        chosen = picked[: int(np.count_nonzero(marked))]
        np.compress(marked, low_bits.numpy(), out=chosen.numpy())
        counts += histogram(low_bits) - histogram(chosen) if dense else histogram(chosen)
    low, above_low = _digit(gathered(counts).sum(0), k - above)
    threshold = (high << _BITS) + low  # the k-th largest key
    keep, ties = torch.empty(size, dtype=torch.bool), [torch.zeros(0, dtype=torch.long)]
    for start in starts:
        part = keyed(start)
        torch.gt(part, threshold, out=keep[start : start + part.numel()])
        tied = np.equal(part.numpy(), threshold, out=flags[: part.numel()])
        ties.append(torch.from_numpy(np.flatnonzero(tied)).add_(start))  # (numpy's: an eighth of torch's nonzero)
    local_ties = torch.cat(ties)
    tie_counts = gathered(torch.tensor([local_ties.numel()])).flatten()
    first = int(tie_counts[:rank].sum())  # this rank's ties are these places of the global tie list
    places = (first, local_ties.numel())
    keep[local_ties[tie_draw(k - above - above_low, int(tie_counts.sum()), gen, places, gather, keep.device)]] = True
    return keep


_HASHED_TIES = 1 << 20  # from this many ties at a cut, each rank keys only its own places (see tie_draw)


def tie_draw(
    count: int,
    total: int,
    gen: torch.Generator,
    places: tuple[int, int] | None = None,
    gather: Gather | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Which of this rank's ``places = (first, size)`` (``[first, first + size)`` of ``range(total)``; all of them
    by default, one process) are among ``count`` places drawn uniformly from ``range(total)``: a bool mask of
    ``size``. Every rank calls it with the same ``count``, ``total`` and a generator in the same state; the ranks'
    masks joined are one draw.

    Under a million places every rank draws them all (``random_subset``: time and memory in ``total``, as one
    process). From a million (``N`` samples tied at a cut: bunched scores, or AdaPruner's logits where updates
    vanished), one 64-bit seed from ``gen`` keys each place by a bijective 64-bit mix of seed plus place (keys all
    distinct: no tie among them) and the ``count`` smallest keys are drawn, found by a radix search over 16-bit
    digits with four gathers of 65 536 counts: each rank keys only its own places, a million at a time, and keeps
    3 bytes a place (the keys' top 16 bits and a mask).

    Example::

        >>> from lightning_adapruner.core.functional.selection import generator
        >>> mask = tie_draw(2, 5, generator(0, 0))
        >>> int(mask.sum()), mask.numel()
        (2, 5)
    """
    first, size = (0, total) if places is None else places

    def gathered(tensor: Tensor) -> Tensor:
        return tensor.unsqueeze(0) if gather is None else _stacked(gather, tensor, device or torch.device("cpu"))

    mask = torch.zeros(size, dtype=torch.bool)
    if total < _HASHED_TIES:
        drawn = random_subset(count, total, gen)
        mask[drawn[(drawn >= first) & (drawn < first + size)] - first] = True
        return mask
    if not 0 <= count <= total:
        raise ValueError(f"count must be in [0, {total}], got {count}")
    seed = np.uint64(int(torch.randint(0, 2**62, (1,), generator=gen)))
    # The places are keyed a million at a time and only the keys' top 16 bits kept (2 bytes a place, and 1 of mask):
    # keys under the cut's top digit are all drawn, those above it none, and the few in it are keyed again in full.
    tops, top_at = np.empty(size, dtype=np.uint16), 3 if sys.byteorder == "little" else 0
    part, scratch = (np.empty(min(size, _PIECE), dtype=np.uint64) for _ in range(2))
    counts = np.zeros(1 << _BITS, dtype=np.int64)
    for low, high in _spans(size):
        keys = part[: high - low]
        _mix64(np.add(np.arange(first + low, first + high, dtype=np.uint64), seed, out=keys), scratch)
        tops[low:high] = keys.view(np.uint16)[top_at::4]
        counts += np.bincount(tops[low:high], minlength=1 << _BITS)
    in_top, top_keys = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    keys, below, threshold = top_keys, 0, np.uint64(0)  # (below: keys of all ranks under the current prefix)
    for shift in (48, 32, 16, 0):  # the count-th smallest key, 16 bits at a time from the top
        if shift < 48:  # (among the top digit's keys: few)
            digits = ((keys >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
            counts = np.bincount(digits, minlength=1 << _BITS)
        summed = gathered(torch.from_numpy(counts)).sum(0)
        reached = torch.cumsum(summed, 0) + below >= count
        digit = int(torch.nonzero(reached)[0]) if count else 0
        below += int(summed[:digit].sum())
        threshold |= np.uint64(digit) << np.uint64(shift)
        if shift == 48:
            in_top = np.flatnonzero(tops == digit)  # this rank's places in the top digit, keyed again
            keys = top_keys = _mix64(in_top.astype(np.uint64) + np.uint64(first) + seed)
        else:
            keys = keys[digits == digit]
    if count:  # the count keys up to the threshold (keys are distinct: exactly count of them over all ranks)
        chosen = mask.numpy()
        np.less(tops, np.uint16(threshold >> np.uint64(48)), out=chosen)
        chosen[in_top] = top_keys <= threshold
    return mask


def _mix64(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """SplitMix64's finaliser on uint64 (wrapping arithmetic), in place (``scratch``: a uint64 array at least as long,
    else one is made): a bijection, so distinct inputs give distinct keys."""
    shifted = np.empty_like(x) if scratch is None else scratch[: x.size]
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None)):
        np.bitwise_xor(x, np.right_shift(x, np.uint64(shift), out=shifted), out=x)
        if factor is not None:
            np.multiply(x, np.uint64(factor), out=x)
    return x


def sharded_random_pick(
    pool: Tensor, count: int, gens: tuple[torch.Generator, torch.Generator], rank: int, gather: Gather
) -> Tensor:
    """This rank's part of ``count`` entries drawn uniformly among the ``True`` entries of every rank's ``pool``:
    one random key per entry from this rank's own generator (``gens[0]``, seeded apart on every rank) and the
    ``count`` largest keys of all ranks (:func:`sharded_select_top`, ties drawn from ``gens[1]``, the same on every
    rank). A draw of its own: not :func:`~lightning_adapruner.core.functional.selection.random_pick`'s.

    Example::

        >>> from lightning_adapruner.core.functional.selection import generator
        >>> pick = sharded_random_pick(torch.tensor([True, False, True]), 1, (generator(0, 0), generator(1, 0)), 0,
        ...                            lambda t: t.unsqueeze(0))
        >>> int(pick.sum()), bool(pick[1])
        (1, False)
    """
    keys = torch.rand(pool.numel(), generator=gens[0]).masked_fill_(~pool.cpu(), float("nan"))  # NaN: never drawn
    total = int(_stacked(gather, torch.tensor([int(torch.count_nonzero(pool))]), pool.device).sum())
    if not 0 <= count <= total:
        raise ValueError(f"count must be in [0, {total}] (the pool), got {count}")
    return sharded_select_top(keys, count, gens[1], rank, gather)


def balanced_block(
    local: Tensor, length: int, rank: int, gather: Gather, offset: int = 0, source: Tensor | None = None
) -> tuple[Tensor, int]:
    """This rank's ``length`` samples of an epoch whose samples start on the ranks that own them.

    The ranks' ``local`` lists joined in rank order are the epoch's order, ``total`` long; positions past its end
    repeat its start (a top-up, when ``W * length > total``) and positions past ``W * length`` are left out (a
    dropped remainder). Rank ``r`` takes positions ``[r * length, (r + 1) * length)``: mostly its own list, plus
    what other ranks hold beyond their own block. Only those entries travel, in one gather padded to the largest
    such share (two gathers in all, the first the lists' lengths); with lists about equal that is a few samples.

    An entry travels and lands as ``local``'s entry plus ``offset`` (each rank passes its own: local indices become
    dataset indices), or, given ``source`` (the rank's per-sample values; ``local`` its indices into them), as the
    value at that index, gathered where it lands: no copy of the rank's whole list.

    Returns:
        this rank's block (``[length]``, ``local``'s dtype, or ``source``'s) and ``total``.

    Example::

        >>> block, total = balanced_block(torch.tensor([7, 8, 9]), 2, 0, lambda t: t.unsqueeze(0))
        >>> block.tolist(), total
        ([7, 8], 3)
    """

    def gathered(tensor: Tensor) -> Tensor:
        return _stacked(gather, tensor, local.device)

    counts = gathered(torch.tensor([local.numel()])).flatten().tolist()
    world, total = len(counts), sum(counts)
    starts = [sum(counts[:q]) for q in range(world + 1)]
    wrap = max(0, world * length - total)  # positions [total, W * length) repeat [0, wrap)
    if length < 0 or wrap > total:
        raise ValueError(f"{world} blocks of {length} cannot be cut from {total} samples")

    def needed_by_others(q: int) -> Tensor:  # positions of rank q's list that other ranks' blocks hold, ascending
        s, e = starts[q], starts[q + 1]
        spans = [(s, min(e, q * length)), (max(s, (q + 1) * length), min(e, world * length))]
        parts = [torch.arange(a, b) for a, b in spans if a < b]
        parts.append(torch.tensor([v for v in range(s, min(e, wrap)) if (v + total) // length != q], dtype=torch.long))
        return torch.unique(torch.cat(parts))  # (sorted)

    def place(part: Tensor, out: Tensor) -> None:  # entries of this rank's list written into out
        if source is not None:
            torch.index_select(source.cpu(), 0, part, out=out)
        elif offset:
            torch.add(part, offset, out=out)
        else:  # (no addition: + 0 would turn a -0.0 into 0.0)
            out.copy_(part)

    sent = [needed_by_others(q) for q in range(world)]
    width, dtype, own = max(p.numel() for p in sent), local.dtype if source is None else source.dtype, local.cpu()
    received = None
    if width:  # every rank computes the same width: all gather, or none does
        mine = torch.zeros(width, dtype=dtype)
        place(own[sent[rank] - starts[rank]], mine[: sent[rank].numel()])
        received = gathered(mine)
    block = torch.empty(length, dtype=dtype)

    def fill(at: int, low: int, high: int) -> None:  # block[at:] from the joined lists' positions [low, high)
        for q in range(world):
            a, b = max(low, starts[q]), min(high, starts[q + 1])
            if a < b:  # a run of rank q's list: its own entries, or a run of those it sent (they are contiguous)
                if q == rank:
                    place(own[a - starts[q] : b - starts[q]], block[at + a - low : at + b - low])
                else:
                    assert received is not None  # another rank's entries are needed, so some were sent
                    first = int(torch.searchsorted(sent[q], torch.tensor([a])))
                    block[at + a - low : at + b - low] = received[q][first : first + b - a]

    low, high = rank * length, (rank + 1) * length
    fill(0, low, min(high, total))
    if high > total:  # the top-up: positions past the end repeat the start
        fill(max(0, total - low), max(low, total) - total, high - total)
    return block, total


def values_at(values: Tensor, indices: Tensor) -> Tensor:
    """``values[indices]`` for 1-D CPU tensors, and ``values`` itself, no copy, where ``indices`` are ``0 .. n - 1``
    in order (a cut among every sample: 100 MB spared at 25M float32 scores).

    Example::

        >>> v = torch.tensor([5.0, 6.0, 7.0])
        >>> values_at(v, torch.tensor([2, 0])).tolist(), values_at(v, torch.arange(3)) is v
        ([7.0, 5.0], True)
    """
    n = indices.numel()
    every = n == values.numel() and n and int(indices[0]) == 0 and int(indices[-1]) == n - 1
    if every and _increasing(indices):  # (n increasing integers from 0 to n - 1: all, in order)
        return values
    return values.index_select(0, indices)


def _increasing(values: Tensor) -> bool:
    """Whether 1-D ``values`` increase strictly, compared a million at a time (no temporary of their size)."""
    pairs = _spans(values.numel() - 1)  # (each piece: the entries low .. high - 1 against their successors)
    return all(bool((values[low + 1 : high + 1] > values[low:high]).all()) for low, high in pairs)


def shuffled(values: Tensor, gen: torch.Generator, buckets: int | None = None) -> Tensor:
    """``values`` (1-D, CPU; from a million values a dtype numpy holds, so not bfloat16) in a uniformly random order
    drawn from ``gen``, as ``values[randperm(n)]`` is, in about half its time at tens of millions (a permutation
    that large swaps far outside the cache).

    Each value draws a bucket (uniform, independent), the values are grouped by bucket in their order (a quarter
    million at a time, by torch's stable sort of 8-bit keys, each group's run written to its place in its bucket)
    and each bucket, small enough to stay in cache, is permuted on its own. A value's bucket and its place inside
    it are independent and uniform, so every order is equally likely (the Rao-Sandelius shuffle). ``buckets``: 256
    from a million values, else 1 (one ``randperm``).

    Example::

        >>> sorted(shuffled(torch.arange(6), torch.Generator().manual_seed(0), buckets=3).tolist())
        [0, 1, 2, 3, 4, 5]
    """
    n = values.numel()
    buckets = (256 if n >= _PIECE else 1) if buckets is None else buckets
    if not 1 <= buckets <= 256:
        raise ValueError(f"buckets must be in [1, 256], got {buckets}")
    if buckets == 1 or n < 2:
        return values.index_select(0, torch.randperm(n, generator=gen, dtype=torch.int32 if n < 2**31 else torch.long))
    if buckets == 256:  # random bytes, two from each uniform 16-bit draw (a third less time than a draw each)
        pairs = np.empty((n + 1) // 2, dtype=np.uint16)
        for low, high in _spans(pairs.size):  # (drawn a million at a time: the generator's stream is the same)
            pairs[low:high] = torch.randint(0, 1 << 16, (high - low,), generator=gen, dtype=torch.int32).numpy()
        keys = torch.from_numpy(pairs.view(np.uint8)[:n])
    else:
        keys = torch.randint(0, buckets, (n,), generator=gen, dtype=torch.uint8)
    step = _PIECE // 4
    lows = range(0, n, step)  # pieces of a quarter million: grouped in cache (and under 4 MB: see compress)
    sizes = [torch.bincount(keys[low : low + step], minlength=buckets).numpy() for low in lows]  # (piece, bucket)
    counts = np.sum(sizes, axis=0)
    at = np.concatenate([[0], np.cumsum(counts)[:-1]])  # where each bucket's next run goes
    grouped = torch.empty(n, dtype=values.dtype)
    out = grouped.numpy()
    for low, piece_sizes in zip(lows, sizes):  # each piece grouped by bucket, its runs written to their buckets
        grouping = torch.sort(keys[low : low + step], stable=True).indices  # (a quarter numpy's argsort's time)
        piece = values[low : low + step].index_select(0, grouping).numpy()  # (torch's gather: half numpy's time)
        ends = np.cumsum(piece_sizes).tolist()
        for run_at, end, size in zip(at.tolist(), ends, piece_sizes.tolist()):
            out[run_at : run_at + size] = piece[end - size : end]
        at += piece_sizes
    start = 0
    for count in counts.tolist():
        if count > 1:
            part = grouped[start : start + count]
            part.copy_(part.index_select(0, torch.randperm(count, generator=gen, dtype=torch.int32)))
        start += count
    return grouped


def compress(values: Tensor, mask: Tensor) -> Tensor:
    """``values[mask]`` for 1-D CPU tensors, by numpy into memory torch allocates, a quarter million at a time:
    at 25M values 0.08 s, where torch's boolean indexing took 0.2-0.8 s and one ``np.compress`` of them all
    0.27-0.64 s (measured ad hoc on this project's 2-core machine). numpy also asks for huge pages for arrays from
    4 MB, and where the kernel's THP defrag is ``madvise`` their first touch can stall on compaction.

    Example::

        >>> compress(torch.tensor([5, 6, 7]), torch.tensor([True, False, True])).tolist()
        [5, 7]
    """
    if mask.shape != values.shape or values.dim() != 1:
        raise ValueError(f"compress takes a 1-D tensor and a mask of its shape, got {values.shape} and {mask.shape}")
    out, step, at = torch.empty(int(torch.count_nonzero(mask)), dtype=values.dtype), _PIECE // 4, 0
    out.zero_()  # (fresh pages faulted in by torch first: numpy's writes into them took twice the faults)
    into, source, keep = out.numpy(), values.numpy(), mask.numpy()
    for low in range(0, values.numel(), step):
        count = int(np.count_nonzero(keep[low : low + step]))
        np.compress(keep[low : low + step], source[low : low + step], out=into[at : at + count])
        at += count
    return out
