"""``DataPruning``: the callback that prunes a Lightning fit's training data with any :class:`PruningMethod`."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from typing_extensions import override

from lightning_adapruner.core import _lightning
from lightning_adapruner.core import functional as F
from lightning_adapruner.core._checks import check_budget, check_fit, check_int, check_ratio, check_targets
from lightning_adapruner.core._route import TrainLoaderRoute, status
from lightning_adapruner.core._session import PruningSession, ShardedSession
from lightning_adapruner.core.batch import BatchSelection
from lightning_adapruner.core.export import (
    SUBSET_NAME,
    subset_metadata,
    write_pruned_subset,
    write_subset_manifest,
    write_subset_shard,
)
from lightning_adapruner.core.functional.schedule import PruningTarget
from lightning_adapruner.core.method import PruningMethod
from lightning_adapruner.core.metrics import epoch_metrics, epoch_status


class DataPruning(Callback):
    """Prunes the training data of a fit: each epoch draws only the samples ``method`` keeps.

    The callback replaces the training loader's sampler by a :class:`~lightning_adapruner.PruningSampler`, so
    pruned samples are never loaded or forwarded, and knows from its order which dataset indices every batch
    holds: the user's batches, datamodule and ``train_dataloader()`` stay as they are. The keep share follows
    one schedule for every method (``warmup_epochs`` on full data, then down to ``1 - p`` over ``prune_epochs``),
    so methods compared at one ``prune_ratio`` or ``budget`` forward the same number of samples; pruned epochs hold
    whole batches (:func:`~lightning_adapruner.functional.epoch_sample_counts`).
    :class:`~lightning_adapruner.PruningPerformanceController`'s ``pruning_loss`` hands each batch's per-sample
    losses to it. At the end of fit it keeps exactly ``round((1 - p) * N)`` samples and writes them to
    ``<export_dir>/pruned_subset.{json,pt}``.

    Give one of ``prune_ratio`` and ``budget``. A **budget** is what saves compute predictably: the fit forwards
    exactly ``budget`` times what full data would over ``max_epochs`` (the schedule's target ratio follows), so
    compare it with full data for ``round(budget * max_epochs)`` epochs, the free alternative. A **prune ratio**
    fixes how much of the data the final epochs keep; the fit then forwards more than ``1 - p`` of full data's
    samples (the warm-up and step-down epochs), reported as ``adp/saved_share``.

    Args:
        method: the pruning method (:mod:`lightning_adapruner.methods`, or your own :class:`PruningMethod`).
        prune_ratio: ``p`` in ``[0, 1)``, the share of training samples removed once the schedule has reached it.
        budget: in ``(0, 1]``, the share of full data's samples the fit forwards (instead of ``prune_ratio``).
        warmup_epochs: epochs on full data before the first cut.
        prune_epochs: epochs over which the keep share steps down; ``None``: half the epochs after warm-up.
        schedule: shape of the step-down: ``"linear"``, ``"cosine"``, ``"exponential"`` or ``"step"``.
        class_floor: every class keeps at least this many samples (needs labels).
        targets: class label of every training sample; ``None`` finds them on the dataset (``targets`` or
            ``labels``, through ``Subset``/``random_split``/``ConcatDataset`` and wrappers).
        seed: seeds every draw (the epoch orders, ties, random picks), the same on every rank; ``None`` follows
            the global seed of ``seed_everything`` (0 without one).
        drop_last: drop the ``K % world_size`` remainder of an epoch instead of topping shards up.
        export_dir: where the kept subset is written; ``None``: ``trainer.default_root_dir``; ``False``: nowhere.
        verbose: print a one-line pruning status per epoch on rank 0.
        sharded: each process holds the per-sample state of its own ``N / W`` samples instead of all ``N`` (for
            datasets whose replicated state would not fit; see the README). The cuts are those of a replicated fit
            holding the same scores; each rank forwards mostly its own samples; checkpoints write a file per rank
            under ``<default_root_dir>/pruning_state``; the export is one file per rank and a manifest
            ``pruned_subset.json`` that :func:`~lightning_adapruner.load_pruned_subset` reads. Methods whose plan
            cuts through ``select_top`` (AdaPruner's sampler mode, EL2N, forgetting, static random, your own); not
            ``class_floor`` or a method that weighs the loss (``weighs_loss``: AdaPruner's soft mode, InfoBatch).

    Raises:
        ValueError / TypeError: for an argument out of range, naming it, the allowed values and the value given.

    Example::

        >>> from lightning_adapruner import RandomPruning
        >>> pruning = DataPruning(RandomPruning(), prune_ratio=0.3)
        >>> pruning.method.name, pruning.keep_fraction, DataPruning(RandomPruning(), budget=0.6).budget
        ('random', 0.7, 0.6)
    """

    def __init__(
        self,
        method: PruningMethod,
        prune_ratio: float | None = None,
        warmup_epochs: int = 1,
        prune_epochs: int | None = None,
        schedule: F.ScheduleShape = "linear",
        class_floor: int = 0,
        targets: Tensor | None = None,
        seed: int | None = None,
        drop_last: bool = False,
        export_dir: str | Path | bool | None = None,
        verbose: bool = True,
        budget: float | None = None,
        sharded: bool = False,
    ) -> None:
        if isinstance(method, type) and issubclass(method, PruningMethod):
            raise TypeError(f"method must be a PruningMethod instance: pass {method.__name__}(), not the class")
        if not isinstance(method, PruningMethod):
            raise TypeError(f"method must be a PruningMethod (lightning_adapruner.AdaPruner(), ...), got {method!r}")
        self.method = method
        target = PruningTarget(
            None if prune_ratio is None else check_ratio(prune_ratio), None if budget is None else check_budget(budget)
        )
        if budget is not None and method.forward_all:
            raise ValueError(
                f"{type(method).__name__} forwards every sample every epoch (soft mode), so a budget cannot be met: "
                "give prune_ratio instead"
            )
        if schedule not in F.SCHEDULE_SHAPES:
            raise ValueError(f"schedule must be one of {F.SCHEDULE_SHAPES}, got {schedule!r}")
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, minimum=0)
        self.prune_epochs = None if prune_epochs is None else check_int("prune_epochs", prune_epochs, minimum=1)
        self.class_floor = check_int("class_floor", class_floor, minimum=0)
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self.schedule: F.ScheduleShape = schedule
        self.targets = None if targets is None else check_targets(targets, type(self).__name__)
        self.drop_last, self.export_dir, self.verbose = bool(drop_last), export_dir, bool(verbose)
        self._kept_indices: Tensor | None = None  # the exported subset, after fit
        self._export_path: Path | None = None
        self._result: dict[str, Any] | None = None  # what the fit left for the launching process
        # a spawning or forking strategy fits in other processes: rank 0 leaves the results for this one
        self._handoff = Path(tempfile.gettempdir()) / f"lightning_adapruner-{os.getpid()}-{uuid.uuid4().hex}.pt"
        self._creator_pid = os.getpid()
        self._claimed = False  # a fit has set this callback up (see state_key)
        if sharded and (self.class_floor or method.weighs_loss):
            what = "class_floor (a per-class count" if self.class_floor else f"{method.name}'s loss_weights (a rule"
            raise ValueError(
                f"sharded=True does not support {what} over every sample no rank holds): use sharded=False"
            )
        self._session = (ShardedSession if sharded else PruningSession)(
            method, target, self.warmup_epochs, self.prune_epochs, schedule, self.class_floor, self.drop_last
        )
        self._route: TrainLoaderRoute | None = None

    # ------------------------------------------------------------------ public
    @property
    def session(self) -> PruningSession:
        """The fit's pruning, Lightning-free: the state, the plans, the step (``pruning_loss`` hands it each batch);
        this callback only adapts Lightning's hooks to it."""
        return self._session

    @property
    def target(self) -> PruningTarget:
        """What the fit is asked to save: the ``prune_ratio`` or the ``budget`` given."""
        return self._session.target

    @property
    def state_key(self) -> str:
        """One key whatever the class, method or ratio: one pruning callback drives a fit, and a resume with other
        settings must reach the checkpoint's state to refuse it clearly instead of silently starting afresh.

        Until a fit claims the callback (its ``setup``) the key is the instance's own, so Lightning's duplicate-key
        check at ``Trainer(...)`` lets two pruning callbacks through to the clear error of ``setup`` ("keep one")
        instead of a hint about ``state_key``; checkpoints are saved and restored after ``setup``."""
        return "DataPruning" if self._claimed else f"DataPruning[unclaimed {id(self):x}]"

    @property
    def prune_ratio(self) -> float | None:
        """``p``: the one given, or with a ``budget`` the ratio its schedule reaches (``None`` until the fit starts)."""
        if self.target.prune_ratio is not None:
            return self.target.prune_ratio
        return self._session.schedule.prune_ratio if self._session.started else self._launched_result("prune_ratio")

    @property
    def budget(self) -> float | None:
        """The share of full data's samples the fit forwards, when given (``None`` for a ``prune_ratio`` fit)."""
        return self.target.budget

    @property
    def keep_fraction(self) -> float | None:
        """``r = 1 - prune_ratio`` (``None`` while a budget's ratio is not known)."""
        p = self.prune_ratio
        return None if p is None else 1.0 - p

    @property
    def kept_indices(self) -> Tensor | None:
        """The exported subset's dataset indices (sorted), after fit; ``None`` before. Also set in the process that
        launched a ``ddp_spawn``/``ddp_fork`` fit, whose training ran in other processes."""
        return self._kept_indices if self._kept_indices is not None else self._launched_result("kept")

    @property
    def export_path(self) -> Path | None:
        """Where the subset was written (``<export_dir>/pruned_subset.json``), after fit; ``None`` before or with
        ``export_dir=False``."""
        return self._export_path if self._export_path is not None else self._launched_result("export_path")

    @property
    def forwarded_samples(self) -> int:
        """Samples forwarded so far in this fit, on all ranks (0 before the fit starts)."""
        session = self._session
        if not session.started:
            return int(self._launched_result("forwarded") or 0)
        return session.ledger.forwarded + (session.record.forwarded() if session.record is not None else 0)

    @property
    def saved_share(self) -> float:
        """``1 - forwarded / what full data would have forwarded`` over the epochs closed so far."""
        if not self._session.started:
            return float(self._launched_result("saved_share") or 0.0)
        return self._session.ledger.saved_share

    @property
    def batch_indices(self) -> Tensor:
        """Dataset indices of the current training batch's samples, in batch order (an int32 or int64 view on the
        state's device; do not modify it), from ``on_train_batch_start`` through every callback's
        ``on_train_batch_end``."""
        record, route = self._session.record, self._route
        step = -1 if record is None or route is None else _lightning.batch_in_epoch(route.trainer)
        if record is None or not 0 <= step < record.num_batches:
            raise RuntimeError(
                f"{type(self).__name__}.batch_indices is defined from on_train_batch_start to on_train_batch_end"
            )
        return record.indices(step)

    def estimated_stepping_batches(self, trainer: pl.Trainer) -> int | float:
        """Optimiser steps the whole fit takes under the pruning schedule: size step-based LR schedulers with it.

        Lightning's ``trainer.estimated_stepping_batches`` assumes every epoch is full-size, so a scheduler sized
        by it would never finish its cycle; one sized by this ends exactly at the last step.
        """
        full = trainer.estimated_stepping_batches  # prepares the train dataloader, and so the plan
        if trainer.max_epochs in (None, -1) or full == float("inf") or not self._session.started:
            return full
        return F.stepping_batches(self._session.planned_batches, trainer.accumulate_grad_batches, trainer.max_steps)

    # ------------------------------------------------------------------ hooks
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._begin_fit(trainer, pl_module)

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._end_fit(trainer)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._session.end_batch(returned_loss=_has_loss(outputs))

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._export(trainer)

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._end_fit(trainer)  # Lightning skips teardown after an exception: leave the trainer as it was

    @override
    def state_dict(self) -> dict[str, Any]:
        return self._session.state_dict()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._session.load_state_dict(state_dict)
        if self._route is not None and self._route.loader is not None and self._session.record is not None:
            self._route.point(self._session.record)  # restored after the loader was made (FSDP, DeepSpeed)

    # ------------------------------------------------------------------ workers
    def _begin_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check_fit(trainer, pl_module, self, (DataPruning, BatchSelection))
        self._claimed = True
        self._session.stop()  # a fresh fit starts from fresh state (a checkpoint is restored after)
        self._kept_indices, self._export_path, self._result = None, None, None
        self._fit_start = time.perf_counter()
        self._route = TrainLoaderRoute(trainer, self._session, type(self).__name__, self.targets, self.seed)
        if isinstance(self._session, ShardedSession):
            self._session.shard_dir = Path(trainer.default_root_dir) / "pruning_state"

    def _end_fit(self, trainer: pl.Trainer) -> None:
        if self._route is not None:
            self._route.close()
            self._route = None

    def _close_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        session = self._session
        if session.record is None:
            return
        epoch, kept = session.record.epoch, session.record.num_unique
        session.close()
        metrics, method_metrics = epoch_metrics(session, epoch, kept)
        # identical on every rank, so nothing to reduce: rank_zero_only makes Lightning skip the all-reduce it would
        # otherwise run when a progress bar computes the epoch's metrics, on rank 0 alone, in its epoch-end hook
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True, rank_zero_only=True)
        if self.verbose:
            status(trainer, epoch_status(session, epoch, metrics, method_metrics))

    def _export(self, trainer: pl.Trainer) -> None:
        session = self._session
        if not session.started:
            return
        epoch = trainer.current_epoch
        self._kept_indices = session.finish(epoch)  # (sharded: this rank's part)
        n, k = session.facts.num_samples, self._kept_indices.numel()
        debug = getattr(trainer, "fast_dev_run", False)  # (set on the Trainer by Lightning's debugging flags)
        base = Path(self.export_dir if isinstance(self.export_dir, (str, Path)) else trainer.default_root_dir)
        if session.sharded:
            k = F.num_kept(n, session.schedule.keep_fraction)
            if not debug and self.export_dir is not False:
                part = (self._kept_indices, session.method.scores(), session.last_epoch)
                write_subset_shard(base / SUBSET_NAME, session.comm.rank, session.comm.world_size, n, *part)
        if not trainer.is_global_zero:
            return
        if debug:
            message = "fast_dev_run: the subset is not exported (a cut after a few batches would rest on no evidence)"
        else:
            if self.export_dir is not False:
                metadata = subset_metadata(
                    self.method, k if session.sharded else self._kept_indices, n, session.schedule.prune_ratio,
                    session.seed, session.ledger, None if session.sharded else session.facts.labels,
                    budget_target=self.budget,
                    epochs_completed=_lightning.epochs_completed(trainer),
                    max_epochs=session.facts.max_epochs,
                    nonfinite_losses=session.nonfinite_total,
                    fit_time_s=round(time.perf_counter() - self._fit_start, 3),
                )  # fmt: skip
                if session.sharded:
                    self._export_path = write_subset_manifest(base / SUBSET_NAME, session.comm.world_size, metadata)
                else:
                    kept, scores = self._kept_indices, session.method.scores()
                    self._export_path = write_pruned_subset(
                        base / SUBSET_NAME, kept, scores, metadata, session.last_epoch
                    )
            where = f"written to {self._export_path}" if self._export_path else "no export (export_dir=False)"
            message = f"kept {k} of {n} samples (realised prune ratio {(n - k) / n:.4f}); {where}"
        budget = "" if self.budget is None else f", budget {self.budget:.4f}"
        status(
            trainer,
            f"[{self.method.name}] {session.ledger.forwarded} samples forwarded, {1 - session.ledger.saved_share:.4f} "
            f"of full data's{budget} ({session.ledger.saved_share:.1%} saved), prune ratio target "
            f"{session.schedule.prune_ratio:.4f}; {message}",
            final=True,
        )
        if os.getpid() != self._creator_pid:  # a spawned or forked rank 0: leave the results for the launcher
            result = {
                "kept": self._kept_indices.cpu(),
                "export_path": None if self._export_path is None else str(self._export_path),
                "forwarded": session.ledger.forwarded,
                "saved_share": session.ledger.saved_share,
                "prune_ratio": session.schedule.prune_ratio,
            }
            partial = self._handoff.with_suffix(".part")
            torch.save(result, partial)
            os.replace(partial, self._handoff)  # whole or absent, never half-written

    def _launched_result(self, key: str) -> Any:
        """``key`` of the results a fit in other processes (ddp_spawn, ddp_fork) left for this one, else ``None``.
        The file is read (and removed) whenever a fit has left one, so a second fit replaces the first's."""
        if os.getpid() == self._creator_pid and self._handoff.is_file():
            self._result = torch.load(self._handoff, weights_only=True)
            self._handoff.unlink(missing_ok=True)
            if self._result.get("export_path") is not None:
                self._result["export_path"] = Path(self._result["export_path"])
        return None if self._result is None else self._result.get(key)


def _has_loss(outputs: Any) -> bool:
    """Whether ``training_step`` returned a loss (``None`` is Lightning's documented way to skip a batch)."""
    return outputs.get("loss") is not None if isinstance(outputs, Mapping) else outputs is not None  # (a tensor: yes)
