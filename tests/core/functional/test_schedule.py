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
