import lightning as L
import torch
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer

from lightning_adapruner import DataPruning, RandomPruning, RS2Pruning


def fit(method, n=200, epochs=6, ratio=0.6, seed=0):
    L.seed_everything(seed)
    cb = DataPruning(method, ratio, warmup_epochs=1, prune_epochs=1, export_dir=False)
    rec = EpochRecorder()
    model = TinyModel()
    trainer(max_epochs=epochs, callbacks=[cb, rec]).fit(model, loader(random_dataset(n), 20))
    return cb, rec, model


def test_static_random_keeps_one_subset_drawn_from_the_seed():
    _, a, _ = fit(RandomPruning())
    _, b, _ = fit(RandomPruning())
    assert all(torch.equal(a.kept[e], a.kept[1]) for e in range(2, 6)) and torch.equal(a.kept[1], b.kept[1])
    _, other, _ = fit(RandomPruning(), seed=1)
    assert not torch.equal(other.kept[1], a.kept[1])


def test_dynamic_random_redraws_every_epoch():
    _, rec, _ = fit(RandomPruning(dynamic=True))
    assert len({tuple(rec.kept[e].tolist()) for e in range(1, 6)}) == 5


def test_rs2_forwards_every_sample_once_before_any_sample_twice():
    _, rec, model = fit(RS2Pruning(), n=200, epochs=7, ratio=0.6)  # 80 samples per pruned epoch
    counts = torch.zeros(200, dtype=torch.long)
    for e in range(1, 7):  # after the warm-up: 480 samples in rounds of 200
        counts[model.seen_in(e)] += 1
        assert int(counts.max()) - int(counts.min()) <= 1, e  # no sample a second time before all once
    assert torch.cat([rec.kept[e] for e in (1, 2)]).unique().numel() == 160
