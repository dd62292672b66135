"""A 2-process fit of the template-shaped project with other callbacks listed before the pruning callback.

    python tests/ddp_callbacks_worker.py OUT --bar {tqdm,rich} [--template-defaults]

Progress bars compute, and so sync, the logged metrics on rank 0 only; the module logs torchmetrics metrics (synced
when computed) and a ``sync_dist=True`` value. A collective of the pruning callback placed in a hook would pair
with those and hang: the gloo timeout turns a hang into an error within a minute. Each rank writes
OUT/rank<r>.pt (its kept set and method state); the launching process writes OUT/launcher.pt (what the callback
reports there after the forked fit).
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    EarlyStopping,
    ModelCheckpoint,
    RichModelSummary,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.strategies import DDPStrategy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from template_project import MNISTDataModule, PrunedMNISTLitModule  # noqa: E402

from lightning_adapruner import AdaptiveDatasetPruning  # noqa: E402


class SyncedLogging(PrunedMNISTLitModule):
    """Also logs a value with ``sync_dist=True`` on step and epoch, shown in the progress bar."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train/synced_loss", loss.detach(), on_step=True, on_epoch=True, sync_dist=True, prog_bar=True)
        return loss


class DumpRank(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_end(self, trainer, pl_module) -> None:
        pruning = pl_module.data_pruning
        state = {"kept": pruning.kept_indices.cpu(), "state": pruning.method.state_dict()}
        torch.save(state, self.out / f"rank{trainer.global_rank}.pt")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--bar", choices=("tqdm", "rich"), default="tqdm")
    p.add_argument("--template-defaults", action="store_true", help="the template's default callbacks first")
    args = p.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0)
    bar = RichProgressBar() if args.bar == "rich" else TQDMProgressBar()
    before: list[L.Callback] = [bar]
    if args.template_defaults:  # configs/callbacks/default.yaml of lightning-hydra-template, in its order
        before = [
            ModelCheckpoint(dirpath=args.out / "ckpt", monitor="val/acc", mode="max", save_last=True),
            EarlyStopping(monitor="val/acc", mode="max", patience=100),
            RichModelSummary(max_depth=-1),
            bar,
        ]
    pruning = AdaptiveDatasetPruning(prune_ratio=0.3, export_dir=args.out)
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[*before, pruning, DumpRank(args.out)],
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(start_method="fork", timeout=timedelta(seconds=60)),
        logger=False,
        enable_checkpointing=args.template_defaults,
        enable_model_summary=args.template_defaults,
    )
    trainer.fit(SyncedLogging(), datamodule=MNISTDataModule())
    launcher = {
        "kept": pruning.kept_indices,
        "export_path": pruning.export_path,
        "forwarded": pruning.forwarded_samples,
    }
    torch.save(launcher, args.out / "launcher.pt")


if __name__ == "__main__":
    main()
