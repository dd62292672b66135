import pytest

from lightning_adapruner.core import functional as F


@pytest.mark.parametrize("shape", F.SCHEDULE_SHAPES)
def test_keep_share_warmup_then_monotone_down_to_target_and_holds(shape):
    shares = [F.keep_share_at(e, 0.4, warmup_epochs=2, prune_epochs=4, shape=shape) for e in range(10)]
    assert shares[:2] == [1.0, 1.0]
    assert all(a >= b for a, b in zip(shares, shares[1:]))
    assert shares[5:] == pytest.approx([0.6] * 5)  # the target is reached at the last prune epoch, then held
    assert shares[2] < 1.0


def test_keep_share_linear_steps_and_zero_ratio():
    assert [round(F.keep_share_at(e, 0.3, 1, 3), 6) for e in range(5)] == [1.0, 0.9, 0.8, 0.7, 0.7]
    assert F.keep_share_at(7, 0.0, 0, 3) == 1.0


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.7])
def test_annealed_schedule_forwards_the_same_total_with_full_data_at_both_ends(ratio):
    standard = sum(F.keep_share_at(e, ratio, 1, 4, "linear") for e in range(10))
    annealed = [F.annealed_keep_share_at(e, ratio, 1, 4, "linear", 10, 0.2) for e in range(10)]
    assert annealed[0] == annealed[-1] == annealed[-2] == 1.0
    assert sum(annealed) == pytest.approx(standard)


def test_step_counts():
    assert F.stepping_batches([10, 7, 7], 3) == 4 + 3 + 3
    assert F.limit_batches(10, 0.25) == 2 and F.limit_batches(3, 10) == 3
    assert F.shard_length(7, 3, False) == 3 and F.shard_length(7, 3, True) == 2
    assert F.full_epoch_samples(10, 3, 2, drop_last=False, limit=1.0) == 12  # DistributedSampler pads 10 -> 12


def _shares(ratio, epochs, warmup=1, prune_epochs=None):
    prune_epochs = prune_epochs or max(1, (epochs - warmup) // 2)
    return [F.keep_share_at(e, ratio, warmup, prune_epochs) for e in range(epochs)]


@pytest.mark.parametrize(("n", "batch"), [(6000, 128), (6000, 120), (54000, 256), (1000, 7), (401, 32)])
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.4, 0.5, 0.7])
def test_pruned_epochs_hold_whole_batches_and_the_total_is_kept(n, batch, ratio):
    shares = _shares(ratio, 20)
    counts = F.epoch_sample_counts(shares, n, batch)
    assert sum(counts) == sum(F.num_kept(n, s) if s < 1 else n for s in shares)  # the budget is unchanged
    pruned = [c for c, s in zip(counts, shares) if s < 1]
    assert all(c % batch == 0 for c in pruned[:-1])  # no pruned epoch ends on a sliver, but the last may
    assert all(abs(c - F.num_kept(n, s)) <= 2 * batch for c, s in zip(counts, shares) if s < 1)  # the shape is kept
    assert all(a >= b for a, b in zip(pruned, pruned[1:]))  # never growing, as nested selection needs


def test_the_old_rounding_ended_every_pruned_epoch_on_a_sliver():
    """The study's recipe: 3 600 = 28 x 128 + 16, so each epoch at share 0.6 ran a 16-sample step at full rate."""
    assert F.num_kept(6000, 0.6) % 128 == 16
    counts = F.epoch_sample_counts(_shares(0.4, 20, warmup=0, prune_epochs=1), 6000, 128)
    assert sum(counts) == 20 * 3600 and sum(c % 128 != 0 for c in counts) == 1  # one partial batch in the fit


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_a_total_is_met_exactly_in_whole_batches_but_one(world_size):
    n, batch = 6000, 128 * world_size
    shares = _shares(0.45, 20)
    total = round(0.6 * n * 20)
    counts = F.epoch_sample_counts(shares, n, batch, total, world_size)
    assert abs(sum(counts) - total) < world_size and counts[0] == n
    assert sum(c % batch != 0 for c in counts[1:]) <= 1 and all(c % world_size == 0 for c in counts[1:])


def test_a_total_the_pruned_epochs_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="cannot forward 50 samples between them"):
        F.epoch_sample_counts([1.0, 0.5], 1000, 100, total=1050)


def test_the_prune_ratio_of_a_budget_is_the_smallest_that_fits():
    n, epochs = 6000, 20

    def forwarded(p):
        return sum(F.num_kept(n, s) for s in _shares(p, epochs))

    p = F.solve_prune_ratio(round(0.6 * n * epochs), forwarded)
    assert forwarded(p) <= 72000 < forwarded(p - 1e-6) and 0.4 < p < 0.6  # warm-up and step-down cost extra
    with pytest.raises(ValueError, match="more than full data forwards"):
        F.solve_prune_ratio(n * epochs + 1, forwarded)
    with pytest.raises(ValueError, match="less than the schedule can forward"):
        F.solve_prune_ratio(n, forwarded)  # the warm-up epoch alone is n
