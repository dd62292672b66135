"""``PruningPerformanceController`` (PPC): the LightningModule mixin that hands per-sample losses to the pruner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import Tensor

from lightning_adapruner.core.batch import BatchSelection
from lightning_adapruner.core.callback import DataPruning

BatchT = TypeVar("BatchT")


class PruningPerformanceController:
    """Mixin for a ``LightningModule`` trained with :class:`~lightning_adapruner.DataPruning`.

    Compute the per-sample loss as usual (any task: cross-entropy, regression, per-pixel losses reduced per
    sample) and return ``self.pruning_loss(per_sample_loss)`` from ``training_step``. The batch stays yours:
    the callback knows which samples it holds. It returns the loss the network trains on (the plain mean, or
    the method's re-weighting of it) and hands the detached losses to the pruning method. Without the callback,
    or outside training, it returns the plain mean, so the same module trains on full data unchanged. Share
    one criterion between train, val and test with ``reduction="none"`` and ``.mean()`` it outside
    ``training_step``.

    Example::

        >>> import lightning as L, torch
        >>> class Model(PruningPerformanceController, L.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Linear(4, 2)
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch  # the user's own batch
        ...         return self.pruning_loss(torch.nn.functional.cross_entropy(self.net(x), y, reduction="none"))
        >>> Model().pruning_loss(torch.tensor([1.0, 3.0]))  # no trainer, no callback: the plain mean
        tensor(2.)
    """

    def pruning_loss(self, per_sample_loss: Tensor, indices: Tensor | None = None, **inputs: Tensor) -> Tensor:
        """The network's loss for this training batch; records the batch's statistics for the pruning method.

        Args:
            per_sample_loss: shape ``[B]``, one loss per sample of the batch (keep the graph).
            indices: optional dataset indices of the batch's samples (e.g. ``batch.index`` of an
                :class:`~lightning_adapruner.IndexedDataset`); checked against the tracked ones once per epoch.
            **inputs: tensors the method needs besides the loss (its ``inputs``: e.g. ``logits=``, ``targets=``
                for EL2N and forgetting); others are ignored.
        """
        pruning = self.data_pruning
        trainer = self._attached_trainer()
        if pruning is None or trainer is None or not trainer.training:
            return per_sample_loss.mean()
        return pruning.session.network_loss(per_sample_loss, indices, inputs)

    def select_batch(self, batch: BatchT, per_sample_loss: Callable[[BatchT], Tensor]) -> BatchT:
        """The part of a training ``batch`` to train on, under :class:`~lightning_adapruner.BatchSelection`:
        ``per_sample_loss(batch)`` scores every sample without gradients and the callback keeps its share. Without
        the callback, or outside training, the batch itself (nothing is computed)."""
        trainer = self._attached_trainer()
        if trainer is None or not trainer.training:
            return batch
        selection = next((c for c in trainer.callbacks if isinstance(c, BatchSelection)), None)
        return batch if selection is None else selection.select(batch, per_sample_loss)

    @property
    def data_pruning(self) -> DataPruning | None:
        """The :class:`~lightning_adapruner.DataPruning` callback of the fit, if there is one."""
        trainer = self._attached_trainer()
        if trainer is None:
            return None
        return next((c for c in trainer.callbacks if isinstance(c, DataPruning)), None)

    @property
    def pruning_stepping_batches(self) -> int | float:
        """Optimiser steps this fit takes under the pruning schedule: size step-based LR schedulers
        (``OneCycleLR(total_steps=...)``) with it. Equals ``trainer.estimated_stepping_batches`` without the
        callback."""
        trainer = self._attached_trainer()
        if trainer is None:
            raise RuntimeError(f"{type(self).__name__}.pruning_stepping_batches needs the module attached to a Trainer")
        pruning = self.data_pruning
        return trainer.estimated_stepping_batches if pruning is None else pruning.estimated_stepping_batches(trainer)

    def _attached_trainer(self) -> Any:
        try:
            return self.trainer  # type: ignore[attr-defined]  # the LightningModule's, once the mixin is mixed in
        except RuntimeError:  # a LightningModule not attached to a Trainer
            return None
