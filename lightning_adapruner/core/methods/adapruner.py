"""``AdaPruner``: learns one logit per sample jointly with training and keeps the samples of highest logit."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.functional.schedule import KeepSchedule
from lightning_adapruner.core.method import EpochLayout, Observations, PruningMethod

Mode = Literal["sampler", "soft"]
NetworkWeights = Literal["score", "normalized", "none"]
Selection = Literal["nested", "dynamic"]


class AdaPruner(PruningMethod):
    """AdaPruner (Yang et al., arXiv 2312.05599) on the objective of ``docs/method.md``, keyed by dataset index.

    Each sample ``i`` has a logit ``m_i`` (its soft keep score is ``s_i = sigmoid(k m_i)``). Every step the
    batch's losses move the logits by the closed-form gradient of ``T1 + T2 + T3`` (lazy SGD: only forwarded
    rows move) while the ratio weight ``lam`` and the inverse temperature ``k`` follow the paper's controllers
    (:mod:`lightning_adapruner.core.functional.adapruner`). Cuts keep the top samples by logit.

    Args:
        mode: ``"sampler"``: prune during training (pruned samples are not forwarded); ``"soft"``: the reference
            procedure (every sample forwarded, weighted by ``s``; one cut at the end of fit).
        k_start, k_end: range of ``k`` over the fit's planned steps.
        lambda_init, lambda_gain: initial ratio weight and the controller's gain.
        mask_lr, mask_momentum, mask_weight_decay: SGD of the logits.
        init_logit: every logit's starting value.
        network_weights: the network's loss: ``"none"``, the plain mean, the mask still learning from every loss;
            ``"score"``, ``mean(s * l)`` as in the paper (which halves the network's learning rate while ``s`` is
            near 0.5); ``"normalized"``, ``sum(s * l) / sum(s)``. ``None`` (the default): ``"none"`` in sampler
            mode, ``"score"`` in soft mode (the reference procedure weights every sample by its score).
        selection: ``"dynamic"`` (the default): a cut keeps the top logits among all samples (pruned samples keep
            the logit they had, forwarded ones move on); ``"nested"`` (the paper's): the top among the previous
            epoch's samples.
        anneal: share of the final epochs on full data, at an unchanged total of samples (InfoBatch's
            annealing; 0, as in the paper, by default).

    The defaults differ from the paper's in two places, chosen on validation accuracy against full data for fewer
    epochs at equal compute (``python benchmarks/study.py --part variants``, BENCHMARKS.md): the plain mean trains
    the network, and cuts choose among all samples. ``AdaPruner(network_weights="score", selection="nested")``
    (``pruning=adapruner_paper``) is the paper's.

    Raises:
        ValueError: for an argument out of range.

    Example::

        >>> AdaPruner().network_weights, AdaPruner().selection, AdaPruner(mode="soft").network_weights
        ('none', 'dynamic', 'score')
    """

    name = "adapruner"

    def __init__(
        self,
        mode: Mode = "sampler",
        k_start: float = 0.1,
        k_end: float = 5.0,
        lambda_init: float = 50.0,
        lambda_gain: float = 50.0,
        mask_lr: float = 0.1,
        mask_momentum: float = 0.9,
        mask_weight_decay: float = 5e-4,
        init_logit: float = 1.0,
        network_weights: NetworkWeights | None = None,
        selection: Selection = "dynamic",
        anneal: float = 0.0,
    ) -> None:
        _choice("mode", mode, ("sampler", "soft"))
        if network_weights is None:
            network_weights = "score" if mode == "soft" else "none"
        _choice("network_weights", network_weights, ("score", "normalized", "none"))
        _choice("selection", selection, ("nested", "dynamic"))
        if not 0 < k_start <= k_end:
            raise ValueError(f"need 0 < k_start <= k_end, got k_start={k_start}, k_end={k_end}")
        if mask_lr <= 0 or not 0 <= mask_momentum < 1 or mask_weight_decay < 0:
            raise ValueError(
                "need mask_lr > 0, 0 <= mask_momentum < 1 and mask_weight_decay >= 0; got "
                f"{mask_lr}, {mask_momentum}, {mask_weight_decay}"
            )
        if not 0.0 <= anneal < 1.0:
            raise ValueError(f"anneal must be in [0, 1), got {anneal!r}")
        self.mode, self.network_weights, self.selection = mode, network_weights, selection
        self.k_start, self.k_end = float(k_start), float(k_end)
        self.lambda_init, self.lambda_gain = float(lambda_init), float(lambda_gain)
        self.mask_lr, self.mask_momentum, self.mask_weight_decay = (
            float(mask_lr),
            float(mask_momentum),
            float(mask_weight_decay),
        )
        self.anneal = float(anneal)
        super().__init__(nested=selection == "nested", nonnegative_loss=True, forward_all=mode == "soft")
        self.add_state("logits", float(init_logit))
        self.add_state("momentum", 0.0)
        self.add_state("k", self.k_start, per_sample=False)
        self.add_state("lam", self.lambda_init, per_sample=False)
        self._path: F.Trajectory | None = None

    def setup(self) -> None:
        self.k_delta = (self.k_end - self.k_start) / max(sum(self.fit.planned_batches), 1)

    def keep_share(self, epoch: int, schedule: KeepSchedule) -> float:
        return schedule.annealed(epoch, self.anneal) if self.anneal else schedule(epoch)

    def begin_epoch(self, layout: EpochLayout) -> None:
        info = self.fit
        self._path = F.trajectory(
            layout.values(self.logits),  # the positions that run (this rank's, with sharded state)
            layout.rows_per_batch,
            layout.num_batches,
            float(self.k),
            float(self.lam),
            self.k_delta,
            info.schedule.keep_fraction,
            self.lambda_gain,
            binarise=layout.epoch == info.schedule.max_epochs - 1,
            reduce=None if layout.shard_sum is None else layout.sum_over_ranks,
        )

    @property
    def weighs_loss(self) -> bool:
        return self.network_weights != "none"

    def loss_weights(self, layout: EpochLayout) -> Tensor | None:
        if self.network_weights == "none" or self._path is None:
            return None
        runs = layout.runs
        batch = torch.arange(runs, device=layout.order.device) // layout.batch_size
        scores = torch.sigmoid(self._path.k[batch] * self.logits[layout.order[:runs]])  # s of every position
        if self.network_weights == "score":
            return scores
        return F.normalise_per_batch(scores, layout.batch_size, layout.world_size)  # sum(s*l)/sum(s) per rank batch

    def update(self, observations: Observations) -> None:
        if self._path is None or not len(observations):
            return
        F.mask_step_(
            self.logits,
            self.momentum,
            observations.indices,
            observations.loss.clamp_min(0.0),
            observations.batch,
            self._path,
            self.fit.schedule.keep_fraction,
            self.mask_lr,
            self.mask_momentum,
            self.mask_weight_decay,
        )

    def end_epoch(self, epoch: int, steps: int) -> None:
        path = self._path
        if path is None:
            return
        below = int((path.rho[:steps] < self.fit.schedule.keep_fraction).sum())
        k = F.k_after_epoch(float(path.k[steps]), below, steps, self.k_delta, self.k_start)
        self.k.fill_(k)
        self.lam.fill_(float(path.lam[steps]))
        self._path = None

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        return self.select_top(candidates, budget, self.logits, epoch)

    def scores(self) -> Tensor:
        return self.logits.detach().cpu()

    def metrics(self) -> dict[str, float]:
        logits = self.logits
        return {
            "k": float(self.k),
            "lambda": float(self.lam),
            "mean_score": float(torch.sigmoid(self.k * logits).mean()),
            "hard_keep_share": float((logits > 0).float().mean()),
            "logit_std": float(logits.std()) if logits.numel() > 1 else 0.0,
        }


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
