"""The PPC mixin: what pruning_loss accepts, skips and refuses."""

import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer

from lightning_adapruner import AdaptiveDatasetPruning, IndexedDataset


class IndexedBatches(TinyModel):
    """Trains on IndexedDataset batches and passes their indices explicitly (still supported)."""

    def __init__(self, mangle=None):
        super().__init__()
        self.mangle = mangle

    def training_step(self, batch, batch_idx):
        idx, inner = batch
        loss = self.per_sample_loss(inner)
        if self.mangle == "positions":  # the reference code's defect: positions in the batch, not dataset indices
            idx = torch.arange(batch_idx * 32, batch_idx * 32 + idx.numel())
        elif self.mangle == "float":
            idx = idx.float()
        return self.pruning_loss(loss, indices=idx)


def fit(model, n=256, epochs=1, ds=None, **kwargs):
    adp = AdaptiveDatasetPruning(0.5, warmup_epochs=0, export_dir=False, **kwargs)
    t = trainer(max_epochs=epochs, callbacks=[adp])
    t.fit(model, loader(ds if ds is not None else random_dataset(n)))
    return adp, t


def test_explicit_dataset_indices_from_an_indexed_dataset_are_accepted():
    adp, t = fit(IndexedBatches(), ds=IndexedDataset(random_dataset(256)), epochs=2)
    assert adp.kept_indices.numel() == 128


@pytest.mark.parametrize(
    ("mangle", "error", "match"),
    [("positions", ValueError, "not the samples of this batch"), ("float", TypeError, "integer tensor")],
)
def test_wrong_explicit_indices_are_caught(mangle, error, match):
    with pytest.raises(error, match=match):
        fit(IndexedBatches(mangle), ds=IndexedDataset(random_dataset(256)))


class Skipping(TinyModel):
    def training_step(self, batch, batch_idx):
        if batch_idx % 3 == 1:
            return None  # Lightning's documented way to skip a batch
        return super().training_step(batch, batch_idx)


def test_returning_none_skips_the_batch_without_an_error():
    model = Skipping()
    adp, t = fit(model, epochs=2)
    assert adp.session.ledger.forwarded == 128 + 128  # the skipped batches were still loaded and forwarded
    assert adp.kept_indices.numel() == 128 and model.mismatches == 0


class Forgetful(TinyModel):
    def training_step(self, batch, batch_idx):
        return self.per_sample_loss(batch).mean()


class Twice(TinyModel):
    def training_step(self, batch, batch_idx):
        loss = self.per_sample_loss(batch)
        self.pruning_loss(loss)
        return self.pruning_loss(loss)


class MeanLoss(TinyModel):
    def training_step(self, batch, batch_idx):
        return self.pruning_loss(self.per_sample_loss(batch).mean())


@pytest.mark.parametrize(
    ("model_cls", "error", "match"),
    [
        (Forgetful, RuntimeError, "did not call `self.pruning_loss"),
        (Twice, RuntimeError, "called twice"),
        (MeanLoss, ValueError, "one loss per sample"),
    ],
)
def test_misuse_gets_one_clear_error(model_cls, error, match):
    with pytest.raises(error, match=match):
        fit(model_cls())


def test_without_the_callback_or_outside_training_it_is_the_plain_mean():
    model = TinyModel()
    loss = torch.tensor([1.0, 2.0, 6.0])
    assert model.pruning_loss(loss) == 3.0 and model.data_pruning is None
    t = trainer(max_epochs=1)
    t.fit(model, loader(random_dataset(64)))  # no callback: trains on the plain mean
    assert model.pruning_loss(loss) == 3.0


class NegativeLoss(TinyModel):
    def training_step(self, batch, batch_idx):
        return self.pruning_loss(self.per_sample_loss(batch) - 5.0)


def test_negative_losses_are_refused_by_adapruner_with_the_fix():
    with pytest.raises(ValueError, match="needs per-sample losses >= 0.*Shift the loss"):
        fit(NegativeLoss())


def test_negative_losses_are_fine_for_a_method_that_ranks_any_loss():
    from lightning_adapruner import DataPruning, InfoBatchPruning

    L.seed_everything(0)
    cb = DataPruning(InfoBatchPruning(), 0.3, export_dir=False)
    trainer(max_epochs=3, callbacks=[cb]).fit(NegativeLoss(), loader(random_dataset(200)))
    assert cb.kept_indices.numel() == 140
