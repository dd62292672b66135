"""The names under which the pruning callback logs, and the compute it reports as saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METRIC_PREFIX = "adp/"


@dataclass(frozen=True)
class MetricNames:
    """The keys the pruning callback logs once per epoch (``self.log`` / ``metrics.csv`` columns).

    Example::

        >>> METRIC_NAMES.keep_share
        'adp/keep_share'
    """

    keep_share: str = f"{METRIC_PREFIX}keep_share"  # share of the dataset in the epoch's kept set (what it draws)
    keep_share_target: str = f"{METRIC_PREFIX}keep_share_target"  # the schedule's share for the epoch
    samples_forwarded: str = f"{METRIC_PREFIX}samples_forwarded"  # forwarded so far, all ranks (limits included)
    saved_share: str = f"{METRIC_PREFIX}saved_share"  # 1 - forwarded / what full data would have forwarded
    task_loss: str = f"{METRIC_PREFIX}task_loss"  # the epoch's mean unweighted per-sample loss


METRIC_NAMES = MetricNames()


@dataclass
class ComputeLedger:
    """Samples forwarded against what full data would have forwarded under the same loader and limits.

    ``saved_share`` compares like with like: an epoch cut short by ``limit_train_batches`` is compared with
    full data cut the same way, so ``prune_ratio=0`` always reports 0 saved.

    Example::

        >>> ledger = ComputeLedger()
        >>> ledger.add(forwarded=70, full=100); ledger.add(forwarded=100, full=100)
        >>> ledger.forwarded, round(ledger.saved_share, 3)
        (170, 0.15)
    """

    forwarded: int = 0
    full: int = 0

    def add(self, forwarded: int, full: int) -> None:
        self.forwarded += int(forwarded)
        self.full += int(full)

    @property
    def saved_share(self) -> float:
        return 0.0 if self.full == 0 else 1.0 - self.forwarded / self.full


def epoch_metrics(session: Any, epoch: int, kept: int) -> tuple[dict[str, float], dict[str, float]]:
    """What the callback logs for a closed ``epoch`` that kept ``kept`` samples: the harness's numbers under
    :data:`METRIC_NAMES` and the method's own under ``adp/<name>`` (returned apart too, for the status line)."""
    n = session.facts.num_samples
    method = session.method.metrics()
    metrics = {
        METRIC_NAMES.keep_share_target: session.budget(epoch) / n,
        METRIC_NAMES.keep_share: kept / n,
        METRIC_NAMES.samples_forwarded: float(session.ledger.forwarded),
        METRIC_NAMES.saved_share: session.ledger.saved_share,
        **({METRIC_NAMES.task_loss: session.task_loss} if session.task_loss is not None else {}),
        **{f"{METRIC_PREFIX}{k}": float(v) for k, v in method.items()},
    }
    return metrics, method


def epoch_status(session: Any, epoch: int, metrics: dict[str, float], method_metrics: dict[str, float]) -> str:
    """The one-line status of a closed epoch (``verbose=True``)."""
    extra = ", ".join(f"{k}={v:.3g}" for k, v in method_metrics.items())
    return (
        f"[{session.method.name}] epoch {epoch}: kept {metrics[METRIC_NAMES.keep_share]:.3f} of the data (target "
        f"{metrics[METRIC_NAMES.keep_share_target]:.3f}), {session.ledger.forwarded} samples forwarded so far "
        f"({session.ledger.saved_share:.1%} saved)" + (f", {extra}" if extra else "")
    )
