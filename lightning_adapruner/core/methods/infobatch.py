"""``InfoBatchPruning``: each epoch drops a random share of the well-learned samples and re-weights the rest."""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.functional.schedule import KeepSchedule
from lightning_adapruner.core.method import EpochLayout, Observations, PruningMethod

log = logging.getLogger(__name__)


class InfoBatchPruning(PruningMethod):
    """InfoBatch (Qin et al., ICLR 2024) at the harness's budgets.

    Each pruned epoch drops, at random, samples whose last loss is below the mean and up-weights the kept
    below-mean samples by ``1 / (1 - dropped share)``; the warm-up and the last ``floor(anneal * max_epochs)``
    epochs use full data, the epochs in between a constant share chosen so the fit forwards as many samples
    as the other methods at the same ``prune_ratio``
    (:func:`~lightning_adapruner.core.functional.annealed_keep_share_at`). InfoBatch drops at most
    ``prune_share`` of the below-mean samples; a budget that needs more is beyond its design, and the rest of
    the cut is drawn uniformly at random (our extension). Such epochs are counted (``beyond_design_epochs`` in
    the export) and warned about once, so a result there is never reported as InfoBatch's own.

    Args:
        prune_share: the largest share of the below-mean samples InfoBatch drops (its ``r``; 0.5 in the paper).
        anneal: share of the final epochs trained on full data (InfoBatch's ``1 - delta``).

    Example::

        >>> InfoBatchPruning().name, InfoBatchPruning().nested
        ('infobatch', False)
    """

    name = "infobatch"
    beyond_design_epochs: Tensor  # declared state the method reassigns (add_state allocates it at the fit's start)

    def __init__(self, prune_share: float = 0.5, anneal: float = 0.125) -> None:
        super().__init__(nested=False)
        if not 0.0 < prune_share <= 1.0:
            raise ValueError(f"prune_share must be in (0, 1], got {prune_share!r}")
        if not 0.0 <= anneal < 1.0:
            raise ValueError(f"anneal must be in [0, 1), got {anneal!r}")
        self.prune_share, self.anneal = float(prune_share), float(anneal)
        self.add_state("last_loss", float("nan"))
        self.add_state("weights", 1.0)
        self.add_state("beyond_design_epochs", 0, dtype=torch.long, per_sample=False)

    def setup(self) -> None:
        if self.fit.schedule.warmup_epochs < 1:
            raise ValueError("InfoBatchPruning needs one full epoch of losses first: set warmup_epochs >= 1")

    def keep_share(self, epoch: int, schedule: KeepSchedule) -> float:
        return schedule.annealed(epoch, self.anneal)

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        candidates = candidates.long()
        gen = F.generator(self.fit.seed, epoch, F.selection.STREAM_METHOD + 3)
        kept, weights, beyond = F.infobatch_plan(self.last_loss.cpu()[candidates], budget, gen, self.prune_share)
        self.weights.fill_(1.0)
        self.weights[candidates.to(self.weights.device)] = weights.to(self.weights.device)
        if beyond:
            self.beyond_design_epochs += 1
            if int(self.beyond_design_epochs) == 1:
                log.warning(
                    "epoch %d: InfoBatch drops at most %.0f%% of the below-mean samples, so this budget needs %d more "
                    "drops than it can make; they are drawn at random (our extension, counted in the export's "
                    "method_beyond_design_epochs)",
                    epoch,
                    100 * self.prune_share,
                    beyond,
                )
        return candidates[kept]

    def loss_weights(self, layout: EpochLayout) -> Tensor | None:
        return self.weights[layout.order[: layout.runs]]

    def update(self, observations: Observations) -> None:
        self.last_loss[observations.indices] = observations.loss

    def end_epoch(self, epoch: int, steps: int) -> None:
        self.weights.fill_(1.0)

    def final_subset(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        """InfoBatch has no static subset: the ``k`` samples of highest last loss."""
        return self.select_top(candidates, k, torch.nan_to_num(self.last_loss.cpu(), nan=float("-inf")), epoch)

    def scores(self) -> Tensor:
        return self.last_loss.cpu()
