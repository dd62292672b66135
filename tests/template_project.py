"""A lightning-hydra-template-shaped project (its MNIST example's structure), shared by the tests that train it:
ConcatDataset + random_split datamodule yielding (x, y), one model_step for train/val/test, one shared criterion,
torchmetrics metrics logged with ``self.log``; and the same module with the plugin, changed in training_step only."""

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, random_split
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import Accuracy

from lightning_adapruner import PruningPerformanceController


class Digits(Dataset):
    """Stands in for torchvision's MNIST: (image, label) items and a `targets` attribute."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 10, (n,), generator=g)
        self.data = torch.randn(n, 1, 8, 8, generator=g) + self.targets[:, None, None, None] * 0.3

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.data[i], int(self.targets[i])


class MNISTDataModule(L.LightningDataModule):
    """The template's: train + test joined, then random_split into train/val/test."""

    def __init__(self, batch_size=64):
        super().__init__()
        self.batch_size = batch_size
        self.data_train = self.data_val = self.data_test = None

    def setup(self, stage=None):
        if self.data_train is None:
            dataset = ConcatDataset([Digits(600, 0), Digits(100, 1)])
            self.data_train, self.data_val, self.data_test = random_split(
                dataset, [500, 100, 100], generator=torch.Generator().manual_seed(42)
            )

    def train_dataloader(self):
        return DataLoader(self.data_train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.data_val, batch_size=self.batch_size, shuffle=False)

    def test_dataloader(self):
        return DataLoader(self.data_test, batch_size=self.batch_size, shuffle=False)


class MNISTLitModule(L.LightningModule):
    """The template's module, unchanged."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
        self.criterion = torch.nn.CrossEntropyLoss()
        self.train_acc, self.val_acc, self.test_acc = (Accuracy(task="multiclass", num_classes=10) for _ in range(3))
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x):
        return self.net(x)

    def model_step(self, batch):
        x, y = batch
        logits = self.forward(x)
        loss = self.criterion(logits, y)
        return loss, logits.argmax(dim=1), y

    def training_step(self, batch, batch_idx):
        loss, preds, targets = self.model_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, targets)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, preds, targets = self.model_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True)

    def test_step(self, batch, batch_idx):
        loss, preds, targets = self.model_step(batch)
        self.test_acc(preds, targets)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class PrunedMNISTLitModule(PruningPerformanceController, MNISTLitModule):
    """The only change: mix in the controller and hand per-sample losses over in training_step."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.forward(x)
        per_sample = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        self.train_loss(per_sample.mean())  # the task loss, as the template logs it
        self.train_acc(logits.argmax(dim=1), y)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        return self.pruning_loss(per_sample)
