import lightning as L
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer

from lightning_adapruner import DataPruning, InfoBatchPruning


class RecordWeights(TinyModel):
    def training_step(self, batch, batch_idx):
        loss = self.per_sample_loss(batch)
        out = self.pruning_loss(loss)
        self.weighted = getattr(self, "weighted", {})
        self.weighted.setdefault(self.current_epoch, []).append(float(out / loss.mean()))
        return out


def fit(ratio, epochs=8, caplog=None):
    L.seed_everything(0)
    cb = DataPruning(InfoBatchPruning(), ratio, warmup_epochs=1, export_dir=False)
    rec = EpochRecorder()
    model = RecordWeights()
    trainer(max_epochs=epochs, callbacks=[cb, rec]).fit(model, loader(random_dataset(400), 20))
    return cb, rec, model


def test_infobatch_anneals_to_full_data_and_reweights_inside_its_design():
    cb, rec, model = fit(0.2)
    assert rec.kept[0].numel() == rec.kept[7].numel() == 400  # warm-up and the annealed last epoch
    assert 0 < rec.kept[3].numel() < 400
    assert cb.method.beyond_design_epochs == 0
    assert any(r != 1.0 for r in model.weighted[3]) and all(r == 1.0 for r in model.weighted[7])


def test_a_budget_beyond_infobatch_design_is_completed_at_random_and_counted(caplog):
    cb, rec, model = fit(0.7)
    assert cb.method.beyond_design_epochs > 0 and "beyond" not in caplog.text or "our extension" in caplog.text
    assert float(cb.method.weights.max()) <= 2.0
