"""``StepRecorder``: the per-step path of a pruning fit, from ``pruning_loss`` to the end of the batch.

Per step it checks what it must (the first step, and any step that hands over indices or a loss of another
length), writes the batch's detached statistics into the epoch's record, and returns the network's loss from the
per-position weights the method fixed for the epoch: a slice, a copy and a product, no host-device sync on one
device. With several processes it gathers every rank's rows at the batch's end, where a check that failed on one
rank is raised on all of them.
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
        self._step_error: Exception | None = None

    def network_loss(
        self, record: EpochRecord, loss: Tensor, indices: Tensor | None, inputs: dict[str, Tensor]
    ) -> Tensor:
        """The loss the network trains on for ``record``'s current batch; records the batch's statistics.

        With several processes a check that fails on one rank is raised at the batch's end on every rank at once
        (a rank that raised alone would leave the others waiting in the gather).
        """
        step = record.steps
        if self._recorded_step == (record.epoch, step):
            raise RuntimeError("pruning_loss was called twice for one batch: call it once per training_step")
        start, stop = record.local_span(step)
        if self.first or indices is not None or loss.ndim != 1 or loss.shape[0] != stop - start:
            try:  # the checks that can fail; a well-formed step after the first skips them
                self._check_step(record, step, loss, indices)
            except (TypeError, ValueError) as error:
                if self.comm.world_size == 1:
                    raise
                self._step_error = error
                return loss.mean()
        detached = loss.detach()
        stats = self.method.observe(detached, **method_inputs(self.method, inputs)) if self.method.statistics else None
        record.record(start, stop, detached, stats)
        self._recorded_step = (record.epoch, step)
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
        """Close ``record``'s current batch: gather its statistics from every rank and move on."""
        step = record.steps
        recorded = self._recorded_step == (record.epoch, step)
        error, self._step_error = self._step_error, None
        if self.comm.world_size > 1:  # the flag column: 1 recorded, 0 skipped, -1 forgot pruning_loss, -2 failed
            rows = record.take_pending(step, self.device)
            flag = -2.0 if error is not None else 1.0 if recorded else (-1.0 if returned_loss else 0.0)
            rows = torch.cat([rows, torch.full((rows.shape[0], 1), flag, device=rows.device)], dim=1)
            gathered = self.comm.gather_rows(rows)
            flags = gathered[:, 0, -1].tolist() if gathered.shape[1] else [flag] * self.comm.world_size
            if -2.0 in flags:
                rank = flags.index(-2.0)
                raise error or RuntimeError(f"pruning_loss failed its checks on rank {rank} (see its error); all stop")
            forgot = -1.0 in flags
            if not forgot:
                record.record_gathered(step, gathered[..., :-1])
            ranks_recorded = tuple(f == 1.0 for f in flags)
        else:
            forgot, ranks_recorded = returned_loss and not recorded, (recorded,)
        if forgot:
            raise RuntimeError(
                f"training_step returned a loss but did not call `self.pruning_loss(per_sample_loss)`, so "
                f"{type(self.method).__name__} has nothing to learn from. Return `self.pruning_loss(...)` from "
                "training_step (returning None to skip a batch is fine)"
            )
        record.advance(ranks_recorded)
