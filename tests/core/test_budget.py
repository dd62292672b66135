"""``budget``: the fit forwards exactly that share of full data's samples, laid out in whole batches."""

import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer

from lightning_adapruner import (
    AdaPruner,
    DataPruning,
    InfoBatchPruning,
    RandomPruning,
    RS2Pruning,
    functional,
)

METHODS = {
    "adapruner": AdaPruner,
    "rs2": RS2Pruning,
    "infobatch": InfoBatchPruning,  # anneals to full data in its last epochs: another keep-share shape
    "random_dynamic": lambda: RandomPruning(dynamic=True),
}


def budget_fit(method, budget=0.6, n=640, epochs=6, batch=32, **trainer_kwargs):
    L.seed_everything(0)
    cb = DataPruning(METHODS[method](), budget=budget, export_dir=False)
    model = TinyModel(scheduler="pruned")  # OneCycle sized by pruning_stepping_batches: raises if it overruns
    t = trainer(max_epochs=epochs, callbacks=[cb], **trainer_kwargs)
    t.fit(model, loader(random_dataset(n), batch))
    return cb, model, t


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_budget_is_met_exactly_whatever_the_keep_share_shape(method):
    cb, model, t = budget_fit(method)
    counts = [model.seen_in(e).numel() for e in range(6)]
    assert sum(counts) == cb.forwarded_samples == round(0.6 * 640 * 6)  # exact, not approximately
    assert cb.saved_share == pytest.approx(0.4)
    pruned = [c for c in counts if c < 640]
    assert pruned and all(c % 32 == 0 for c in pruned[:-1])  # whole batches but the last pruned epoch's
    assert 0 < cb.prune_ratio < 1 and cb.kept_indices.numel() == functional.num_kept(640, 1 - cb.prune_ratio)
    scheduler = t.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == t.global_step  # the LR schedule ends exactly at the fit's last step


def test_a_budget_of_one_is_full_data():
    cb, model, _ = budget_fit("adapruner", budget=1.0)
    assert cb.forwarded_samples == 640 * 6 and cb.prune_ratio == 0.0


@pytest.mark.slow
def test_a_budget_is_met_under_two_processes():
    cb, model, t = budget_fit("rs2", devices=2, strategy="ddp_fork")
    assert cb.forwarded_samples == round(0.6 * 640 * 6)  # the launcher reads rank 0's count


def test_a_budget_below_what_the_schedule_can_do_names_the_fix():
    with pytest.raises(ValueError, match="less than the schedule can forward.*raise the budget or lower warmup_epochs"):
        budget_fit("rs2", budget=0.1, epochs=6)  # the warm-up epoch alone is 1/6 of full data


def test_a_budget_with_limit_train_batches_is_refused():
    with pytest.raises(ValueError, match="limit_train_batches=0.5 cuts every epoch.*give prune_ratio instead"):
        budget_fit("rs2", limit_train_batches=0.5)


def test_a_resume_with_another_budget_is_refused(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    L.seed_everything(0)
    ckpt = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1)
    cb = DataPruning(RS2Pruning(), budget=0.6, export_dir=False)
    trainer(max_epochs=3, callbacks=[cb, ckpt], enable_checkpointing=True).fit(
        TinyModel(), loader(random_dataset(320), 32)
    )
    resumed = DataPruning(RS2Pruning(), budget=0.5, export_dir=False)
    with pytest.raises(ValueError, match="for budget=0.6, this fit has budget=0.5"):
        trainer(max_epochs=3, callbacks=[resumed]).fit(
            TinyModel(), loader(random_dataset(320), 32), ckpt_path=tmp_path / "epoch=1.ckpt"
        )


class _WeightRecorder(TinyModel):
    """Records, per step, the loss the harness returns minus the plain mean of the per-sample losses."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_gaps: list[float] = []

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        with torch.no_grad():
            self.weight_gaps.append(float((loss - self.per_sample_loss(batch).mean()).abs()))
        return loss


@pytest.mark.parametrize("method", sorted(METHODS))
def test_at_budget_one_every_method_trains_as_full_data_does(method):
    """The harness by itself costs nothing: at budget 1 every method forwards every sample once per epoch, in the
    plain loader's batches (650 = 20 x 32 + 10: the same tail), with unit loss weights, so the only difference from
    training without the plugin is the shuffle order. (The study measures the rest: a uniform method at budget b
    against full data for b x epochs, BENCHMARKS.md.)"""
    L.seed_everything(0)
    cb = DataPruning(METHODS[method](), budget=1.0, export_dir=False)
    model = _WeightRecorder()
    trainer(max_epochs=3, callbacks=[cb]).fit(model, loader(random_dataset(650), 32))
    for epoch in range(3):
        assert model.seen_in(epoch).sort().values.tolist() == list(range(650))
        assert [b.numel() for b in model.seen[epoch]] == [32] * 20 + [10]
    assert max(model.weight_gaps) < 1e-6 and cb.prune_ratio == 0.0
