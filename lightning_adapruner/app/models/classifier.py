"""``ImageClassifier``: a cross-entropy ``LightningModule`` for any image network, ready for AdaPruner."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR
from torchmetrics.classification import MulticlassAccuracy

from lightning_adapruner import PruningPerformanceController

SchedulerName = Literal["onecycle", "cosine", "none"]
SCHEDULERS: tuple[str, ...] = ("onecycle", "cosine", "none")
OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]


class ImageClassifier(PruningPerformanceController, LightningModule):
    """Trains ``net`` with per-sample cross-entropy, handed to AdaPruner through ``pruning_loss``.

    Batches are the datamodule's plain ``(x, y)``; ``training_step`` hands the per-sample loss (and the logits,
    for the methods that score from them) to ``pruning_loss``, every other step uses the same criterion. Without an
    ``AdaptiveDatasetPruning`` callback it trains on the plain mean loss. The learning-rate schedule
    steps once per optimiser step and is sized by :attr:`pruning_stepping_batches`, so it ends exactly
    when a pruned (shorter) fit does. Logs ``train/loss`` (the unweighted mean task loss, comparable with a run
    without pruning, whatever the method's re-weighting), ``train/acc``, ``val/loss``, ``val/acc``,
    ``test/loss`` and ``test/acc``; the accuracies are micro-averaged (share of correct predictions).

    Args:
        net: the network mapping images to ``num_classes`` logits (Hydra instantiates it first).
        num_classes: number of classes.
        optimizer: builds the optimiser from the parameters, e.g. ``functools.partial(torch.optim.SGD,
            lr=0.1)`` or a Hydra config with ``_partial_: true``. ``None`` for SGD with ``lr=0.1``,
            ``momentum=0.9``, ``weight_decay=5e-4``, ``nesterov=False``.
        scheduler: ``"onecycle"`` (``OneCycleLR`` peaking at the optimiser's learning rate),
            ``"cosine"`` (``CosineAnnealingLR`` from it to 0) or ``"none"`` (constant).
        label_smoothing: label smoothing of the cross-entropy, in ``[0, 1)``.

    Raises:
        ValueError: if ``scheduler``, ``num_classes`` or ``label_smoothing`` is invalid; at fit time
            if the schedule would be sized by an unbounded number of steps.

    Example::

        >>> from lightning_adapruner.app.models import SmallCNN
        >>> model = ImageClassifier(SmallCNN(in_channels=1, num_classes=10), num_classes=10, scheduler="cosine")
        >>> model(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerName = "onecycle",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.optimizer_factory: OptimizerFactory = optimizer or default_optimizer
        self.scheduler_name = scheduler
        self.label_smoothing = label_smoothing
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = self.select_batch(batch, self._scores)  # the batch itself unless BatchSelection is in the fit
        logits, per_sample = self._per_sample_loss(x, y)
        loss = self.pruning_loss(per_sample, logits=logits, targets=y)
        self.train_acc(logits, y)
        self.log(
            "train/loss",
            per_sample.mean(),
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
            batch_size=len(y),
        )
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_name == "none":
            return optimizer
        scheduler = build_scheduler(self.scheduler_name, optimizer, self.pruning_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _scores(self, batch: Any) -> Tensor:
        return self._per_sample_loss(*batch)[1]

    def _per_sample_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        logits = self(x)
        return logits, F.cross_entropy(logits, y, reduction="none", label_smoothing=self.label_smoothing)

    def _evaluate(self, batch: Any, stage: str, accuracy: MulticlassAccuracy) -> None:
        x, y = batch
        logits, per_sample = self._per_sample_loss(x, y)
        accuracy(logits, y)
        self.log(f"{stage}/loss", per_sample.mean(), prog_bar=True, sync_dist=True, batch_size=len(y))
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(y))


def default_optimizer(params: Iterable[nn.Parameter]) -> Optimizer:
    """SGD with ``lr=0.1``, ``momentum=0.9``, ``weight_decay=5e-4``, ``nesterov=False`` (the paper's setting)."""
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False)


def build_scheduler(name: SchedulerName, optimizer: Optimizer, total_steps: int | float) -> LRScheduler:
    """The per-step learning-rate schedule ``name`` over ``total_steps`` optimiser steps.

    ``"onecycle"`` peaks at each parameter group's current learning rate (cycling the momentum only
    when the optimiser has one); ``"cosine"`` anneals from it to 0.

    Raises:
        ValueError: if ``name`` is not ``"onecycle"`` or ``"cosine"``, or ``total_steps`` is not a
            finite positive number (``max_epochs=-1`` without ``max_steps`` gives ``inf``).
    """
    if not math.isfinite(total_steps) or total_steps < 1:
        raise ValueError(
            f"the {name!r} schedule needs a finite, positive number of steps, got {total_steps}; "
            "set trainer.max_epochs or trainer.max_steps, or use scheduler='none'"
        )
    total_steps = int(total_steps)
    if name == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, cycle_momentum=_has_momentum(optimizer))
    if name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ValueError(f"name must be 'onecycle' or 'cosine', got {name!r}")


def _has_momentum(optimizer: Optimizer) -> bool:
    """Whether ``OneCycleLR`` can cycle this optimiser's momentum (SGD with momentum, Adam-style betas)."""
    defaults = optimizer.defaults
    return "betas" in defaults or defaults.get("momentum", 0) > 0
