"""A 2-process fit with ``BatchSelection`` on one kind of training loader.

    python tests/batch_ddp_worker.py {map,iterable,litdata,hf} OUT [--data DIR] [--rule {loss,random}]
        [--checkpoint-every N] [--resume CKPT]

Lightning's ``ddp`` launcher starts rank 1 by re-running this script. Each item carries its number in the last
feature (``x[-1]``), so each rank records, per step, which samples it scored, their losses and which it trained
on, in OUT/rank<r>.pt. ``litdata`` reads DIR, written by ``litdata.optimize`` beforehand.
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as TF
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, IterableDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import TinyModel, destroy_process_group, random_dataset  # noqa: E402

from lightning_adapruner import BatchSelection  # noqa: E402

N, BATCH = 240, 16


def as_pair(batch):
    """Every loader kind's batch as ``(x, y)``: LitData and Hugging Face deliver dicts."""
    return (batch["x"], batch["y"]) if isinstance(batch, dict) else batch


class Recording(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, torch.Tensor]] = []

    def score(self, batch) -> torch.Tensor:
        x, y = as_pair(batch)
        return TF.cross_entropy(self(x), y, reduction="none")

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            losses = self.score(batch)
        kept = self.select_batch(batch, self.score)
        ids = lambda b: as_pair(b)[0][:, -1].long()  # noqa: E731
        self.steps.append({"epoch": self.current_epoch, "scored": ids(batch), "loss": losses, "trained": ids(kept)})
        return self.score(kept).mean()


class RankStream(IterableDataset):
    """A stream sharded by rank the usual way: rank r takes items r, r + W, ..."""

    def __init__(self, n: int) -> None:
        self.data = random_dataset(n)

    def __iter__(self):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        return (self.data[i] for i in range(rank, len(self.data.targets), world))


def train_loader(kind: str, data: Path | None):
    if kind == "map":
        return DataLoader(random_dataset(N), batch_size=BATCH, shuffle=True)
    if kind == "iterable":
        return DataLoader(RankStream(N), batch_size=BATCH)
    if kind == "litdata":
        import litdata

        return litdata.StreamingDataLoader(litdata.StreamingDataset(str(data), shuffle=True), batch_size=BATCH)
    if kind == "hf":
        from datasets import Dataset
        from datasets.distributed import split_dataset_by_node

        items = random_dataset(N)
        table = Dataset.from_dict({"x": items.x.tolist(), "y": items.targets.tolist()})
        stream = table.to_iterable_dataset(num_shards=4).with_format("torch")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        return DataLoader(split_dataset_by_node(stream, rank=rank, world_size=world), batch_size=BATCH)
    raise ValueError(kind)


class LateLoader(L.LightningDataModule):
    """Builds the loader in the rank's own process, once the process group exists (Hugging Face shards by it)."""

    def __init__(self, kind: str, data: Path | None) -> None:
        super().__init__()
        self.kind, self.data = kind, data

    def train_dataloader(self):
        return train_loader(self.kind, self.data)


class LitDataEpochEnd(L.Callback):
    """LitData 0.2.76 replays a resumed position in the next epoch unless the loader's ``restore`` flag is cleared
    when an epoch ends (litData issues #770, #775; README): the workaround, harmless for other loaders."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        loader = trainer.train_dataloader
        if getattr(loader, "restore", False):
            loader.restore = False


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=("map", "iterable", "litdata", "hf"))
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path)
    p.add_argument("--rule", choices=("loss", "random"), default="loss")
    p.add_argument("--checkpoint-every", type=int, default=0, help="save a checkpoint every N training steps")
    p.add_argument("--resume", type=Path, default=None, help="resume the fit from this checkpoint")
    args = p.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0)
    model = Recording()
    every = args.checkpoint_every
    checkpoints = [ModelCheckpoint(args.out / "ckpt", every_n_train_steps=every, save_top_k=-1)] if every else []
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(timeout=timedelta(seconds=60)),
        max_epochs=2,
        callbacks=[BatchSelection(keep=0.25, rule=args.rule, warmup_steps=2), LitDataEpochEnd(), *checkpoints],
        logger=False,
        enable_checkpointing=bool(checkpoints),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=LateLoader(args.kind, args.data), ckpt_path=args.resume)
    torch.save(model.steps, args.out / f"rank{trainer.global_rank}.pt")
    destroy_process_group()


if __name__ == "__main__":
    main()
