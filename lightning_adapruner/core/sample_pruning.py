"""``SamplePruning``: the harness every pruning method shares (sampler, schedule, DDP gather, resume, export)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.connectors.data_connector import _DataLoaderSource
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.data import _is_dataloader_shuffled, _update_dataloader
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.controller import PruningPerformanceController
from lightning_adapruner.core.dataset import infer_targets
from lightning_adapruner.core.export import SUBSET_NAME, write_pruned_subset
from lightning_adapruner.core.sampler import PruningSampler

log = logging.getLogger(__name__)


class _PruningDataSource(_DataLoaderSource):
    """The fit loop's train-dataloader source, passed through the callback on every (re)load."""

    def __init__(self, original: _DataLoaderSource, callback: SamplePruning, trainer: pl.Trainer) -> None:
        super().__init__(original.instance, original.name)
        self.original = original
        self.callback = callback
        self.trainer = trainer

    def dataloader(self) -> Any:
        return self.callback._on_train_dataloader(self.trainer, super().dataloader())


class SamplePruning(Callback):
    """Base of the pruning callbacks: decides per epoch which samples the training sampler draws.

    It owns everything the methods share, so they are compared in one harness: the
    :class:`PruningSampler` injected through the fit loop's data source (pruned samples are never
    loaded), the keep-share schedule (``warmup_epochs`` on full data, then down to
    ``1 - prune_ratio`` over ``prune_epochs``), the per-step gather of ``(index, loss, stats)`` from
    all ranks, resume, logging and the export of the kept subset. A method implements
    :meth:`_plan` (which samples an epoch keeps) and, as needed, :meth:`_step` (learn from a
    gathered batch), :meth:`_network_loss`, :meth:`_sample_stats` and the ``_*_state`` hooks.

    Args:
        prune_ratio: ``p`` in ``[0, 1)``, the share of training samples removed at the end.
        warmup_epochs: epochs on full data before the first cut.
        prune_epochs: epochs over which the keep share steps down to the target; ``None`` uses half
            of the epochs after warm-up (at least one).
        schedule: shape of the step-down: ``"linear"``, ``"cosine"``, ``"exponential"`` or ``"step"``.
        class_floor: with known labels, every class keeps at least this many samples.
        seed: seeds tie-breaks, random draws and the sampler's shuffle; the same on every rank.
        drop_last: drop the ``K % world_size`` remainder of an epoch instead of topping shards up.
        export_dir: where to write the kept subset; ``None`` uses the trainer's log dir; ``False``
            writes nothing.
        verbose: print a one-line pruning status per epoch on rank 0.
    """

    name = "pruning"
    forward_all = False  # True: every sample is forwarded each epoch (the user's sampler is kept)
    nested = True  # True: an epoch chooses among the previous epoch's kept samples only
    stats_dim = 0  # per-sample statistics gathered besides the loss (see `_sample_stats`)

    def __init__(
        self,
        prune_ratio: float,
        warmup_epochs: int = 1,
        prune_epochs: int | None = None,
        schedule: F.ScheduleShape = "linear",
        class_floor: int = 0,
        seed: int = 0,
        drop_last: bool = False,
        export_dir: str | Path | bool | None = None,
        verbose: bool = True,
    ) -> None:
        if not (isinstance(prune_ratio, (int, float)) and 0.0 <= prune_ratio < 1.0):
            raise ValueError(
                f"prune_ratio must be a number in [0, 1) (the share of samples removed), got {prune_ratio!r}"
            )
        if schedule not in F.SCHEDULE_SHAPES:
            raise ValueError(f"schedule must be one of {F.SCHEDULE_SHAPES}, got {schedule!r}")
        for name, value in (("warmup_epochs", warmup_epochs), ("class_floor", class_floor)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if prune_epochs is not None and (not isinstance(prune_epochs, int) or prune_epochs < 1):
            raise ValueError(f"prune_epochs must be an int >= 1 or None, got {prune_epochs!r}")
        self.prune_ratio = float(prune_ratio)
        self.warmup_epochs = warmup_epochs
        self.prune_epochs = prune_epochs
        self.schedule: F.ScheduleShape = schedule
        self.class_floor = class_floor
        self.seed = seed
        self.drop_last = drop_last
        self.export_dir = export_dir
        self.verbose = verbose

        self.num_samples: int | None = None
        self.kept_indices: Tensor | None = None  # the final kept subset, set at the end of fit
        self.export_path: Path | None = None
        self._device = torch.device("cpu")
        self._sampler: PruningSampler | None = None
        self._labels: Tensor | None = None
        self._stash: dict[str, Any] | None = None
        self._pending: list[tuple[Tensor, Tensor, Tensor | None]] = []
        self._batch_size: int | None = None
        self._dl_drop_last = False
        self._full_batches: int | None = None
        self._world_size = 1
        self._max_epochs = 1
        self._original_source: _DataLoaderSource | None = None
        self._original_reload: int | None = None
        self._check_indices = True
        self._fit_start_time = 0.0

    # ------------------------------------------------------------------ public
    @property
    def keep_fraction(self) -> float:
        """``r = 1 - prune_ratio``."""
        return 1.0 - self.prune_ratio

    @property
    def state_key(self) -> str:
        return self._generate_state_key(prune_ratio=self.prune_ratio, method=self.name)

    def keep_share(self, epoch: int) -> float:
        """Target share of the dataset forwarded in ``epoch``."""
        if self.forward_all:
            return 1.0
        return F.keep_share_at(epoch, self.prune_ratio, self.warmup_epochs, self._prune_epochs(), self.schedule)

    def planned_batches(self, trainer: pl.Trainer) -> list[int]:
        """Training batches per epoch on this rank, for every epoch of the fit, under the schedule."""
        n = self._require_num_samples()
        batches = []
        for epoch in range(self._max_epochs):
            k = F.num_kept(n, self.keep_share(epoch))
            if self._batch_size is None:  # a custom batch sampler: scale the full-data count
                assert self._full_batches is not None
                b = self._full_batches if k == n else max(1, round(self._full_batches * k / n))
            else:  # our sampler, or Lightning's DistributedSampler (forward_all): same padding rule
                drop_shard = self.drop_last and not self.forward_all
                b = F.batches_per_epoch(k, self._world_size, self._batch_size, self._dl_drop_last, drop_shard)
            batches.append(F.limit_batches(b, trainer.limit_train_batches))
        return batches

    def estimated_stepping_batches(self, trainer: pl.Trainer) -> int | float:
        """Optimiser steps the whole fit takes under the pruning schedule (size LR schedulers with it).

        Lightning's ``trainer.estimated_stepping_batches`` assumes every epoch is full-size, so a
        step-based scheduler sized by it would never finish its cycle; one sized by this matches
        the steps actually taken.
        """
        full = trainer.estimated_stepping_batches  # loads the train dataloader if needed
        if trainer.max_epochs in (None, -1) or full == float("inf"):
            return full
        return F.stepping_batches(self.planned_batches(trainer), trainer.accumulate_grad_batches, trainer.max_steps)

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        cls = type(self).__name__
        if not isinstance(pl_module, PruningPerformanceController):
            raise TypeError(
                f"{cls} needs the LightningModule to mix in PruningPerformanceController, but "
                f"{type(pl_module).__name__} does not. Fix: `class {type(pl_module).__name__}"
                "(PruningPerformanceController, LightningModule)` and return "
                "`self.pruning_loss(per_sample_loss, batch_indices)` from training_step."
            )
        other = pl_module._adaptive_pruning
        if other is not None and other is not self and other in trainer.callbacks:
            raise ValueError(f"only one pruning callback can drive a LightningModule; remove {type(other).__name__}")
        if trainer.max_epochs is None or trainer.max_epochs < 1:
            raise ValueError(
                f"{cls} schedules pruning by epoch and needs a finite number of epochs; "
                f"pass Trainer(max_epochs=...) (got max_epochs={trainer.max_epochs})"
            )
        self._max_epochs = trainer.max_epochs
        self._world_size = trainer.world_size
        if not self.forward_all and self._max_epochs <= self.warmup_epochs and self.prune_ratio > 0:
            rank_zero_warn(
                f"max_epochs={self._max_epochs} <= warmup_epochs={self.warmup_epochs}: no epoch is pruned during "
                "training (the kept subset is still exported at the end). Lower warmup_epochs or train longer."
            )
        pl_module._adaptive_pruning = self
        self._pending.clear()
        fit_loop = trainer.fit_loop
        if not isinstance(fit_loop._data_source, _PruningDataSource):
            self._original_source = fit_loop._data_source
            fit_loop._data_source = _PruningDataSource(fit_loop._data_source, self, trainer)
        if not self.forward_all and trainer.reload_dataloaders_every_n_epochs != 1:
            self._original_reload = trainer.reload_dataloaders_every_n_epochs
            trainer.reload_dataloaders_every_n_epochs = 1
            log.info("%s set reload_dataloaders_every_n_epochs=1 so epochs can shrink", cls)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if self._original_source is not None:
            trainer.fit_loop._data_source = self._original_source
            self._original_source = None
        if self._original_reload is not None:
            trainer.reload_dataloaders_every_n_epochs = self._original_reload
            self._original_reload = None
        if isinstance(pl_module, PruningPerformanceController) and pl_module._adaptive_pruning is self:
            pl_module._adaptive_pruning = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start_time = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._apply_stash()
        self._sync_plan(trainer, trainer.current_epoch)
        self._check_indices = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if not self._pending:
            raise RuntimeError(
                f"training_step did not call `self.pruning_loss(per_sample_loss, indices)`, so {type(self).__name__} "
                "has nothing to learn from. Return `self.pruning_loss(...)` from training_step on every batch."
            )
        self._update(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = self._epoch_metrics(trainer)
        pl_module.log_dict({f"adp/{k}": float(v) for k, v in metrics.items()}, on_step=False, on_epoch=True)
        if self.verbose:
            extra = ", ".join(f"{k}={v:.3g}" for k, v in metrics.items() if k not in _STATUS_KEYS)
            rank_zero_info(
                f"[{self.name}] epoch {trainer.current_epoch}: kept {metrics['keep_share']:.3f} of the data "
                f"(target {metrics['keep_share_target']:.3f}), forwarded {int(metrics['samples_forwarded'])} "
                f"samples so far ({metrics['saved_share']:.1%} saved)" + (f", {extra}" if extra else "")
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        n = self._require_num_samples()
        epoch = trainer.current_epoch
        k = F.num_kept(n, self.keep_fraction)
        self.kept_indices = self._final_selection(self._candidates(), k, epoch)
        if self.export_dir is False or not trainer.is_global_zero:
            return
        base = self.export_dir if isinstance(self.export_dir, (str, Path)) else trainer.log_dir
        base = Path(base if base is not None else trainer.default_root_dir)
        self.export_path = write_pruned_subset(
            base / SUBSET_NAME, self.kept_indices, self._export_scores(), self._export_metadata(trainer, epoch)
        )
        rank_zero_info(
            f"[{self.name}] kept {k} of {n} samples (prune ratio target {self.prune_ratio:.4f}, realised "
            f"{1 - k / n:.4f}); subset written to {self.export_path}"
        )

    def state_dict(self) -> dict[str, Any]:
        if self.num_samples is None:
            return {}
        return {
            "version": 1,
            "method": self.name,
            "num_samples": self.num_samples,
            "prune_ratio": self.prune_ratio,
            "steps": self._steps,
            "nonfinite": int(self._nonfinite),
            "samples_forwarded": self._samples_forwarded,
            "plan_epoch": self._plan_epoch,
            "kept": None if self._sampler is None else self._sampler.indices.clone(),
            **self._state_to_save(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # restore happens after `setup`; only stash here, apply once the dataset size is known
        self._stash = dict(state_dict) if state_dict else None

    # ------------------------------------------------------------------ method hooks
    def _init_state(self, n: int, device: torch.device) -> None:
        """Create the method's per-sample state for ``n`` samples on ``device``."""

    def _move_state(self, device: torch.device) -> None:
        """Move the method's state to ``device``."""

    def _state_to_save(self) -> dict[str, Any]:
        return {}

    def _load_state(self, stash: dict[str, Any], device: torch.device) -> None:
        """Apply the method's part of a restored ``state_dict``."""

    def _sample_stats(self, per_sample_loss: Tensor, outputs: Tensor | None, targets: Tensor | None) -> Tensor | None:
        """Per-sample statistics ``[B, stats_dim]`` a method needs besides the loss (computed on each rank)."""
        return None

    def _network_loss(self, per_sample_loss: Tensor, idx: Tensor) -> Tensor:
        """The loss the network is trained on (plain mean unless a method re-weights)."""
        return per_sample_loss.mean()

    def _step(self, trainer: pl.Trainer, idx: Tensor, loss: Tensor, stats: Tensor | None) -> None:
        """Learn from one gathered batch (all ranks' samples, same order on every rank)."""

    def _finish_epoch(self, epoch: int) -> None:
        """Epoch-end work for ``epoch``; runs lazily when the next epoch is planned."""

    def _plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        """Sorted dataset indices forwarded in ``epoch``: ``budget`` of them, chosen among ``candidates``."""
        raise NotImplementedError

    def _final_selection(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        """The exported subset of ``k`` samples at the end of fit."""
        return self._plan(candidates, k, epoch)

    def _export_scores(self) -> Tensor:
        """Per-sample scores written beside the kept indices (the learned logits for AdaPruner)."""
        return torch.zeros(self._require_num_samples())

    def _extra_metrics(self) -> dict[str, float]:
        return {}

    # ------------------------------------------------------------------ PPC entry point
    def _controller_loss(
        self,
        per_sample_loss: Tensor,
        indices: Tensor,
        outputs: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> Tensor:
        """The network's loss; records the detached pairs (and statistics) for the method."""
        if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.dtype == torch.bool:
            raise TypeError(
                "pruning_loss needs the batch's dataset indices as an integer tensor, got "
                f"{type(indices).__name__ if not isinstance(indices, Tensor) else indices.dtype}. Wrap your training "
                "dataset in lightning_adapruner.IndexedDataset and pass `batch.index` (`idx, (x, y) = batch`)."
            )
        if per_sample_loss.ndim != 1 or indices.ndim != 1 or indices.numel() != per_sample_loss.numel():
            raise ValueError(
                f"pruning_loss needs one loss per sample: per_sample_loss has shape {tuple(per_sample_loss.shape)} "
                f"and indices {tuple(indices.shape)}; compute the loss with reduction='none' (reduce the "
                "non-batch dimensions yourself) and pass the batch's dataset indices"
            )
        idx = indices.to(self._device, non_blocking=True)
        if self._check_indices:
            self._validate_indices(idx)
        stats = self._sample_stats(per_sample_loss.detach(), outputs, targets) if self.stats_dim else None
        self._pending.append((idx, per_sample_loss.detach(), stats))
        return self._network_loss(per_sample_loss, idx)

    def _validate_indices(self, idx: Tensor) -> None:
        n = self._require_num_samples()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise IndexError(
                f"batch indices span [{int(idx.min())}, {int(idx.max())}] but the training set has {n} samples: "
                "pass dataset indices (IndexedDataset's `batch.index`), not positions in the batch"
            )
        if not self.forward_all and self._sampler is not None:
            drawn = torch.isin(idx.cpu(), self._sampler.indices.long())
            if not bool(drawn.all()):
                raise ValueError(
                    "pruning_loss got indices of samples the pruning sampler did not draw this epoch: the indices do "
                    "not match the batch's samples. Pass the dataset indices carried by the batch (wrap the dataset "
                    "in IndexedDataset and use `batch.index`), not positions in the batch."
                )
        self._check_indices = False

    # ------------------------------------------------------------------ workers
    def _on_train_dataloader(self, trainer: pl.Trainer, dataloader: Any) -> Any:
        cls = type(self).__name__
        if not isinstance(dataloader, DataLoader):
            raise TypeError(
                f"{cls} supports one training DataLoader, got "
                f"{type(dataloader).__name__}; return a single torch.utils.data.DataLoader from train_dataloader()"
            )
        try:
            n = len(dataloader.dataset)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"the training dataset ({type(dataloader.dataset).__name__}) has no __len__: {cls} "
                "keys its state by dataset index and needs a map-style dataset; wrap it in IndexedDataset"
            ) from None
        self._world_size = trainer.world_size
        self._batch_size = dataloader.batch_size
        self._dl_drop_last = bool(dataloader.drop_last)
        if self._full_batches is None or self.num_samples != n:
            self._full_batches = len(dataloader)
        self._ensure_state(trainer, n, dataloader)
        self._apply_stash()
        self._sync_plan(trainer, trainer.current_epoch)
        if self.forward_all:
            return dataloader
        sampler = self._get_sampler()
        sampler.shuffle = _is_dataloader_shuffled(dataloader)
        sampler.num_replicas, sampler.rank = trainer.world_size, trainer.global_rank
        return _update_dataloader(dataloader, sampler, mode=RunningStage.TRAINING)

    def _ensure_state(self, trainer: pl.Trainer, n: int, dataloader: DataLoader) -> None:
        device = trainer.strategy.root_device
        if self.num_samples == n and self._device == device:
            return
        k_final = F.num_kept(n, self.keep_fraction)
        if k_final < max(1, self._world_size):
            raise ValueError(
                f"prune_ratio={self.prune_ratio} keeps {k_final} of {n} samples, fewer than the {self._world_size} "
                f"process(es): a rank would get no samples. Use prune_ratio <= {1 - self._world_size / n:.4f}."
            )
        self._device = device
        if self.num_samples == n:  # device changed: move the state
            self._nonfinite = self._nonfinite.to(device)
            self._move_state(device)
            return
        self.num_samples = n
        self._steps = 0
        self._nonfinite = torch.zeros((), dtype=torch.long, device=device)
        self._samples_forwarded = 0
        self._plan_epoch = -1
        labels = infer_targets(dataloader.dataset)
        self._labels = None if labels is None else labels.to(torch.int16 if int(labels.max()) < 2**15 else torch.long)
        if self._labels is None and self.class_floor > 0:
            raise ValueError(
                "class_floor needs the training labels: use a dataset with a `targets` attribute or "
                "IndexedDataset(dataset, targets=labels)"
            )
        self._init_state(n, device)
        self._init_schedule(trainer)

    def _init_schedule(self, trainer: pl.Trainer) -> None:
        """Hook for methods whose per-step schedule depends on the planned number of batches."""

    def _apply_stash(self) -> None:
        stash = self._stash
        if not stash or self.num_samples is None:
            return
        if stash["num_samples"] != self.num_samples:
            raise ValueError(
                f"the checkpoint's {type(self).__name__} state is for a training set of {stash['num_samples']} "
                f"samples, but this training set has {self.num_samples}: resume with the dataset the checkpoint "
                "was made with, or start a new run without ckpt_path"
            )
        self._stash = None
        self._steps = int(stash["steps"])
        self._nonfinite = torch.tensor(stash.get("nonfinite", 0), dtype=torch.long, device=self._device)
        self._samples_forwarded = int(stash.get("samples_forwarded", 0))
        self._plan_epoch = int(stash.get("plan_epoch", -1))
        kept = stash.get("kept")
        if kept is not None and not self.forward_all:
            self._get_sampler().set_indices(kept)
        self._load_state(stash, self._device)

    def _get_sampler(self) -> PruningSampler:
        if self._sampler is None:
            n = self._require_num_samples()
            dtype = torch.int32 if n < 2**31 else torch.long
            self._sampler = PruningSampler(
                torch.arange(n, dtype=dtype), self._world_size, 0, seed=self.seed, drop_last=self.drop_last
            )
        return self._sampler

    def _candidates(self) -> Tensor:
        if self.nested and self._sampler is not None:
            return self._sampler.indices.long()
        return torch.arange(self._require_num_samples())

    def _sync_plan(self, trainer: pl.Trainer, epoch: int) -> None:
        """Finish the epochs before ``epoch`` and select ``epoch``'s kept set (forward only, idempotent)."""
        if self.num_samples is None or epoch <= self._plan_epoch:
            return
        if self._plan_epoch >= 0:
            self._finish_epoch(self._plan_epoch)
            nonfinite = int(self._nonfinite)
            if nonfinite:
                rank_zero_warn(
                    f"{nonfinite} per-sample loss(es) in epoch {self._plan_epoch} were NaN or inf; they were left out "
                    "of the pruning statistics (unchanged for those samples). Check the model's loss for instabilities."
                )
            self._steps = 0
            self._nonfinite.zero_()
        self._check_consistency(trainer)
        if not self.forward_all:
            sampler = self._get_sampler()
            budget = F.num_kept(self.num_samples, self.keep_share(epoch))
            kept = self._plan(self._candidates(), budget, epoch)
            if kept.numel() != budget:  # LR schedules are sized from the budgets: they must hold exactly
                raise RuntimeError(
                    f"{type(self).__name__} planned {kept.numel()} samples for epoch {epoch}, not {budget}"
                )
            sampler.set_indices(kept.to(sampler.indices.dtype))
        self._plan_epoch = epoch
        self._check_indices = True

    def _select(self, candidates: Tensor, k: int, epoch: int, scores: Tensor) -> Tensor:
        """Top-``k`` of ``candidates`` by ``scores`` (seeded ties, per-class floor), as sorted dataset indices."""
        labels = None if self._labels is None else self._labels[candidates]
        local = F.select_kept(scores[candidates], k, F.tie_break_generator(self.seed, epoch), labels, self.class_floor)
        return candidates[local]

    def _update(self, trainer: pl.Trainer) -> None:
        pending, self._pending = self._pending, []
        idx = torch.cat([p[0] for p in pending]) if len(pending) > 1 else pending[0][0]
        loss = (torch.cat([p[1] for p in pending]) if len(pending) > 1 else pending[0][1]).float()
        stats = None
        if self.stats_dim:
            stats = torch.cat([p[2] for p in pending]) if len(pending) > 1 else pending[0][2]
        if trainer.world_size > 1:
            idx, loss, stats = self._gather(trainer, idx, loss, stats)
        self._samples_forwarded += idx.numel()
        self._steps += 1
        self._nonfinite += (~torch.isfinite(loss)).sum()
        self._step(trainer, idx, loss, stats)

    @staticmethod
    def _gather(
        trainer: pl.Trainer, idx: Tensor, loss: Tensor, stats: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """All ranks' rows, same order on every rank; ragged batches padded and trimmed."""
        strategy = trainer.strategy
        n_local = torch.tensor([idx.numel()], device=idx.device)
        sizes = strategy.all_gather(n_local).reshape(-1)
        width = int(sizes.max())
        rows = 2 + (0 if stats is None else stats.shape[1])
        packed = torch.zeros(rows, width, dtype=torch.float64, device=idx.device)
        packed[0, : idx.numel()] = idx.double()
        packed[1, : idx.numel()] = loss.double()
        if stats is not None:
            packed[2:, : idx.numel()] = stats.double().T
        everything = strategy.all_gather(packed)  # [world, rows, width]
        valid = torch.arange(width, device=idx.device)[None, :] < sizes[:, None]
        flat = everything.permute(1, 0, 2)[:, valid]  # [rows, total]
        gathered_stats = None if stats is None else flat[2:].T.to(stats.dtype)
        return flat[0].long(), flat[1].float(), gathered_stats

    def _check_consistency(self, trainer: pl.Trainer) -> None:
        """Hook: verify rank-identical state (AdaPruner checks its logits)."""

    def _warn_empty_classes(self, kept: Tensor, epoch: int) -> None:
        if self._labels is None:
            return
        labels = self._labels.long()
        total = torch.bincount(labels)
        got = torch.bincount(labels[kept.long()], minlength=total.numel())
        empty = ((total > 0) & (got == 0)).nonzero().flatten().tolist()
        if empty:
            rank_zero_warn(
                f"epoch {epoch}: class(es) {empty} have no kept samples left. To keep every class represented, "
                f"set {type(self).__name__}(class_floor=<min samples per class>)."
            )

    def _epoch_metrics(self, trainer: pl.Trainer) -> dict[str, float]:
        n = self._require_num_samples()
        epoch = trainer.current_epoch
        kept = n if self.forward_all or self._sampler is None else self._sampler.indices.numel()
        return {
            "keep_share_target": self.keep_share(epoch),
            "keep_share": kept / n,
            "samples_forwarded": float(self._samples_forwarded),
            "saved_share": 1.0 - self._samples_forwarded / (n * (epoch + 1)),
            **self._extra_metrics(),
        }

    def _export_metadata(self, trainer: pl.Trainer, epoch: int) -> dict[str, Any]:
        n = self._require_num_samples()
        kept = self.kept_indices
        assert kept is not None
        meta: dict[str, Any] = {
            "method": self.name,
            "num_samples": n,
            "num_kept": int(kept.numel()),
            "prune_ratio_target": self.prune_ratio,
            "prune_ratio_realised": 1.0 - kept.numel() / n,
            "seed": self.seed,
            "epochs_completed": epoch,
            "max_epochs": self._max_epochs,
            "samples_forwarded": self._samples_forwarded,
            "saved_share": 1.0 - self._samples_forwarded / (n * max(epoch, 1)),
            "wall_time_s": time.perf_counter() - self._fit_start_time,
            "per_class_kept": None,
            "per_class_total": None,
        }
        if self._labels is not None:
            labels = self._labels.long()
            total = torch.bincount(labels)
            meta["per_class_total"] = total.tolist()
            meta["per_class_kept"] = torch.bincount(labels[kept], minlength=total.numel()).tolist()
        return meta

    def _prune_epochs(self) -> int:
        if self.prune_epochs is not None:
            return self.prune_epochs
        return max(1, (self._max_epochs - self.warmup_epochs) // 2)

    def _require_num_samples(self) -> int:
        if self.num_samples is None:
            raise RuntimeError(f"{type(self).__name__} has not seen the training dataloader yet")
        return self.num_samples


_STATUS_KEYS = {"keep_share_target", "keep_share", "samples_forwarded", "saved_share"}
