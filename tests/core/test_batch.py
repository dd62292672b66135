"""``BatchSelection`` and its pure pieces: which samples of a batch train, on any batch shape, reproducibly."""

from collections import namedtuple
from dataclasses import dataclass

import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer
from torch.utils.data import DataLoader, IterableDataset

from lightning_adapruner import AdaPruner, BatchSelection, DataPruning
from lightning_adapruner import functional as F

Pair = namedtuple("Pair", "x y")


@dataclass
class Features:
    x: torch.Tensor
    names: list


def test_the_loss_rule_keeps_the_highest_losses_in_batch_order():
    scores = torch.tensor([0.3, 2.0, float("nan"), 1.0, 5.0])
    assert F.batch_keep(scores, 3, "loss").tolist() == [1, 3, 4]
    assert [F.batch_kept_count(b, 0.3) for b in (1, 2, 10, 128)] == [1, 1, 3, 38]


def test_the_random_rule_is_a_seeded_uniform_draw():
    draws = [F.batch_keep(torch.zeros(10), 4, "random", F.generator(s, 0)).tolist() for s in (0, 0, 1)]
    assert draws[0] == draws[1] != draws[2] and len(set(draws[0])) == 4 and draws[0] == sorted(draws[0])
    counts = torch.zeros(10)
    for s in range(500):
        counts[F.batch_keep(torch.zeros(10), 4, "random", F.generator(s, 0))] += 1
    assert counts.min() > 150 and counts.max() < 250  # 200 expected for each position


def test_any_batch_collection_loses_the_same_samples_everywhere():
    pos = torch.tensor([0, 2])
    x = torch.arange(3.0)
    batch = {"pair": Pair(x, x * 10), "meta": Features(x[:, None], ["a", "b", "c"]), "n": 7, "const": torch.ones(2)}
    kept = F.take_samples(batch, pos, 3)
    assert kept["pair"].x.tolist() == [0.0, 2.0] and kept["pair"].y.tolist() == [0.0, 20.0]
    assert kept["meta"].x.flatten().tolist() == [0.0, 2.0] and kept["meta"].names == ["a", "c"]
    assert kept["n"] == 7 and kept["const"].tolist() == [1.0, 1.0]  # not per-sample: untouched
    images, labels = F.take_samples((torch.zeros(2, 3, 4), torch.tensor([5, 6])), torch.tensor([1]), 2)
    assert images.shape == (1, 3, 4) and labels.tolist() == [6]  # a 2-sample (x, y) tuple is not a per-sample list


def test_lists_of_samples_of_any_kind_and_transposed_sequences_are_cut_right():
    from collections import defaultdict

    pos = torch.tensor([0, 2])
    images = [torch.zeros(3, 5, 5), torch.ones(3, 6, 4), torch.full((3, 7, 7), 2.0), torch.ones(3, 2, 2)]
    boxes = [{"boxes": torch.zeros(n, 4)} for n in (1, 3, 2, 4)]  # detection: one image and its boxes per sample
    kept_images, kept_boxes = F.take_samples((images, boxes), pos, 4)
    assert [tuple(i.shape) for i in kept_images] == [(3, 5, 5), (3, 7, 7)]  # whole images, channels untouched
    assert [b["boxes"].shape[0] for b in kept_boxes] == [1, 2]
    tokens = [torch.tensor([10, 11, 12]), torch.tensor([20, 21, 22])]  # default_collate's transposed sequences
    assert [t.tolist() for t in F.take_samples(tokens, pos, 3)] == [[10, 12], [20, 22]]
    with pytest.raises(ValueError, match="a list of 3 tensors whose first dimension is also 3"):
        F.take_samples((images[:3], boxes[:3]), pos, 3)  # 3 images of 3 channels, or 3 positions of 3 samples?
    counts = defaultdict(int, {"x": torch.arange(3)})
    kept = F.take_samples(counts, pos, 3)
    assert isinstance(kept, defaultdict) and kept["x"].tolist() == [0, 2] and kept["missing"] == 0


def test_a_batch_with_nothing_of_the_scores_length_is_refused():
    with pytest.raises(ValueError, match="no tensor or list in the batch has 4 entries along its first dimension"):
        F.take_samples({"tokens": torch.zeros(2, 10)}, torch.tensor([0, 1]), 4)  # e.g. a score per token, not sample


def test_compute_share_counts_the_scoring_forward():
    assert F.compute_share(0, 0) == 1.0 and F.compute_share(10, 10) == pytest.approx(4 / 3)
    assert F.compute_share(300, 150) == pytest.approx((300 + 3 * 150) / 900)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keep": 0.0}, r"keep must be a number in \(0, 1\] \(the share of each batch trained on\), got 0.0"),
        ({"keep": 1.5}, r"keep must be a number in \(0, 1\]"),
        ({"keep": 0.5, "rule": "hard"}, "rule must be one of 'loss', 'random', got 'hard'"),
        ({"keep": 0.5, "warmup_steps": -1}, "warmup_steps must be an int >= 0"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchSelection(**kwargs)


def test_a_score_that_is_not_one_loss_per_sample_is_refused():
    with pytest.raises(ValueError, match=r"one loss per sample, shape \[B\]; got \(4, 2\)"):
        BatchSelection(0.5).select(torch.zeros(4, 2), lambda b: b)


class Selecting(TinyModel):
    """Trains on ``select_batch``'s part of each batch; records the scored and the trained sample indices."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            losses = self.per_sample_loss(batch)
        kept = self.select_batch(batch, self.per_sample_loss)
        self.steps.append((self.true_indices(batch), losses, self.true_indices(kept)))
        return self.per_sample_loss(kept).mean()


def test_each_step_trains_on_its_highest_losses_after_warm_up():
    L.seed_everything(0)
    selection = BatchSelection(keep=0.25, warmup_steps=3)
    model = Selecting()
    trainer(max_epochs=2, callbacks=[selection]).fit(model, loader(random_dataset(200), 32))
    assert len(model.steps) == 14
    for step, (scored, losses, trained) in enumerate(model.steps):
        if step < 3:
            assert torch.equal(trained, scored)  # warm-up: the whole batch
            continue
        k = F.batch_kept_count(scored.numel(), 0.25)
        top = scored[torch.topk(losses, k).indices].sort().values
        assert torch.equal(trained.sort().values, top), step
    assert selection.scored == 400 and selection.trained == 3 * 32 + sum(
        F.batch_kept_count(s.numel(), 0.25) for s, _, _ in model.steps[3:]
    )
    assert selection.compute_share == pytest.approx((400 + 3 * selection.trained) / 1200)  # backward = 2 forwards


def test_without_the_callback_the_batch_is_untouched():
    model = Selecting()
    trainer(max_epochs=1).fit(model, loader(random_dataset(64), 32))
    assert all(torch.equal(s, t) for s, _, t in model.steps)


class Stream(IterableDataset):
    """An unsized stream of ``(x, y)`` items whose last feature is the item's number."""

    def __init__(self, n: int) -> None:
        self.data = random_dataset(n)

    def __iter__(self):
        return (self.data[i] for i in range(len(self.data.targets)))


def test_an_iterable_loader_trains_with_batch_selection():
    L.seed_everything(0)
    model, selection = Selecting(), BatchSelection(keep=0.5, rule="random")
    trainer(max_epochs=1, callbacks=[selection]).fit(model, DataLoader(Stream(100), batch_size=20))
    assert [t.numel() for _, _, t in model.steps] == [10] * 5 and selection.trained == 50


def test_the_random_rule_resumes_drawing_what_the_uninterrupted_fit_draws(tmp_path):
    def fit(max_epochs, ckpt=None):
        L.seed_everything(0)
        model, selection = Selecting(), BatchSelection(keep=0.5, rule="random")
        t = trainer(max_epochs=max_epochs, callbacks=[selection], default_root_dir=tmp_path, enable_checkpointing=True)
        t.fit(model, loader(random_dataset(120), 20, shuffle=False), ckpt_path=ckpt)
        return model, selection, t

    whole, whole_sel, _ = fit(3)
    first, _, t = fit(1)
    path = tmp_path / "one.ckpt"
    t.save_checkpoint(path)
    rest, rest_sel, _ = fit(3, path)
    trained = [t for _, _, t in first.steps + rest.steps]
    assert len(trained) == 18 and all(torch.equal(a, b) for a, (_, _, b) in zip(trained, whole.steps))
    assert (rest_sel.scored, rest_sel.trained) == (whole_sel.scored, whole_sel.trained) == (360, 180)


class SelectsTwice(Selecting):
    def training_step(self, batch, batch_idx):
        self.select_batch(batch, self.per_sample_loss)
        return super().training_step(batch, batch_idx)


class NeverSelects(Selecting):
    def training_step(self, batch, batch_idx):
        return self.per_sample_loss(batch).mean()


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (SelectsTwice, "select_batch was called twice for one batch: call it once per training_step"),
        (NeverSelects, r"nothing was selected: pass the batch through `batch = self.select_batch\(batch"),
    ],
)
def test_misuse_is_an_error_naming_the_fix(model, match):
    with pytest.raises(RuntimeError, match=match):
        trainer(max_epochs=1, callbacks=[BatchSelection(keep=0.5)]).fit(model(), loader(random_dataset(64), 32))


class KeyedScore(TinyModel):
    """Scores by the loss minus a per-sample reference loss looked up by the sample's string key (RHO-LOSS's
    reducible loss, its irreducible part computed beforehand): per-sample state the user keys, held by the score."""

    def __init__(self, reference: dict[str, float]) -> None:
        super().__init__()
        self.reference, self.steps = reference, []

    def loss_of(self, batch) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self(batch["x"]), batch["y"], reduction="none")

    def reducible(self, batch) -> torch.Tensor:
        return self.loss_of(batch) - torch.tensor([self.reference[key] for key in batch["key"]])

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            scores = self.reducible(batch)
        kept = self.select_batch(batch, self.reducible)
        self.steps.append((list(batch["key"]), scores, list(kept["key"])))
        return self.loss_of(kept).mean()


def test_per_sample_state_keyed_by_a_name_the_user_gives_drives_the_loss_rule():
    data = random_dataset(96)
    items = [{"x": data.x[i], "y": int(data.targets[i]), "key": f"doc-{i:03d}"} for i in range(96)]
    reference = {item["key"]: float(torch.rand(1, generator=torch.Generator().manual_seed(i))) * 3 for i, item in
                 enumerate(items)}  # fmt: skip
    model = KeyedScore(reference)
    trainer(max_epochs=1, callbacks=[BatchSelection(keep=0.25)]).fit(model, DataLoader(items, batch_size=32))
    assert len(model.steps) == 3
    for keys, scores, trained in model.steps:
        top = {keys[i] for i in torch.topk(scores, F.batch_kept_count(32, 0.25)).indices.tolist()}
        assert set(trained) == top and len(trained) == 8
        losses_alone = {keys[i] for i in torch.topk(scores + torch.tensor([reference[k] for k in keys]), 8).indices}
        assert set(trained) != losses_alone  # the keyed reference changed the choice


@pytest.mark.parametrize("order", ["pruning first", "selection first"])
def test_batch_selection_beside_data_pruning_is_refused_naming_both(order):
    """DataPruning plans the samples each epoch loads and pruning_loss expects all of them; BatchSelection would hand
    it part of each batch, which the loss check would blame on the collate_fn."""
    callbacks = [DataPruning(AdaPruner(), 0.3), BatchSelection(keep=0.5)]
    callbacks = callbacks if order == "pruning first" else callbacks[::-1]
    names = [r"DataPruning\(adapruner, prune_ratio=0.3\)", "BatchSelection"]
    names = names if order == "pruning first" else names[::-1]
    with pytest.raises(
        ValueError, match=f"one pruning callback drives a fit, got 2: keep one of {names[0]}, {names[1]}$"
    ):
        trainer(max_epochs=1, callbacks=callbacks).fit(Selecting(), loader(random_dataset(64), 32))


def test_a_given_seed_is_kept_across_fits_and_the_global_seed_followed_otherwise():
    given, following = BatchSelection(keep=0.5, rule="random", seed=7), BatchSelection(keep=0.5, rule="random")
    for global_seed in (1, 2):
        L.seed_everything(global_seed)
        for selection in (given, following):
            trainer(max_epochs=1, callbacks=[selection]).fit(Selecting(), loader(random_dataset(64), 32))
        assert (given.seed, following.seed) == (7, global_seed)
