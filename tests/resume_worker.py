"""One fit for the resume tests, run in its own process so it can be SIGKILLed mid-epoch.

    python tests/resume_worker.py OUT [--kill-step S] [--ckpt PATH] [--devices 2] [--method NAME] [--tag TAG]

Writes every step's batch indices to OUT/seen-<tag>-rank<r>.txt (flushed at once) and, at the end of fit,
OUT/rank<r>.pt (DumpPruningState).
"""

import argparse
import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_method_example import KeepHardest  # noqa: E402
from helpers import DumpPruningState, TinyModel, loader, random_dataset, trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from lightning_adapruner import AdaPruner, DataPruning, ForgettingPruning, InfoBatchPruning, RS2Pruning  # noqa: E402

METHODS = {
    "adapruner": AdaPruner,
    "forgetting": ForgettingPruning,
    "infobatch": InfoBatchPruning,
    "rs2": RS2Pruning,
    "keep_hardest": KeepHardest,
}


class SeenLog(L.Callback):
    def __init__(self, out: Path, kill_step: int | None, tag: str) -> None:
        self.out, self.kill_step, self.tag = out, kill_step, tag

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.indices = pl_module.true_indices(batch).tolist()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with open(self.out / f"seen-{self.tag}-rank{trainer.global_rank}.txt", "a") as f:
            f.write(f"{trainer.current_epoch} {trainer.global_step} {' '.join(map(str, self.indices))}\n")
            f.flush()
        if trainer.global_step == self.kill_step:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no checkpoint: as a preempted job


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--kill-step", type=int)
    p.add_argument("--ckpt")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--method", default="adapruner")
    p.add_argument("--tag", default="run")
    args = p.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0)
    args.out.mkdir(parents=True, exist_ok=True)
    cb = DataPruning(METHODS[args.method](), 0.3, warmup_epochs=1, prune_epochs=4, export_dir=str(args.out), seed=7)
    ckpt = ModelCheckpoint(dirpath=args.out / "ckpt", every_n_train_steps=5, save_top_k=-1, filename="{step}")
    t = trainer(
        max_epochs=6,
        devices=args.devices,
        strategy="ddp_fork" if args.devices > 1 else "auto",
        callbacks=[cb, SeenLog(args.out, args.kill_step, args.tag), ckpt, DumpPruningState(args.out)],
        enable_checkpointing=True,
        default_root_dir=args.out,
    )
    t.fit(TinyModel(scheduler="pruned"), loader(random_dataset(2000), 50), ckpt_path=args.ckpt)


if __name__ == "__main__":
    main()
