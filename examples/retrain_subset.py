"""Cross-architecture reuse: learn a pruned subset with one network, train ANOTHER network on it.

1. AdaPruner (sampler mode) trains the *exporter* network and learns which training samples to keep; at
   the end of fit it writes the kept subset to ``<out>/pruned_subset.{json,pt}``.
2. :func:`lightning_adapruner.load_pruned_subset` reads that subset back on the same training split, and
   a *different* network (the *reuser*) is trained from scratch on it. For comparison the reuser is also
   trained on the full data and on a random subset of the same size (random pruning is a strong
   baseline). All three are tested with their last epoch's weights.

Plain Python and Lightning (no Hydra)::

    python examples/retrain_subset.py                          # Fashion-MNIST: small CNN -> MLP, ~1 min on CPU
    python examples/retrain_subset.py --epochs 2 --limit-batches 0.2   # shrink further
    python examples/retrain_subset.py --data synthetic         # seconds, no dataset files needed
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from lightning_adapruner import AdaptiveDatasetPruning, load_pruned_subset
from lightning_adapruner.app.data import FashionMNISTDataModule, IndexedDataModule, PlantedDataModule
from lightning_adapruner.app.models import MLP, ImageClassifier, SmallCNN

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["fashion_mnist", "synthetic"], default="fashion_mnist", help="dataset")
    parser.add_argument("--data-dir", default="data", help="Fashion-MNIST root (the Debian package is found anyway)")
    parser.add_argument("--prune-ratio", type=float, default=0.3, help="share of training samples removed")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of every fit")
    parser.add_argument("--batch-size", type=int, default=256, help="samples per batch")
    parser.add_argument("--limit-batches", type=float, default=1.0, help="share of the batches run per epoch")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, split and pruning")
    parser.add_argument("--out", default="outputs/retrain_subset", help="where the subset and the results go")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads; 1 is fastest for these small models on a busy CPU"
    )
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    return parser.parse_args(argv)


def make_datamodule(args: argparse.Namespace) -> IndexedDataModule:
    if args.data == "synthetic":
        return PlantedDataModule(num_samples=2000, num_test_samples=500, batch_size=args.batch_size, seed=args.seed)
    return FashionMNISTDataModule(data_dir=args.data_dir, batch_size=args.batch_size, seed=args.seed)


def make_networks(dm: IndexedDataModule) -> dict[str, torch.nn.Module]:
    """Two different architectures for the data: the exporter learns the subset, the reuser trains on it."""
    shape = dm.input_shape
    features = int(torch.tensor(shape).prod())
    if len(shape) == 3:  # images
        return {
            "exporter": SmallCNN(in_channels=shape[0], num_classes=dm.num_classes, width=8),
            "reuser": MLP(features, dm.num_classes, hidden=(256,)),
        }
    return {"exporter": MLP(features, dm.num_classes, hidden=(64, 64)), "reuser": MLP(features, dm.num_classes, ())}


def describe(net: torch.nn.Module) -> str:
    params = sum(p.numel() for p in net.parameters())
    return f"{type(net).__name__}({params / 1e3:.0f}k params)"


def make_trainer(args: argparse.Namespace, **kwargs: Any) -> L.Trainer:
    return L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=args.progress,
        limit_train_batches=args.limit_batches,
        limit_val_batches=args.limit_batches,
        **kwargs,
    )


def fit_and_test(args: argparse.Namespace, net: torch.nn.Module, dm: IndexedDataModule, train_set: Dataset) -> float:
    """Train ``net`` from scratch on ``train_set``; the test accuracy of the last epoch's weights."""
    model = ImageClassifier(net, num_classes=dm.num_classes)
    trainer = make_trainer(args)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=dm.val_dataloader())
    return float(trainer.test(model, dataloaders=dm.test_dataloader(), verbose=False)[0]["test/acc"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = Path(args.out)
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, workers=True)
    dm = make_datamodule(args)
    dm.prepare_data()
    dm.setup()
    nets = make_networks(dm)

    # 1. the exporter learns the subset (AdaPruner in sampler mode: pruned samples are not even loaded)
    start = time.perf_counter()
    adp = AdaptiveDatasetPruning(args.prune_ratio, seed=args.seed, export_dir=str(out), verbose=False)
    exporter = ImageClassifier(nets["exporter"], num_classes=dm.num_classes)
    make_trainer(args, callbacks=[adp]).fit(exporter, datamodule=dm)
    assert adp.export_path is not None
    seconds = {"export": time.perf_counter() - start}

    # 2. another architecture, trained from scratch on the exported subset (and on two references)
    subset = load_pruned_subset(adp.export_path, dm.train_dataset)
    n, k = len(dm.train_dataset), len(subset)
    generator = torch.Generator().manual_seed(args.seed)
    random_subset = Subset(dm.train_dataset, torch.randperm(n, generator=generator)[:k].tolist())
    test_acc = {}
    train_sets = {"full data": dm.train_dataset, "pruned subset": subset, "random subset": random_subset}
    for name, train_set in train_sets.items():
        L.seed_everything(args.seed, workers=True)  # the same initial weights for all three
        start = time.perf_counter()
        test_acc[name] = fit_and_test(args, make_networks(dm)["reuser"], dm, train_set)
        seconds[name] = time.perf_counter() - start

    result = {
        "data": args.data,
        "exporter": describe(nets["exporter"]),
        "reuser": describe(nets["reuser"]),
        "num_train_samples": n,
        "num_kept": k,
        "prune_ratio": args.prune_ratio,
        "subset_path": str(adp.export_path),
        "test_acc": test_acc,
        "seconds": seconds,
    }
    (out / "retrain_subset.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nsubset learned by {result['exporter']} in {seconds['export']:.0f} s: {k} of {n} samples")
    print(f"{result['reuser']} trained {args.epochs} epochs from scratch on")
    for name, acc in test_acc.items():
        size = n if name == "full data" else k
        print(f"  {name:<14} {size:>6} samples   test acc {acc:.4f}   ({seconds[name]:.0f} s)")
    return result


if __name__ == "__main__":
    main()
