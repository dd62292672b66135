"""``AdaptiveDatasetPruning`` (ADP): the callback that learns which samples to drop and stops loading them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.sample_pruning import SamplePruning

log = logging.getLogger(__name__)

Mode = Literal["sampler", "soft"]
MODES = ("sampler", "soft")


class AdaptiveDatasetPruning(SamplePruning):
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

    name = "adapruner"

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
        super().__init__(
            prune_ratio, warmup_epochs, prune_epochs, schedule, class_floor, seed, drop_last, export_dir, verbose
        )
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= revisit_share < 1.0:
            raise ValueError(f"revisit_share must be in [0, 1), got {revisit_share!r}")
        if not 0 < k_start <= k_end:
            raise ValueError(f"need 0 < k_start <= k_end, got k_start={k_start}, k_end={k_end}")
        if mask_lr <= 0 or not 0 <= mask_momentum < 1 or mask_weight_decay < 0:
            raise ValueError(
                "need mask_lr > 0, 0 <= mask_momentum < 1, mask_weight_decay >= 0; got "
                f"{mask_lr}, {mask_momentum}, {mask_weight_decay}"
            )
        self.mode: Mode = mode
        self.forward_all = mode == "soft"
        self.revisit_share = float(revisit_share)
        self.k_start, self.k_end = float(k_start), float(k_end)
        self.lambda_init, self.lambda_gain = float(lambda_init), float(lambda_gain)
        self.mask_lr, self.mask_momentum, self.mask_weight_decay = mask_lr, mask_momentum, mask_weight_decay

    @property
    def state_key(self) -> str:
        return self._generate_state_key(prune_ratio=self.prune_ratio, mode=self.mode)

    # ------------------------------------------------------------------ state
    def _init_state(self, n: int, device: torch.device) -> None:
        self._logits = torch.ones(n, device=device)
        self._momentum = torch.zeros(n, device=device)
        self._k = torch.tensor(self.k_start, device=device)
        self._lam = torch.tensor(self.lambda_init, device=device)
        self._steps_below = torch.zeros((), dtype=torch.long, device=device)

    def _init_schedule(self, trainer: pl.Trainer) -> None:
        self._k_delta = (self.k_end - self.k_start) / max(sum(self.planned_batches(trainer)), 1)

    def _move_state(self, device: torch.device) -> None:
        self._logits, self._momentum = self._logits.to(device), self._momentum.to(device)
        self._k, self._lam, self._steps_below = self._k.to(device), self._lam.to(device), self._steps_below.to(device)

    def _state_to_save(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "logits": self._logits.detach().cpu().clone(),
            "momentum": self._momentum.detach().cpu().clone(),
            "k": float(self._k),
            "lambda": float(self._lam),
            "steps_below": int(self._steps_below),
        }

    def _load_state(self, stash: dict[str, Any], device: torch.device) -> None:
        self._logits = stash["logits"].to(device=device, dtype=torch.float32)
        self._momentum = stash["momentum"].to(device=device, dtype=torch.float32)
        self._k = torch.tensor(stash["k"], device=device)
        self._lam = torch.tensor(stash["lambda"], device=device)
        self._steps_below = torch.tensor(stash["steps_below"], dtype=torch.long, device=device)

    # ------------------------------------------------------------------ learning
    def _network_loss(self, per_sample_loss: Tensor, idx: Tensor) -> Tensor:
        """T1 = mean(s_i * l_i), the soft scores being constants for the network."""
        scores = torch.sigmoid(self._k * self._logits[idx]).to(per_sample_loss.dtype)
        return (scores * per_sample_loss).mean()

    def _step(self, trainer: pl.Trainer, idx: Tensor, loss: Tensor, stats: Tensor | None) -> None:
        """One mask update from the gathered batch: T1+T2+T3 gradient, lazy SGD, lambda and k controllers."""
        r = self.keep_fraction
        m_b = self._logits[idx]
        scores = torch.sigmoid(self._k * m_b)
        finite = torch.isfinite(loss)
        grad = F.mask_gradient(m_b, loss, self._k, self._lam, r, scores=scores, finite=finite)
        rho = (scores > 0.5).float().mean()
        if trainer.world_size > 1:
            # shards topped up to equal length repeat a few samples; a duplicate index would make the
            # row write order-dependent (and ranks could drift apart on GPU), so keep its first occurrence
            first = F.first_occurrence(idx)
            idx, grad, finite = idx[first], grad[first], finite[first]
        F.sparse_sgd_step_(
            self._logits,
            self._momentum,
            idx,
            grad,
            self.mask_lr,
            self.mask_momentum,
            self.mask_weight_decay,
            active=finite,
        )
        self._lam = F.next_lambda(rho, r, self.lambda_gain)
        binarise = trainer.current_epoch == self._max_epochs - 1
        self._k = F.next_k(self._k, rho, r, self._k_delta, binarise, scores)
        self._steps_below += (rho < r).long()

    def _finish_epoch(self, epoch: int) -> None:
        """Epoch-end k back-off; runs lazily when the next epoch is planned so a checkpoint taken at any
        point of an epoch end resumes to the same state."""
        k = F.k_after_epoch(float(self._k), int(self._steps_below), self._steps, self._k_delta, self.k_start)
        self._k = torch.tensor(k, device=self._device)
        self._steps_below.zero_()

    # ------------------------------------------------------------------ selection
    def _plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        """Top-``budget`` by logit among the previous epoch's kept set (plus re-drawn revisits).

        Selection is nested: a sample pruned once is not a candidate again. Its logit froze when it
        stopped being forwarded while the kept samples' logits kept moving, so the two are not
        comparable; re-admitting by raw logit made the kept set churn.
        """
        n = self._require_num_samples()
        revisits = F.num_kept(budget, self.revisit_share) if budget < n else 0
        kept = self._select(candidates, budget - revisits, epoch, self._logits)
        self._warn_empty_classes(kept, epoch)
        if revisits:
            drawn = F.draw_revisits(n, kept, revisits, F.tie_break_generator(self.seed + 1, epoch))
            kept = torch.sort(torch.cat([kept, drawn])).values
        return kept

    def _final_selection(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        return self._select(candidates, k, epoch, self._logits)

    def _export_scores(self) -> Tensor:
        return self._logits

    def _export_metadata(self, trainer: pl.Trainer, epoch: int) -> dict[str, Any]:
        return {**super()._export_metadata(trainer, epoch), "mode": self.mode}

    def _extra_metrics(self) -> dict[str, float]:
        return {
            "k": float(self._k),
            "lambda": float(self._lam),
            "mean_score": float(torch.sigmoid(self._k * self._logits).mean()),
            "hard_keep_share": float((self._logits > 0).float().mean()),
        }

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
