"""Keep-share schedules and step counts: how many samples and batches each epoch holds, and the two frozen
value types built on them, ``PruningTarget`` (what a fit is asked to save) and ``KeepSchedule`` (the keep share of
every epoch)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

ScheduleShape = Literal["linear", "cosine", "exponential", "step"]
SCHEDULE_SHAPES: tuple[str, ...] = ("linear", "cosine", "exponential", "step")


def keep_share_at(
    epoch: int, prune_ratio: float, warmup_epochs: int, prune_epochs: int, shape: ScheduleShape = "linear"
) -> float:
    """Share of the dataset kept in ``epoch`` (0-based).

    Full data for ``warmup_epochs``; then the keep share steps from 1 down to ``1 - prune_ratio`` over
    ``prune_epochs`` epochs (the last of them already at the target) and holds there.

    Example::

        >>> [round(keep_share_at(e, 0.3, 1, 3), 2) for e in range(6)]
        [1.0, 0.9, 0.8, 0.7, 0.7, 0.7]
        >>> [round(keep_share_at(e, 0.3, 1, 3, "step"), 2) for e in range(3)]
        [1.0, 0.7, 0.7]
    """
    if epoch < warmup_epochs or prune_ratio == 0.0:
        return 1.0
    t = 1.0 if prune_epochs <= 0 else min(1.0, (epoch - warmup_epochs + 1) / prune_epochs)  # progress in (0, 1]
    if shape == "linear":
        frac = t
    elif shape == "cosine":
        frac = 0.5 * (1.0 - math.cos(math.pi * t))
    elif shape == "exponential":  # geometric interpolation: equal relative cuts every epoch
        return float((1.0 - prune_ratio) ** t)
    elif shape == "step":
        frac = 1.0
    else:
        raise ValueError(f"unknown schedule shape {shape!r}; expected one of {SCHEDULE_SHAPES}")
    return 1.0 - prune_ratio * frac


def num_kept(num_samples: int, keep_share: float) -> int:
    """``K = round(keep_share * N)``, the exact number of samples kept.

    Example::

        >>> num_kept(1000, 0.7), num_kept(3, 0.5)
        (700, 2)
    """
    return int(round(keep_share * num_samples))


def shard_length(num_samples: int, world_size: int, drop_last: bool) -> int:
    """Samples each of ``world_size`` ranks draws from ``num_samples``: the remainder dropped or topped up.

    Example::

        >>> shard_length(10, 4, drop_last=False), shard_length(10, 4, drop_last=True)
        (3, 2)
    """
    return num_samples // world_size if drop_last else math.ceil(num_samples / world_size)


def num_batches(samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches a loader makes of ``samples`` samples.

    Example::

        >>> num_batches(10, 4, False), num_batches(10, 4, True)
        (3, 2)
    """
    return samples // batch_size if drop_last else math.ceil(samples / batch_size)


def limit_batches(batches: int, limit: int | float) -> int:
    """Lightning's ``limit_train_batches`` rule: an int caps the count, a float scales it.

    Example::

        >>> limit_batches(10, 4), limit_batches(10, 0.5), limit_batches(10, 1.0)
        (4, 5, 10)
    """
    if isinstance(limit, int):
        return min(batches, limit)
    return batches if limit == 1.0 else int(batches * limit)


def stepping_batches(batches: Sequence[int], accumulate_grad_batches: int, max_steps: int = -1) -> int:
    """Optimiser steps taken over epochs of the given batch counts.

    Lightning steps the optimiser every ``accumulate_grad_batches`` batches and once more at the end of an
    epoch whose count does not divide evenly, so each epoch gives ``ceil(b / accumulate_grad_batches)``.

    Example::

        >>> stepping_batches([10, 7], 3), stepping_batches([10, 7], 3, max_steps=5)
        (7, 5)
    """
    total = sum(math.ceil(b / accumulate_grad_batches) for b in batches)
    return min(total, max_steps) if max_steps != -1 else total


def full_epoch_samples(num_samples: int, world_size: int, batch_size: int, drop_last: bool, limit: int | float) -> int:
    """Samples full data forwards in one epoch on all ranks under the same loader and ``limit_train_batches``.

    Example::

        >>> full_epoch_samples(100, 1, 32, False, 1.0), full_epoch_samples(100, 1, 32, False, 2)
        (100, 64)
        >>> full_epoch_samples(100, 2, 32, True, 1.0)
        64
    """
    shard = shard_length(num_samples, world_size, drop_last=False)  # Lightning's DistributedSampler pads
    batches = limit_batches(num_batches(shard, batch_size, drop_last), limit)
    return min(batches * batch_size, shard) * world_size


def epoch_sample_counts(
    shares: Sequence[float], num_samples: int, global_batch: int, total: int | None = None, world_size: int = 1
) -> list[int]:
    """Samples each epoch draws, laid out so no pruned epoch ends on a sliver of a batch, summing to ``total``.

    An epoch at share 1 holds all ``N`` samples (with full data's own last batch). The pruned epochs share the
    total's whole global batches: each gets its share's batches rounded down, and the epochs whose share leaves
    the largest remainders one more (largest-remainder rounding: every epoch within a batch of its share, the counts
    still falling from epoch to epoch as nested selection needs). What is left, less than one batch (a multiple of
    ``world_size``), goes to the last pruned epoch: its final batch is the only partial one, where a decayed
    schedule's learning rate is lowest (should that make it outgrow the epoch before, one batch of it moves
    earlier, so the counts never grow). Without the layout, ``round(share * N)``
    samples an epoch end on whatever tail the batch size leaves (3 600 samples in batches of 128: a 16-sample step
    at full learning rate every epoch).

    Args:
        shares: the keep share of every epoch.
        num_samples: ``N``.
        global_batch: samples per optimiser batch over all processes.
        total: samples the fit forwards; ``None``: the sum of ``round(share * N)`` (what the shares alone give).
        world_size: processes; the last pruned epoch's remainder is a multiple of it (equal shards).

    Raises:
        ValueError: a total the pruned epochs cannot hold (each needs at least one batch and at most ``N``).

    Example::

        >>> epoch_sample_counts([1.0, 0.6, 0.6, 0.6], 6000, 128)  # 3 x 3600 = 10800 = 84 batches + 48
        [6000, 3712, 3584, 3504]
        >>> epoch_sample_counts([1.0, 0.6, 0.6, 0.6], 6000, 128, total=16000)
        [6000, 3456, 3328, 3216]
    """
    counts = [num_samples if share >= 1.0 else num_kept(num_samples, share) for share in shares]
    # an epoch of one batch or less has nothing to lay out: it is one partial batch whatever is done
    pruned = [e for e, share in enumerate(shares) if share < 1.0 and counts[e] >= global_batch]
    target = sum(counts) if total is None else int(total)
    if not pruned:
        if target != sum(counts):
            raise ValueError(f"the epochs hold {sum(counts)} samples without a pruned epoch to change: not {target}")
        return counts
    budget = target - sum(c for e, c in enumerate(counts) if e not in pruned)  # what the pruned epochs hold
    low, high = len(pruned) * global_batch, len(pruned) * num_samples
    if not low <= budget <= high:
        raise ValueError(
            f"the {len(pruned)} pruned epoch(s) cannot forward {budget} samples between them: each holds one batch "
            f"({global_batch}) to all {num_samples} samples, so between {low} and {high}"
        )
    batches, rest = divmod(budget, global_batch)  # whole batches between the pruned epochs, and a remainder
    floors = [counts[e] // global_batch for e in pruned]
    ups = batches - sum(floors)  # epochs rounded up, those whose share leaves the largest remainder (ties: earliest)
    cap = num_samples // global_batch * global_batch
    room = [i for i, f in enumerate(floors) if (f + 1) * global_batch <= cap]
    by_remainder = sorted(room, key=lambda i: (-(counts[pruned[i]] % global_batch), i))
    up = set(by_remainder[: max(0, ups)])
    whole = [(f + (i in up)) * global_batch for i, f in enumerate(floors)]
    left = budget - sum(whole)
    while left >= global_batch:  # (shares far from their counts) whole batches to the earliest epochs with room
        takers = [i for i, count in enumerate(whole) if count + global_batch <= cap]
        if not takers:
            break
        for i in takers[: left // global_batch]:
            whole[i] += global_batch
            left -= global_batch
    while left < 0:  # or taken from the latest ones
        givers = [i for i in reversed(range(len(whole))) if whole[i] >= 2 * global_batch]
        if not givers:
            break
        for i in givers[: -(left // global_batch)]:
            whole[i] -= global_batch
            left += global_batch
    # the rest, less than a batch as a rule: the last epoch's final batch; more only when the epochs had no room
    # for whole batches (near N, or at one batch each), then spread from the earliest, which hold the most
    order = range(len(whole)) if abs(left) >= global_batch and left > 0 else reversed(range(len(whole)))
    for i in order:
        if abs(left) < world_size:
            break
        step = min(left, num_samples - whole[i]) if left > 0 else max(left, world_size - whole[i])
        step = int(step / world_size) * world_size  # equal shards (toward zero)
        whole[i] += step
        left -= step
    if len(whole) > 1 and whole[-1] > whole[-2] and whole[-1] - global_batch >= world_size:
        # the remainder made the last epoch outgrow the one before: a batch of it moves to the first epoch of that
        # one's run of equal counts, if that stays within N and under the epoch before the run
        first = next(i for i in range(len(whole) - 1) if whole[i] == whole[-2])
        ceiling = min(num_samples, whole[first - 1] if first else num_samples)
        if whole[first] + global_batch <= ceiling:
            whole[first] += global_batch
            whole[-1] -= global_batch
    for e, count in zip(pruned, whole):
        counts[e] = count
    return counts


def solve_prune_ratio(total: int, samples_at: Callable[[float], int], tolerance: float = 1e-9) -> float:
    """The prune ratio whose schedule forwards ``total`` samples (``samples_at(p)``: what the schedule forwards at
    ``p``, non-increasing in ``p``), by bisection: the smallest ``p`` at which it forwards at most ``total``.

    Raises:
        ValueError: ``total`` is more than full data forwards, or less than the schedule can reach.

    Example::

        >>> p = solve_prune_ratio(7000, lambda p: round(1000 + 9000 * (1 - p)))  # a full epoch, then 9000 (1 - p)
        >>> round(p, 3), round(1000 + 9000 * (1 - p))
        (0.333, 7000)
    """
    most, least = samples_at(0.0), samples_at(1.0 - tolerance)
    if total > most:
        raise ValueError(f"a budget of {total} samples is more than full data forwards ({most}): use at most 1.0")
    if total < least:
        raise ValueError(
            f"a budget of {total} samples is less than the schedule can forward ({least}: its full-data warm-up "
            "epochs alone, or one batch an epoch): raise the budget or lower warmup_epochs"
        )
    if most <= total:
        return 0.0
    low, high = 0.0, 1.0 - tolerance
    while high - low > tolerance:
        mid = (low + high) / 2
        if samples_at(mid) > total:
            low = mid
        else:
            high = mid
    return high


def annealed_epochs(max_epochs: int, anneal: float) -> int:
    """How many final epochs an ``anneal`` share of ``max_epochs`` covers: ``floor(anneal * max_epochs)``, the one
    rule every annealing method here uses (a share that lands on a whole number within float error counts as it).

    Example::

        >>> annealed_epochs(20, 0.125), annealed_epochs(8, 0.125), annealed_epochs(10, 0.3), annealed_epochs(5, 0.0)
        (2, 1, 3, 0)
    """
    return math.floor(anneal * max_epochs + 1e-9)


def annealed_keep_share_at(
    epoch: int,
    prune_ratio: float,
    warmup_epochs: int,
    prune_epochs: int,
    shape: ScheduleShape,
    max_epochs: int,
    anneal: float,
) -> float:
    """A keep share with full data in the warm-up and in the last ``floor(anneal * max_epochs)`` epochs (none in
    a fit too short for one) and a constant share ``q`` in between, ``q`` chosen so the run forwards as many
    samples as the standard schedule (:func:`keep_share_at`) at the same ``prune_ratio`` (clipped to
    ``[0, 1]``): InfoBatch's annealing at an equal budget.

    Example::

        >>> [round(annealed_keep_share_at(e, 0.5, 1, 1, "step", 8, 0.125), 3) for e in range(8)]
        [1.0, 0.417, 0.417, 0.417, 0.417, 0.417, 0.417, 1.0]
    """
    annealed = min(annealed_epochs(max_epochs, anneal), max(max_epochs - warmup_epochs, 0))
    pruned_epochs = max_epochs - warmup_epochs - annealed
    if epoch < warmup_epochs or epoch >= max_epochs - annealed or pruned_epochs <= 0:
        return 1.0
    target = sum(keep_share_at(e, prune_ratio, warmup_epochs, prune_epochs, shape) for e in range(max_epochs))
    return min(1.0, max(0.0, (target - warmup_epochs - annealed) / pruned_epochs))


@dataclass(frozen=True)
class PruningTarget:
    """What a fit is asked to save, in one place: a ``prune_ratio`` or a ``budget``, exactly one of them.

    Attributes:
        prune_ratio: ``p`` in ``[0, 1)``, the share of samples the schedule removes once it reaches its target; the
            compute saved follows from the schedule (the warm-up and step-down epochs forward more).
        budget: in ``(0, 1]``, the share of full data's samples the whole fit forwards (``budget * N * max_epochs``
            samples, met exactly); the prune ratio that the schedule reaches follows from it.

    Example::

        >>> PruningTarget(prune_ratio=0.3), PruningTarget(budget=0.6).describe()
        (PruningTarget(prune_ratio=0.3, budget=None), 'budget=0.6')
    """

    prune_ratio: float | None = None
    budget: float | None = None

    def __post_init__(self) -> None:
        if (self.prune_ratio is None) == (self.budget is None):
            raise ValueError(
                "give the pruning callback one of prune_ratio= (the share of samples removed once the schedule reaches "
                "it) or budget= (the share of full data's samples the fit forwards), not "
                + ("both" if self.prune_ratio is not None else "neither")
            )

    def describe(self) -> str:
        return f"prune_ratio={self.prune_ratio}" if self.budget is None else f"budget={self.budget}"


@dataclass(frozen=True)
class KeepSchedule:
    """The keep share of every epoch of a fit: ``warmup_epochs`` on full data, then down to ``1 - prune_ratio``
    over ``prune_epochs`` epochs (``shape``: linear, cosine, exponential or step) and held there.

    Args:
        prune_ratio: ``p``, the share of samples removed once the schedule has reached its target.
        warmup_epochs: epochs on full data before the first cut.
        prune_epochs: epochs over which the share steps down.
        shape: the shape of the step-down.
        max_epochs: epochs of the fit.

    Example::

        >>> schedule = KeepSchedule(0.3, warmup_epochs=1, prune_epochs=3, shape="linear", max_epochs=5)
        >>> [round(schedule(e), 2) for e in range(5)], schedule.keep_fraction
        ([1.0, 0.9, 0.8, 0.7, 0.7], 0.7)
    """

    prune_ratio: float
    warmup_epochs: int
    prune_epochs: int
    shape: ScheduleShape
    max_epochs: int

    def __call__(self, epoch: int) -> float:
        return keep_share_at(epoch, self.prune_ratio, self.warmup_epochs, self.prune_epochs, self.shape)

    def annealed(self, epoch: int, anneal: float) -> float:
        """The same total of samples with full data in the last ``floor(anneal * max_epochs)`` epochs
        (:func:`~lightning_adapruner.core.functional.annealed_keep_share_at`)."""
        return annealed_keep_share_at(
            epoch, self.prune_ratio, self.warmup_epochs, self.prune_epochs, self.shape, self.max_epochs, anneal
        )

    @property
    def keep_fraction(self) -> float:
        """``r = 1 - p``."""
        return 1.0 - self.prune_ratio
