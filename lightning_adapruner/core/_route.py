"""The Trainer side of :class:`~lightning_adapruner.DataPruning`: the fit's training loader routed through the
pruning sampler, the facts of the fit read from the Trainer, and the status line. Kept apart from the callback
so its hooks stay a guard and one call."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_adapruner.core import _lightning
from lightning_adapruner.core._distributed import collectives_for
from lightning_adapruner.core._loader import LoaderFacts, LoaderInfo, inspect_train_loader, with_sampler
from lightning_adapruner.core.dataset import training_labels
from lightning_adapruner.core.sampler import PruningSampler

if TYPE_CHECKING:  # handed in by the callback: the route drives a session, it does not build one
    from lightning_adapruner.core._epoch import EpochRecord
    from lightning_adapruner.core._session import PruningSession


class TrainLoaderRoute:
    """Hands Lightning, for every epoch, the user's training loader drawing the epoch's planned samples, and starts
    the fit's :class:`~lightning_adapruner.core._session.PruningSession` at its first request.

    Installed for one fit (:meth:`close` undoes it). Lightning re-sizes an epoch only when it reloads the train
    loader, so the route asks it to reload every epoch; it returns the same loader object while the user's own
    ``reload_dataloaders_every_n_epochs`` does not call for a new one, so ``persistent_workers`` keep their
    workers. The data request is a point every rank reaches in step (Lightning's fit loop, no callback hook), so
    the collectives of starting a fit and planning an epoch run there.

    Args:
        trainer: the fit's Trainer.
        session: the fit's session (started here, then asked for every epoch's record).
        owner: the callback's class name, for messages.
        targets: the labels given to the callback, or ``None`` to find them on the dataset.
        seed: the seed given to the callback, or ``None`` to follow ``seed_everything``'s.
    """

    def __init__(
        self, trainer: pl.Trainer, session: PruningSession, owner: str, targets: Tensor | None, seed: int | None
    ) -> None:
        self.trainer, self.session, self.owner, self.targets, self.seed = trainer, session, owner, targets, seed
        self.loader: Any = None
        self._info: LoaderInfo | None = None
        self._sampler: PruningSampler | None = None
        # (the Trainer's data connector sets the attribute at run time: it is in no type stub)
        self._user_reload = trainer.reload_dataloaders_every_n_epochs  # type: ignore[attr-defined]
        self._user_reload_epoch = -1
        trainer.reload_dataloaders_every_n_epochs = 1  # type: ignore[attr-defined]  # the same run-time attribute
        self._uninstall: Callable[[], None] | None = _lightning.install_train_data_hook(trainer, self._provide)

    def close(self) -> None:
        """Give the Trainer back its own data source and reload setting (idempotent)."""
        if self._uninstall is not None:
            self._uninstall()
            self._uninstall = None
            self.trainer.reload_dataloaders_every_n_epochs = self._user_reload  # type: ignore[attr-defined]  # (as above)
        self.loader = None

    def point(self, record: EpochRecord) -> None:
        """Set the sampler to ``record``'s order, from the batch the record has reached (a mid-epoch resume)."""
        if self._sampler is not None:
            self._sampler.set_order(record.order_cpu, record.epoch, start=record.steps * record.batch_size)

    def _provide(self, request: Callable[[], Any]) -> Any:
        epoch = self.trainer.current_epoch
        due = self._user_reload > 0 and epoch - self._user_reload_epoch >= self._user_reload
        if self.loader is None or due:
            user_loader = request()
            info = inspect_train_loader(user_loader, self.owner)
            if self._info is not None and info != self._info:
                raise ValueError(
                    f"the training loader changed during the fit ({self._info} -> {info}): the pruning plan and the "
                    "step count of LR schedules were sized for the first one; keep size, batch size and shuffle"
                )
            first, self._info, self._user_reload_epoch = self._info is None, info, epoch
            if first:
                self._start(user_loader, info)
            trainer = self.trainer
            drop_last = self.session.shard_drop_last
            world, rank = (1, 0) if self.session.sharded else (trainer.world_size, trainer.global_rank)  # (own block)
            self._sampler = PruningSampler([], world, rank, info.shuffle, drop_last=drop_last)
            self.loader = with_sampler(user_loader, self._sampler, _lightning.replace_sampler)
        self.point(self.session.plan(epoch))
        return self.loader

    def _start(self, loader: Any, info: LoaderInfo) -> None:
        trainer, session = self.trainer, self.session
        facts = loader_facts(trainer, loader, info, self.targets, session.class_floor, self.owner)
        if trainer.max_steps != -1 and trainer.ckpt_path is not None:
            rank_zero_warn(
                "resuming a fit that has max_steps set: Lightning may re-enter the last epoch of the checkpoint, "
                "which shifts the pruning schedule by an epoch. Stop fits by max_epochs to resume them exactly"
            )
        seed = int(self.seed if self.seed is not None else os.environ.get("PL_GLOBAL_SEED", 0) or 0)
        session.start(facts, collectives_for(trainer.strategy), int(trainer.strategy.broadcast(seed, src=0)))
        if trainer.ckpt_path is not None and not session.restored:
            rank_zero_warn(
                f"the checkpoint {trainer.ckpt_path} holds no pruning state (saved without {self.owner} or by an older "
                "release): pruning starts afresh, from the epoch the checkpoint resumes"
            )
        record = session.record
        if record is not None and record.steps:
            rank_zero_info(
                f"[{session.method.name}] resuming epoch {record.epoch} at batch {record.steps}: the pruning sampler "
                "continues with the samples not yet forwarded (Lightning's warning about a non-resumable "
                "dataloader does not apply to them)"
            )


def loader_facts(
    trainer: pl.Trainer, loader: Any, info: LoaderInfo, targets: Tensor | None, class_floor: int, owner: str
) -> LoaderFacts:
    """The facts a pruning session plans from: the loader's, the Trainer's limits and the training labels."""
    interval = trainer.val_check_interval
    per_epoch_val = isinstance(interval, int) and trainer.limit_val_batches != 0 and trainer.check_val_every_n_epoch
    return LoaderFacts(
        **vars(info),
        limit_batches=trainer.limit_train_batches,
        max_epochs=int(trainer.max_epochs or 0),
        device=trainer.strategy.root_device,
        labels=training_labels(loader.dataset, info.num_samples, targets, class_floor, owner),
        val_check_batches=int(interval) if per_epoch_val else None,  # check_val_every_n_epoch=None: any goes
        debug_run=bool(getattr(trainer, "fast_dev_run", False)),
    )


def status(trainer: pl.Trainer, message: str, final: bool = False) -> None:
    """A status line on rank 0 that starts on a line of its own, also in a log file beside a progress bar.

    ``final``: the fit's last line, after the progress bars have closed (a closed bar prints nothing): logged
    like Lightning's own "`Trainer.fit` stopped" line.
    """
    bar = trainer.progress_bar_callback
    if not final and bar is not None and trainer.is_global_zero and getattr(bar, "is_enabled", False):
        bar.print(message if sys.stderr.isatty() else "\n" + message)
    else:
        rank_zero_info(message)
