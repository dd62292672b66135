import lightning as L
import torch
from helpers import TinyModel, loader, random_dataset, trainer

from lightning_adapruner import DataPruning, ForgettingPruning


def test_forgetting_counts_events_and_drops_the_never_forgotten_first():
    L.seed_everything(0)
    cb = DataPruning(ForgettingPruning(), 0.5, warmup_epochs=1, prune_epochs=1, export_dir=False)
    trainer(max_epochs=5, callbacks=[cb]).fit(TinyModel(lr=0.5), loader(random_dataset(200), 20))
    method = cb.method
    assert int(method.forgets.sum()) > 0 and bool((method.prev_correct >= 0).all())
    scores = method.scores()
    pruned = torch.ones(200, dtype=torch.bool)
    pruned[cb.kept_indices] = False
    assert scores[cb.kept_indices].min() >= scores[pruned].max() or bool(torch.isinf(scores).any())
