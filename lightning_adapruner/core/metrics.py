"""The names under which the pruning callback logs, and the compute it reports as saved."""

from __future__ import annotations

from dataclasses import dataclass

METRIC_PREFIX = "adp/"


@dataclass(frozen=True)
class MetricNames:
    """The keys the pruning callback logs once per epoch (``self.log`` / ``metrics.csv`` columns).

    Example::

        >>> METRIC_NAMES.keep_share
        'adp/keep_share'
    """

    keep_share: str = f"{METRIC_PREFIX}keep_share"  # share of the dataset the epoch forwarded
    keep_share_target: str = f"{METRIC_PREFIX}keep_share_target"  # the schedule's share for the epoch
    samples_forwarded: str = f"{METRIC_PREFIX}samples_forwarded"  # samples forwarded so far, all ranks
    saved_share: str = f"{METRIC_PREFIX}saved_share"  # 1 - forwarded / what full data would have forwarded
    task_loss: str = f"{METRIC_PREFIX}task_loss"  # the epoch's mean unweighted per-sample loss


METRIC_NAMES = MetricNames()
