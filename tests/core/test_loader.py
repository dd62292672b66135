"""The user's training loader as it is: workers, prefetching, collate, drop_last, batch samplers, mid-epoch
validation, accumulation; and one clear error for the loaders whose batches cannot be tracked."""

import math
import os
import random

import pytest
import torch
from helpers import EpochRecorder, IndexedFeatures, TinyModel, loader, random_dataset, trainer
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    SubsetRandomSampler,
    default_collate,
)

from lightning_adapruner import AdaptiveDatasetPruning, DataPruning, PruningSampler, RandomPruning
from lightning_adapruner import functional as F
from lightning_adapruner.core._loader import UnsupportedLoaderError


def fit_loader(train_loader, epochs=4, model=None, callbacks=(), ratio=0.4, **trainer_kwargs):
    adp = AdaptiveDatasetPruning(ratio, warmup_epochs=1, prune_epochs=2, export_dir=False)
    rec = EpochRecorder()
    model = model or TinyModel(scheduler="pruned")
    t = trainer(max_epochs=epochs, callbacks=[adp, rec, *callbacks], **trainer_kwargs)
    t.fit(model, train_loader)
    return adp, rec, model, t


def assert_exact(model, rec, t):
    """Every batch's tracked indices were its real ones; each epoch forwarded its planned samples once."""
    assert model.mismatches == 0
    for epoch, kept in rec.kept.items():
        seen = model.seen_in(epoch)
        assert seen.unique().numel() == seen.numel() and set(seen.tolist()) <= set(kept.tolist())
    sched = t.lr_scheduler_configs[0].scheduler
    assert sched.total_steps == t.global_step  # the step plan equals the steps run


def test_worker_processes_and_prefetching_deliver_tracked_batches():
    ds = random_dataset(300)
    adp, rec, model, t = fit_loader(DataLoader(ds, batch_size=16, shuffle=True, num_workers=2, prefetch_factor=4))
    assert_exact(model, rec, t)
    for epoch, kept in rec.kept.items():
        assert torch.equal(model.seen_in(epoch).sort().values, kept)


class PidFeatures(IndexedFeatures):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return torch.cat([torch.tensor([float(os.getpid())]), x]), y


class PidModel(TinyModel):
    def __init__(self):
        super().__init__(features=9, scheduler="pruned")
        self.pids: dict[int, set[int]] = {}

    def training_step(self, batch, batch_idx):
        self.pids.setdefault(self.current_epoch, set()).update(batch[0][:, 0].long().tolist())
        return super().training_step(batch, batch_idx)


def test_persistent_workers_keep_their_processes_across_epochs():
    ds = PidFeatures(200)
    model = PidModel()
    adp, rec, model, t = fit_loader(
        DataLoader(ds, batch_size=20, shuffle=True, num_workers=2, persistent_workers=True), model=model
    )
    assert_exact(model, rec, t)
    assert len(model.pids[0]) == 2 and all(p == model.pids[0] for p in model.pids.values())  # the same two workers


def test_a_user_collate_fn_and_drop_last():
    def collate(items):  # the user's own collate: keeps every sample, transforms the batch
        x, y = default_collate(items)
        return x * torch.tensor([1.0] * (x.shape[1] - 1) + [1.0]), y

    ds = random_dataset(333)
    adp, rec, model, t = fit_loader(DataLoader(ds, batch_size=32, shuffle=True, drop_last=True, collate_fn=collate))
    assert_exact(model, rec, t)
    for epoch, kept in rec.kept.items():
        assert model.seen_in(epoch).numel() == (kept.numel() // 32) * 32  # the short last batch is dropped


def test_validation_in_the_middle_of_an_epoch_and_gradient_accumulation():
    ds = random_dataset(400)
    val = loader(random_dataset(64, seed=1), 32, shuffle=False)
    adp = AdaptiveDatasetPruning(0.4, export_dir=False)
    rec = EpochRecorder()
    model = TinyModel(scheduler="pruned")
    t = trainer(max_epochs=4, callbacks=[adp, rec], val_check_interval=0.5, accumulate_grad_batches=3)
    t.fit(model, loader(ds, 16), val_dataloaders=val)
    assert_exact(model, rec, t)


def test_a_plain_batch_sampler_works_and_its_steps_are_planned_exactly():
    ds = random_dataset(850)
    batches = BatchSampler(RandomSampler(ds), 100, False)
    adp, rec, model, t = fit_loader(DataLoader(ds, batch_sampler=batches))
    assert_exact(model, rec, t)
    assert [rec.num_batches[e] for e in sorted(rec.num_batches)] == [
        math.ceil(k.numel() / 100) for k in rec.kept.values()
    ]


class Bucketing(BatchSampler):
    pass


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ds: DataLoader(ds, batch_sampler=Bucketing(RandomSampler(ds), 10, False)), "custom batch sampler"),
        (lambda ds: DataLoader(ds, batch_size=None), "batch_size=None"),
        (lambda ds: DataLoader(ds, batch_size=8, sampler=SubsetRandomSampler(range(50))), "torch.utils.data.Subset"),
        (lambda ds: DataLoader(ds, batch_size=8, sampler=RandomSampler(ds, replacement=True)), "replacement"),
        (lambda ds: DataLoader(ds, batch_size=8, in_order=False, num_workers=1), "in_order=False"),
        (lambda ds: [DataLoader(ds, batch_size=8)], "one training DataLoader"),
    ],
    ids=["batch-sampler-subclass", "no-batching", "custom-sampler", "replacement", "out-of-order", "list-of-loaders"],
)
def test_untrackable_loaders_get_one_clear_error(make, match):
    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.3, export_dir=False)])
    with pytest.raises(UnsupportedLoaderError, match=match):
        t.fit(TinyModel(), make(random_dataset(100)))


def test_an_iterable_dataset_is_refused_even_if_sized():
    class Stream(IterableDataset):
        def __len__(self):
            return 64

        def __iter__(self):
            ds = random_dataset(64)
            return iter(ds[i] for i in range(64))

    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(UnsupportedLoaderError, match="iterable or has no __len__"):
        t.fit(TinyModel(), DataLoader(Stream(), batch_size=8))


def test_a_collate_that_drops_samples_is_an_error_not_wrong_indices():
    def drop_first(items):
        return default_collate(items[1:])

    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(ValueError, match="dropped samples"):
        t.fit(TinyModel(), DataLoader(random_dataset(64), batch_size=8, collate_fn=drop_first))


def test_planned_steps_equal_the_steps_run_over_random_settings():
    """A property check on a seeded grid: N, batch size, the loader's and the harness's drop_last, a plain batch
    sampler, accumulation, limits, ratio and schedule (world sizes: the next test)."""
    rng = random.Random(0)
    for _ in range(12):
        n, bs = rng.randint(40, 400), rng.randint(3, 40)
        drop_last, acc, ratio = rng.random() < 0.5, rng.randint(1, 3), rng.choice([0.0, 0.1, 0.37, 0.5, 0.8])
        epochs, shape = rng.randint(2, 5), rng.choice(["linear", "cosine", "exponential", "step"])
        if n * (1 - ratio) < bs and drop_last:
            continue
        cb = DataPruning(
            RandomPruning(),
            ratio,
            warmup_epochs=rng.randint(0, 1),
            schedule=shape,
            drop_last=rng.random() < 0.5,
            export_dir=False,
        )
        model = TinyModel(scheduler="pruned")
        limit = rng.choice([1.0, 7] + ([0.5] if n * (1 - ratio) >= 2 * bs else []))
        t = trainer(max_epochs=epochs, callbacks=[cb], accumulate_grad_batches=acc, limit_train_batches=limit)
        ds = random_dataset(n)
        if rng.random() < 0.3:  # the same batching through a batch sampler
            data = DataLoader(ds, batch_sampler=BatchSampler(RandomSampler(ds), bs, drop_last))
        else:
            data = DataLoader(ds, batch_size=bs, shuffle=True, drop_last=drop_last)
        t.fit(model, data)
        batches_run = sum(len(v) for v in model.seen.values())
        assert sum(cb.session.planned_batches) == batches_run, (n, bs, drop_last, acc, ratio, epochs, shape)
        assert t.lr_scheduler_configs[0].scheduler.total_steps == t.global_step
        assert model.mismatches == 0


def test_the_planned_batches_equal_what_every_rank_draws_over_world_sizes():
    """The plan's per-rank batch count (the rule the session sizes epochs and LR schedules with) against the
    batches each rank's PruningSampler actually yields through a BatchSampler, for 1 to 4 processes."""
    rng = random.Random(1)
    for _ in range(300):
        k, world, bs = rng.randint(1, 300), rng.randint(1, 4), rng.randint(1, 40)
        shard_drop, loader_drop = rng.random() < 0.5, rng.random() < 0.5
        if k < world:
            continue
        planned = F.num_batches(F.shard_length(k, world, shard_drop), bs, loader_drop)
        kept = torch.randperm(1000)[:k]
        for rank in range(world):
            sampler = PruningSampler(kept, world, rank, shuffle=True, seed=3, drop_last=shard_drop)
            drawn = list(BatchSampler(sampler, bs, loader_drop))
            assert len(drawn) == planned, (k, world, bs, shard_drop, loader_drop, rank)


def test_a_resumable_loader_of_its_own_is_refused():
    class Stateful(DataLoader):
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.3, export_dir=False)])
    with pytest.raises(UnsupportedLoaderError, match="resumable state of its own"):
        t.fit(TinyModel(), Stateful(random_dataset(64), batch_size=8))


def test_a_loader_that_changes_during_the_fit_is_refused():
    import lightning as L

    class Growing(L.LightningDataModule):
        def train_dataloader(self):
            batch = 16 if self.trainer.current_epoch < 2 else 32  # a batch-size schedule
            return DataLoader(random_dataset(200), batch_size=batch, shuffle=True)

    t = trainer(
        max_epochs=4,
        callbacks=[DataPruning(RandomPruning(), 0.3, export_dir=False)],
        reload_dataloaders_every_n_epochs=1,
    )
    with pytest.raises(ValueError, match="training loader changed during the fit"):
        t.fit(TinyModel(), datamodule=Growing())
