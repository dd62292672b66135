"""Does pruning save wall time in proportion to the samples it skips?

AdaPruner in sampler mode at ``p = 0.3`` against full data, same model (the package's SmallCNN,
width 16), same real Fashion-MNIST training samples (the first ``--samples`` of the training split),
same recipe, one process on CPU. Measured: the training-loop time of the whole fit (sum of the train
epochs from ``on_train_epoch_start`` to ``on_train_epoch_end``; no validation loop), arms interleaved
and alternated over ``--repeats``, medians reported. The target (issue: benchmark study) is that the
wall-time ratio lies within 5% of the samples ratio.

Run: ``python benchmarks/walltime.py`` (about 3 minutes on 2 quiet cores).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Subset

from lightning_adapruner import AdaptiveDatasetPruning
from lightning_adapruner.app.data import FashionMNISTDataModule
from lightning_adapruner.app.models import ImageClassifier, SmallCNN

TOLERANCE = 0.05


class TrainClock(pl.Callback):
    """Sums the time spent in training epochs."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.total += time.perf_counter() - self._start


def run(train: Subset, prune_ratio: float | None, epochs: int) -> tuple[float, int]:
    """One fit; returns (training seconds, samples forwarded)."""
    pl.seed_everything(0, verbose=False)
    clock = TrainClock()
    callbacks: list[pl.Callback] = [clock]
    adp = None
    if prune_ratio is not None:
        adp = AdaptiveDatasetPruning(prune_ratio, warmup_epochs=1, prune_epochs=2, export_dir=False, verbose=False)
        callbacks.append(adp)
    model = ImageClassifier(SmallCNN(in_channels=1, num_classes=10, width=16), num_classes=10, scheduler="onecycle")
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, DataLoader(train, batch_size=128, shuffle=True))
    forwarded = adp.forwarded_samples if adp is not None else len(train) * epochs
    return clock.total, forwarded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prune-ratio", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)

    dm = FashionMNISTDataModule(batch_size=128)
    dm.setup("fit")
    base = dm.train_dataset
    train = Subset(base, range(args.samples))  # plain (x, y) items; labels are found through the Subset

    times: dict[str, list[float]] = {"full": [], "adapruner": []}
    samples: dict[str, int] = {}
    for rep in range(args.repeats):
        order = ("full", "adapruner") if rep % 2 == 0 else ("adapruner", "full")
        for arm in order:
            seconds, forwarded = run(train, None if arm == "full" else args.prune_ratio, args.epochs)
            times[arm].append(seconds)
            samples[arm] = forwarded
            print(f"repeat {rep} {arm:>9}: {seconds:6.2f} s training, {forwarded} samples forwarded", flush=True)

    full, pruned = statistics.median(times["full"]), statistics.median(times["adapruner"])
    time_ratio = pruned / full
    samples_ratio = samples["adapruner"] / samples["full"]
    gap = time_ratio / samples_ratio - 1
    print()
    print("| arm | median training time (s) | samples forwarded |")
    print("|---|---|---|")
    print(f"| full data | {full:.2f} | {samples['full']} |")
    print(f"| AdaPruner p={args.prune_ratio} | {pruned:.2f} | {samples['adapruner']} |")
    print(
        f"wall-time ratio {time_ratio:.3f} vs samples ratio {samples_ratio:.3f}: {gap:+.1%} "
        f"({'PASS' if abs(gap) <= TOLERANCE else 'FAIL'}, target within {TOLERANCE:.0%})"
    )


if __name__ == "__main__":
    main()
