"""``PruningTarget`` (what a fit is asked to save) and ``KeepSchedule`` (which share of the dataset each epoch
forwards: full data first, then down to ``1 - p``)."""

from __future__ import annotations

from dataclasses import dataclass

from lightning_adapruner.core import functional as F


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
    shape: F.ScheduleShape
    max_epochs: int

    def __call__(self, epoch: int) -> float:
        return F.keep_share_at(epoch, self.prune_ratio, self.warmup_epochs, self.prune_epochs, self.shape)

    def annealed(self, epoch: int, anneal: float) -> float:
        """The same total of samples with full data in the last ``floor(anneal * max_epochs)`` epochs
        (:func:`~lightning_adapruner.core.functional.annealed_keep_share_at`)."""
        return F.annealed_keep_share_at(
            epoch, self.prune_ratio, self.warmup_epochs, self.prune_epochs, self.shape, self.max_epochs, anneal
        )

    @property
    def keep_fraction(self) -> float:
        """``r = 1 - p``."""
        return 1.0 - self.prune_ratio
