"""Baseline pruning methods in AdaPruner's own harness (same sampler, schedule, DDP path, resume, export).

Every baseline follows the same keep-share schedule as :class:`AdaptiveDatasetPruning` (full data
for ``warmup_epochs``, then down to ``1 - prune_ratio``), so at the same ``prune_ratio`` they
forward the same number of samples and differ only in *which* samples they keep. Their scoring
and selection are pure functions in :mod:`lightning_adapruner.core.functional`.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.sample_pruning import SamplePruning

log = logging.getLogger(__name__)


class RandomPruning(SamplePruning):
    """Random pruning: a static subset drawn once (``dynamic=False``) or re-drawn every epoch.

    Static: each sample gets one seeded random priority and each cut keeps the highest priorities
    among the previous kept set. Dynamic: every epoch draws its ``K`` samples afresh from all ``N``.

    Args:
        prune_ratio: share of samples removed at the end of the schedule.
        dynamic: re-draw the kept samples every epoch.
        **kwargs: the schedule and harness arguments of :class:`~lightning_adapruner.core.sample_pruning.SamplePruning`.

    Example::

        >>> RandomPruning(0.3, dynamic=True).name
        'random_dynamic'
    """

    def __init__(self, prune_ratio: float, dynamic: bool = False, **kwargs: Any) -> None:
        super().__init__(prune_ratio, **kwargs)
        self.dynamic = dynamic
        self.nested = not dynamic
        self.name = "random_dynamic" if dynamic else "random"

    def _init_state(self, n: int, device: torch.device) -> None:
        self._priority = torch.rand(n, generator=F.tie_break_generator(self.seed, -1))

    def _state_to_save(self) -> dict[str, Any]:
        return {"priority": self._priority.clone()}

    def _load_state(self, stash: dict[str, Any], device: torch.device) -> None:
        self._priority = stash["priority"]

    def _plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        if self.dynamic:
            scores = torch.rand(self._require_num_samples(), generator=F.tie_break_generator(self.seed + 2, epoch))
            return self._select(candidates, budget, epoch, scores)
        return self._select(candidates, budget, epoch, self._priority)

    def _export_scores(self) -> Tensor:
        return self._priority


class _OutputScored(SamplePruning):
    """A baseline scored from the model's class outputs (passed as ``pruning_loss(..., outputs=, targets=)``)."""

    stats_dim = 1

    def _sample_stats(self, per_sample_loss: Tensor, outputs: Tensor | None, targets: Tensor | None) -> Tensor:
        if outputs is None or targets is None:
            raise ValueError(
                f"{type(self).__name__} scores samples from the model's class outputs: call "
                "`self.pruning_loss(per_sample_loss, idx, outputs=logits, targets=y)` in training_step"
            )
        return self._stat(outputs, targets).unsqueeze(1)

    def _stat(self, outputs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError


class EL2NPruning(_OutputScored):
    """EL2N (Paul et al. 2021): drop the samples with the lowest ``||softmax - onehot||_2``, averaged
    over the first ``warmup_epochs`` (full-data) epochs; the score is then fixed.

    Args:
        prune_ratio: share of samples removed at the end of the schedule.
        **kwargs: the schedule and harness arguments; ``warmup_epochs`` (>= 1) is the scoring window.
    """

    name = "el2n"

    def __init__(self, prune_ratio: float, **kwargs: Any) -> None:
        super().__init__(prune_ratio, **kwargs)
        if self.warmup_epochs < 1:
            raise ValueError("EL2NPruning averages its score over the warm-up epochs: set warmup_epochs >= 1")

    def _init_state(self, n: int, device: torch.device) -> None:
        self._score_sum = torch.zeros(n, device=device)
        self._score_count = torch.zeros(n, dtype=torch.int32, device=device)

    def _move_state(self, device: torch.device) -> None:
        self._score_sum, self._score_count = self._score_sum.to(device), self._score_count.to(device)

    def _state_to_save(self) -> dict[str, Any]:
        return {"score_sum": self._score_sum.cpu().clone(), "score_count": self._score_count.cpu().clone()}

    def _load_state(self, stash: dict[str, Any], device: torch.device) -> None:
        self._score_sum = stash["score_sum"].to(device)
        self._score_count = stash["score_count"].to(device)

    def _stat(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.el2n_scores(outputs, targets)

    def _step(self, trainer: pl.Trainer, idx: Tensor, loss: Tensor, stats: Tensor | None) -> None:
        if trainer.current_epoch >= self.warmup_epochs or stats is None:
            return
        score = stats[:, 0].to(self._score_sum.dtype)
        ok = torch.isfinite(score)
        self._score_sum.index_put_((idx,), torch.where(ok, score, torch.zeros_like(score)), accumulate=True)
        self._score_count.index_put_((idx,), ok.to(self._score_count.dtype), accumulate=True)

    def scores(self) -> Tensor:
        """Mean EL2N per sample (0 for samples never scored)."""
        return (self._score_sum / self._score_count.clamp_min(1)).cpu()

    def _plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        return self._select(candidates, budget, epoch, self.scores())

    def _export_scores(self) -> Tensor:
        return self.scores()


class ForgettingPruning(_OutputScored):
    """Forgetting events (Toneva et al. 2019): count, per sample, how often it goes from correctly to
    incorrectly classified; drop the never-forgotten first (never-learned samples are kept first).

    Args:
        prune_ratio: share of samples removed at the end of the schedule.
        **kwargs: the schedule and harness arguments of :class:`~lightning_adapruner.core.sample_pruning.SamplePruning`.
    """

    name = "forgetting"

    def _init_state(self, n: int, device: torch.device) -> None:
        self._prev_correct = torch.full((n,), -1, dtype=torch.int8, device=device)
        self._forgets = torch.zeros(n, dtype=torch.int32, device=device)
        self._ever_correct = torch.zeros(n, dtype=torch.bool, device=device)

    def _move_state(self, device: torch.device) -> None:
        self._prev_correct = self._prev_correct.to(device)
        self._forgets, self._ever_correct = self._forgets.to(device), self._ever_correct.to(device)

    def _state_to_save(self) -> dict[str, Any]:
        return {
            "prev_correct": self._prev_correct.cpu().clone(),
            "forgets": self._forgets.cpu().clone(),
            "ever_correct": self._ever_correct.cpu().clone(),
        }

    def _load_state(self, stash: dict[str, Any], device: torch.device) -> None:
        self._prev_correct = stash["prev_correct"].to(device)
        self._forgets = stash["forgets"].to(device)
        self._ever_correct = stash["ever_correct"].to(device)

    def _stat(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return (outputs.detach().argmax(-1) == targets).float()

    def _step(self, trainer: pl.Trainer, idx: Tensor, loss: Tensor, stats: Tensor | None) -> None:
        if stats is None:
            return
        first = F.first_occurrence(idx)
        idx, correct = idx[first], stats[first, 0] > 0.5
        prev, forgets = F.forgetting_update(self._prev_correct[idx], self._forgets[idx], correct)
        self._prev_correct[idx] = prev
        self._forgets[idx] = forgets
        self._ever_correct[idx] |= correct

    def scores(self) -> Tensor:
        return F.forgetting_scores(self._forgets, self._ever_correct).cpu()

    def _plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        return self._select(candidates, budget, epoch, self.scores())

    def _export_scores(self) -> Tensor:
        return self._forgets.float().cpu()


class InfoBatchPruning(SamplePruning):
    """InfoBatch-style dynamic pruning (Qin et al., ICLR 2024).

    Each pruned epoch drops a random share of the samples whose last loss is below the mean and
    up-weights the kept below-mean samples by ``1 / (1 - share)``; the first ``warmup_epochs`` and
    the last ``ceil(anneal * max_epochs)`` epochs use full data. The keep share of the pruned
    epochs is set so that the whole run forwards as many samples as the other methods at the
    same ``prune_ratio`` (:func:`~lightning_adapruner.core.functional.infobatch_keep_share_at`). When fewer
    samples lie below the mean than the cut needs, the lowest-loss samples above it go too, so every
    epoch forwards exactly its budget (:func:`~lightning_adapruner.core.functional.infobatch_plan`).

    Args:
        prune_ratio: the share of samples the *standard* schedule would have removed at its end;
            sets the total number of samples forwarded.
        anneal: share of the final epochs trained on full data.
        **kwargs: the schedule and harness arguments of :class:`~lightning_adapruner.core.sample_pruning.SamplePruning`.
    """

    name = "infobatch"
    nested = False

    def __init__(self, prune_ratio: float, anneal: float = 0.125, **kwargs: Any) -> None:
        super().__init__(prune_ratio, **kwargs)
        if not 0.0 <= anneal < 1.0:
            raise ValueError(f"anneal must be in [0, 1), got {anneal!r}")
        if self.warmup_epochs < 1:
            raise ValueError("InfoBatchPruning needs one full epoch of losses first: set warmup_epochs >= 1")
        self.anneal = anneal

    def keep_share(self, epoch: int) -> float:
        return F.infobatch_keep_share_at(
            epoch,
            self.prune_ratio,
            self.warmup_epochs,
            self._prune_epochs(),
            self.schedule,
            self._max_epochs,
            self.anneal,
        )

    def _init_state(self, n: int, device: torch.device) -> None:
        self._last_loss = torch.full((n,), float("nan"), device=device)
        self._weights = torch.ones(n, device=device)

    def _move_state(self, device: torch.device) -> None:
        self._last_loss, self._weights = self._last_loss.to(device), self._weights.to(device)

    def _state_to_save(self) -> dict[str, Any]:
        return {"last_loss": self._last_loss.cpu().clone(), "weights": self._weights.cpu().clone()}

    def _load_state(self, stash: dict[str, Any], device: torch.device) -> None:
        self._last_loss = stash["last_loss"].to(device)
        self._weights = stash["weights"].to(device)

    def _network_loss(self, per_sample_loss: Tensor, idx: Tensor) -> Tensor:
        return (self._weights[idx].to(per_sample_loss.dtype) * per_sample_loss).mean()

    def _step(self, trainer: pl.Trainer, idx: Tensor, loss: Tensor, stats: Tensor | None) -> None:
        ok = torch.isfinite(loss)
        self._last_loss[idx] = torch.where(ok, loss, self._last_loss[idx])

    def _plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        kept, weights = F.infobatch_plan(self._last_loss.cpu(), budget, F.tie_break_generator(self.seed + 3, epoch))
        self._weights = weights.to(self._device)
        return kept

    def _final_selection(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        # InfoBatch has no static subset; export the k samples of highest last loss
        losses = torch.nan_to_num(self._last_loss.cpu(), nan=0.0)
        return self._select(torch.arange(self._require_num_samples()), k, epoch, losses)

    def _export_scores(self) -> Tensor:
        return self._last_loss.cpu()
