"""Shared test helpers (importable by spawned ranks): a tiny model on plain ``(x, y)`` batches whose last
feature is the sample's dataset index, so every test can check what each batch really held."""

from __future__ import annotations

import threading
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from lightning_adapruner import PruningPerformanceController


class IndexedFeatures(Dataset):
    """``(x, y)`` items; ``x[-1]`` is the item's index (the model strips it). Has ``targets`` like torchvision."""

    def __init__(self, n: int = 256, features: int = 8, classes: int = 3, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.cat([torch.randn(n, features, generator=g), torch.arange(n, dtype=torch.float32)[:, None]], 1)
        self.targets = torch.randint(0, classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.targets[i]


def random_dataset(n: int = 256, features: int = 8, classes: int = 3, seed: int = 0) -> IndexedFeatures:
    return IndexedFeatures(n, features, classes, seed)


class TinyModel(PruningPerformanceController, L.LightningModule):
    """Linear classifier. Records, per epoch, the dataset indices each batch held (from the data itself) and
    checks them against the callback's tracked ``batch_indices`` on every step."""

    def __init__(self, features: int = 8, classes: int = 3, lr: float = 0.1, scheduler: str = "none") -> None:
        super().__init__()
        self.net = torch.nn.Linear(features, classes)
        self.lr = lr
        self.scheduler = scheduler
        self.seen: dict[int, list[torch.Tensor]] = {}
        self.mismatches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :-1])

    def true_indices(self, batch) -> torch.Tensor:
        return batch[0][:, -1].long()

    def per_sample_loss(self, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y, reduction="none")

    def training_step(self, batch, batch_idx):
        x, y = batch
        idx = self.true_indices(batch)
        self.seen.setdefault(self.current_epoch, []).append(idx.cpu())
        pruning = self.data_pruning
        if pruning is not None and not torch.equal(pruning.batch_indices.cpu().long(), idx.cpu()):
            self.mismatches += 1
        logits = self(x)
        return self.pruning_loss(F.cross_entropy(logits, y, reduction="none"), logits=logits, targets=y)

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.per_sample_loss(batch).mean())

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        if self.scheduler == "none":
            return opt
        total = self.pruning_stepping_batches if self.scheduler == "pruned" else self.trainer.estimated_stepping_batches
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def seen_in(self, epoch: int) -> torch.Tensor:
        return torch.cat(self.seen[epoch])


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


def destroy_process_group() -> None:
    """The end of a worker script that a launcher started (torchrun, Lightning's ``ddp``): gloo can abort a process
    that exits with its group alive, after it trained to the end (status 134)."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def loader(ds, batch_size: int = 32, shuffle: bool = True, **kwargs) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, **kwargs)


class EpochRecorder(L.Callback):
    """Per epoch: the samples the pruning callback planned and Lightning's batch count."""

    def __init__(self) -> None:
        self.kept: dict[int, torch.Tensor] = {}
        self.num_batches: dict[int, int] = {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        record = pl_module.data_pruning.session.record
        self.kept[trainer.current_epoch] = torch.sort(record.order_cpu[: record.num_unique].long()).values
        self.num_batches[trainer.current_epoch] = trainer.num_training_batches


class DumpPruningState(L.Callback):
    """Writes what this rank saw and held to ``<dirpath>/rank<r>.pt`` at the end of fit."""

    def __init__(self, dirpath) -> None:
        self.dirpath = Path(dirpath)
        self.recorder = EpochRecorder()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.recorder.on_train_epoch_start(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        pruning = pl_module.data_pruning
        torch.save(
            {
                "seen": {e: torch.cat(v) for e, v in pl_module.seen.items()},
                "kept": self.recorder.kept,
                "state": pruning.method.state_dict(),
                "scores": pruning.method.scores().cpu(),
                "final": pruning.kept_indices.cpu(),
                "forwarded": pruning.session.ledger.forwarded,
                "mismatches": pl_module.mismatches,
            },
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )


def reference_select_top(scores: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``select_top`` (no class floor) written independently of the radix search it runs on: the ``k``-th largest
    value by ``torch.kthvalue``, every score above it, and ``tie_draw`` (the definition of the draw) of the ties in
    index order."""
    from lightning_adapruner.core.functional.sharded import tie_draw

    n = scores.numel()
    if k in (0, n):
        return torch.arange(n)[:k]
    s = torch.nan_to_num(scores.detach().float(), nan=float("-inf"))
    threshold = torch.kthvalue(s, n - k + 1).values
    keep = s > threshold
    ties = (s == threshold).nonzero().flatten()
    keep[ties[tie_draw(k - int(torch.count_nonzero(keep)), ties.numel(), gen)]] = True
    return keep.nonzero().flatten()


def in_threads(world_size, work):
    """``work(rank, gather)`` on every rank, each a thread meeting the others in ``gather``; the results in rank
    order. A rank that skips a gather the others make fails the call (the barrier's timeout) instead of hanging."""
    barrier, slots = threading.Barrier(world_size, timeout=60), [None] * world_size
    results, errors = [None] * world_size, []

    def gather_of(rank):
        def gather(tensor):
            slots[rank] = tensor
            barrier.wait()
            stacked = torch.stack(list(slots))
            barrier.wait()
            return stacked

        return gather

    def rank_main(rank):
        try:
            results[rank] = work(rank, gather_of(rank))
        except Exception as err:
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
