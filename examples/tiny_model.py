"""The smallest LightningModule with the pruning mixin, for the examples: a linear classifier on ``(x, y)`` batches."""

import lightning as L
import torch
from torch.nn.functional import cross_entropy

from lightning_adapruner import PruningPerformanceController


class TinyClassifier(PruningPerformanceController, L.LightningModule):
    def __init__(self, features: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.net = torch.nn.Linear(features, classes)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.pruning_loss(cross_entropy(self.net(x), y, reduction="none"))  # one loss per sample

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
