"""Stop after epoch e, resume from the checkpoint: the same kept sets and final mask as one run."""

import lightning as L
import pytest
import torch
from helpers import TinyModel, loader, random_dataset, trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_adapruner import AdaptiveDatasetPruning
from lightning_adapruner.core.baselines import ForgettingPruning, InfoBatchPruning

METHODS = {
    "adapruner": lambda: AdaptiveDatasetPruning(0.4, warmup_epochs=1, prune_epochs=3, export_dir=False, seed=7),
    "forgetting": lambda: ForgettingPruning(0.4, warmup_epochs=1, prune_epochs=3, export_dir=False, seed=7),
    "infobatch": lambda: InfoBatchPruning(0.4, warmup_epochs=1, prune_epochs=3, export_dir=False, seed=7),
}


class StopAfter(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


class KeptRecorder(L.Callback):
    def __init__(self):
        self.kept = {}

    def on_train_epoch_start(self, trainer, pl_module):
        self.kept[trainer.current_epoch] = pl_module.adaptive_pruning._sampler.indices.long().clone()


def run(tmp_path, with_val, callbacks=(), ckpt_path=None, epochs=6, method="adapruner"):
    L.seed_everything(0)
    ds = random_dataset(300)
    rec = KeptRecorder()
    adp = METHODS[method]()
    t = trainer(
        max_epochs=epochs, callbacks=[adp, rec, *callbacks], enable_checkpointing=True, default_root_dir=tmp_path
    )
    val = loader(random_dataset(64, seed=1), 32, shuffle=False) if with_val else None
    model = TinyModel()
    t.fit(model, loader(ds, 16), val_dataloaders=val, ckpt_path=ckpt_path)
    return adp, rec


@pytest.mark.parametrize("with_val", [False, True], ids=["ckpt-on-train-epoch-end", "ckpt-on-validation-end"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_matches_uninterrupted_run(tmp_path, with_val, method):
    full_adp, full_rec = run(tmp_path / "full", with_val, method=method)

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1, every_n_epochs=1)
    run(tmp_path / "part", with_val, callbacks=[StopAfter(2), ckpt], method=method)
    resumed_adp, resumed_rec = run(
        tmp_path / "resumed", with_val, ckpt_path=tmp_path / "ckpt" / "epoch=2.ckpt", method=method
    )

    assert sorted(resumed_rec.kept) == [3, 4, 5]
    for e in (3, 4, 5):
        assert torch.equal(resumed_rec.kept[e], full_rec.kept[e]), f"kept set of epoch {e} differs"
    assert torch.equal(resumed_adp._export_scores(), full_adp._export_scores())
    assert resumed_adp._samples_forwarded == full_adp._samples_forwarded
    assert torch.equal(resumed_adp.kept_indices, full_adp.kept_indices)
    if method == "adapruner":
        assert torch.equal(resumed_adp._momentum, full_adp._momentum)
        assert float(resumed_adp._k) == float(full_adp._k)
