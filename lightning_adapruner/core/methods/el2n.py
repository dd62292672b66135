"""``EL2NPruning``: drops the samples of lowest EL2N score (Paul et al. 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.method import EpochLayout, Observations, PruningMethod


class EL2NPruning(PruningMethod):
    """EL2N (Paul et al. 2021): ``||softmax - onehot||_2`` averaged over the warm-up (full-data) epochs; the
    lowest scores are dropped first and the score is fixed after the warm-up.

    Needs ``pruning_loss(loss, logits=..., targets=...)``.

    Example::

        >>> EL2NPruning().inputs
        ('logits', 'targets')
    """

    name = "el2n"

    def __init__(self) -> None:
        super().__init__(inputs=("logits", "targets"), statistics=("el2n",))
        self.add_state("score_sum", 0.0)
        self.add_state("score_count", 0, dtype=torch.int32)
        self._scoring = True

    def setup(self) -> None:
        if self.fit.schedule.warmup_epochs < 1:
            raise ValueError("EL2NPruning averages its score over the warm-up epochs: set warmup_epochs >= 1")

    def begin_epoch(self, layout: EpochLayout) -> None:
        self._scoring = layout.epoch < self.fit.schedule.warmup_epochs

    def observe(self, loss: Tensor, **inputs: Tensor) -> dict[str, Tensor]:
        # after the warm-up the score is fixed: skip the softmax (update ignores these epochs)
        return {"el2n": F.el2n_scores(inputs["logits"], inputs["targets"]) if self._scoring else loss}

    def update(self, observations: Observations) -> None:
        if observations.epoch >= self.fit.schedule.warmup_epochs:
            return
        score = observations.stats["el2n"]
        ok = torch.isfinite(score)
        self.score_sum.index_add_(0, observations.indices, torch.where(ok, score, torch.zeros_like(score)))
        self.score_count.index_add_(0, observations.indices, ok.to(self.score_count.dtype))

    def evidence(self) -> Tensor:
        return (self.score_count > 0).cpu()

    def scores(self) -> Tensor:
        """Mean EL2N per sample (0 for samples never scored), a million at a time: no temporary of every sample."""
        out, piece = torch.empty_like(self.score_sum), 1 << 20
        for total, count, into in zip(self.score_sum.split(piece), self.score_count.split(piece), out.split(piece)):
            torch.div(total, count.clamp_min(1), out=into)
        return out.cpu()

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        return self.select_top(candidates, budget, self.scores(), epoch)
