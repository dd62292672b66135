"""The distributed threshold search: every rank's mask, joined in rank order, is ``select_top``'s set bit for bit
(against an independent ``kthvalue`` reference; ``select_top`` itself is the one-process case).

Ranks are simulated by threads that meet in each gather (the real multi-process run is
``tests/core/test_sharded_ddp.py``)."""

import numpy as np
import pytest
import torch
from helpers import in_threads, reference_select_top

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.functional import sharded


def run_ranks(scores, k, world_size, seed=0, epoch=3, spans=None):
    """Every rank's mask of ``sharded_select_top`` over its span of ``scores`` (``shard_span``'s unless given), each
    rank a thread."""

    def work(rank, gather):
        start, stop = F.shard_span(scores.numel(), world_size, rank) if spans is None else spans[rank]
        gen = F.generator(seed, epoch, F.selection.STREAM_TIES)
        return F.sharded_select_top(scores[start:stop], k, gen, rank, gather)

    return in_threads(world_size, work)


def kept(masks):
    return torch.cat(masks).nonzero().flatten()


def scores_of(kind, n, g):
    if kind == "distinct":
        return torch.randn(n, generator=g)
    if kind == "ties":  # a few values: the cut falls inside a large tie
        return torch.randint(0, 4, (n,), generator=g).float()
    if kind == "special":  # NaN, both zeros, both infinities, the largest floats
        s = torch.randn(n, generator=g)
        u = torch.rand(n, generator=g)
        s[u < 0.15] = float("nan")
        s[(u >= 0.15) & (u < 0.25)] = -0.0
        s[(u >= 0.25) & (u < 0.35)] = 0.0
        s[(u >= 0.35) & (u < 0.4)] = float("inf")
        s[(u >= 0.4) & (u < 0.45)] = float("-inf")
        s[(u >= 0.45) & (u < 0.5)] = torch.finfo(torch.float32).max
        return s
    if kind == "clustered":  # losses at chance level: most scores in the cut's top-16-bit bin
        return 2.3026 + 0.005 * torch.randn(n, generator=g)
    if kind == "subnormal":
        return torch.randn(n, generator=g) * 1e-40
    assert kind == "float64"  # select_top ranks in float32: values equal there tie
    return 1.0 + torch.randint(0, 3, (n,), generator=g).double() * 1e-12


@pytest.mark.bits
@pytest.mark.parametrize("hashed", [False, True], ids=["ties_drawn_whole", "ties_keyed_by_rank"])
@pytest.mark.parametrize("kind", ["distinct", "ties", "special", "clustered", "subnormal", "float64"])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_the_ranks_masks_together_are_select_tops_set_bit_for_bit(monkeypatch, kind, world_size, hashed):
    if hashed:  # (the draw a million ties or more take, here from 2)
        monkeypatch.setattr(sharded, "_HASHED_TIES", 2)
    g = torch.Generator().manual_seed(world_size)
    for trial in range(12):
        n = int(torch.randint(world_size, 400, (1,), generator=g))
        scores = scores_of(kind, n, g)
        for k in {0, 1, n // 3, n - 1, n, int(torch.randint(0, n + 1, (1,), generator=g))}:
            expected = reference_select_top(scores, k, F.generator(trial, 3, F.selection.STREAM_TIES))
            assert torch.equal(F.select_top(scores, k, F.generator(trial, 3, F.selection.STREAM_TIES)), expected)
            masks = run_ranks(scores, k, world_size, seed=trial)
            assert [m.numel() for m in masks] == [
                b - a for a, b in (F.shard_span(n, world_size, r) for r in range(world_size))
            ]
            assert torch.equal(kept(masks), expected), (kind, world_size, n, k)


@pytest.mark.bits
def test_ranks_holding_any_part_of_the_candidates_cut_as_one_process_holding_them_all():
    """A nested cut ranks the previous epoch's samples only: each rank passes the scores of its own candidates (in
    index order), so the ranks hold unequal numbers, some none; the candidates in rank order are the global order."""
    g = torch.Generator().manual_seed(1)
    for trial in range(20):
        scores = torch.randint(0, 6, (300,), generator=g).float()
        candidates = (torch.rand(300, generator=g) < 0.6).nonzero().flatten()
        cuts = sorted(torch.randint(0, candidates.numel() + 1, (3,), generator=g).tolist())
        spans = list(zip([0, *cuts], [*cuts, candidates.numel()]))  # 4 ranks, unequal, possibly empty
        k = int(torch.randint(0, candidates.numel() + 1, (1,), generator=g))
        expected = candidates[
            reference_select_top(scores[candidates], k, F.generator(trial, 3, F.selection.STREAM_TIES))
        ]
        masks = run_ranks(scores[candidates], k, 4, seed=trial, spans=spans)
        assert torch.equal(candidates[kept(masks)], expected), trial


@pytest.mark.bits
def test_the_cut_is_exact_when_the_scores_are_split_into_pieces(monkeypatch):
    """Scores are turned into keys a piece at a time, and the keys counted a piece at a time: pieces smaller than a
    shard give the same set, with the cut inside a tie and with most scores in the cut's bin."""
    g = torch.Generator().manual_seed(0)
    tied = torch.cat([torch.randn(500, generator=g), torch.full((300,), 0.25)])[torch.randperm(800, generator=g)]
    clustered = 2.3026 + 0.005 * torch.randn(800, generator=g)
    monkeypatch.setattr(sharded, "_PIECE", 7)
    for scores in (tied, clustered):
        expected = reference_select_top(scores, 400, F.generator(0, 3, F.selection.STREAM_TIES))
        assert torch.equal(kept(run_ranks(scores, 400, 3)), expected)


@pytest.mark.parametrize("piece", [None, 5], ids=["one_piece", "pieces_of_5"])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_a_tie_draw_keyed_by_rank_draws_count_places_the_same_at_any_number_of_ranks(monkeypatch, world_size, piece):
    monkeypatch.setattr(sharded, "_HASHED_TIES", 2)
    if piece is not None:  # (places keyed a piece at a time: a million, here 5)
        monkeypatch.setattr(sharded, "_PIECE", piece)
    g = torch.Generator().manual_seed(world_size)
    for total in (2, 3, 17, 400):
        for count in {0, 1, total // 2, total - 1, total}:
            whole = F.tie_draw(count, total, F.generator(total, count))
            assert int(whole.sum()) == count
            cuts = sorted(torch.randint(0, total + 1, (world_size - 1,), generator=g).tolist())
            spans = list(zip([0, *cuts], [*cuts, total]))  # unequal, possibly empty

            def work(rank, gather, spans=spans, total=total, count=count):
                first, stop = spans[rank]
                return F.tie_draw(count, total, F.generator(total, count), (first, stop - first), gather)

            assert torch.equal(torch.cat(in_threads(world_size, work)), whole), (total, count)


SMALL_DRAWS = ((2, 1), (17, 0), (17, 9), (17, 17), (400, 123))
LARGE_DRAWS = ((200_000, 77_777), (200_000, 1))  # (the cut's top 16-bit digit holds several places: their keys decide)


@pytest.mark.parametrize(
    "piece, draws", [(None, SMALL_DRAWS), (3, SMALL_DRAWS), (1000, LARGE_DRAWS)], ids=["whole", "pieces_of_3", "large"]
)
def test_a_tie_draw_keyed_by_rank_draws_the_places_with_the_count_smallest_keys(monkeypatch, piece, draws):
    """The draw's definition: one seed from the generator, each place keyed by the 64-bit mix of seed plus place, the
    ``count`` smallest keys drawn (in one process, whether the places are keyed whole or in pieces)."""
    monkeypatch.setattr(sharded, "_HASHED_TIES", 2)
    if piece is not None:
        monkeypatch.setattr(sharded, "_PIECE", piece)
    for total, count in draws:
        seed = int(torch.randint(0, 2**62, (1,), generator=F.generator(total, count)))
        keys = sharded._mix64(np.arange(total, dtype=np.uint64) + np.uint64(seed))
        expected = torch.zeros(total, dtype=torch.bool)
        expected[torch.from_numpy(np.argsort(keys)[:count].astype(np.int64))] = True
        assert torch.equal(F.tie_draw(count, total, F.generator(total, count)), expected), (total, count)


@pytest.mark.parametrize("world_size", [2, 3])
def test_a_large_tie_draw_keyed_in_pieces_by_rank_is_the_one_process_draw(monkeypatch, world_size):
    monkeypatch.setattr(sharded, "_HASHED_TIES", 2)
    monkeypatch.setattr(sharded, "_PIECE", 1000)
    for total, count in LARGE_DRAWS:
        whole = F.tie_draw(count, total, F.generator(total, count))
        spans = [F.shard_span(total, world_size, r) for r in range(world_size)]

        def work(rank, gather, spans=spans, total=total, count=count):
            first, stop = spans[rank]
            return F.tie_draw(count, total, F.generator(total, count), (first, stop - first), gather)

        assert torch.equal(torch.cat(in_threads(world_size, work)), whole), (total, count)


def test_a_tie_draw_keyed_by_rank_draws_every_subset_equally_often(monkeypatch):
    """2 places of 6, 3 000 seeds: each of the 15 pairs expected 200 times (the keys are a 64-bit mix of a seed)."""
    monkeypatch.setattr(sharded, "_HASHED_TIES", 2)
    counts = {}
    for seed in range(3000):
        pair = tuple(F.tie_draw(2, 6, F.generator(seed, 0)).nonzero().flatten().tolist())
        counts[pair] = counts.get(pair, 0) + 1
    assert len(counts) == 15 and sum((c - 200) ** 2 / 200 for c in counts.values()) < 46.0  # 14 d.o.f.: p = 1e-6


def test_a_cut_that_keeps_all_or_nothing_leaves_the_ties_generator_untouched():
    scores = torch.ones(10)
    for k in (0, 10):
        gen = F.generator(0, 0)
        mask = F.sharded_select_top(scores, k, gen, 0, lambda t: t.unsqueeze(0))
        assert mask.tolist() == [k == 10] * 10
        assert torch.equal(gen.get_state(), F.generator(0, 0).get_state())


def test_a_gather_that_does_not_stack_in_one_process_is_read_as_one_rank():
    """Lightning's ``strategy.all_gather`` returns a lone process's tensor as it is, without the rank dimension."""
    scores = torch.randn(50)
    mask = F.sharded_select_top(scores, 20, F.generator(0, 0), 0, lambda t: t)
    assert torch.equal(mask.nonzero().flatten(), reference_select_top(scores, 20, F.generator(0, 0)))


def test_a_budget_beyond_the_samples_of_all_ranks_is_refused_on_every_rank():
    with pytest.raises(ValueError, match=r"k must be in \[0, 8\], got 9"):
        run_ranks(torch.randn(8), 9, 2)


def test_order_keys_order_as_select_top_compares():
    s = torch.tensor([float("nan"), float("-inf"), -3.0, -1e-45, -0.0, 0.0, 1e-45, 2.0, float("inf")])
    keys = F.order_keys(s)
    assert keys.dtype == torch.int32
    assert keys.tolist() == sorted(keys.tolist())  # ascending with the values, NaN first
    assert keys[4] == keys[5] and len(set(keys.tolist())) == 8  # only the two zeros coincide
    big = torch.finfo(torch.float32).max
    assert F.order_keys(torch.tensor([float("inf")])) == F.order_keys(torch.tensor([big]))  # as nan_to_num maps inf


@pytest.mark.parametrize("n", [0, 1, 7, 10, 1001])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 8])
def test_shards_are_contiguous_blocks_that_cover_the_samples_once(n, world_size):
    spans = [F.shard_span(n, world_size, r) for r in range(world_size)]
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    sizes = [b - a for a, b in spans]
    assert max(sizes) - min(sizes) <= 1


def test_a_rank_outside_the_processes_is_refused():
    with pytest.raises(ValueError, match="rank must be in"):
        F.shard_span(10, 2, 2)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("skew", ["even", "skewed", "one_rank_empty"])
def test_balanced_blocks_joined_are_the_ranks_lists_joined_topped_up_or_cut(world_size, drop_last, skew):
    g = torch.Generator().manual_seed(world_size * 7 + drop_last)
    if skew == "even":
        counts = [50 + int(torch.randint(0, 3, (1,), generator=g)) for _ in range(world_size)]
    elif skew == "skewed":
        counts = [int(torch.randint(1, 200, (1,), generator=g)) for _ in range(world_size)]
    else:
        counts = [0] + [int(torch.randint(20, 90, (1,), generator=g)) for _ in range(world_size - 1)]
    counts[-1] = max(counts[-1], world_size)  # at least a sample per rank in all
    lists = [torch.randint(0, 10**6, (c,), generator=g, dtype=torch.int32) for c in counts]
    total = sum(counts)
    length = total // world_size if drop_last else -(-total // world_size)
    results = in_threads(world_size, lambda r, gather: F.sharded.balanced_block(lists[r], length, r, gather))
    joined = torch.cat(lists)
    expected = torch.cat([joined, joined])[: world_size * length]
    assert [t for _, t in results] == [total] * world_size
    assert all(b.numel() == length and b.dtype == torch.int32 for b, _ in results)
    assert torch.equal(torch.cat([b for b, _ in results]), expected)
    # a per-sample value sent along the same lists lands beside its index (how method state travels with a sample)
    values = in_threads(world_size, lambda r, gather: F.balanced_block(lists[r].double() / 7, length, r, gather)[0])
    assert torch.equal(torch.cat(values), expected.double() / 7)
    zeros = [torch.where(x % 2 == 0, -0.0, 1.0) for x in lists]  # a value travels as its bits (no + 0: -0.0 stays)
    signs = in_threads(world_size, lambda r, gather: F.balanced_block(zeros[r], length, r, gather)[0].signbit())
    assert torch.equal(torch.cat(signs), (expected % 2 == 0)[: world_size * length])
    # given a rank's values, its entries are indices into them: the values land where the indices would
    tables = [torch.randn(10**6, generator=g) for _ in range(world_size)]
    looked_up = in_threads(
        world_size, lambda r, gather: F.balanced_block(lists[r], length, r, gather, source=tables[r])[0]
    )
    joined = torch.cat([table[x.long()] for x, table in zip(lists, tables)])
    assert torch.equal(torch.cat(looked_up), torch.cat([joined, joined])[: world_size * length])
    # each rank's offset (its shard's start) added to its own entries, wherever they land
    starts = [10**6 * r for r in range(world_size)]
    shifted = in_threads(world_size, lambda r, gather: F.balanced_block(lists[r], length, r, gather, starts[r])[0])
    joined = torch.cat([x + start for x, start in zip(lists, starts)])
    assert torch.equal(torch.cat(shifted), torch.cat([joined, joined])[: world_size * length])


def test_a_sharded_random_pick_takes_count_entries_of_the_pools_only_and_differs_across_ranks():
    pools = [torch.rand(1000, generator=torch.Generator().manual_seed(r)) < 0.5 for r in range(3)]

    def work(rank, gather):
        gens = (F.generator(7, 2, 100 + rank), F.generator(7, 2, F.selection.STREAM_UNSEEN))
        return sharded.sharded_random_pick(pools[rank], 600, gens, rank, gather)

    picks = in_threads(3, work)
    assert sum(int(p.sum()) for p in picks) == 600
    assert all(not bool((p & ~pool).any()) for p, pool in zip(picks, pools))
    assert not torch.equal(picks[0][:100], picks[1][:100])  # each rank draws its own keys
    with pytest.raises(ValueError, match="the pool"):
        in_threads(
            3,
            lambda r, gather: sharded.sharded_random_pick(
                pools[r], 10**4, (F.generator(0, 0, r), F.generator(0, 0)), r, gather
            ),
        )


@pytest.mark.parametrize("binarise", [False, True])
def test_a_trajectory_from_every_ranks_positions_has_the_exact_counts_and_controllers_of_the_whole(binarise):
    world, per_rank, nb = 3, 5, 9
    g = torch.Generator().manual_seed(4)
    ranks = [torch.randn(nb * per_rank - 2, generator=g) * 0.8 + 0.3 for _ in range(world)]  # a short last batch
    whole = torch.cat([r[t * per_rank : (t + 1) * per_rank] for t in range(nb) for r in ranks])  # batch by batch
    args = dict(k=0.4, lam=50.0, delta=0.3, keep_fraction=0.6, gain=50.0, binarise=binarise)
    whole = F.trajectory(whole, world * per_rank, nb, **args)

    def work(rank, gather):
        return F.trajectory(ranks[rank], per_rank, nb, reduce=lambda t: gather(t).sum(0), **args)

    for path in in_threads(world, work):
        assert torch.equal(path.size, whole.size) and torch.equal(path.rho, whole.rho)
        assert torch.equal(path.k, whole.k) and torch.equal(path.lam, whole.lam)  # from counts alone: exact
        assert torch.allclose(path.mean_score, whole.mean_score, rtol=1e-6)  # a float sum in another order
    if binarise:
        assert bool((whole.k.diff() > 0.3 + 1e-6).any())  # the binarise steps fired


def test_a_bucket_shuffle_draws_every_order_equally_often():
    """Rao-Sandelius: 4 values in 3 buckets, 24 000 draws; each of the 24 orders is expected 1 000 times. Without
    the shuffle inside a bucket (or with buckets drawn otherwise than uniformly) the counts are far from even."""
    gen, values = torch.Generator().manual_seed(5), torch.arange(4)
    counts = {}
    for _ in range(24_000):
        order = tuple(F.shuffled(values, gen, buckets=3).tolist())
        counts[order] = counts.get(order, 0) + 1
    assert len(counts) == 24
    chi2 = sum((c - 1000) ** 2 / 1000 for c in counts.values())
    assert chi2 < 64.0  # chi-square, 23 degrees of freedom: p = 1e-6


def test_the_default_256_buckets_draw_every_order_equally_often(monkeypatch):
    """The 256 buckets' keys are bytes of 16-bit draws: 4 values (the default path, the piece made small), 6 000
    draws, each of the 24 orders expected 250 times."""
    monkeypatch.setattr(sharded, "_PIECE", 4)
    gen, values, counts = torch.Generator().manual_seed(6), torch.arange(4), {}
    for _ in range(6000):
        order = tuple(F.shuffled(values, gen).tolist())
        counts[order] = counts.get(order, 0) + 1
    assert len(counts) == 24 and sum((c - 250) ** 2 / 250 for c in counts.values()) < 64.0  # 23 d.o.f.: p = 1e-6


def test_a_shuffle_drawn_and_grouped_in_pieces_is_the_shuffle_of_one_piece(monkeypatch):
    """The bucket bytes are drawn, and the values grouped by bucket, a piece at a time: any piece size gives the
    same order (the generator's stream is the same drawn whole or in parts)."""
    values = torch.arange(1001, dtype=torch.int32) * 5
    monkeypatch.setattr(sharded, "_PIECE", 1001)  # one draw, groups of 250
    whole = F.shuffled(values, torch.Generator().manual_seed(4))
    for piece in (16, 40):  # draws of 16 or 40 pairs, groups of 4 or 10
        monkeypatch.setattr(sharded, "_PIECE", piece)
        assert torch.equal(F.shuffled(values, torch.Generator().manual_seed(4)), whole), piece
    assert not torch.equal(whole, values)


def test_a_shuffle_is_a_permutation_drawn_from_the_generator_alone():
    values = torch.arange(3, 3 * (1 << 20) + 3, 3, dtype=torch.int32)  # a million: the bucket path by default
    first = F.shuffled(values, torch.Generator().manual_seed(1))
    assert first.dtype == values.dtype and torch.equal(torch.sort(first).values, values)
    assert torch.equal(first, F.shuffled(values, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, F.shuffled(values, torch.Generator().manual_seed(2)))
    small, gen = torch.arange(10), torch.Generator().manual_seed(3)  # below a million: one randperm
    assert torch.equal(F.shuffled(small, gen), small[torch.randperm(10, generator=torch.Generator().manual_seed(3))])
    with pytest.raises(ValueError, match="buckets must be in"):
        F.shuffled(small, gen, buckets=0)


@pytest.mark.parametrize("piece", [None, 3], ids=["whole", "checked_in_pieces_of_3"])
def test_values_at_every_index_in_order_are_the_values_themselves_else_a_gather(monkeypatch, piece):
    if piece is not None:  # (the order is checked a million at a time; here 3: a swap on and between pieces)
        monkeypatch.setattr(sharded, "_PIECE", piece)
    values = torch.arange(10.0) * 3
    assert F.values_at(values, torch.arange(10)) is values  # no copy of a shard's scores for a cut among all
    swaps = [torch.arange(10)[[*range(j), j + 1, j, *range(j + 2, 10)]] for j in range(1, 8)]  # the ends right
    for indices in (torch.arange(9, -1, -1), torch.tensor([0, 2, 2, 3, 4, 5, 6, 7, 8, 9]), torch.arange(5), *swaps):
        out = F.values_at(values, indices)  # reversed, a repeat between the right ends, fewer, one pair swapped
        assert out is not values and torch.equal(out, values[indices]), indices
    assert F.values_at(torch.zeros(0), torch.zeros(0, dtype=torch.long)).numel() == 0


@pytest.mark.parametrize("piece", [1 << 20, 8, 12])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.float32, torch.bool])
def test_compress_is_boolean_indexing(monkeypatch, dtype, piece):
    monkeypatch.setattr(sharded, "_PIECE", piece)  # (a quarter of it at a time: one piece, or runs of 2 or 3)
    values, gen = (torch.arange(1000) * 7 % 13).to(dtype), torch.Generator().manual_seed(0)
    for mask in (torch.rand(1000, generator=gen) < 0.6, torch.zeros(1000, dtype=torch.bool), torch.ones(1000) > 0):
        out = F.compress(values[::1], mask)
        assert out.dtype == dtype and torch.equal(out, values[mask])
    assert torch.equal(F.compress(values[::2], mask[::2]), values[::2][mask[::2]])  # (strided views)
    with pytest.raises(ValueError, match="a mask of its shape"):  # (no silent zeros for a longer mask)
        F.compress(values[:-1], mask)
