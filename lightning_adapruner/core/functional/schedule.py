"""Keep-share schedules and step counts: how many samples and batches each epoch holds."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
