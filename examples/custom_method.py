"""A pruning method of your own: keep the samples of highest recent loss. ``python examples/custom_method.py``"""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_adapruner import DataPruning, Observations, PruningMethod


class KeepHardest(PruningMethod):
    def __init__(self) -> None:  # nested=False: every epoch chooses among all samples, not only the last epoch's
        super().__init__(name="keep_hardest", nested=False)
        self.add_state("loss_avg", default=float("inf"))  # one per sample: saved, loaded, moved, gathered for you

    def update(self, observations: Observations) -> None:  # the epoch's per-sample losses, from every rank
        i, loss, old = observations.indices, observations.loss, self.loss_avg[observations.indices]
        self.loss_avg[i] = torch.where(old.isinf(), loss, (old + loss) / 2)  # first loss, then an average

    def plan(self, candidates: torch.Tensor, budget: int, epoch: int) -> torch.Tensor:  # the epoch's samples
        return self.select_top(candidates, budget, self.loss_avg, epoch)


if __name__ == "__main__":  # with examples/tiny_model.py, the smallest LightningModule with the mixin
    from tiny_model import TinyClassifier

    data = TensorDataset(torch.randn(1000, 16), torch.randint(0, 4, (1000,)))
    pruning = DataPruning(KeepHardest(), budget=0.6, export_dir=False)
    trainer = L.Trainer(max_epochs=4, callbacks=[pruning], logger=False, enable_checkpointing=False)
    trainer.fit(TinyClassifier(), DataLoader(data, 50))
    print(f"forwarded {pruning.forwarded_samples} of {4 * len(data)} samples; kept {pruning.kept_indices.numel()}")
