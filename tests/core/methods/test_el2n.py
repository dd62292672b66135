import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer

from lightning_adapruner import DataPruning, EL2NPruning
from lightning_adapruner.core import functional as F


def test_el2n_scores_during_the_warm_up_then_keeps_the_highest():
    L.seed_everything(0)
    cb = DataPruning(EL2NPruning(), 0.5, warmup_epochs=2, prune_epochs=1, export_dir=False)
    trainer(max_epochs=4, callbacks=[cb]).fit(TinyModel(), loader(random_dataset(200), 20))
    method = cb.method
    assert int(method.score_count.min()) == int(method.score_count.max()) == 2  # scored in both warm-up epochs only
    scores = method.scores()
    assert scores[cb.kept_indices].min() >= torch.topk(scores, 100).values.min()


def test_el2n_needs_a_warm_up():
    cb = DataPruning(EL2NPruning(), 0.5, warmup_epochs=0, export_dir=False)
    with pytest.raises(ValueError, match="warmup_epochs >= 1"):
        trainer(max_epochs=2, callbacks=[cb]).fit(TinyModel(), loader(random_dataset(64)))


def test_el2n_score_is_the_reference_formula():
    logits, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    expected = (torch.softmax(logits, -1) - torch.nn.functional.one_hot(y, 3)).norm(dim=-1)
    assert torch.allclose(EL2NPruning().observe(torch.zeros(5), logits=logits, targets=y)["el2n"], expected)
    assert torch.allclose(F.el2n_scores(logits, y), expected)
