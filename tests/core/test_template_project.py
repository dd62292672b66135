"""A lightning-hydra-template-shaped project (its MNIST example's structure) gets the plugin by changing only
training_step: ConcatDataset + random_split datamodule yielding (x, y), one model_step for train/val/test,
one shared criterion, torchmetrics metrics."""

import json

import lightning as L
import pytest
from template_project import MNISTDataModule, PrunedMNISTLitModule

from lightning_adapruner import AdaptiveDatasetPruning


def test_a_template_project_trains_with_only_training_step_changed(tmp_path):
    L.seed_everything(0)
    dm = MNISTDataModule()
    adp = AdaptiveDatasetPruning(prune_ratio=0.3, export_dir=str(tmp_path))
    trainer = L.Trainer(
        max_epochs=4,
        callbacks=[adp],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = PrunedMNISTLitModule()
    trainer.fit(model, datamodule=dm)
    fit_metrics = dict(trainer.callback_metrics)
    assert adp.kept_indices.numel() == 350 and adp.forwarded_samples < 4 * 500
    results = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert 0.0 <= results["test/acc"] <= 1.0
    meta = json.loads((tmp_path / "pruned_subset.json").read_text())
    assert meta["per_class_total"] is not None and sum(meta["per_class_kept"]) == 350  # labels found through the splits
    x, y = next(iter(dm.train_dataloader()))  # the datamodule's own check still holds: plain (x, y) batches
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,)
    # the logged training loss is the task loss (a mean of batch means here, a mean of samples in adp/task_loss)
    assert float(fit_metrics["train/loss"]) == pytest.approx(float(fit_metrics["adp/task_loss"]), rel=0.01)
