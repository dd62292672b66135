"""``AdaptiveDatasetPruning`` (ADP): the callback that learns which samples to drop and stops loading them."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.connectors.data_connector import _DataLoaderSource
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.data import _is_dataloader_shuffled, _update_dataloader
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_adapruner import functional as F
from lightning_adapruner.controller import PruningPerformanceController
from lightning_adapruner.dataset import infer_targets
from lightning_adapruner.sampler import PruningSampler
from lightning_adapruner.subset import DEFAULT_NAME, write_pruned_subset

log = logging.getLogger(__name__)

Mode = Literal["sampler", "soft"]
MODES = ("sampler", "soft")


class _PruningDataSource(_DataLoaderSource):
    """The fit loop's train-dataloader source, passed through the callback on every (re)load."""

    def __init__(self, original: _DataLoaderSource, callback: AdaptiveDatasetPruning, trainer: pl.Trainer) -> None:
        super().__init__(original.instance, original.name)
        self.original = original
        self.callback = callback
        self.trainer = trainer

    def dataloader(self) -> Any:
        return self.callback._on_train_dataloader(self.trainer, super().dataloader())


class AdaptiveDatasetPruning(Callback):
    """Adaptive dataset pruning (ADP): learns one logit per training sample and prunes by it.

    The callback owns the per-sample state (logits ``m`` keyed by dataset index, their momentum,
    the inverse temperature ``k`` and the ratio weight ``lam``). Each training step it takes the
    detached ``(index, loss)`` pairs that :class:`PruningPerformanceController` recorded,
    gathers them from all ranks and applies the same mask update on every rank.

    In ``mode="sampler"`` (default) it replaces the training sampler by a :class:`PruningSampler`
    and, at each epoch start, keeps the top-``K`` samples by logit, ``K = round(keep_share * N)``:
    full data for ``warmup_epochs``, then the keep share steps down to ``1 - prune_ratio`` over
    ``prune_epochs`` epochs and holds. Pruned samples are neither loaded nor forwarded. To let
    Lightning see the shorter epochs it sets ``trainer.reload_dataloaders_every_n_epochs = 1``.

    In ``mode="soft"`` it reproduces the reference procedure: every sample is forwarded, weighted
    by its soft score, and the hard cut happens at the end of fit.

    At the end of fit both modes keep exactly ``round((1 - prune_ratio) * N)`` samples (top-K by
    the final logits) and write them to ``<export_dir>/pruned_subset.{json,pt}`` for
    :func:`~lightning_adapruner.load_pruned_subset`.

    Args:
        prune_ratio: ``p`` in ``[0, 1)``, the share of training samples removed at the end.
        mode: ``"sampler"`` (prune during training, saves compute) or ``"soft"`` (reference procedure).
        warmup_epochs: epochs on full data before the first cut (sampler mode).
        prune_epochs: epochs over which the keep share steps down to the target (sampler mode);
            ``None`` uses half of the epochs after warm-up (at least one).
        schedule: shape of the step-down: ``"linear"``, ``"cosine"``, ``"exponential"`` or ``"step"``.
        class_floor: with known labels, every class keeps at least this many samples.
        revisit_share: sampler mode: share of each epoch's budget given to pruned samples drawn at
            random (re-drawn every epoch) so their scores can recover; they compete with the kept
            samples at the next cut. 0 by default (see the README for the experiment).
        seed: seeds tie-breaks and the sampler's shuffle; the same on every rank.
        k_start, k_end: range of the inverse temperature ``k`` over the planned steps.
        lambda_init, lambda_gain: initial ratio weight and the controller's gain.
        mask_lr, mask_momentum, mask_weight_decay: SGD settings of the logits.
        drop_last: sampler mode: drop the ``K % world_size`` remainder instead of topping shards up.
        export_dir: where to write the kept subset; ``None`` uses the trainer's log dir; ``False``
            writes nothing.
        verbose: print a one-line pruning status per epoch on rank 0.

    Raises:
        ValueError: for an argument out of range.

    Example::

        >>> adp = AdaptiveDatasetPruning(prune_ratio=0.3, warmup_epochs=1)
        >>> adp.state_key
        "AdaptiveDatasetPruning{'prune_ratio': 0.3, 'mode': 'sampler'}"
    """

    def __init__(
        self,
        prune_ratio: float,
        mode: Mode = "sampler",
        warmup_epochs: int = 1,
        prune_epochs: int | None = None,
        schedule: F.ScheduleShape = "linear",
        class_floor: int = 0,
        revisit_share: float = 0.0,
        seed: int = 0,
        k_start: float = 0.1,
        k_end: float = 5.0,
        lambda_init: float = 50.0,
        lambda_gain: float = 50.0,
        mask_lr: float = 0.1,
        mask_momentum: float = 0.9,
        mask_weight_decay: float = 5e-4,
        drop_last: bool = False,
        export_dir: str | Path | bool | None = None,
        verbose: bool = True,
    ) -> None:
        if not (isinstance(prune_ratio, (int, float)) and 0.0 <= prune_ratio < 1.0):
            raise ValueError(
                f"prune_ratio must be a number in [0, 1) (the share of samples removed), got {prune_ratio!r}"
            )
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if schedule not in F.SCHEDULE_SHAPES:
            raise ValueError(f"schedule must be one of {F.SCHEDULE_SHAPES}, got {schedule!r}")
        for name, value in (("warmup_epochs", warmup_epochs), ("class_floor", class_floor)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if not 0.0 <= revisit_share < 1.0:
            raise ValueError(f"revisit_share must be in [0, 1), got {revisit_share!r}")
        if prune_epochs is not None and (not isinstance(prune_epochs, int) or prune_epochs < 1):
            raise ValueError(f"prune_epochs must be an int >= 1 or None, got {prune_epochs!r}")
        if not 0 < k_start <= k_end:
            raise ValueError(f"need 0 < k_start <= k_end, got k_start={k_start}, k_end={k_end}")
        if mask_lr <= 0 or not 0 <= mask_momentum < 1 or mask_weight_decay < 0:
            raise ValueError(
                "need mask_lr > 0, 0 <= mask_momentum < 1, mask_weight_decay >= 0; got "
                f"{mask_lr}, {mask_momentum}, {mask_weight_decay}"
            )
        self.prune_ratio = float(prune_ratio)
        self.mode: Mode = mode
        self.warmup_epochs = warmup_epochs
        self.prune_epochs = prune_epochs
        self.schedule: F.ScheduleShape = schedule
        self.class_floor = class_floor
        self.revisit_share = float(revisit_share)
        self.seed = seed
        self.k_start, self.k_end = float(k_start), float(k_end)
        self.lambda_init, self.lambda_gain = float(lambda_init), float(lambda_gain)
        self.mask_lr, self.mask_momentum, self.mask_weight_decay = mask_lr, mask_momentum, mask_weight_decay
        self.drop_last = drop_last
        self.export_dir = export_dir
        self.verbose = verbose

        self.num_samples: int | None = None
        self.kept_indices: Tensor | None = None  # the final kept subset, set at the end of fit
        self.export_path: Path | None = None
        self._sampler: PruningSampler | None = None
        self._labels: Tensor | None = None
        self._stash: dict[str, Any] | None = None
        self._pending: list[tuple[Tensor, Tensor]] = []
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
        return self._generate_state_key(prune_ratio=self.prune_ratio, mode=self.mode)

    def keep_share(self, epoch: int) -> float:
        """Target share of the dataset forwarded in ``epoch`` (1.0 throughout in soft mode)."""
        if self.mode == "soft":
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
            else:  # our sampler, or Lightning's DistributedSampler (soft mode): same padding rule
                drop_shard = self.drop_last and self.mode == "sampler"
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
        if not isinstance(pl_module, PruningPerformanceController):
            raise TypeError(
                f"AdaptiveDatasetPruning needs the LightningModule to mix in PruningPerformanceController, but "
                f"{type(pl_module).__name__} does not. Fix: `class {type(pl_module).__name__}"
                "(PruningPerformanceController, LightningModule)` and return "
                "`self.pruning_loss(per_sample_loss, batch_indices)` from training_step."
            )
        other = pl_module._adaptive_pruning
        if other is not None and other is not self and other in trainer.callbacks:
            raise ValueError("only one AdaptiveDatasetPruning callback can drive a LightningModule; remove the other")
        if trainer.max_epochs is None or trainer.max_epochs < 1:
            raise ValueError(
                "AdaptiveDatasetPruning schedules pruning by epoch and needs a finite number of epochs; "
                f"pass Trainer(max_epochs=...) (got max_epochs={trainer.max_epochs})"
            )
        self._max_epochs = trainer.max_epochs
        self._world_size = trainer.world_size
        if self.mode == "sampler" and self._max_epochs <= self.warmup_epochs and self.prune_ratio > 0:
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
        if self.mode == "sampler" and trainer.reload_dataloaders_every_n_epochs != 1:
            self._original_reload = trainer.reload_dataloaders_every_n_epochs
            trainer.reload_dataloaders_every_n_epochs = 1
            log.info("AdaptiveDatasetPruning set reload_dataloaders_every_n_epochs=1 so epochs can shrink")

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
                "training_step did not call `self.pruning_loss(per_sample_loss, indices)`, so AdaptiveDatasetPruning "
                "has nothing to learn from. Return `self.pruning_loss(...)` from training_step on every batch."
            )
        self._update_mask(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = self._epoch_metrics(trainer)
        pl_module.log_dict({f"adp/{k}": float(v) for k, v in metrics.items()}, on_step=False, on_epoch=True)
        if self.verbose:
            rank_zero_info(
                f"[adapruner] epoch {trainer.current_epoch}: kept {metrics['keep_share']:.3f} of the data "
                f"(target {metrics['keep_share_target']:.3f}), forwarded {int(metrics['samples_forwarded'])} "
                f"samples so far ({metrics['saved_share']:.1%} saved), k={metrics['k']:.3f}, "
                f"lambda={metrics['lambda']:.2f}, mean score {metrics['mean_score']:.3f}"
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        n = self._require_num_samples()
        epoch = trainer.current_epoch
        k = F.num_kept(n, self.keep_fraction)
        candidates = self._sampler.indices.long() if self._sampler is not None else torch.arange(n)
        self.kept_indices = self._select(candidates, k, epoch)
        if self.export_dir is False or not trainer.is_global_zero:
            return
        base = self.export_dir if isinstance(self.export_dir, (str, Path)) else trainer.log_dir
        base = Path(base if base is not None else trainer.default_root_dir)
        self.export_path = write_pruned_subset(
            base / DEFAULT_NAME, self.kept_indices, self._logits, self._export_metadata(trainer, epoch)
        )
        rank_zero_info(
            f"[adapruner] kept {k} of {n} samples (prune ratio target {self.prune_ratio:.4f}, realised "
            f"{1 - k / n:.4f}); subset written to {self.export_path}"
        )

    def state_dict(self) -> dict[str, Any]:
        if self.num_samples is None:
            return {}
        return {
            "version": 1,
            "num_samples": self.num_samples,
            "prune_ratio": self.prune_ratio,
            "mode": self.mode,
            "logits": self._logits.detach().cpu().clone(),
            "momentum": self._momentum.detach().cpu().clone(),
            "k": float(self._k),
            "lambda": float(self._lam),
            "steps": self._steps,
            "steps_below": int(self._steps_below),
            "nonfinite": int(self._nonfinite),
            "samples_forwarded": self._samples_forwarded,
            "plan_epoch": self._plan_epoch,
            "kept": None if self._sampler is None else self._sampler.indices.clone(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # restore happens after `setup`; only stash here, apply once the dataset size is known
        self._stash = dict(state_dict) if state_dict else None

    # ------------------------------------------------------------------ PPC entry point
    def _controller_loss(self, per_sample_loss: Tensor, indices: Tensor) -> Tensor:
        """T1 for the network; records the detached pairs for the mask update."""
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
        idx = indices.to(self._logits.device, non_blocking=True)
        if self._check_indices:
            self._validate_indices(idx)
        scores = torch.sigmoid(self._k * self._logits[idx]).to(per_sample_loss.dtype)
        self._pending.append((idx, per_sample_loss.detach()))
        return (scores * per_sample_loss).mean()

    def _validate_indices(self, idx: Tensor) -> None:
        n = self._require_num_samples()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise IndexError(
                f"batch indices span [{int(idx.min())}, {int(idx.max())}] but the training set has {n} samples: "
                "pass dataset indices (IndexedDataset's `batch.index`), not positions in the batch"
            )
        if self.mode == "sampler" and self._sampler is not None:
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
        if not isinstance(dataloader, DataLoader):
            raise TypeError(
                "AdaptiveDatasetPruning supports one training DataLoader, got "
                f"{type(dataloader).__name__}; return a single torch.utils.data.DataLoader from train_dataloader()"
            )
        try:
            n = len(dataloader.dataset)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"the training dataset ({type(dataloader.dataset).__name__}) has no __len__: AdaptiveDatasetPruning "
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
        if self.mode == "soft":
            return dataloader
        if self._sampler is None:  # pragma: no cover - created by _sync_plan
            raise RuntimeError("sampler not initialised")
        self._sampler.shuffle = _is_dataloader_shuffled(dataloader)
        self._sampler.num_replicas, self._sampler.rank = trainer.world_size, trainer.global_rank
        return _update_dataloader(dataloader, self._sampler, mode=RunningStage.TRAINING)

    def _ensure_state(self, trainer: pl.Trainer, n: int, dataloader: DataLoader) -> None:
        device = trainer.strategy.root_device
        if self.num_samples == n and self._logits.device == device:
            return
        k_final = F.num_kept(n, self.keep_fraction)
        if k_final < max(1, self._world_size):
            raise ValueError(
                f"prune_ratio={self.prune_ratio} keeps {k_final} of {n} samples, fewer than the {self._world_size} "
                f"process(es): a rank would get no samples. Use prune_ratio <= {1 - self._world_size / n:.4f}."
            )
        if self.num_samples == n:  # device changed: move the state
            self._logits, self._momentum = self._logits.to(device), self._momentum.to(device)
            self._k, self._lam = self._k.to(device), self._lam.to(device)
            self._steps_below, self._nonfinite = self._steps_below.to(device), self._nonfinite.to(device)
            return
        self.num_samples = n
        self._logits = torch.ones(n, device=device)
        self._momentum = torch.zeros(n, device=device)
        self._k = torch.tensor(self.k_start, device=device)
        self._lam = torch.tensor(self.lambda_init, device=device)
        self._steps = 0
        self._steps_below = torch.zeros((), dtype=torch.long, device=device)
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
        total = sum(self.planned_batches(trainer))
        self._k_delta = (self.k_end - self.k_start) / max(total, 1)

    def _apply_stash(self) -> None:
        stash = self._stash
        if not stash or self.num_samples is None:
            return
        if stash["num_samples"] != self.num_samples:
            raise ValueError(
                f"the checkpoint's AdaptiveDatasetPruning state is for a training set of {stash['num_samples']} "
                f"samples, but this training set has {self.num_samples}: resume with the dataset the checkpoint "
                "was made with, or start a new run without ckpt_path"
            )
        self._stash = None
        device = self._logits.device
        self._logits = stash["logits"].to(device=device, dtype=torch.float32)
        self._momentum = stash["momentum"].to(device=device, dtype=torch.float32)
        self._k = torch.tensor(stash["k"], device=device)
        self._lam = torch.tensor(stash["lambda"], device=device)
        self._steps = int(stash["steps"])
        self._steps_below = torch.tensor(stash["steps_below"], dtype=torch.long, device=device)
        self._nonfinite = torch.tensor(stash.get("nonfinite", 0), dtype=torch.long, device=device)
        self._samples_forwarded = int(stash.get("samples_forwarded", 0))
        self._plan_epoch = int(stash.get("plan_epoch", -1))
        kept = stash.get("kept")
        if kept is not None and self.mode == "sampler":
            self._get_sampler().set_indices(kept)

    def _get_sampler(self) -> PruningSampler:
        if self._sampler is None:
            n = self._require_num_samples()
            dtype = torch.int32 if n < 2**31 else torch.long
            self._sampler = PruningSampler(
                torch.arange(n, dtype=dtype), self._world_size, 0, seed=self.seed, drop_last=self.drop_last
            )
        return self._sampler

    def _sync_plan(self, trainer: pl.Trainer, epoch: int) -> None:
        """Finish the epochs before ``epoch`` and select ``epoch``'s kept set (forward only, idempotent)."""
        if self.num_samples is None or epoch <= self._plan_epoch:
            return
        if self._plan_epoch >= 0:
            self._finish_epoch()
        self._check_consistency(trainer)
        n = self.num_samples
        keep = self.keep_share(epoch)
        if self.mode == "sampler":
            sampler = self._get_sampler()
            budget = F.num_kept(n, keep)
            revisits = F.num_kept(budget, self.revisit_share) if budget < n else 0
            kept = self._select(sampler.indices.long(), budget - revisits, epoch)
            self._warn_empty_classes(kept, epoch)
            if revisits:
                drawn = F.draw_revisits(n, kept, revisits, F.tie_break_generator(self.seed + 1, epoch))
                kept = torch.sort(torch.cat([kept, drawn])).values
            sampler.set_indices(kept.to(sampler.indices.dtype))
        self._plan_epoch = epoch
        self._check_indices = True

    def _select(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        """Top-``k`` of ``candidates`` by logit (seeded ties, per-class floor), as sorted dataset indices.

        Selection is nested: a sample pruned once is not a candidate again. Its logit froze when it
        stopped being forwarded while the kept samples' logits kept moving, so the two are not
        comparable; re-admitting by raw logit made the kept set churn.
        """
        labels = None if self._labels is None else self._labels[candidates]
        local = F.select_kept(
            self._logits[candidates], k, F.tie_break_generator(self.seed, epoch), labels, self.class_floor
        )
        return candidates[local]

    def _finish_epoch(self) -> None:
        """Epoch-end k back-off and counters; runs lazily when the next epoch is planned so a
        checkpoint taken at any point of an epoch end resumes to the same state."""
        below = int(self._steps_below)
        k = F.k_after_epoch(float(self._k), below, self._steps, self._k_delta, self.k_start)
        self._k = torch.tensor(k, device=self._logits.device)
        nonfinite = int(self._nonfinite)
        if nonfinite:
            rank_zero_warn(
                f"{nonfinite} per-sample loss(es) in epoch {self._plan_epoch} were NaN or inf; they were left out of "
                "the mask update (the mask is unchanged for them). Check the model's loss for instabilities."
            )
        self._steps = 0
        self._steps_below.zero_()
        self._nonfinite.zero_()

    def _update_mask(self, trainer: pl.Trainer) -> None:
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            idx, loss = pending[0]
        else:
            idx = torch.cat([p[0] for p in pending])
            loss = torch.cat([p[1] for p in pending])
        loss = loss.float()
        if trainer.world_size > 1:
            idx, loss = self._gather(trainer, idx, loss)
        self._samples_forwarded += idx.numel()
        r = self.keep_fraction
        m_b = self._logits[idx]
        grad = F.mask_gradient(m_b, loss, self._k, self._lam, r)
        scores = torch.sigmoid(self._k * m_b)
        rho = (scores > 0.5).float().mean()
        first = F.first_occurrence(idx)
        finite = torch.isfinite(loss)
        F.sparse_sgd_step_(
            self._logits,
            self._momentum,
            idx[first],
            grad[first],
            self.mask_lr,
            self.mask_momentum,
            self.mask_weight_decay,
            active=finite[first],
        )
        self._lam = F.next_lambda(rho, r, self.lambda_gain)
        binarise = trainer.current_epoch == self._max_epochs - 1
        self._k = F.next_k(self._k, rho, r, self._k_delta, binarise, scores)
        self._steps += 1
        self._steps_below += (rho < r).long()
        self._nonfinite += (~finite).sum()

    @staticmethod
    def _gather(trainer: pl.Trainer, idx: Tensor, loss: Tensor) -> tuple[Tensor, Tensor]:
        """All ranks' (index, loss) pairs, same order on every rank; ragged batches padded and trimmed."""
        strategy = trainer.strategy
        n_local = torch.tensor([idx.numel()], device=idx.device)
        sizes = strategy.all_gather(n_local).reshape(-1)
        width = int(sizes.max())
        packed = torch.zeros(2, width, dtype=torch.float64, device=idx.device)
        packed[0, : idx.numel()] = idx.double()
        packed[1, : idx.numel()] = loss.double()
        everything = strategy.all_gather(packed)  # [world, 2, width]
        valid = torch.arange(width, device=idx.device)[None, :] < sizes[:, None]
        return everything[:, 0][valid].long(), everything[:, 1][valid].float()

    def _check_consistency(self, trainer: pl.Trainer) -> None:
        """Every rank must hold the same logits; resync from rank 0 if float drift ever split them."""
        if trainer.world_size <= 1 or not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return
        checksum = torch.stack([self._logits.double().sum(), self._logits.double().square().sum()])
        sums = trainer.strategy.all_gather(checksum)
        if not bool((sums == sums[0]).all()):
            rank_zero_warn("pruning logits differed across ranks; re-synchronising them from rank 0")
            torch.distributed.broadcast(self._logits, src=0)
            torch.distributed.broadcast(self._momentum, src=0)

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
                "set AdaptiveDatasetPruning(class_floor=<min samples per class>)."
            )

    def _epoch_metrics(self, trainer: pl.Trainer) -> dict[str, float]:
        n = self._require_num_samples()
        epoch = trainer.current_epoch
        kept = n if self.mode == "soft" or self._sampler is None else self._sampler.indices.numel()
        full = n * (epoch + 1)
        return {
            "keep_share_target": self.keep_share(epoch),
            "keep_share": kept / n,
            "samples_forwarded": float(self._samples_forwarded),
            "saved_share": 1.0 - self._samples_forwarded / full,
            "k": float(self._k),
            "lambda": float(self._lam),
            "mean_score": float(torch.sigmoid(self._k * self._logits).mean()),
            "hard_keep_share": float((self._logits > 0).float().mean()),
        }

    def _export_metadata(self, trainer: pl.Trainer, epoch: int) -> dict[str, Any]:
        n = self._require_num_samples()
        kept = self.kept_indices
        assert kept is not None
        meta: dict[str, Any] = {
            "num_samples": n,
            "num_kept": int(kept.numel()),
            "prune_ratio_target": self.prune_ratio,
            "prune_ratio_realised": 1.0 - kept.numel() / n,
            "mode": self.mode,
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
            raise RuntimeError("AdaptiveDatasetPruning has not seen the training dataloader yet")
        return self.num_samples
