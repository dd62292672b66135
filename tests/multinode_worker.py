"""One process of a two-"node" fit on this machine, started by ``torchrun --nnodes=2 --nproc-per-node=2``.

    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=K --master-addr=127.0.0.1 --master-port=P \\
        tests/multinode_worker.py OUT

Lightning reads the ranks from torchrun's environment (``Trainer(num_nodes=2, devices=2)``, launching nothing
itself). Each rank writes OUT/rank<r>.pt: its ranks as Lightning saw them, the samples planned for every epoch, the
samples it really forwarded (read from the data), the exported subset and the method's state.
"""

import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import TinyModel, destroy_process_group, loader, random_dataset  # noqa: E402

from lightning_adapruner import AdaPruner, DataPruning  # noqa: E402


class Dump(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.planned = out, {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        record = pl_module.data_pruning.session.record
        self.planned[trainer.current_epoch] = record.order_cpu[: record.num_unique].clone()

    def on_train_end(self, trainer, pl_module) -> None:
        pruning = pl_module.data_pruning
        torch.save(
            {
                "ranks": (trainer.global_rank, trainer.node_rank, trainer.local_rank, trainer.world_size),
                "planned": self.planned,
                "forwarded": {e: torch.cat(v) for e, v in pl_module.seen.items()},
                "kept": pruning.kept_indices.cpu(),
                "state": pruning.method.state_dict(),
            },
            self.out / f"rank{trainer.global_rank}.pt",
        )


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    L.seed_everything(0)
    pruning = DataPruning(AdaPruner(), 0.5, warmup_epochs=1, prune_epochs=2, export_dir=False)
    trainer = L.Trainer(
        accelerator="cpu",
        num_nodes=2,
        devices=2,
        strategy=DDPStrategy(timeout=timedelta(seconds=60)),
        max_epochs=4,
        callbacks=[pruning, Dump(out)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(TinyModel(), loader(random_dataset(400), 16))
    destroy_process_group()


if __name__ == "__main__":
    main()
