"""Shared test helpers: a tiny model and an index-returning random dataset (importable by spawned ranks)."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_adapruner import IndexedDataset, PruningPerformanceController


def random_dataset(n: int = 256, features: int = 8, classes: int = 3, seed: int = 0) -> IndexedDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return IndexedDataset(TensorDataset(x, y), targets=y)


class TinyModel(PruningPerformanceController, L.LightningModule):
    """Linear classifier; records every training batch's dataset indices per epoch."""

    def __init__(self, features: int = 8, classes: int = 3, lr: float = 0.1, scheduler: str = "none") -> None:
        super().__init__()
        self.net = torch.nn.Linear(features, classes)
        self.lr = lr
        self.scheduler = scheduler
        self.seen: dict[int, list[torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def per_sample_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        idx, (x, y) = batch
        return F.cross_entropy(self(x), y, reduction="none"), idx

    def training_step(self, batch, batch_idx):
        idx, (x, y) = batch
        logits = self(x)
        self.seen.setdefault(self.current_epoch, []).append(idx.detach().cpu())
        return self.pruning_loss(F.cross_entropy(logits, y, reduction="none"), idx, outputs=logits, targets=y)

    def validation_step(self, batch, batch_idx):
        loss, _ = self.per_sample_loss(batch)
        self.log("val/loss", loss.mean())

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        if self.scheduler == "none":
            return opt
        total = self.pruning_stepping_batches if self.scheduler == "pruned" else self.trainer.estimated_stepping_batches
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def trainer(**kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


def loader(ds, batch_size: int = 32, shuffle: bool = True) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle)


class DumpPruningState(L.Callback):
    """Writes what this rank saw and held to ``<dirpath>/rank<r>.pt`` at the end of fit."""

    def __init__(self, dirpath) -> None:
        self.dirpath = dirpath
        self.kept: dict[int, torch.Tensor] = {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        sampler = pl_module.adaptive_pruning._sampler
        if sampler is not None:
            self.kept[trainer.current_epoch] = sampler.indices.long().clone()

    def on_train_end(self, trainer, pl_module) -> None:
        adp = pl_module.adaptive_pruning
        torch.save(
            {
                "seen": {e: torch.cat(v) for e, v in pl_module.seen.items()},
                "kept": self.kept,
                "logits": adp._export_scores().cpu(),
                "final": adp.kept_indices.cpu(),
                "forwarded": adp._samples_forwarded,
            },
            f"{self.dirpath}/rank{trainer.global_rank}.pt",
        )
