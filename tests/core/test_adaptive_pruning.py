"""Trainer-level behaviour of AdaptiveDatasetPruning with a tiny model on CPU."""

import json
import math
import warnings

import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer
from torch.utils.data import DataLoader, IterableDataset

from lightning_adapruner import AdaptiveDatasetPruning, load_pruned_subset
from lightning_adapruner.core import functional as F


class EpochRecorder(L.Callback):
    def __init__(self):
        self.num_batches, self.kept = {}, {}

    def on_train_epoch_start(self, trainer, pl_module):
        self.num_batches[trainer.current_epoch] = trainer.num_training_batches
        adp = pl_module.adaptive_pruning
        if adp._sampler is not None:
            self.kept[trainer.current_epoch] = adp._sampler.indices.long().clone()


def fit(n=400, epochs=5, batch_size=32, callbacks=(), model=None, **adp_kwargs):
    L.seed_everything(0)
    adp_kwargs.setdefault("export_dir", False)
    adp = AdaptiveDatasetPruning(**adp_kwargs)
    rec = EpochRecorder()
    model = model or TinyModel()
    t = trainer(max_epochs=epochs, callbacks=[adp, rec, *callbacks])
    t.fit(model, loader(random_dataset(n), batch_size))
    return adp, rec, model, t


def test_epochs_shrink_on_schedule_and_realised_ratio_is_exact():
    n, bs = 400, 32
    adp, rec, model, t = fit(n, epochs=5, batch_size=bs, prune_ratio=0.3, warmup_epochs=1, prune_epochs=3)
    expected_keep = [400, 360, 320, 280, 280]
    assert [rec.kept[e].numel() for e in range(5)] == expected_keep
    assert [rec.num_batches[e] for e in range(5)] == [math.ceil(k / bs) for k in expected_keep]
    for e in range(5):  # the model saw exactly the kept samples, each once
        seen = torch.cat(model.seen[e])
        assert seen.numel() == expected_keep[e]
        assert torch.equal(seen.sort().values, rec.kept[e])
    assert adp.kept_indices.numel() == round(0.7 * n)  # final hard cut is exact
    metrics = t.callback_metrics
    assert metrics["adp/samples_forwarded"] == sum(expected_keep)
    assert metrics["adp/saved_share"] == pytest.approx(1 - sum(expected_keep) / (5 * n))
    assert metrics["adp/keep_share"] == pytest.approx(0.7)


def test_kept_set_is_top_k_of_learned_logits_not_random():
    adp, rec, *_ = fit(400, epochs=3, prune_ratio=0.5, warmup_epochs=1, prune_epochs=1)
    # the plan of epoch 1 was chosen from the logits at the end of epoch 0; a pruned sample is never
    # forwarded again, so its logit is frozen and must not exceed the smallest logit then kept
    pruned = torch.ones(400, dtype=torch.bool)
    pruned[rec.kept[1]] = False
    assert pruned.sum() == 200
    assert adp._logits.std() > 0  # the mask actually learned something


def test_soft_mode_forwards_everything_and_cuts_exactly_at_the_end(tmp_path):
    adp, rec, model, t = fit(203, epochs=3, prune_ratio=0.25, mode="soft", export_dir=str(tmp_path), batch_size=20)
    for e in range(3):
        assert torch.cat(model.seen[e]).sort().values.tolist() == list(range(203))
    assert rec.kept == {}  # the user's own sampler is untouched
    assert adp.kept_indices.numel() == round(0.75 * 203)
    top = torch.argsort(adp._logits, descending=True)[: adp.kept_indices.numel()]
    assert adp._logits[adp.kept_indices].min() >= adp._logits[top].min()


def test_export_round_trips(tmp_path):
    adp, *_ = fit(300, epochs=4, prune_ratio=0.2, export_dir=str(tmp_path))
    meta = json.loads((tmp_path / "pruned_subset.json").read_text())
    assert meta["num_samples"] == 300 and meta["num_kept"] == 240
    assert meta["prune_ratio_target"] == 0.2 and meta["prune_ratio_realised"] == pytest.approx(0.2)
    assert sum(meta["per_class_kept"]) == 240 and sum(meta["per_class_total"]) == 300
    assert meta["seed"] == 0 and meta["mode"] == "sampler" and meta["epochs_completed"] == 4
    ds = random_dataset(300)
    subset = load_pruned_subset(tmp_path, ds)
    assert subset.indices == adp.kept_indices.tolist()
    with pytest.raises(ValueError, match="300 samples"):
        load_pruned_subset(tmp_path / "pruned_subset.json", random_dataset(299))
    with pytest.raises(FileNotFoundError, match="no pruned subset"):
        load_pruned_subset(tmp_path / "missing.json", ds)


@pytest.mark.parametrize("accumulate", [1, 3])
def test_step_based_scheduler_is_sized_by_the_pruned_schedule(accumulate):
    model = TinyModel(scheduler="pruned")
    adp = AdaptiveDatasetPruning(prune_ratio=0.4, warmup_epochs=1, prune_epochs=2, export_dir=False)
    t = trainer(max_epochs=5, callbacks=[adp], accumulate_grad_batches=accumulate)
    t.fit(model, loader(random_dataset(500), 16))
    sched = t.lr_scheduler_configs[0].scheduler
    assert sched.total_steps == t.global_step  # no "Tried to step N+1 times", no unfinished cycle
    assert sched.last_epoch == t.global_step
    full = F.stepping_batches([math.ceil(500 / 16)] * 5, accumulate)
    assert t.global_step < full  # Lightning's own estimate assumes full epochs


def test_lightning_estimate_would_leave_onecycle_unfinished():
    model = TinyModel(scheduler="lightning")
    t = trainer(max_epochs=4, callbacks=[AdaptiveDatasetPruning(prune_ratio=0.5, export_dir=False)])
    t.fit(model, loader(random_dataset(300), 16))
    sched = t.lr_scheduler_configs[0].scheduler
    assert sched.last_epoch < sched.total_steps  # the misalignment the pruned estimate fixes


def test_bf16_mixed_precision_updates_the_mask():
    model = TinyModel()
    adp = AdaptiveDatasetPruning(prune_ratio=0.2, export_dir=False)
    t = trainer(max_epochs=2, callbacks=[adp], precision="bf16-mixed")
    t.fit(model, loader(random_dataset(200), 32))
    assert adp._logits.dtype == torch.float32 and torch.isfinite(adp._logits).all()
    assert (adp._logits != 1.0).all()


def test_forwarded_counter_matches_samples_seen_with_limit_train_batches():
    adp = AdaptiveDatasetPruning(prune_ratio=0.3, export_dir=False)
    model = TinyModel()
    t = trainer(max_epochs=3, callbacks=[adp], limit_train_batches=4)
    t.fit(model, loader(random_dataset(400), 10))
    seen = sum(torch.cat(v).numel() for v in model.seen.values())
    assert adp._samples_forwarded == seen == 3 * 4 * 10


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, "0.3", None])
def test_prune_ratio_out_of_range(ratio):
    with pytest.raises(ValueError, match=r"prune_ratio must be a number in \[0, 1\)"):
        AdaptiveDatasetPruning(prune_ratio=ratio)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "hard"}, "mode must be one of"),
        ({"schedule": "sqrt"}, "schedule must be one of"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"prune_epochs": 0}, "prune_epochs"),
        ({"k_start": 0}, "k_start"),
        ({"mask_momentum": 1.0}, "mask_momentum"),
    ],
)
def test_other_arguments_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveDatasetPruning(prune_ratio=0.2, **kwargs)


def test_module_without_mixin():
    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 3)

        def training_step(self, batch, batch_idx):
            return self.net(batch[1][0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(TypeError, match="mix in PruningPerformanceController"):
        t.fit(Plain(), loader(random_dataset(64)))


class PositionsModel(TinyModel):
    """Repeats the reference code's defect: passes batch positions instead of dataset indices."""

    def training_step(self, batch, batch_idx):
        loss, idx = self.per_sample_loss(batch)
        positions = torch.arange(batch_idx * 32, batch_idx * 32 + idx.numel())
        return self.pruning_loss(loss, positions)


def test_batch_positions_instead_of_dataset_indices_are_caught():
    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.5, warmup_epochs=0, export_dir=False)])
    with pytest.raises(ValueError, match="did not draw"):
        t.fit(PositionsModel(), loader(random_dataset(256)))


class FloatIndexModel(TinyModel):
    def training_step(self, batch, batch_idx):
        loss, idx = self.per_sample_loss(batch)
        return self.pruning_loss(loss, idx.float())


class MeanLossModel(TinyModel):
    def training_step(self, batch, batch_idx):
        loss, idx = self.per_sample_loss(batch)
        return self.pruning_loss(loss.mean(), idx)


class ForgetfulModel(TinyModel):
    def training_step(self, batch, batch_idx):
        return self.per_sample_loss(batch)[0].mean()


@pytest.mark.parametrize(
    ("model_cls", "error", "match"),
    [
        (FloatIndexModel, TypeError, "integer tensor"),
        (MeanLossModel, ValueError, "one loss per sample"),
        (ForgetfulModel, RuntimeError, "did not call"),
    ],
)
def test_batch_without_usable_indices(model_cls, error, match):
    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(error, match=match):
        t.fit(model_cls(), loader(random_dataset(64)))


def test_dataset_without_len():
    class Stream(IterableDataset):
        def __iter__(self):
            ds = random_dataset(64)
            return iter(ds[i] for i in range(64))

    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(TypeError, match="has no __len__"):
        t.fit(TinyModel(), DataLoader(Stream(), batch_size=8))


def test_ratio_so_high_that_a_rank_gets_nothing():
    t = trainer(max_epochs=2, callbacks=[AdaptiveDatasetPruning(0.99, export_dir=False)])
    with pytest.raises(ValueError, match="a rank would get no samples"):
        t.fit(TinyModel(), loader(random_dataset(10)))


def test_infinite_epochs_rejected():
    t = trainer(max_epochs=-1, max_steps=10, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(ValueError, match="max_epochs"):
        t.fit(TinyModel(), loader(random_dataset(64)))


class NaNModel(TinyModel):
    def training_step(self, batch, batch_idx):
        loss, idx = self.per_sample_loss(batch)
        poisoned = torch.where(idx % 10 == 0, torch.full_like(loss, float("nan")), loss)
        self.seen.setdefault(self.current_epoch, []).append(idx)
        return self.pruning_loss(poisoned, idx)

    def on_before_backward(self, loss):  # keep the network itself finite for the test
        pass

    def backward(self, loss, *args, **kwargs):
        torch.nan_to_num(loss).backward(*args, **kwargs)


def test_non_finite_losses_are_skipped_with_a_warning_and_never_corrupt_the_mask():
    adp = AdaptiveDatasetPruning(0.2, export_dir=False)
    t = trainer(max_epochs=3, callbacks=[adp])
    with pytest.warns(UserWarning, match="NaN or inf"):
        t.fit(NaNModel(), loader(random_dataset(200)))
    assert torch.isfinite(adp._logits).all() and torch.isfinite(adp._momentum).all()
    poisoned = torch.arange(0, 200, 10)
    assert torch.all(adp._logits[poisoned] == 1.0)  # untouched: initial value
    others = torch.ones(200, dtype=torch.bool)
    others[poisoned] = False
    assert (adp._logits[others] != 1.0).all()


def test_class_pruned_away_warns_and_class_floor_keeps_it():
    ds = random_dataset(300, classes=3)
    rare = (ds.targets == 2).nonzero().flatten()[:3]
    keep_mask = ds.targets != 2
    keep_mask[rare] = True  # class 2 has only three samples
    from torch.utils.data import Subset

    from lightning_adapruner import IndexedDataset

    base = Subset(ds.dataset, keep_mask.nonzero().flatten().tolist())
    labels = ds.targets[keep_mask]
    small = IndexedDataset(base, targets=labels)
    n = len(small)

    def run(floor):
        L.seed_everything(0)
        adp = AdaptiveDatasetPruning(0.95, warmup_epochs=1, prune_epochs=1, class_floor=floor, export_dir=False)
        t = trainer(max_epochs=3, callbacks=[adp])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t.fit(TinyModel(), loader(small, 16))
        return adp, [str(w.message) for w in caught if "no kept samples" in str(w.message)]

    adp, msgs = run(0)
    assert (labels[adp.kept_indices] == 2).sum() == 0, "this seed must prune the rare class away"
    assert msgs and "class_floor" in msgs[0] and "[2]" in msgs[0]
    adp, msgs = run(1)
    assert not msgs
    assert (labels[adp.kept_indices] == 2).sum() >= 1 and adp.kept_indices.numel() == round(0.05 * n)


def test_resume_with_checkpoint_for_another_dataset_size(tmp_path):
    adp = AdaptiveDatasetPruning(0.2, export_dir=False)
    t = trainer(max_epochs=1, callbacks=[adp], default_root_dir=tmp_path)
    t.fit(TinyModel(), loader(random_dataset(100)))
    t.save_checkpoint(tmp_path / "a.ckpt")
    t2 = trainer(max_epochs=3, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(ValueError, match="training set of 100 samples, but this training set has 120"):
        t2.fit(TinyModel(), loader(random_dataset(120)), ckpt_path=tmp_path / "a.ckpt")


def test_revisit_share_spends_part_of_the_exact_budget_on_pruned_samples():
    adp, rec, *_ = fit(400, epochs=4, prune_ratio=0.5, warmup_epochs=1, prune_epochs=1, revisit_share=0.1)
    assert [rec.kept[e].numel() for e in range(4)] == [400, 200, 200, 200]  # budget stays exact
    # epoch 2's forwarded set holds samples that epoch 1 did not forward: the re-drawn revisits
    assert not set(rec.kept[2].tolist()) <= set(rec.kept[1].tolist())
    assert adp.kept_indices.numel() == 200
    with pytest.raises(ValueError, match="revisit_share"):
        AdaptiveDatasetPruning(0.3, revisit_share=1.0)
