"""Collectives of the pruning harness, through the Lightning strategy's public ``all_gather``/``broadcast``; a
single process needs none of them.

Where they run matters: other callbacks (progress bars, loggers) compute and sync metrics on rank 0 only in their
hooks, so a collective placed in a callback hook can pair with theirs and deadlock. The harness calls these only
inside ``pruning_loss`` (in ``training_step``) and inside the training-data request at an epoch's start, points
every rank reaches in step whatever the other callbacks do.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypeVar

from torch import Tensor

log = logging.getLogger(__name__)

T = TypeVar("T")


class Collectives(Protocol):
    """What the pruning session needs from the processes of a fit."""

    world_size: int
    rank: int

    def gather_rows(self, rows: Tensor) -> Tensor:
        """Every rank's ``rows`` stacked in rank order: ``[world_size, *rows.shape]``."""

    def same_everywhere(self, value: Tensor) -> bool:
        """Whether every rank holds the same ``value`` (a small tensor)."""

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""


class SingleProcess:
    """The collectives of a one-process fit: nothing to exchange."""

    world_size = 1
    rank = 0

    def gather_rows(self, rows: Tensor) -> Tensor:
        return rows.unsqueeze(0)

    def same_everywhere(self, value: Tensor) -> bool:
        return True

    def broadcast(self, obj: T) -> T:
        return obj


class StrategyCollectives:
    """The collectives of a multi-process fit, through the Lightning strategy and torchmetrics.

    Args:
        strategy: the trainer's strategy (``trainer.strategy``).
    """

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy
        self.world_size = int(strategy.world_size)
        self.rank = int(strategy.global_rank)

    def gather_rows(self, rows: Tensor) -> Tensor:
        """One all-gather; every rank sends rows of one shape (the epoch's shards have equal batches)."""
        return self.strategy.all_gather(rows.contiguous())

    def same_everywhere(self, value: Tensor) -> bool:
        everyone = self.strategy.all_gather(value)
        return bool((everyone == everyone[0]).all())

    def broadcast(self, obj: T) -> T:
        return self.strategy.broadcast(obj, src=0)


def collectives_for(strategy: Any) -> Collectives:
    """:class:`SingleProcess` for one process, :class:`StrategyCollectives` otherwise."""
    return SingleProcess() if int(getattr(strategy, "world_size", 1)) <= 1 else StrategyCollectives(strategy)


def resync_method(method: Any, comm: Collectives, device: Any) -> None:
    """Check that every rank holds the same method state (a checksum) and re-send rank 0's if float drift split
    them; nothing to do in one process."""
    if comm.world_size <= 1:
        return
    if not comm.same_everywhere(method.checksum().to(device)):
        log.warning("pruning state differed across ranks (float drift); re-synchronising it from rank 0")
        method.load_state_dict(comm.broadcast(method.state_dict()))
