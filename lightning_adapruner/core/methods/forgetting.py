"""``ForgettingPruning``: drops the never-forgotten samples first (Toneva et al. 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.method import Observations, PruningMethod


class ForgettingPruning(PruningMethod):
    """Forgetting events (Toneva et al. 2019): count, per sample, how often it goes from correctly to
    incorrectly classified; the never-forgotten are dropped first, never-learned samples are kept first.

    Needs ``pruning_loss(loss, logits=..., targets=...)``.

    Example::

        >>> ForgettingPruning().statistics
        ('correct',)
    """

    name = "forgetting"

    def __init__(self) -> None:
        super().__init__(inputs=("logits", "targets"), statistics=("correct",))
        self.add_state("prev_correct", -1, dtype=torch.int8)
        self.add_state("forgets", 0, dtype=torch.int32)
        self.add_state("ever_correct", False, dtype=torch.bool)

    def observe(self, loss: Tensor, **inputs: Tensor) -> dict[str, Tensor]:
        return {"correct": (inputs["logits"].argmax(-1) == inputs["targets"]).float()}

    def update(self, observations: Observations) -> None:
        idx, correct = observations.indices, observations.stats["correct"] > 0.5
        prev, forgets = F.forgetting_update(self.prev_correct[idx], self.forgets[idx], correct)
        self.prev_correct[idx] = prev
        self.forgets[idx] = forgets
        self.ever_correct[idx] |= correct

    def scores(self) -> Tensor:
        return F.forgetting_scores(self.forgets, self.ever_correct).cpu()

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        return self.select_top(candidates, budget, self.scores(), epoch)
