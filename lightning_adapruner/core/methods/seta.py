"""``SeTaPruning``: a sliding window from easy to hard over loss groups, random within it (CVPR 2025)."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.method import Observations, PruningMethod


class SeTaPruning(PruningMethod):
    """SeTa, "Scale Efficient Training for Large Datasets" (Zhou, Gao, Wang; CVPR 2025), at the harness's budgets.

    Each pruned epoch groups the samples by their last loss (1-D k-means, ``num_groups`` groups sorted easy to
    hard), keeps the groups of a window that slides one group harder per epoch
    (:func:`~lightning_adapruner.core.functional.seta_window`, ``round(num_groups * window_scale)`` groups
    wide; the first pruned epoch keeps all) and draws the epoch's budget uniformly from them. In the last
    ``floor(anneal * max_epochs)`` epochs it draws uniformly from all samples (SeTa's annealing). A window that
    holds fewer samples than the budget widens one group at a time (our extension; counted in the export's
    ``method_widened_groups``).

    Args:
        num_groups: loss groups (SeTa's CIFAR setting: 5).
        window_scale: share of the groups in the window (SeTa's CIFAR setting: 0.9).
        anneal: share of the final epochs drawn uniformly at random (SeTa's ``1 - delta``, 0.125).

    Example::

        >>> SeTaPruning().name, SeTaPruning(num_groups=10, window_scale=0.5).num_groups
        ('seta', 10)
    """

    name = "seta"
    widened_groups: Tensor  # declared state the method reassigns (add_state allocates it when the fit starts)

    def __init__(self, num_groups: int = 5, window_scale: float = 0.9, anneal: float = 0.125) -> None:
        super().__init__(nested=False)
        if not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError(f"num_groups must be an int >= 1, got {num_groups!r}")
        if not 0.0 < window_scale <= 1.0 or not 0.0 <= anneal < 1.0:
            raise ValueError(f"need 0 < window_scale <= 1 and 0 <= anneal < 1, got {window_scale!r}, {anneal!r}")
        self.num_groups, self.window_scale, self.anneal = num_groups, float(window_scale), float(anneal)
        self.add_state("last_loss", float("nan"))
        self.add_state("widened_groups", 0, dtype=torch.long, per_sample=False)

    def setup(self) -> None:
        if self.fit.schedule.warmup_epochs < 1:
            raise ValueError("SeTaPruning groups samples by their losses: set warmup_epochs >= 1")

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        schedule = self.fit.schedule
        gen = F.generator(self.fit.seed, epoch, F.selection.STREAM_METHOD + 4)
        if epoch >= schedule.max_epochs - F.annealed_epochs(schedule.max_epochs, self.anneal):
            return candidates[F.random_subset(budget, candidates.numel(), gen)]
        losses = torch.nan_to_num(self.last_loss.cpu()[candidates.long()], nan=0.0)
        kept, widened = F.seta_plan(
            losses, budget, epoch - schedule.warmup_epochs, self.num_groups, self.window_scale, gen
        )
        self.widened_groups += widened
        return candidates[kept]

    def update(self, observations: Observations) -> None:
        self.last_loss[observations.indices] = observations.loss

    def final_subset(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        """SeTa has no static subset: ``k`` samples drawn uniformly (the exported subset is a random one)."""
        gen = F.generator(self.fit.seed, epoch, F.selection.STREAM_METHOD + 5)
        return candidates[F.random_subset(k, candidates.numel(), gen)]

    def scores(self) -> Tensor:
        return self.last_loss.cpu()
