import lightning as L
import torch
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer

from lightning_adapruner import DataPruning, SeTaPruning


def test_seta_plans_the_exact_budget_and_anneals_with_random_draws():
    L.seed_everything(0)
    cb = DataPruning(SeTaPruning(num_groups=5, window_scale=0.6), 0.5, warmup_epochs=1, export_dir=False)
    rec = EpochRecorder()
    trainer(max_epochs=8, callbacks=[cb, rec]).fit(TinyModel(), loader(random_dataset(400), 20))
    budgets = [rec.kept[e].numel() for e in range(8)]
    assert budgets[0] == 400 and budgets[-1] == 200
    method = cb.method  # plan by hand on known losses: five clear groups of 80
    method.last_loss.copy_(torch.arange(400).div(80, rounding_mode="floor").float())
    kept = method.plan(torch.arange(400), 150, epoch=2)  # iteration 1: the window is groups 1..3
    assert kept.numel() == 150 and bool(((kept >= 80) & (kept < 320)).all())
    annealed = method.plan(torch.arange(400), 150, epoch=7)  # the last epoch: uniform over all groups
    assert (annealed < 80).any() and (annealed >= 320).any()


def test_seta_anneals_the_same_floor_of_epochs_as_the_schedule():
    from lightning_adapruner.core import functional as F

    cb = DataPruning(SeTaPruning(num_groups=5, window_scale=0.6, anneal=0.3), 0.5, warmup_epochs=1, export_dir=False)
    trainer(max_epochs=8, callbacks=[cb]).fit(TinyModel(), loader(random_dataset(400), 20))
    assert F.annealed_epochs(8, 0.3) == 2  # floor(2.4): epochs 6 and 7, as InfoBatch and AdaPruner count them
    method = cb.method
    method.last_loss.copy_(torch.arange(400).div(80, rounding_mode="floor").float())
    windowed = method.plan(torch.arange(400), 150, epoch=5)  # a 3-group window never spans groups 0 and 4
    assert not ((windowed < 80).any() and (windowed >= 320).any())
    annealed = method.plan(torch.arange(400), 150, epoch=6)
    assert (annealed < 80).any() and (annealed >= 320).any()
