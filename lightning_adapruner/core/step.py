"""``StepRecorder``: the per-step path of a pruning fit, from ``pruning_loss`` to the end of the batch.

Per step it checks what it must (the first step, and any step that hands over indices or a loss of another
length), writes the batch's detached statistics into the epoch's record, and returns the network's loss from the
per-position weights the method fixed for the epoch: a slice, a copy and a product, no host-device sync.

With several processes every rank's rows are gathered **inside** ``pruning_loss``, that is inside
``training_step``, where every rank is at the same point whatever other callbacks do (a progress bar or logger that
syncs metrics on rank 0 only runs in the hooks, never there). Lightning does not support skipping a batch by
returning ``None`` under several processes, so every rank calls ``pruning_loss`` every step. A check that fails on
one rank travels in the gathered rows and stops every rank when the epoch closes; the batch end needs no
collective.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from lightning_adapruner.core.distributed import Collectives
from lightning_adapruner.core.epoch import EpochRecord
from lightning_adapruner.core.method import PruningMethod
from lightning_adapruner.core.validation import check_batch_loss, check_indices, check_nonnegative, method_inputs

log = logging.getLogger(__name__)


class StepRecorder:
    """The per-step path of one fit (see the module docstring).

    Args:
        method: the pruning method (for its statistics and its name in errors).
        collectives: the fit's processes.
        device: where the statistics live.
    """

    def __init__(self, method: PruningMethod, collectives: Collectives, device: torch.device) -> None:
        self.method, self.comm, self.device = method, collectives, device
        self.first = True  # the fit's first step checks the loss's sign once
        self._recorded_step: tuple[int, int] | None = None

    def network_loss(
        self, record: EpochRecord, loss: Tensor, indices: Tensor | None, inputs: dict[str, Tensor]
    ) -> Tensor:
        """The loss the network trains on for ``record``'s current batch; records the batch's statistics.

        With several processes every rank's statistics are gathered here; a check that fails on one rank is
        raised on every rank when the epoch closes (a rank that raised alone would leave the others waiting).
        """
        step = record.steps
        if self._recorded_step == (record.epoch, step):
            raise RuntimeError("pruning_loss was called twice for one batch: call it once per training_step")
        start, stop = record.local_span(step)
        error: Exception | None = None
        if self.first or indices is not None or loss.ndim != 1 or loss.shape[0] != stop - start:
            try:  # the checks that can fail; a well-formed step after the first skips them
                self._check_step(record, step, loss, indices)
            except (TypeError, ValueError) as err:
                if self.comm.world_size == 1:
                    raise
                error = err  # raised on every rank when the epoch closes (the others are in the gather below)
        detached = loss.detach()
        stats = None
        if error is None and self.method.statistics:
            stats = self.method.observe(detached, **method_inputs(self.method, inputs))
        if self.comm.world_size == 1:
            record.record(start, stop, detached, stats)
        else:
            record.record_gathered(step, self.comm.gather_rows(record.rows(step, detached, stats, error)), error)
        self._recorded_step = (record.epoch, step)
        if error is not None:
            return loss.mean()
        weights = record.loss_weights(start, stop)
        return loss.mean() if weights is None else (weights.to(loss.dtype) * loss).mean()

    def _check_step(self, record: EpochRecord, step: int, loss: Tensor, indices: Tensor | None) -> None:
        check_batch_loss(loss, record.batch_length(step))
        if indices is not None and step == 0:
            check_indices(indices, record.indices(step))
        if self.first and self.method.nonnegative_loss and self.comm.world_size == 1:
            check_nonnegative(type(self.method).__name__, loss.detach())  # (several processes: at the epoch's end)
        self.first = False

    def end_batch(self, record: EpochRecord, returned_loss: bool) -> None:
        """Close ``record``'s current batch (no collective: the rows were gathered in :meth:`network_loss`)."""
        recorded = self._recorded_step == (record.epoch, record.steps)
        if returned_loss and not recorded:
            raise RuntimeError(
                f"training_step returned a loss but did not call `self.pruning_loss(per_sample_loss)`, so "
                f"{type(self.method).__name__} has nothing to learn from. Return `self.pruning_loss(...)` from "
                "training_step (returning None to skip a batch is fine in one process)"
            )
        record.advance(recorded)
