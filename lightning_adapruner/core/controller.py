"""``PruningPerformanceController`` (PPC): the LightningModule mixin that adds the controller loss."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from lightning_adapruner.core.sample_pruning import SamplePruning

log = logging.getLogger(__name__)


class PruningPerformanceController:
    """Mixin for a ``LightningModule`` trained with :class:`AdaptiveDatasetPruning`.

    Compute your per-sample loss as usual (any task: cross-entropy, regression, per-pixel losses
    reduced per sample) and return ``self.pruning_loss(per_sample_loss, indices)`` from
    ``training_step``. It returns the network's loss ``T1 = mean(s_i * l_i)`` with the soft keep
    scores ``s_i`` of the batch's samples (constants for the network), and hands the detached
    ``(index, loss)`` pairs to the callback, which moves the mask with ``T2`` and ``T3``.
    Without the callback (or outside training) it returns the plain mean, so the same module
    trains on full data unchanged.

    Example::

        class Model(PruningPerformanceController, L.LightningModule):
            def training_step(self, batch, batch_idx):
                idx, (x, y) = batch  # from an IndexedDataset
                per_sample = F.cross_entropy(self(x), y, reduction="none")
                return self.pruning_loss(per_sample, idx)
    """

    _adaptive_pruning: SamplePruning | None = None

    def pruning_loss(
        self,
        per_sample_loss: Tensor,
        indices: Tensor,
        outputs: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        """The network's loss for this batch; records the pairs for the mask update.

        Args:
            per_sample_loss: shape ``[B]``, one non-negative loss per sample (keep the graph).
            indices: shape ``[B]``, the samples' *dataset* indices (``batch.index`` of an
                :class:`~lightning_adapruner.IndexedDataset` batch), not positions in the batch.
            outputs: optional class logits ``[B, C]``; only the EL2N and forgetting baselines use them.
            targets: optional class labels ``[B]``, with ``outputs``.
        """
        adp = self._adaptive_pruning
        trainer = getattr(self, "_trainer", None)
        if adp is None or trainer is None or not trainer.training:
            return per_sample_loss.mean()
        return adp._controller_loss(per_sample_loss, indices, outputs, targets)

    @property
    def adaptive_pruning(self) -> SamplePruning | None:
        """The pruning callback (:class:`AdaptiveDatasetPruning` or a baseline) driving this module, if any."""
        return self._adaptive_pruning

    @property
    def pruning_stepping_batches(self) -> int | float:
        """Optimiser steps this fit takes under the pruning schedule: size step-based LR schedulers
        (``OneCycleLR(total_steps=...)``) with it. Equals ``trainer.estimated_stepping_batches``
        without the callback."""
        trainer = self.trainer  # type: ignore[attr-defined]
        if self._adaptive_pruning is None:
            return trainer.estimated_stepping_batches
        return self._adaptive_pruning.estimated_stepping_batches(trainer)
