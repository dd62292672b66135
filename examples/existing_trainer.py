"""Add AdaPruner to an existing Lightning project: plain Lightning, no Hydra.

The marked lines are all the change a project needs: the datamodule, its plain ``(x, y)`` batches and the
criterion shared by validation and test stay as they are; only ``training_step`` hands per-sample losses
over. Runs offline on Fashion-MNIST (Debian package ``dataset-fashion-mnist``)::

    python examples/existing_trainer.py --epochs 6 --prune-ratio 0.3
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lightning_adapruner import AdaptiveDatasetPruning, PruningPerformanceController
from lightning_adapruner.app.data import FashionMNISTDataModule  # plain (x, y) batches, like any datamodule


class Classifier(PruningPerformanceController, L.LightningModule):  # (1) mix in the controller
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.lr = lr
        self.criterion = nn.CrossEntropyLoss()  # shared by every step, unchanged
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
        )  # fmt: skip

    def model_step(self, batch):
        x, y = batch
        logits = self.net(x)
        return self.criterion(logits, y), logits, y

    def training_step(self, batch, batch_idx):
        x, y = batch
        per_sample = F.cross_entropy(self.net(x), y, reduction="none")  # (2) one loss per sample
        self.log("train/loss", per_sample.mean())  # the task loss: comparable with a run without pruning
        return self.pruning_loss(per_sample)  # (3) hand the per-sample losses over

    def validation_step(self, batch, batch_idx):
        loss, logits, y = self.model_step(batch)
        self.log_dict({"val/loss": loss, "val/acc": (logits.argmax(1) == y).float().mean()}, prog_bar=True)

    def test_step(self, batch, batch_idx):
        loss, logits, y = self.model_step(batch)
        self.log_dict({"test/loss": loss, "test/acc": (logits.argmax(1) == y).float().mean()})

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        # the true number of optimiser steps as epochs shrink (Lightning's estimate assumes full epochs)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=self.pruning_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="AdaPruner on Fashion-MNIST with a plain Lightning Trainer")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--prune-ratio", type=float, default=0.3)
    parser.add_argument("--limit-batches", type=float, default=1.0, help="share of batches per epoch (for smoke runs)")
    parser.add_argument("--out", default="lightning_logs/existing_trainer")
    args = parser.parse_args(argv)

    L.seed_everything(0)
    data = FashionMNISTDataModule(batch_size=128)
    adp = AdaptiveDatasetPruning(prune_ratio=args.prune_ratio, warmup_epochs=1, export_dir=args.out)  # (4) the callback
    trainer = L.Trainer(
        max_epochs=args.epochs,
        callbacks=[adp],
        accelerator="auto",
        default_root_dir=args.out,
        limit_train_batches=args.limit_batches,
        limit_val_batches=args.limit_batches,
        limit_test_batches=args.limit_batches,
    )
    model = Classifier()
    trainer.fit(model, datamodule=data)
    result = trainer.test(model, datamodule=data)[0]  # last-epoch weights; val/acc is for model selection
    print(f"test accuracy {result['test/acc']:.4f}; kept {adp.kept_indices.numel()} samples -> {adp.export_path}")
    return result


if __name__ == "__main__":
    main()
