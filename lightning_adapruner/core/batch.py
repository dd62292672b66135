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
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from typing_extensions import override

from lightning_adapruner.core import _lightning
from lightning_adapruner.core import functional as F
from lightning_adapruner.core._checks import check_budget, check_int

Rule = Literal["loss", "random"]


class BatchSelection(Callback):
    """Train each step on the share of the batch the rule keeps; the rest is scored and dropped.

    In ``training_step``, pass the batch through ``self.select_batch(batch, per_sample_loss_fn)`` (from
    :class:`~lightning_adapruner.PruningPerformanceController`) before the forward that trains, once per batch: it
    returns the batch unchanged without this callback or outside training, else its kept samples
    (:func:`~lightning_adapruner.functional.take_samples`). Every rank keeps ``max(1, floor(keep * B + 1/2))`` of
    its ``B`` samples, so ranks with equal batches train on equal counts, and nothing is exchanged between ranks.

    What it saves is backward passes and the second forward, not loading: every sample is still read and scored
    (warm-up batches too). The fit's end reports both counts and the compute share under the convention backward =
    2 forwards. The scoring forward runs in the module's training mode, as the step's own forward does: batch-norm
    statistics see each batch twice (whole, then its kept part) and dropout perturbs the scores; call
    ``module.eval()`` inside the score function (and ``train()`` after) to score otherwise.

    Args:
        keep: share of each batch trained on, in ``(0, 1]``.
        rule: ``"loss"``: the ``k`` highest per-sample losses of the batch (top-k in the batch; Selective Backprop
            itself draws by the loss's percentile over recent batches); ``"random"``: a uniform draw (the control:
            equal compute, no choice).
        warmup_steps: training batches (micro-batches under gradient accumulation) at the start that train whole.
        seed: seeds the random rule (``None``: ``seed_everything``'s); a draw depends on the seed, the batch's
            number in the fit (checkpointed) and the rank only, so a resumed fit draws what the uninterrupted one
            would.
        verbose: print the compute line at the end of fit.

    Raises:
        RuntimeError: ``select_batch`` called twice for one batch, or never in an epoch.

    Example::

        >>> selection = BatchSelection(keep=0.5, rule="loss")
        >>> kept = selection.select({"x": torch.arange(4.0), "id": ["a", "b", "c", "d"]}, lambda b: b["x"])
        >>> kept["x"].tolist(), kept["id"]
        ([2.0, 3.0], ['c', 'd'])
    """

    def __init__(
        self, keep: float, rule: Rule = "loss", warmup_steps: int = 0, seed: int | None = None, verbose: bool = True
    ) -> None:
        if rule not in ("loss", "random"):
            raise ValueError(f"rule must be one of 'loss', 'random', got {rule!r}")
        self.keep = check_budget(keep, "keep", "the share of each batch trained on")
        self.rule, self.verbose = rule, verbose
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
        self.given_seed = None if seed is None else check_int("seed", seed, minimum=0)
        self.seed, self.rank = self.given_seed or 0, 0
        self.trainer: pl.Trainer | None = None  # the fit's, while it runs
        self.batches = self.scored = self.trained = 0
        self._last: tuple[int, int] | None = None  # the (epoch, batch) last selected

    def select(self, batch: Any, score: Callable[[Any], Tensor]) -> Any:
        """The kept samples of the fit's next training batch; ``score(batch)`` gives one loss per sample and runs
        without gradients."""
        where = None if self.trainer is None else (self.trainer.current_epoch, _lightning.batch_in_epoch(self.trainer))
        if where is not None and where == self._last:
            raise RuntimeError("select_batch was called twice for one batch: call it once per training_step")
        self._last = where
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
        key = number * 65_537 + self.rank  # the batch's draw: its number in the fit and the rank
        gen = F.generator(self.seed, key, F.selection.STREAM_BATCH) if self.rule == "random" else None
        return F.take_samples(batch, F.batch_keep(scores, k, self.rule, gen), size)

    @property
    def compute_share(self) -> float:
        """The fit's compute against training on every sample it scored (:func:`~.functional.compute_share`)."""
        return F.compute_share(self.scored, self.trained)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.rank, self.trainer, self._last = int(trainer.global_rank), trainer, None
            self.batches = self.scored = self.trained = 0
            global_seed = int(os.environ.get("PL_GLOBAL_SEED", 0) or 0)  # seed_everything's, the same on every rank
            self.seed = self.given_seed if self.given_seed is not None else global_seed

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.trainer = None

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.scored and trainer.num_training_batches:
            raise RuntimeError(
                "BatchSelection is in the fit but nothing was selected: pass the batch through "
                "`batch = self.select_batch(batch, per_sample_loss_fn)` in training_step"
            )
        share = self.trained / self.scored if self.scored else 1.0  # so far, rank 0's (as every rank's, batches equal)
        metrics = {"adp/trained_share": share, "adp/compute_share": self.compute_share}
        pl_module.log_dict(metrics, on_epoch=True, sync_dist=True, rank_zero_only=True)  # no reduce, no collective

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.verbose:
            share, trained, scored = self.compute_share, self.trained, self.scored
            rank_zero_info(f"[batch selection, {self.rule}] rank 0 trained on {trained} of the {scored} samples it "
                           f"scored ({trained / max(scored, 1):.1%}): {share:.1%} of full data's compute")  # fmt: skip

    @override
    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("batches", "scored", "trained", "seed")}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches, self.scored, self.trained, saved = (int(state_dict.get(k, 0)) for k in self.state_dict())
        if self.given_seed is not None and saved != self.given_seed:
            rank_zero_warn(f"resuming with the checkpoint's batch-selection seed {saved} (given: {self.given_seed})")
        self.seed = saved
