"""A new pruning method in a few lines: keep the samples of highest recent loss (and train any module on it).

    python examples/custom_method.py

The method declares its state (one float per sample), learns from the gathered per-sample losses of each
epoch and plans an epoch's samples from the candidates and a budget; saving, loading, device moves and
multi-process gathering come from the harness. Run under DDP or resume from a checkpoint unchanged.
"""

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_adapruner import DataPruning, Observations, PruningMethod, PruningPerformanceController


class KeepHardest(PruningMethod):
    """Keeps the samples whose last loss is highest; an exponential average smooths it over epochs."""

    name = "keep_hardest"
    nested = False  # every epoch chooses among all samples

    def __init__(self, smoothing: float = 0.5) -> None:
        super().__init__()
        self.smoothing = smoothing
        self.add_state("loss_avg", default=float("inf"))  # unseen samples rank first

    def update(self, observations: Observations) -> None:
        i, loss = observations.indices, observations.loss
        old = self.loss_avg[i]
        self.loss_avg[i] = torch.where(old.isinf(), loss, self.smoothing * old + (1 - self.smoothing) * loss)

    def plan(self, candidates: torch.Tensor, budget: int, epoch: int) -> torch.Tensor:
        return self.select_top(candidates, budget, self.loss_avg, epoch)

    def scores(self) -> torch.Tensor:
        return self.loss_avg.cpu()


class Model(PruningPerformanceController, L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(16, 4)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.pruning_loss(F.cross_entropy(self.net(x), y, reduction="none"))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    data = TensorDataset(torch.randn(1000, 16), torch.randint(0, 4, (1000,)))
    pruning = DataPruning(KeepHardest(), prune_ratio=0.5, export_dir=False)
    L.Trainer(max_epochs=4, callbacks=[pruning], accelerator="cpu", logger=False).fit(Model(), DataLoader(data, 50))
    print(f"kept {pruning.kept_indices.numel()} of {len(data)}; forwarded {pruning.forwarded_samples} samples")
