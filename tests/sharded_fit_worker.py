"""One fit with replicated or sharded per-sample state, for ``tests/core/test_sharded_fit.py``.

    python tests/sharded_fit_worker.py OUT --devices W --method NAME [--sharded] [--kill-step S] [--ckpt PATH]

The per-sample loss (and the logits) are elementwise functions of the sample and the epoch, so they do not depend
on which batch or rank forwards a sample: fits of one seed hold the same scores whatever their order, and a
sharded fit must cut exactly the replicated fit's sets. Each rank writes OUT/rank<r>.pt: every epoch's kept set
(dataset indices), its batches, the method's state and span, the exported part and the samples forwarded.
"""

import argparse
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar, TQDMProgressBar
from lightning.pytorch.strategies import DDPStrategy
from torchmetrics.classification import MulticlassAccuracy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_method_example import KeepHardest  # noqa: E402
from helpers import loader, random_dataset, trainer  # noqa: E402

from lightning_adapruner import (  # noqa: E402
    AdaPruner,
    DataPruning,
    EL2NPruning,
    ForgettingPruning,
    PruningPerformanceController,
    RandomPruning,
)

METHODS = {
    "keep_hardest": KeepHardest,
    "forgetting": ForgettingPruning,
    "el2n": EL2NPruning,
    "random_dynamic": lambda: RandomPruning(dynamic=True),
    "adapruner": AdaPruner,
}


class ElementwiseModel(PruningPerformanceController, L.LightningModule):
    """Logits ``x[:, :3] * w + epoch * x[:, 3:6] / 4`` (elementwise, rounded to 1/8 so scores tie), ``w`` never
    trained (lr 0): every sample's loss is a function of the sample and the epoch alone. Logs a synced torchmetrics
    accuracy (its sync runs where the progress bar asks for it, on rank 0 alone)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))
        self.acc = MulticlassAccuracy(num_classes=3)
        self.batches: dict[int, list[torch.Tensor]] = {}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round((x[:, :3] * self.w + self.current_epoch * x[:, 3:6] / 4) * 8) / 8

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.batches.setdefault(self.current_epoch, []).append(x[:, -1].long().cpu())
        logits = self.logits(x)
        self.acc(logits.detach(), y)
        self.log("train/acc", self.acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/synced", logits.detach().mean(), on_step=True, on_epoch=True, sync_dist=True, prog_bar=True)
        return self.pruning_loss(F.cross_entropy(logits, y, reduction="none"), logits=logits, targets=y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class Dump(L.Callback):
    def __init__(self, out: Path, kill_step: int | None) -> None:
        self.out, self.kill_step, self.kept = out, kill_step, {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        session = pl_module.data_pruning.session
        start = session.shard.start if session.sharded else 0
        self.kept[trainer.current_epoch] = torch.sort(session.kept.long() + start).values

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.kill_step:
            os.kill(os.getpid(), signal.SIGKILL)  # a preempted job: no cleanup

    def on_train_end(self, trainer, pl_module) -> None:
        pruning = pl_module.data_pruning
        session = pruning.session
        torch.save(
            {
                "kept": self.kept,
                "batches": {e: torch.cat(v) for e, v in pl_module.batches.items()},
                "state": pruning.method.state_dict()["states"],
                "span": (session.shard.start, session.shard.stop)
                if session.sharded
                else (0, session.facts.num_samples),
                "final": pruning.kept_indices.cpu(),
                "forwarded": pruning.forwarded_samples,
                "export": str(pruning.export_path),
                "record_sizes": {k: v.numel() for k, v in vars(session).items() if isinstance(v, torch.Tensor)},
            },
            self.out / f"rank{trainer.global_rank}.pt",
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--method", default="keep_hardest")
    p.add_argument("--sharded", action="store_true")
    p.add_argument("--kill-step", type=int)
    p.add_argument("--ckpt")
    p.add_argument("--bar", choices=("none", "tqdm", "rich"), default="none")
    p.add_argument("--n", type=int, default=403)
    args = p.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0)
    args.out.mkdir(parents=True, exist_ok=True)
    pruning = DataPruning(
        METHODS[args.method](), 0.4, warmup_epochs=1, prune_epochs=3, seed=3, export_dir=args.out / "export",
        sharded=args.sharded, verbose=args.bar != "none",
    )  # fmt: skip
    bars = {"tqdm": [TQDMProgressBar()], "rich": [RichProgressBar()], "none": []}[args.bar]
    ckpt = ModelCheckpoint(dirpath=args.out / "ckpt", every_n_train_steps=4, save_top_k=-1, filename="{step}")
    t = trainer(
        max_epochs=5,
        devices=args.devices,
        strategy=DDPStrategy(start_method="fork", timeout=timedelta(seconds=90)) if args.devices > 1 else "auto",
        callbacks=[*bars, pruning, Dump(args.out, args.kill_step), ckpt],
        enable_checkpointing=True,
        enable_progress_bar=bool(bars),
        default_root_dir=args.out,
    )
    t.fit(ElementwiseModel(), loader(random_dataset(args.n, features=8, classes=3), 16), ckpt_path=args.ckpt)


if __name__ == "__main__":
    main()
