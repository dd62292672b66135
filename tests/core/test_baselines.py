"""Baselines: pure scoring/selection functions, and each method in the shared harness."""

import math

import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.baselines import EL2NPruning, ForgettingPruning, InfoBatchPruning, RandomPruning


# ---------------------------------------------------------------- pure functions
def test_el2n_scores():
    outputs = torch.tensor([[20.0, 0.0], [0.0, 20.0], [0.0, 0.0]])
    targets = torch.tensor([0, 0, 1])
    s = F.el2n_scores(outputs, targets)
    assert s[0] == pytest.approx(0.0, abs=1e-6)  # confident and right
    assert s[1] == pytest.approx(math.sqrt(2), abs=1e-6)  # confident and wrong
    assert s[2] == pytest.approx(math.sqrt(0.5), abs=1e-6)  # undecided


def test_forgetting_counts_correct_to_wrong_transitions():
    prev = torch.tensor([-1], dtype=torch.int8)
    forgets = torch.zeros(1, dtype=torch.int32)
    for correct in [False, True, False, True, True, False]:
        prev, forgets = F.forgetting_update(prev, forgets, torch.tensor([correct]))
    assert forgets.item() == 2 and prev.item() == 0


def test_forgetting_scores_keep_never_learned_first_and_drop_unforgettable():
    scores = F.forgetting_scores(torch.tensor([0, 3, 0, 1]), torch.tensor([True, True, False, True]))
    assert scores.tolist() == [0.0, 3.0, float("inf"), 1.0]
    kept = F.select_kept(scores, 2, F.tie_break_generator(0, 0))
    assert kept.tolist() == [1, 2]


def test_infobatch_keep_share_matches_the_standard_schedule_in_total():
    args = dict(prune_ratio=0.3, warmup_epochs=1, prune_epochs=3, shape="linear", max_epochs=16, anneal=0.125)
    shares = [F.infobatch_keep_share_at(e, **args) for e in range(16)]
    standard = [F.keep_share_at(e, 0.3, 1, 3, "linear") for e in range(16)]
    assert sum(shares) == pytest.approx(sum(standard))
    assert shares[0] == 1.0 and shares[-2:] == [1.0, 1.0]  # warm-up and the annealed final 12.5%
    assert len(set(shares[1:-2])) == 1 and shares[1] < 1.0


def test_infobatch_plan_drops_only_below_mean_and_reweights_the_rest():
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4, 2.0, 3.0, 4.0, 5.0])  # mean 1.875: four below
    kept, weights = F.infobatch_plan(losses, budget=6, generator=F.tie_break_generator(0, 0))
    assert kept.numel() == 6
    dropped = sorted(set(range(8)) - set(kept.tolist()))
    assert all(losses[i] < losses.mean() for i in dropped)
    for i in kept.tolist():
        assert weights[i] == pytest.approx(2.0 if i < 4 else 1.0)  # 2 of 4 below-mean dropped -> 1/(1-0.5)
    kept, weights = F.infobatch_plan(losses, budget=2, generator=F.tie_break_generator(0, 0))
    assert kept.tolist() == [6, 7]  # all below-mean dropped, then the lowest losses above the mean
    assert torch.all(weights == 1)
    kept, weights = F.infobatch_plan(torch.full((5,), float("nan")), 3, F.tie_break_generator(0, 0))
    assert kept.numel() == 5 and torch.all(weights == 1)


# ---------------------------------------------------------------- in the harness
class KeptRecorder(L.Callback):
    def __init__(self):
        self.kept, self.scores = {}, {}

    def on_train_epoch_start(self, trainer, pl_module):
        cb = pl_module.adaptive_pruning
        self.kept[trainer.current_epoch] = cb._sampler.indices.long().clone()
        # the scores the cut of this epoch was made from (no step has run since)
        score = cb.scores() if hasattr(cb, "scores") else cb._export_scores()
        self.scores[trainer.current_epoch] = score.clone()


def run(callback, n=300, epochs=5):
    L.seed_everything(0)
    rec = KeptRecorder()
    model = TinyModel()
    trainer(max_epochs=epochs, callbacks=[callback, rec]).fit(model, loader(random_dataset(n), 16))
    return rec, model


KW = dict(warmup_epochs=1, prune_epochs=2, export_dir=False, verbose=False)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomPruning(0.4, **KW),
        lambda: RandomPruning(0.4, dynamic=True, **KW),
        lambda: EL2NPruning(0.4, **KW),
        lambda: ForgettingPruning(0.4, **KW),
    ],
    ids=["random", "random_dynamic", "el2n", "forgetting"],
)
def test_static_schedule_baselines_forward_exactly_the_budget(make):
    cb = make()
    rec, model = run(cb)
    assert [rec.kept[e].numel() for e in range(5)] == [300, 240, 180, 180, 180]
    for e in range(5):
        assert torch.equal(torch.cat(model.seen[e]).sort().values, rec.kept[e])
    assert cb.kept_indices.numel() == 180
    if cb.nested:
        assert set(rec.kept[2].tolist()) <= set(rec.kept[1].tolist())


def test_random_dynamic_redraws_and_static_is_seeded():
    rec_dyn, _ = run(RandomPruning(0.4, dynamic=True, **KW))
    assert not torch.equal(rec_dyn.kept[3], rec_dyn.kept[4])
    rec_a, _ = run(RandomPruning(0.4, **KW))
    rec_b, _ = run(RandomPruning(0.4, **KW))
    assert torch.equal(rec_a.kept[4], rec_b.kept[4]) and torch.equal(rec_a.kept[3], rec_a.kept[4])


def test_el2n_keeps_the_highest_scores_from_the_warmup_epoch():
    cb = EL2NPruning(0.4, **KW)
    rec, _ = run(cb)
    scores = cb.scores()
    assert torch.all(cb._score_count == 1)  # every sample scored once, in the warm-up epoch only
    top = torch.sort(torch.argsort(scores, descending=True)[:240]).values
    assert torch.equal(rec.kept[1], top)


def test_forgetting_keeps_the_most_forgotten():
    cb = ForgettingPruning(0.4, **KW)
    rec, _ = run(cb, epochs=6)
    assert cb._prev_correct.min() >= 0  # every sample was seen
    for e in (1, 2):
        before = rec.kept[e - 1] if e > 1 else torch.arange(300)
        pruned = sorted(set(before.tolist()) - set(rec.kept[e].tolist()))
        assert rec.scores[e][rec.kept[e]].min() >= rec.scores[e][pruned].max()


def test_infobatch_forwards_the_static_schedule_total_and_drops_only_below_mean():
    cb = InfoBatchPruning(0.4, anneal=0.2, **KW)
    rec, model = run(cb, epochs=10)
    budgets = [F.num_kept(300, cb.keep_share(e)) for e in range(10)]
    standard = [F.num_kept(300, F.keep_share_at(e, 0.4, 1, 2, "linear")) for e in range(10)]
    assert abs(sum(budgets) - sum(standard)) <= 7  # per-epoch rounding only
    assert budgets[0] == budgets[8] == budgets[9] == 300  # warm-up and annealed final epochs
    for e in range(1, 8):
        losses = rec.scores[e]
        dropped = sorted(set(range(300)) - set(rec.kept[e].tolist()))
        assert rec.kept[e].numel() == budgets[e]  # exactly the budget, like every other method
        below = losses < losses.mean()
        # below-mean samples go first; an above-mean one only once every below-mean one is gone
        assert bool(below[dropped].all()) or int(below.sum()) == int(below[dropped].sum())
    forwarded = sum(torch.cat(model.seen[e]).numel() for e in range(10))
    assert forwarded == cb._samples_forwarded == sum(rec.kept[e].numel() for e in range(10))


def test_output_based_baselines_need_outputs():
    class NoOutputs(TinyModel):
        def training_step(self, batch, batch_idx):
            loss, idx = self.per_sample_loss(batch)
            return self.pruning_loss(loss, idx)

    t = trainer(max_epochs=1, callbacks=[EL2NPruning(0.3, **KW)])
    with pytest.raises(ValueError, match="outputs=logits, targets=y"):
        t.fit(NoOutputs(), loader(random_dataset(64)))
