import lightning as L
import pytest
import torch
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer

from lightning_adapruner import AdaPruner, DataPruning


def fit(method, n=300, epochs=5, ratio=0.4, **kwargs):
    L.seed_everything(0)
    cb = DataPruning(method, ratio, export_dir=False, **kwargs)
    rec = EpochRecorder()
    model = TinyModel()
    t = trainer(max_epochs=epochs, callbacks=[cb, rec])
    t.fit(model, loader(random_dataset(n), 20))
    return cb, rec, model, t


class Weights(TinyModel):
    """Records the loss pruning_loss returns against the plain mean."""

    def training_step(self, batch, batch_idx):
        loss = self.per_sample_loss(batch)
        out = self.pruning_loss(loss)
        self.ratios = getattr(self, "ratios", []) + [float(out / loss.mean())]
        return out


@pytest.mark.parametrize("weights", ["score", "normalized", "none"])
def test_network_weights(weights):
    L.seed_everything(0)
    cb = DataPruning(AdaPruner(network_weights=weights), 0.3, export_dir=False)
    model = Weights()
    trainer(max_epochs=2, callbacks=[cb]).fit(model, loader(random_dataset(200), 20))
    first = model.ratios[0]
    if weights == "score":  # mean(s * l) with s = sigmoid(0.1 * 1) at the start: about half the plain mean
        assert first == pytest.approx(torch.sigmoid(torch.tensor(0.1)).item(), rel=1e-3)
    else:  # self-normalised or plain: the network sees the loss at its own scale
        assert first == pytest.approx(1.0, rel=1e-2 if weights == "normalized" else 1e-6)


def test_nested_cuts_choose_among_the_last_kept_set_and_dynamic_ones_among_all():
    _, nested, *_ = fit(AdaPruner(selection="nested", anneal=0.0))
    for e in range(1, 5):
        assert set(nested.kept[e].tolist()) <= set(nested.kept[e - 1].tolist())
    _, dynamic, *_ = fit(AdaPruner(selection="dynamic"), epochs=6)
    assert any(not set(dynamic.kept[e].tolist()) <= set(dynamic.kept[e - 1].tolist()) for e in range(2, 6))


def test_annealing_ends_on_full_data_at_an_equal_total():
    cb, rec, *_ = fit(AdaPruner(anneal=0.2), epochs=10, prune_epochs=4)
    plain, plain_rec, *_ = fit(AdaPruner(), epochs=10, prune_epochs=4)
    assert rec.kept[9].numel() == rec.kept[8].numel() == 300 and rec.kept[0].numel() == 300
    assert abs(cb.forwarded_samples - plain.forwarded_samples) <= 10  # the same budget up to rounding per epoch


def test_the_mask_moves_and_the_controllers_follow_the_plan():
    cb, rec, model, t = fit(AdaPruner(), epochs=4)
    method = cb.method
    assert method.logits.std() > 0 and float(method.k) > method.k_start
    metrics = t.callback_metrics
    assert {"adp/k", "adp/lambda", "adp/mean_score", "adp/hard_keep_share", "adp/logit_std"} <= set(metrics)
    assert float(metrics["adp/k"]) == pytest.approx(float(method.k))


def test_soft_mode_forwards_every_sample_and_exports_the_top_logits():
    cb, rec, model, _ = fit(AdaPruner(mode="soft"), epochs=3)
    assert all(rec.kept[e].numel() == 300 for e in range(3))
    logits = cb.method.logits
    assert set(cb.kept_indices.tolist()) == set(torch.topk(logits, 180).indices.tolist())
