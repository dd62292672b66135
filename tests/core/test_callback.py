"""DataPruning on a Trainer: epochs shrink on schedule, the exact cut, export, step plans, bad input, reuse."""

import json
import math
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer
from torch.utils.data import Subset

from lightning_adapruner import (
    AdaPruner,
    AdaptiveDatasetPruning,
    DataPruning,
    EL2NPruning,
    RandomPruning,
    RS2Pruning,
    functional,
    load_pruned_subset,
)


def fit(n=400, epochs=5, batch_size=32, callbacks=(), model=None, ds=None, trainer_kwargs=None, **adp_kwargs):
    L.seed_everything(0)
    adp_kwargs.setdefault("export_dir", False)
    adp_kwargs.setdefault("anneal", 0.0)  # these tests pin the harness's own schedule
    adp_kwargs.setdefault("selection", "nested")  # and the paper's nested cuts (each epoch among the last one's)
    adp = AdaptiveDatasetPruning(**adp_kwargs)
    rec = EpochRecorder()
    model = model or TinyModel()
    t = trainer(max_epochs=epochs, callbacks=[adp, rec, *callbacks], **(trainer_kwargs or {}))
    t.fit(model, loader(ds or random_dataset(n), batch_size))
    return adp, rec, model, t


def test_epochs_shrink_on_schedule_and_the_model_sees_exactly_the_planned_samples():
    n, bs = 400, 32
    adp, rec, model, t = fit(n, epochs=5, batch_size=bs, prune_ratio=0.3, warmup_epochs=1, prune_epochs=3)
    expected_keep = [400, 352, 320, 288, 280]  # 400 x [1, .9, .8, .7, .7] in whole batches of 32, the rest last
    assert expected_keep == functional.epoch_sample_counts([1, 0.9, 0.8, 0.7, 0.7], n, bs)
    assert [rec.kept[e].numel() for e in range(5)] == expected_keep
    assert [rec.num_batches[e] for e in range(5)] == [math.ceil(k / bs) for k in expected_keep]
    for e in range(5):  # the model saw exactly the kept samples, each once, and the tracked indices were right
        assert torch.equal(model.seen_in(e).sort().values, rec.kept[e])
    assert model.mismatches == 0
    assert adp.kept_indices.numel() == round(0.7 * n)  # the final cut is exact
    metrics = t.callback_metrics
    assert metrics["adp/samples_forwarded"] == sum(expected_keep)
    assert metrics["adp/saved_share"] == pytest.approx(1 - sum(expected_keep) / (5 * n))
    assert metrics["adp/keep_share"] == pytest.approx(0.7)
    assert metrics["adp/task_loss"] > 0


def test_the_kept_set_is_the_top_of_the_learned_logits():
    adp, rec, *_ = fit(400, epochs=3, prune_ratio=0.5, warmup_epochs=1, prune_epochs=1)
    logits = adp.method.logits
    pruned = torch.ones(400, dtype=torch.bool)
    pruned[rec.kept[1]] = False
    # a pruned sample is never forwarded again: its logit froze when epoch 1 was planned, below every kept one's then
    kept_first = functional.epoch_sample_counts([1.0, 0.5, 0.5], 400, 32)[1]  # 200 and 200 in batches of 32: 224, 176
    assert logits.std() > 0 and pruned.sum() == 400 - kept_first == 176
    # the export (200) holds every sample of the last epoch (176) and 24 more drawn among the pruned ones
    assert torch.isin(rec.kept[2], adp.kept_indices).all() and adp.kept_indices.numel() == 200


def test_soft_mode_forwards_everything_and_cuts_exactly_at_the_end(tmp_path):
    adp, rec, model, _ = fit(203, epochs=3, prune_ratio=0.25, mode="soft", export_dir=str(tmp_path), batch_size=20)
    for e in range(3):
        assert model.seen_in(e).sort().values.tolist() == list(range(203))
    assert adp.kept_indices.numel() == round(0.75 * 203)
    logits = adp.method.logits
    assert logits[adp.kept_indices].min() >= torch.topk(logits, adp.kept_indices.numel()).values.min()


def test_export_round_trips_with_exact_counts(tmp_path):
    adp, *_ = fit(300, epochs=4, prune_ratio=0.2, export_dir=str(tmp_path))
    meta = json.loads((tmp_path / "pruned_subset.json").read_text())
    assert (meta["num_samples"], meta["num_kept"], meta["num_pruned"]) == (300, 240, 60)
    assert meta["prune_ratio_target"] == 0.2 and meta["prune_ratio_realised"] == 0.2  # stored rounded, not 0.2000..04
    assert sum(meta["per_class_kept"]) == 240 and sum(meta["per_class_total"]) == 300
    assert meta["seed"] == 0 and meta["method"] == "adapruner" and meta["epochs_completed"] == 4
    subset = load_pruned_subset(tmp_path, random_dataset(300))
    assert subset.indices == adp.kept_indices.tolist()


@pytest.mark.parametrize("with_logger", [False, True])
def test_export_goes_to_default_root_dir_with_and_without_a_logger(tmp_path, with_logger):
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="csv") if with_logger else False
    adp, *_ = fit(
        100, epochs=2, prune_ratio=0.2, export_dir=None, trainer_kwargs={"default_root_dir": tmp_path, "logger": logger}
    )
    assert adp.export_path == tmp_path / "pruned_subset.json" and adp.export_path.is_file()


@pytest.mark.parametrize("accumulate", [1, 3])
def test_a_step_based_scheduler_sized_by_the_plan_ends_exactly(accumulate):
    model = TinyModel(scheduler="pruned")
    adp = AdaptiveDatasetPruning(prune_ratio=0.4, warmup_epochs=1, prune_epochs=2, export_dir=False)
    t = trainer(max_epochs=5, callbacks=[adp], accumulate_grad_batches=accumulate)
    t.fit(model, loader(random_dataset(500), 16))
    sched = t.lr_scheduler_configs[0].scheduler
    assert sched.total_steps == t.global_step == sched.last_epoch  # no "Tried to step N+1 times", no unfinished cycle
    assert t.global_step < functional.stepping_batches([math.ceil(500 / 16)] * 5, accumulate)


def test_lightning_own_estimate_would_leave_onecycle_unfinished():
    model = TinyModel(scheduler="lightning")
    t = trainer(max_epochs=4, callbacks=[AdaptiveDatasetPruning(prune_ratio=0.5, export_dir=False)])
    t.fit(model, loader(random_dataset(300), 16))
    sched = t.lr_scheduler_configs[0].scheduler
    assert sched.last_epoch < sched.total_steps  # the misalignment pruning_stepping_batches fixes


def test_bf16_mixed_precision_updates_the_mask():
    adp, *_ = fit(200, epochs=2, prune_ratio=0.2, trainer_kwargs={"precision": "bf16-mixed"})
    assert adp.method.logits.dtype == torch.float32 and torch.isfinite(adp.method.logits).all()
    assert (adp.method.logits != 1.0).all()


def test_saved_share_compares_with_full_data_under_the_same_limit_train_batches():
    model = TinyModel()
    adp = AdaptiveDatasetPruning(prune_ratio=0.0, export_dir=False, anneal=0.0)
    t = trainer(max_epochs=3, callbacks=[adp], limit_train_batches=0.5)
    t.fit(model, loader(random_dataset(400), 10))
    forwarded = sum(model.seen_in(e).numel() for e in model.seen)
    assert forwarded == adp.session.ledger.forwarded == 3 * 20 * 10
    assert t.callback_metrics["adp/saved_share"] == 0.0  # prune_ratio=0 saves nothing, whatever the limit
    adp, *_ = fit(
        400, epochs=3, batch_size=10, prune_ratio=0.5, prune_epochs=1, trainer_kwargs={"limit_train_batches": 4}
    )
    assert adp.session.ledger.forwarded == adp.session.ledger.full == 3 * 4 * 10  # 4 batches either way


def test_the_seed_follows_the_global_seed_unless_given():
    L.seed_everything(42)
    adp = AdaptiveDatasetPruning(prune_ratio=0.3, export_dir=False)
    trainer(max_epochs=1, callbacks=[adp]).fit(TinyModel(), loader(random_dataset(64)))
    assert adp.session.seed == 42
    L.seed_everything(42)
    adp = AdaptiveDatasetPruning(prune_ratio=0.3, seed=5, export_dir=False)
    trainer(max_epochs=1, callbacks=[adp]).fit(TinyModel(), loader(random_dataset(64)))
    assert adp.session.seed == 5


def test_a_second_fit_with_the_same_callback_starts_from_fresh_state():
    adp = AdaptiveDatasetPruning(prune_ratio=0.3, warmup_epochs=1, prune_epochs=1, export_dir=False)
    t = trainer(max_epochs=3, callbacks=[adp])
    t.fit(TinyModel(scheduler="pruned"), loader(random_dataset(1000), 50))
    first = adp.method.logits.clone()
    rec = EpochRecorder()
    t2 = trainer(max_epochs=3, callbacks=[adp, rec])
    model = TinyModel(scheduler="pruned")
    t2.fit(model, loader(random_dataset(1200), 50))  # another size: no "k_keep must be in [0, 700]"
    assert rec.kept[0].numel() == 1200  # warm-up again on full data, not the old 700-sample kept set
    assert adp.kept_indices.numel() == round(0.7 * 1200)
    sched = t2.lr_scheduler_configs[0].scheduler
    assert sched.total_steps == t2.global_step  # the step plan of the new fit, not the old one
    assert float(adp.method.k) <= adp.method.k_end + 1e-6 and first.numel() == 1000


@pytest.mark.parametrize(
    "make",
    [np.float32, np.float16, float]
    + [lambda v, d=d: torch.tensor(v, dtype=d) for d in (torch.float32, torch.float16, torch.bfloat16, torch.float64)],
    ids=["np32", "np16", "float", "t32", "t16", "bf16", "t64"],
)
def test_numeric_prune_ratios_of_any_kind_are_the_decimal_they_stand_for(make):
    # exactly p: a checkpoint saved with the float p resumes under torch.tensor(p) and the reverse
    for p in [i / 100 for i in range(100)]:
        assert DataPruning(RandomPruning(), make(p)).prune_ratio == p


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, "0.3", True, float("nan")])
def test_prune_ratio_out_of_range(ratio):
    with pytest.raises(ValueError, match=r"prune_ratio must be a number in \[0, 1\)"):
        AdaptiveDatasetPruning(prune_ratio=ratio)


@pytest.mark.parametrize("budget", [0.0, -0.5, 1.5, "0.6", True, float("nan")])
def test_budget_out_of_range(budget):
    with pytest.raises(ValueError, match=r"budget must be a number in \(0, 1\]"):
        DataPruning(RandomPruning(), budget=budget)


def test_one_of_prune_ratio_and_budget():
    with pytest.raises(ValueError, match="one of prune_ratio=.*or budget=.*not neither"):
        DataPruning(RandomPruning())
    with pytest.raises(ValueError, match="not both"):
        DataPruning(RandomPruning(), 0.3, budget=0.6)
    with pytest.raises(ValueError, match="soft mode.*give prune_ratio"):
        AdaptiveDatasetPruning(budget=0.6, mode="soft")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "hard"}, "mode must be one of"),
        ({"schedule": "sqrt"}, "schedule must be one of"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"prune_epochs": 0}, "prune_epochs"),
        ({"k_start": 0}, "k_start"),
        ({"mask_momentum": 1.0}, "mask_momentum"),
        ({"network_weights": "raw"}, "network_weights"),
        ({"seed": -1}, "seed"),
    ],
)
def test_other_arguments_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveDatasetPruning(prune_ratio=0.2, **kwargs)


def test_the_method_must_be_a_pruning_method():
    with pytest.raises(TypeError, match="PruningMethod"):
        DataPruning("adapruner", 0.3)


def test_module_without_the_mixin():
    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(9, 3)

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(TypeError, match="mix in PruningPerformanceController"):
        t.fit(Plain(), loader(random_dataset(64)))


def test_a_ratio_so_high_that_a_rank_gets_nothing():
    t = trainer(max_epochs=2, callbacks=[AdaptiveDatasetPruning(0.99, export_dir=False, anneal=0.0)])
    with pytest.raises(ValueError, match="a rank would get no samples"):
        t.fit(TinyModel(), loader(random_dataset(10)))


def test_infinite_epochs_rejected():
    t = trainer(max_epochs=-1, max_steps=10, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(ValueError, match="max_epochs"):
        t.fit(TinyModel(), loader(random_dataset(64)))


class NaNModel(TinyModel):
    def training_step(self, batch, batch_idx):
        x, y = batch
        idx = self.true_indices(batch)
        loss = self.per_sample_loss(batch)
        poisoned = torch.where(idx % 10 == 0, torch.full_like(loss, float("nan")), loss)
        return torch.nan_to_num(self.pruning_loss(poisoned))


def test_non_finite_losses_are_left_out_with_a_warning_and_never_touch_the_mask(caplog):
    adp = AdaptiveDatasetPruning(0.2, export_dir=False)
    t = trainer(max_epochs=3, callbacks=[adp])
    t.fit(NaNModel(), loader(random_dataset(200)))
    assert "NaN or inf" in caplog.text
    logits = adp.method.logits
    assert torch.isfinite(logits).all() and torch.isfinite(adp.method.momentum).all()
    poisoned = torch.arange(0, 200, 10)
    assert torch.all(logits[poisoned] == 1.0)  # untouched: the initial value
    others = torch.ones(200, dtype=torch.bool)
    others[poisoned] = False
    assert (logits[others] != 1.0).all()


def test_a_class_pruned_away_is_kept_by_class_floor():
    ds = random_dataset(300, classes=3)
    rare = (ds.targets == 2).nonzero().flatten()[:3]
    keep = ds.targets != 2
    keep[rare] = True  # class 2 keeps only three samples
    small = Subset(ds, keep.nonzero().flatten().tolist())  # labels are found through the Subset
    labels = ds.targets[keep]

    def run(floor):
        adp, *_ = fit(ds=small, epochs=3, batch_size=16, prune_ratio=0.95, prune_epochs=1, class_floor=floor)
        return adp

    assert (labels[run(0).kept_indices] == 2).sum() == 0, "this seed must prune the rare class away"
    adp = run(1)
    assert (labels[adp.kept_indices] == 2).sum() >= 1 and adp.kept_indices.numel() == round(0.05 * len(small))


def test_class_floor_holds_when_some_samples_were_never_forwarded():
    """limit_train_batches=0.5 leaves half the warm-up unseen: the method ranks the seen part of the budget with no
    floor of its own (that part alone is too small for one), and the merged set then gets the floor."""
    ds = random_dataset(100)
    cb = DataPruning(AdaPruner(anneal=0.0), 0.3, warmup_epochs=1, prune_epochs=1, class_floor=20, export_dir=False)
    trainer(max_epochs=3, callbacks=[cb], limit_train_batches=0.5).fit(TinyModel(), loader(ds, 10))
    assert cb.session.seen.sum() < 100  # some samples were never forwarded
    assert torch.bincount(ds.targets[cb.kept_indices]).min() >= 20 and cb.kept_indices.numel() == 70


def test_no_labels_is_no_warning_unless_class_floor_needs_them(recwarn):
    from torch.utils.data import TensorDataset

    plain = TensorDataset(random_dataset(64).x, random_dataset(64).targets)
    adp, *_ = fit(ds=plain, epochs=1, prune_ratio=0.2)  # a task without classes (a language model) asks for none
    assert adp.session.facts.labels is None and not [w for w in recwarn if "label" in str(w.message)]
    with pytest.raises(ValueError, match="class_floor needs the training labels"):
        fit(ds=plain, epochs=1, prune_ratio=0.2, class_floor=1)
    adp, *_ = fit(ds=plain, epochs=1, prune_ratio=0.2, targets=plain.tensors[1])  # targets= is enough
    assert adp.session.facts.labels is not None


def test_labels_are_found_in_a_hugging_face_datasets_column():
    import datasets  # Hugging Face datasets: in requirements/lock.txt

    base = random_dataset(64)
    table = datasets.Dataset.from_dict({"x": base.x.tolist(), "label": base.targets.tolist()})
    table = table.cast_column("label", datasets.ClassLabel(num_classes=3)).shuffle(seed=0)  # an indices mapping

    from lightning_adapruner.core.dataset import infer_targets

    expected = [table[i]["label"] for i in range(len(table))]
    assert infer_targets(table).tolist() == expected
    scores = datasets.Dataset.from_dict({"x": [1.0, 2.0], "label": [0.5, 0.1]})  # a regression target: no classes
    assert infer_targets(scores) is None


def test_resume_with_a_checkpoint_for_another_dataset_size(tmp_path):
    adp = AdaptiveDatasetPruning(0.2, export_dir=False)
    t = trainer(max_epochs=1, callbacks=[adp], default_root_dir=tmp_path)
    t.fit(TinyModel(), loader(random_dataset(100)))
    t.save_checkpoint(tmp_path / "a.ckpt")
    t2 = trainer(max_epochs=3, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(ValueError, match="training set of 100 samples, but this training set has 120"):
        t2.fit(TinyModel(), loader(random_dataset(120)), ckpt_path=tmp_path / "a.ckpt")


def test_a_checkpoint_of_another_method_is_refused(tmp_path):
    t = trainer(max_epochs=1, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)], default_root_dir=tmp_path)
    t.fit(TinyModel(), loader(random_dataset(100)))
    t.save_checkpoint(tmp_path / "a.ckpt")
    ckpt = torch.load(tmp_path / "a.ckpt", weights_only=False)
    ckpt["callbacks"]["DataPruning"]["method"]["version"] = 99
    torch.save(ckpt, tmp_path / "b.ckpt")
    t2 = trainer(max_epochs=2, callbacks=[AdaptiveDatasetPruning(0.2, export_dir=False)])
    with pytest.raises(ValueError, match="version 99"):
        t2.fit(TinyModel(), loader(random_dataset(100)), ckpt_path=tmp_path / "b.ckpt")


def test_status_lines_start_on_a_line_of_their_own_beside_a_progress_bar(capsys):
    adp = AdaptiveDatasetPruning(0.3, export_dir=False)
    t = trainer(max_epochs=3, callbacks=[adp], enable_progress_bar=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(TinyModel(), loader(random_dataset(200), 8))
    out = capsys.readouterr()
    lines = (out.out + out.err).replace("\r", "\n").split("\n")
    for epoch in range(3):
        assert any(line.startswith(f"[adapruner] epoch {epoch}: kept") for line in lines), epoch


def test_el2n_needs_the_logits():
    class LossOnly(TinyModel):
        def training_step(self, batch, batch_idx):
            return self.pruning_loss(self.per_sample_loss(batch))

    t = trainer(max_epochs=1, callbacks=[DataPruning(EL2NPruning(), 0.2, export_dir=False)])
    with pytest.raises(ValueError, match=r"pruning_loss\(per_sample_loss, logits=..., targets=...\)"):
        t.fit(LossOnly(), loader(random_dataset(64)))


def test_never_forwarded_samples_are_kept_at_the_cut_rate_not_by_a_score_they_never_earned(caplog):
    n = 1000
    adp, rec, model, t = fit(n, epochs=3, batch_size=50, prune_ratio=0.3, trainer_kwargs={"limit_train_batches": 0.5})
    forwarded = torch.zeros(n, dtype=torch.bool)
    for e in model.seen:
        forwarded[model.seen_in(e)] = True
    never = (~forwarded).nonzero().flatten()
    assert 100 < never.numel() < 400  # limit_train_batches=0.5 leaves many samples unseen
    assert torch.all(adp.method.logits[never] == 1.0)  # no evidence: their logits never moved
    kept = torch.zeros(n, dtype=torch.bool)
    kept[adp.kept_indices] = True
    # v0.1 kept every one of them (an untouched logit of 1.0 outranks all the others); now the cut's own rate
    candidates_unseen = never[torch.isin(never, rec.kept[2])]
    expected = functional.evidence_quota(700, rec.kept[2].numel(), candidates_unseen.numel())
    assert int(kept[never].sum()) == expected < never.numel()
    assert caplog.text.count("were never forwarded") == 1  # warned once per fit


def test_epochs_that_cannot_run_are_refused_before_training():
    from lightning_adapruner import InfoBatchPruning

    cb = DataPruning(InfoBatchPruning(anneal=0.5), 0.8, export_dir=False)  # annealing squeezes the pruned epochs
    with pytest.raises(ValueError, match="epoch 1 of the pruning schedule keeps 0"):
        trainer(max_epochs=4, callbacks=[cb]).fit(TinyModel(), loader(random_dataset(300)))
    cb = DataPruning(RandomPruning(), 0.8, export_dir=False)
    with pytest.raises(ValueError, match="makes no batch of 64"):
        trainer(max_epochs=4, callbacks=[cb]).fit(TinyModel(), loader(random_dataset(300), 64, drop_last=True))
    cb = DataPruning(RandomPruning(), 0.5, export_dir=False)
    val = loader(random_dataset(32), 16, shuffle=False)
    with pytest.raises(ValueError, match="val_check_interval=15"):
        trainer(max_epochs=4, callbacks=[cb], val_check_interval=15).fit(
            TinyModel(), loader(random_dataset(600), 32), val
        )
    # counted across epochs (check_val_every_n_epoch=None) the interval may exceed an epoch: it runs
    cb = DataPruning(RandomPruning(), 0.5, export_dir=False)
    t = trainer(max_epochs=4, callbacks=[cb], val_check_interval=15, check_val_every_n_epoch=None)
    t.fit(TinyModel(), loader(random_dataset(600), 32), val)
    assert t.current_epoch == 4 and cb.saved_share > 0.3


def test_overfit_batches_is_refused():
    t = trainer(max_epochs=2, callbacks=[AdaptiveDatasetPruning(0.3, export_dir=False)], overfit_batches=2)
    with pytest.raises(ValueError, match="overfit_batches"):
        t.fit(TinyModel(), loader(random_dataset(64)))


@pytest.mark.parametrize("method", ["rs2", "random_dynamic", "seta", "infobatch"])
def test_class_floor_holds_for_every_method(method):
    from lightning_adapruner import InfoBatchPruning, RS2Pruning, SeTaPruning

    ds = random_dataset(300, classes=3)
    rare = (ds.targets == 2).nonzero().flatten()
    ds.targets[rare[6:]] = 0  # class 2 keeps six samples
    make = {
        "rs2": RS2Pruning,
        "random_dynamic": lambda: RandomPruning(dynamic=True),
        "seta": SeTaPruning,
        "infobatch": InfoBatchPruning,
    }[method]
    L.seed_everything(0)
    cb = DataPruning(make(), 0.6, class_floor=6, export_dir=False)
    rec = EpochRecorder()
    trainer(max_epochs=6, callbacks=[cb, rec]).fit(TinyModel(), loader(ds, 20))
    for epoch, kept in rec.kept.items():
        assert int((ds.targets[kept] == 2).sum()) == 6, epoch
    assert int((ds.targets[cb.kept_indices] == 2).sum()) == 6


def test_negative_labels_found_on_the_dataset_are_left_out_and_class_floor_refuses_them(recwarn):
    class IgnoreIndex(TinyModel):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.pruning_loss(torch.nn.functional.cross_entropy(self(x), y, reduction="none", ignore_index=-1))

    ds = random_dataset(100)
    ds.targets[:10] = -1  # "unlabelled", an ignore index: no classes asked for, so no warning either
    adp, *_ = fit(ds=ds, epochs=2, prune_ratio=0.2, model=IgnoreIndex())
    assert adp.session.facts.labels is None
    assert not [w for w in recwarn if "label" in str(w.message)]
    with pytest.raises(ValueError, match="negative values.*class_floor"):
        fit(ds=ds, epochs=2, prune_ratio=0.2, class_floor=1, model=IgnoreIndex())


@pytest.mark.parametrize(
    ("targets", "error", "match"),
    [
        (["cat", "dog"], TypeError, "must hold numbers"),
        ([0.5, 1.0], ValueError, "not whole numbers.*0.5"),
        ([[0, 1], [1, 0]], ValueError, "one label per sample.*argmax"),
        ([-1, 0], ValueError, "negative class ids"),
        ([True, False], TypeError, "whole numbers, got dtype torch.bool"),
    ],
)
def test_targets_are_checked_when_given(targets, error, match):
    with pytest.raises(error, match=match):
        DataPruning(AdaPruner(), 0.3, targets=targets)
    assert DataPruning(AdaPruner(), 0.3, targets=[2.0, 0.0]).targets.tolist() == [2, 0]  # whole floats are fine


def test_labels_that_disagree_with_the_items_are_not_trusted():
    class Reversed(torch.utils.data.Dataset):  # a wrapper that reorders the set it keeps in `.dataset`
        def __init__(self, dataset):
            self.dataset = dataset

        def __len__(self):
            return len(self.dataset)

        def __getitem__(self, i):
            return self.dataset[len(self.dataset) - 1 - i]

    with pytest.warns(UserWarning, match="disagree with what its items return"):
        adp, *_ = fit(ds=Reversed(random_dataset(100)), epochs=1, prune_ratio=0.2)
    assert adp.session.facts.labels is None


def test_an_exception_leaves_the_trainer_as_it_was():
    class Boom(TinyModel):
        def training_step(self, batch, batch_idx):
            raise KeyError("boom")

    t = trainer(max_epochs=2, callbacks=[AdaptiveDatasetPruning(0.3, export_dir=False)])
    source = t.fit_loop._data_source
    with pytest.raises(KeyError):
        t.fit(Boom(), loader(random_dataset(64)))
    assert t.reload_dataloaders_every_n_epochs == 0 and type(t.fit_loop._data_source) is type(source)


def test_the_method_class_instead_of_an_instance():
    from lightning_adapruner import AdaPruner

    with pytest.raises(TypeError, match=r"pass AdaPruner\(\), not the class"):
        DataPruning(AdaPruner, 0.3)


def test_batch_indices_name_the_batch_in_every_callback_before_and_after_the_pruning_one():
    class Reader(L.Callback):  # one placed before DataPruning, one after its on_train_batch_end closes the batch
        def __init__(self):
            self.mismatches, self.checked = 0, 0

        def check(self, pl_module, batch):
            self.checked += 1
            self.mismatches += not torch.equal(pruning.batch_indices.cpu().long(), pl_module.true_indices(batch))

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.check(pl_module, batch)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.check(pl_module, batch)

    pruning, before, after = DataPruning(RandomPruning(), 0.5, warmup_epochs=1, export_dir=False), Reader(), Reader()
    model = TinyModel()
    trainer(max_epochs=3, callbacks=[before, pruning, after]).fit(model, loader(random_dataset(100), 16))
    batches = sum(len(v) for v in model.seen.values())
    assert before.checked == after.checked == 2 * batches
    assert before.mismatches == after.mismatches == model.mismatches == 0
    with pytest.raises(RuntimeError, match="from on_train_batch_start to on_train_batch_end"):
        _ = pruning.batch_indices


def test_two_pruning_callbacks_get_the_plugins_error_not_a_state_key_hint():
    first, second = DataPruning(AdaPruner(), 0.3), DataPruning(RS2Pruning(), 0.5)
    t = trainer(max_epochs=1, callbacks=[first, second])  # Lightning's duplicate state_key check lets them through
    with pytest.raises(
        ValueError, match=r"one pruning callback drives a fit, got 2: keep one of DataPruning\(adapruner"
    ):
        t.fit(TinyModel(), loader(random_dataset(64), 16))


def test_a_refused_loader_leaves_lightnings_dataloader_patching_undone():
    """Lightning patches every DataLoader subclass while it asks for the training loader and undoes it only when
    the request returns; the plugin's refusal is raised inside the request."""

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from random_dataset(32)

    pruning = DataPruning(AdaPruner(), 0.3, export_dir=False)
    with pytest.raises(TypeError, match="iterable or has no __len__"):
        trainer(max_epochs=1, callbacks=[pruning]).fit(TinyModel(), loader(Stream(), 16, shuffle=False))

    class MyLoader(torch.utils.data.DataLoader):  # defined after the refusal, as on a notebook's retry
        def __init__(self, dataset, batch_size, tag):
            super().__init__(dataset, batch_size=batch_size, shuffle=True)
            self.tag = tag

    assert not any("__old" in name for name in torch.utils.data.DataLoader.__dict__)
    model = TinyModel()
    trainer(max_epochs=1).fit(model, MyLoader(random_dataset(64), 16, tag="retry"))
    assert model.seen_in(0).numel() == 64


def test_fast_dev_run_exports_no_subset(tmp_path, caplog):
    pruning = DataPruning(AdaPruner(), 0.3, export_dir=tmp_path)
    with caplog.at_level("INFO"):
        trainer(fast_dev_run=True, callbacks=[pruning]).fit(TinyModel(), loader(random_dataset(256), 16))
    assert not (tmp_path / "pruned_subset.json").exists() and pruning.export_path is None
    assert "fast_dev_run" in caplog.text and "not exported" in caplog.text
