"""Should pruned samples be revisited so their scores can recover? Measured on the planted dataset.

AdaPruner (sampler mode, p = 0.3, 30 epochs, small MLP) on the planted set of ``tests/test_planted.py``
(10 overlapping classes, 20% exact duplicates, 10% flipped labels), with and without a re-drawn
revisit share. Prints, per seed, how strongly each planted group is over-represented among the
pruned samples (1.0 = random pruning). Run: ``python benchmarks/planted_revisit.py``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import warnings

import lightning as L
import torch
import torch.nn.functional as F

from lightning_adapruner import AdaptiveDatasetPruning, PruningPerformanceController
from lightning_adapruner.app.data import PlantedDataModule


class MLP(PruningPerformanceController, L.LightningModule):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, classes))

    def training_step(self, batch, batch_idx):
        idx, (x, y) = batch
        return self.pruning_loss(F.cross_entropy(self.net(x), y, reduction="none"), idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def enrichment(revisit_share: float, seed: int, epochs: int, prune_ratio: float) -> tuple[float, float]:
    L.seed_everything(seed, verbose=False)
    dm = PlantedDataModule(num_classes=10, separation=2.0, batch_size=64, seed=seed)
    dm.setup("fit")
    adp = AdaptiveDatasetPruning(
        prune_ratio, warmup_epochs=1, revisit_share=revisit_share, export_dir=False, verbose=False
    )
    L.Trainer(
        max_epochs=epochs,
        callbacks=[adp],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(MLP(), dm.train_dataloader())
    pruned = torch.ones(len(dm.duplicate_mask), dtype=torch.bool)
    pruned[adp.kept_indices] = False
    return tuple(  # type: ignore[return-value]
        float(mask[pruned].float().mean() / mask.float().mean()) for mask in (dm.duplicate_mask, dm.flipped_mask)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--prune-ratio", type=float, default=0.3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    print("| revisit_share | seed | duplicates pruned (x base rate) | flipped pruned (x base rate) |")
    print("|---|---|---|---|")
    summary = {}
    for share in args.shares:
        rows = [enrichment(share, seed, args.epochs, args.prune_ratio) for seed in args.seeds]
        for seed, (dup, flip) in zip(args.seeds, rows):
            print(f"| {share} | {seed} | {dup:.2f} | {flip:.2f} |", flush=True)
        summary[share] = [statistics.mean(col) for col in zip(*rows)]
    for share, (dup, flip) in summary.items():
        print(f"revisit_share={share}: mean enrichment duplicates {dup:.2f}x, flipped {flip:.2f}x")


if __name__ == "__main__":
    main()
