"""``BatchSelection``: online batch selection for any training loader (Selective Backprop's shape).

Each training step scores the whole batch in a forward pass without gradients, keeps a fixed share of it and
trains on those alone: the second forward and the backward run on the kept samples only. No sampler is replaced,
so map-style and iterable loaders, LitData's ``StreamingDataset``, WebDataset and Hugging Face's
``IterableDataset`` all work, with their own sharding and their own resume state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from typing_extensions import override

from lightning_adapruner.core import functional as F
from lightning_adapruner.core._checks import check_budget, check_int

Rule = Literal["loss", "random"]


class BatchSelection(Callback):
    """Train each step on the share of the batch the rule keeps; the rest is scored and dropped.

    In ``training_step``, pass the batch through ``self.select_batch(batch, per_sample_loss_fn)`` (from
    :class:`~lightning_adapruner.PruningPerformanceController`) before the forward that trains: it returns the
    batch unchanged without this callback or outside training, else the kept samples of it (every tensor whose
    first dimension is the batch's, and every list or tuple of that length). Every rank keeps
    ``max(1, floor(keep * B + 1/2))`` of its ``B`` samples, so ranks with equal batches train on equal counts, and
    nothing is exchanged between ranks.

    What it saves is backward passes and the second forward, not loading: every sample is still read and scored.
    The fit's end reports both counts and the compute share under the convention backward = 2 forwards.

    Args:
        keep: share of each batch trained on, in ``(0, 1]``.
        rule: ``"loss"``: the highest per-sample losses (Selective Backprop's target, deterministic);
            ``"random"``: a uniform draw (the control: equal compute, no choice).
        warmup_steps: training batches at the start that train on the whole batch.
        seed: seeds the random rule (``None``: ``seed_everything``'s); a draw depends on the seed, the batch's
            number in the fit (checkpointed) and the rank only, so a resumed fit draws what the uninterrupted one
            would.
        verbose: print the compute line at the end of fit.

    Example::

        >>> selection = BatchSelection(keep=0.5, rule="loss")
        >>> kept = selection.select({"x": torch.arange(4.0), "id": ["a", "b", "c", "d"]}, lambda b: b["x"])
        >>> kept["x"].tolist(), kept["id"]
        ([2.0, 3.0], ['c', 'd'])
    """

    def __init__(
        self,
        keep: float,
        rule: Rule = "loss",
        warmup_steps: int = 0,
        seed: int | None = None,
        verbose: bool = True,
    ) -> None:
        if rule not in ("loss", "random"):
            raise ValueError(f"rule must be one of 'loss', 'random', got {rule!r}")
        self.keep = check_budget(keep, "keep", "the share of each batch trained on")
        self.rule, self.verbose = rule, verbose
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self.rank = 0
        self.batches = self.scored = self.trained = 0

    def select(self, batch: Any, score: Callable[[Any], Tensor]) -> Any:
        """The kept samples of the fit's next training batch; ``score(batch)`` gives one loss per sample and runs
        without gradients."""
        with torch.no_grad():
            scores = score(batch)
        if not isinstance(scores, Tensor) or scores.ndim != 1 or scores.numel() == 0:
            got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ValueError(f"select_batch's score function must return one loss per sample, shape [B]; got {got}")
        size = scores.numel()
        k = size if self.batches < self.warmup_steps else F.batch_kept_count(size, self.keep)
        number, self.batches = self.batches, self.batches + 1
        self.scored, self.trained = self.scored + size, self.trained + k
        if k == size:
            return batch
        gen = None
        if self.rule == "random":
            gen = F.generator(self.seed or 0, number * 65_537 + self.rank, F.selection.STREAM_BATCH)
        positions = F.batch_keep(scores, k, self.rule, gen)
        return F.take_samples(batch, positions, size)

    @property
    def compute_share(self) -> float:
        """The fit's compute against training on every sample it scored (:func:`~.functional.compute_share`)."""
        return F.compute_share(self.scored, self.trained)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.rank, self.batches, self.scored, self.trained = int(trainer.global_rank), 0, 0, 0
            if self.seed is None:  # seed_everything's, the same on every rank
                self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0) or 0)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        share = self.trained / self.scored if self.scored else 1.0  # so far, rank 0's (as every rank's, batches equal)
        metrics = {"adp/trained_share": share, "adp/compute_share": self.compute_share}
        pl_module.log_dict(metrics, on_epoch=True, sync_dist=True, rank_zero_only=True)  # no reduce, no collective

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.verbose:
            rank_zero_info(
                f"[batch selection, {self.rule}] trained on {self.trained} of {self.scored} samples scored on rank "
                f"{self.rank} ({self.trained / max(self.scored, 1):.1%}); every sample was loaded and scored. Compute "
                f"{self.compute_share:.1%} of training on all of them (backward = 2 forwards)"
            )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, "scored": self.scored, "trained": self.trained, "seed": self.seed}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches, self.scored = int(state_dict.get("batches", 0)), int(state_dict.get("scored", 0))
        self.trained = int(state_dict.get("trained", 0))
        self.seed = state_dict.get("seed", self.seed)
