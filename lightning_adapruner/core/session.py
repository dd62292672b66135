"""``PruningSession``: the Lightning-free core of :class:`~lightning_adapruner.DataPruning`.

It owns one fit's pruning: the method, the schedule, the epoch's record, the evidence of which samples were
ever forwarded and the compute ledger. The callback adapts Lightning's hooks to its calls, as Lightning's
``ThroughputMonitor`` adapts to ``Throughput``. Every rank runs the same calls on the same data (multi-process
statistics are gathered every step), so every rank holds the same state without deciding anything alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.distributed import Collectives
from lightning_adapruner.core.epoch import EpochRecord
from lightning_adapruner.core.method import FitInfo, PruningMethod
from lightning_adapruner.core.metrics import ComputeLedger
from lightning_adapruner.core.schedule import KeepSchedule

log = logging.getLogger(__name__)

STATE_VERSION = 2
UNSEEN_WARN_SHARE = 0.1  # a cut that ranks more never-forwarded candidates than this share is reported once


@dataclass(frozen=True)
class LoaderFacts:
    """What the session needs to know about the training loader and the trainer.

    Attributes:
        num_samples: the training set's length ``N``.
        batch_size: samples per batch on one rank; drop_last: the loader drops a short last batch.
        shuffle: the loader shuffles (each epoch's order is drawn from the seed).
        limit_batches: ``Trainer(limit_train_batches)``.
        max_epochs: ``Trainer(max_epochs)``.
        val_check_batches: ``Trainer(val_check_interval)`` when it counts batches (an int), else ``None``.
        device: where the state lives; labels: class labels ``[N]`` when known.
    """

    num_samples: int
    batch_size: int
    drop_last: bool
    shuffle: bool
    limit_batches: int | float
    max_epochs: int
    device: torch.device
    labels: Tensor | None = None
    val_check_batches: int | None = None


class PruningSession:
    """One fit's pruning state and decisions (see the module docstring).

    Args:
        method: the :class:`~lightning_adapruner.PruningMethod`.
        prune_ratio, warmup_epochs, prune_epochs, shape: the keep-share schedule (``prune_epochs=None``: half the
            epochs after warm-up, at least one).
        class_floor: every class keeps at least this many samples.
        shard_drop_last: drop the ``K % world_size`` remainder of an epoch instead of topping shards up.
    """

    def __init__(
        self,
        method: PruningMethod,
        prune_ratio: float,
        warmup_epochs: int,
        prune_epochs: int | None,
        shape: F.ScheduleShape,
        class_floor: int,
        shard_drop_last: bool,
    ) -> None:
        self.method = method
        self.prune_ratio, self.warmup_epochs, self.prune_epochs, self.shape = (
            prune_ratio,
            warmup_epochs,
            prune_epochs,
            shape,
        )
        self.class_floor, self.shard_drop_last = class_floor, shard_drop_last
        self.started = False
        self._stash: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, facts: LoaderFacts, collectives: Collectives, seed: int) -> None:
        """Fresh state for a fit over ``facts.num_samples`` samples (then a stashed checkpoint, if any, on top).

        Raises:
            ValueError: an epoch of the schedule that cannot run (no batch, fewer samples than processes, class
                floors above its budget, fewer batches than ``val_check_interval``), naming the fix.
        """
        stash, self._stash = self._stash, None
        if stash and "seed" in stash and int(stash["seed"]) != seed:
            log.warning("resuming with the checkpoint's pruning seed %s (this fit's would be %s)", stash["seed"], seed)
            seed = int(stash["seed"])
        self.facts, self.comm, self.seed = facts, collectives, seed
        n = facts.num_samples
        self.schedule = KeepSchedule(
            self.prune_ratio, self.warmup_epochs, self._prune_epochs(facts), self.shape, facts.max_epochs
        )
        budgets = [self.budget(e) for e in range(facts.max_epochs)]
        self.planned_batches = tuple(self._batches(b) for b in budgets)
        self._check_schedule(budgets)
        self.method.reset(
            FitInfo(n, self.schedule, self.planned_batches, seed, facts.device, facts.labels, self.class_floor)
        )
        self.seen = torch.zeros(n, dtype=torch.bool)
        self.kept: Tensor | None = None  # None: every sample
        self._all: Tensor | None = None
        self.record: EpochRecord | None = None
        self.closed_epoch = -1
        self.ledger = ComputeLedger()
        self.nonfinite_total = 0
        self.task_loss: float | None = None
        self.warned_unseen = False
        self.first_step = True
        self._recorded_step: tuple[int, int] | None = None
        self._step_error: Exception | None = None
        self.started, self.restored = True, False
        if stash:
            self._restore(stash)

    def _check_schedule(self, budgets: list[int]) -> None:
        """Every epoch of the schedule must be able to run; say which setting to change where one cannot."""
        w, facts = self.comm.world_size, self.facts
        for epoch, (budget, batches) in enumerate(zip(budgets, self.planned_batches)):
            where = f"epoch {epoch} of the pruning schedule keeps {budget} of {facts.num_samples} samples"
            if budget < w:
                raise ValueError(
                    f"{where}, fewer than the {w} process(es): a rank would get no samples. Lower prune_ratio "
                    f"(now {self.prune_ratio}) or the method's annealing"
                )
            if batches < 1:
                raise ValueError(
                    f"{where}, which makes no batch of {facts.batch_size} per process (drop_last="
                    f"{facts.drop_last}, limit_train_batches={facts.limit_batches}): lower prune_ratio (now "
                    f"{self.prune_ratio}), the batch size, or let the last short batch run (drop_last=False)"
                )
            if facts.val_check_batches is not None and batches < facts.val_check_batches:
                raise ValueError(
                    f"{where} in {batches} batches, fewer than Trainer(val_check_interval={facts.val_check_batches}):"
                    " validate by a share of the epoch (a float val_check_interval) or every few epochs instead"
                )
        if self.class_floor and facts.labels is not None:
            floors = int(torch.bincount(facts.labels.long()).clamp(max=self.class_floor).sum())
            if floors > min(budgets):
                raise ValueError(
                    f"class_floor={self.class_floor} needs {floors} samples but the smallest epoch keeps "
                    f"{min(budgets)}: lower class_floor or prune_ratio"
                )

    def _prune_epochs(self, facts: LoaderFacts) -> int:
        if self.prune_epochs is not None:
            return self.prune_epochs
        return max(1, (facts.max_epochs - self.warmup_epochs) // 2)

    # ------------------------------------------------------------------ schedule
    def budget(self, epoch: int) -> int:
        """Samples ``epoch`` forwards (exact)."""
        n = self.facts.num_samples
        return n if self.method.forward_all else F.num_kept(n, self.method.keep_share(epoch, self.schedule))

    def _batches(self, budget: int) -> int:
        shard = F.shard_length(budget, self.comm.world_size, self.shard_drop_last)
        return F.limit_batches(
            F.num_batches(shard, self.facts.batch_size, self.facts.drop_last), self.facts.limit_batches
        )

    # ------------------------------------------------------------------ planning
    def plan(self, epoch: int) -> EpochRecord:
        """The record of ``epoch``: the previous epoch is closed (if still open) and ``epoch``'s samples chosen.

        Idempotent: asking again for the open epoch returns its record. An epoch before the state's own (the
        Trainer asks for the data before it restores its epoch counter from a checkpoint) means the state's.
        """
        epoch = max(epoch, self.closed_epoch + 1, self.record.epoch if self.record is not None else 0)
        if self.record is not None and self.record.epoch == epoch:
            return self.record
        if self.record is not None:
            self.close()
        budget = self.budget(epoch)
        candidates = self._candidates(budget)
        kept = candidates if budget == candidates.numel() else self._choose(candidates, budget, epoch)
        self.record = self._record_for(epoch, kept)
        return self.record

    def _candidates(self, budget: int | None = None) -> Tensor:
        """The previous epoch's samples for a nested method (unless the budget outgrew them), else all."""
        if self.kept is not None and self.method.nested and (budget is None or budget <= self.kept.numel()):
            return self.kept
        if self._all is None:
            n = self.facts.num_samples
            self._all = torch.arange(n, dtype=torch.int32 if n < 2**31 else torch.long)
        return self._all

    def _choose(self, candidates: Tensor, budget: int, epoch: int, final: bool = False) -> Tensor:
        """``budget`` of ``candidates`` by the method; never-forwarded ones kept at the cut's rate, at random."""
        choose = self.method.final_subset if final else self.method.plan
        every = candidates is self._all  # positions in the candidates are the samples themselves
        unknown = None
        if self.method.needs_evidence:
            evidence = self.method.evidence()
            known = self.seen if evidence is None else evidence
            unknown = ~(known if every else known[candidates])  # over the candidates
        unseen = 0 if unknown is None else int(unknown.sum())
        if unseen == 0:
            kept = choose(candidates, budget, epoch)
        else:
            assert unknown is not None
            self._warn_unseen(unseen, candidates.numel(), epoch)
            quota = F.evidence_quota(budget, candidates.numel(), unseen)
            drawn = F.random_pick(unknown, quota, F.generator(self.seed, epoch, F.selection.STREAM_UNSEEN))
            seen_candidates = (~unknown).nonzero().flatten() if every else candidates[~unknown]
            kept = torch.cat(
                [
                    choose(seen_candidates.to(candidates.dtype), budget - quota, epoch).to(candidates.dtype),
                    (drawn.nonzero().flatten() if every else candidates[drawn]).to(candidates.dtype),
                ]
            )
        labels = self.facts.labels
        if self.class_floor and labels is not None:
            gen = F.generator(self.seed, epoch, F.selection.STREAM_FLOOR)
            kept = F.enforce_class_floor(kept, candidates, labels, self.class_floor, gen)
        self._check_plan(kept, candidates, budget, epoch)
        return kept.to(candidates.dtype)

    def _check_plan(self, kept: Tensor, candidates: Tensor, budget: int, epoch: int) -> None:
        name = type(self.method).__name__
        if kept.ndim != 1 or kept.numel() != budget:
            raise RuntimeError(
                f"{name}.plan returned {kept.numel()} samples for epoch {epoch}, not its budget of {budget}: LR "
                "schedules are sized from the budgets, so a plan must hold exactly that many"
            )
        n = self.facts.num_samples
        taken = torch.zeros(n, dtype=torch.bool)
        if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= n):
            raise RuntimeError(f"{name}.plan for epoch {epoch} returned indices outside [0, {n})")
        taken[kept] = True
        if candidates.numel() == n:  # every sample is a candidate: in range and distinct is enough
            subset = True
        else:
            allowed = torch.zeros(n, dtype=torch.bool)
            allowed[candidates] = True
            subset = bool(allowed[kept].all())
        if not subset or int(taken.sum()) != budget:
            raise RuntimeError(f"{name}.plan for epoch {epoch} must return distinct samples from its candidates")

    def _warn_unseen(self, unseen: int, candidates: int, epoch: int) -> None:
        if self.warned_unseen or unseen < UNSEEN_WARN_SHARE * candidates:
            return
        self.warned_unseen = True
        log.warning(
            "epoch %d: %d of %d candidates (%.0f%%) were never forwarded (limit_train_batches, a short fit or a "
            "resume): they are kept at the cut's own rate, at random, not ranked by a score they never earned",
            epoch,
            unseen,
            candidates,
            100 * unseen / candidates,
        )

    def _record_for(self, epoch: int, kept: Tensor) -> EpochRecord:
        w = self.comm.world_size
        order = F.epoch_order(kept, w, self.seed, epoch, self.facts.shuffle, self.shard_drop_last)
        self.kept = kept
        record = EpochRecord(
            epoch,
            order,
            kept.numel(),
            w,
            self.comm.rank,
            self.facts.batch_size,
            self.planned_batches[epoch] if epoch < len(self.planned_batches) else self._batches(kept.numel()),
            self.method.statistics,
            self.facts.device,
        )
        layout = record.layout
        self.method.begin_epoch(layout)
        weights = self.method.loss_weights(layout)
        if weights is not None and weights.shape != (layout.runs,):
            raise RuntimeError(
                f"{type(self.method).__name__}.loss_weights returned shape {tuple(weights.shape)}, expected "
                f"({layout.runs},): one weight per position that runs this epoch"
            )
        record.set_loss_weights(weights)
        return record

    # ------------------------------------------------------------------ the step (hot path)
    def network_loss(self, loss: Tensor, indices: Tensor | None, inputs: dict[str, Tensor]) -> Tensor:
        """The loss the network trains on for the current batch; records the batch's statistics.

        With several processes a check that fails on one rank is raised at the batch's end on every rank at once
        (a rank that raised alone would leave the others waiting in the gather).
        """
        record = self._open_record()
        step = record.steps
        if self._recorded_step == (record.epoch, step):
            raise RuntimeError("pruning_loss was called twice for one batch: call it once per training_step")
        start, stop = record.local_span(step)
        if self.first_step or indices is not None or loss.ndim != 1 or loss.shape[0] != stop - start:
            try:  # the checks that can fail; a well-formed step after the first skips them
                self._check_step(record, step, loss, indices)
            except (TypeError, ValueError) as error:
                if self.comm.world_size == 1:
                    raise
                self._step_error = error
                return loss.mean()
        detached = loss.detach()
        stats = self.method.observe(detached, **self._inputs(inputs)) if self.method.statistics else None
        record.record(start, stop, detached, stats)
        self._recorded_step = (record.epoch, step)
        weights = record.loss_weights(start, stop)
        return loss.mean() if weights is None else (weights.to(loss.dtype) * loss).mean()

    def _check_step(self, record: EpochRecord, step: int, loss: Tensor, indices: Tensor | None) -> None:
        n = record.batch_length(step)
        if loss.ndim != 1 or loss.shape[0] != n:
            raise ValueError(
                f"pruning_loss needs one loss per sample of the batch: got shape {tuple(loss.shape)}, but the batch "
                f"holds {n} samples. Compute the loss with reduction='none' (reduce any other dimension yourself). If "
                "the shape is right, your collate_fn or dataset dropped samples: the plugin tracks which samples each "
                "batch holds, so batches must keep every sample the sampler drew, in order"
            )
        if indices is not None and step == 0:
            self._check_indices(indices, record.indices(step))
        if self.first_step and self.method.nonnegative_loss and self.comm.world_size == 1:
            self._check_nonnegative(loss.detach())  # (several processes: checked at the epoch's end, on every rank)
        self.first_step = False

    def end_batch(self, returned_loss: bool) -> None:
        """Close the current batch: gather its statistics from every rank and move on."""
        record = self._open_record()
        step = record.steps
        recorded = self._recorded_step == (record.epoch, step)
        error, self._step_error = self._step_error, None
        if self.comm.world_size > 1:  # the flag column: 1 recorded, 0 skipped, -1 forgot pruning_loss, -2 failed
            rows = record.take_pending(step, self.facts.device)
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

    def _open_record(self) -> EpochRecord:
        if self.record is None:
            raise RuntimeError("no pruning epoch is open: the training dataloader was not prepared by DataPruning")
        return self.record

    def _inputs(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        missing = [name for name in self.method.inputs if name not in inputs]
        if missing:
            given = ", ".join(f"{m}=..." for m in self.method.inputs)
            raise ValueError(
                f"{type(self.method).__name__} needs {missing} for its statistics: call "
                f"`self.pruning_loss(per_sample_loss, {given})` in training_step"
            )
        return {name: inputs[name].detach() for name in self.method.inputs}

    @staticmethod
    def _check_indices(indices: Tensor, tracked: Tensor) -> None:
        if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.dtype == torch.bool:
            got = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
            raise TypeError(
                f"pruning_loss(indices=...) needs the batch's dataset indices as an integer tensor, got {got}; or "
                "leave indices out: the plugin knows which samples each batch holds"
            )
        if indices.shape != tracked.shape or not torch.equal(indices.to(tracked.device).long(), tracked.long()):
            raise ValueError(
                "pruning_loss got indices that are not the samples of this batch: pass the dataset indices the batch "
                "carries (IndexedDataset's `batch.index`), not positions in the batch, or leave indices out: the "
                "plugin knows which samples each batch holds"
            )

    def _check_nonnegative(self, loss: Tensor) -> None:
        finite = loss[torch.isfinite(loss)]
        if finite.numel() and float(finite.min()) < 0:
            raise ValueError(
                f"{type(self.method).__name__} needs per-sample losses >= 0, got {float(finite.min()):.4g}: its "
                "objective takes -log(loss). Shift the loss by a constant so it is non-negative (e.g. add the bound "
                "of a Gaussian NLL), or pick a method that ranks any real loss (infobatch, seta, el2n, random)"
            )

    # ------------------------------------------------------------------ epoch end
    def close(self) -> None:
        """Learn from the open epoch (idempotent per epoch): update the method, the evidence and the ledger."""
        record = self.record
        if record is None:
            return
        if self.method.nonnegative_loss and (low := record.negative_loss()) is not None:
            self._check_nonnegative(torch.tensor([low]))  # before any update: the state stays as it was
        total, count = 0.0, 0
        for observations in record.observations():  # in pieces of the epoch: methods update elementwise
            self.method.update(observations)
            self.seen[observations.indices.cpu()] = True
            total, count = total + float(observations.loss.double().sum()), count + len(observations)
        nonfinite = record.nonfinite()
        self.method.end_epoch(record.epoch, record.steps)
        full = F.full_epoch_samples(
            self.facts.num_samples,
            self.comm.world_size,
            self.facts.batch_size,
            self.facts.drop_last,
            self.facts.limit_batches,
        )
        per_batch = self.facts.batch_size * self.comm.world_size
        full = full if record.done else min(full, record.steps * per_batch)
        self.ledger.add(record.forwarded(), full)
        self.task_loss = total / count if count else None
        if nonfinite:
            self.nonfinite_total += nonfinite
            log.warning(
                "%d per-sample loss(es) in epoch %d were NaN or inf; they were left out of the pruning statistics "
                "(those samples keep their state). Check the model's loss for instabilities.",
                nonfinite,
                record.epoch,
            )
        self._check_ranks_agree()
        self.closed_epoch, self.record = record.epoch, None

    def _check_ranks_agree(self) -> None:
        if self.comm.world_size <= 1:
            return
        checksum = self.method.checksum().to(self.facts.device)
        if not self.comm.same_everywhere(checksum):
            log.warning("pruning state differed across ranks (float drift); re-synchronising it from rank 0")
            self.method.load_state_dict(self.comm.broadcast(self.method.state_dict()))

    def finish(self, epoch: int) -> Tensor:
        """Close the fit: the exported subset of ``round((1 - p) N)`` samples."""
        self.close()
        k = F.num_kept(self.facts.num_samples, self.schedule.keep_fraction)
        candidates = self._candidates(k)
        kept = candidates if k == candidates.numel() else self._choose(candidates, k, epoch, final=True)
        return torch.sort(kept.long()).values

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        if not self.started:
            return {}
        return {
            "version": STATE_VERSION,
            "num_samples": self.facts.num_samples,
            "prune_ratio": self.prune_ratio,
            "seed": self.seed,
            "kept": None if self.kept is None else self.kept.clone(),
            "seen": self.seen.clone(),
            "closed_epoch": self.closed_epoch,
            "record": None if self.record is None else self.record.state_dict(),
            "forwarded": self.ledger.forwarded,
            "full": self.ledger.full,
            "nonfinite": self.nonfinite_total,
            "method": self.method.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A checkpoint's state: applied when the fit starts (Lightning restores callbacks before the data), or
        at once if the fit has started already (strategies that restore callbacks late)."""
        if self.started and state:
            self._restore(dict(state))
        else:
            self._stash = dict(state) if state else None

    def _restore(self, state: dict[str, Any]) -> None:
        if int(state.get("version", 1)) != STATE_VERSION:
            raise ValueError(
                f"the checkpoint's pruning state is version {state.get('version', 1)}; this lightning_adapruner reads "
                f"version {STATE_VERSION}: resume with the release that wrote it, or start a new fit without ckpt_path"
            )
        n = self.facts.num_samples
        if float(state["prune_ratio"]) != self.prune_ratio:
            raise ValueError(
                f"the checkpoint's pruning state is for prune_ratio={state['prune_ratio']}, this fit has "
                f"prune_ratio={self.prune_ratio}: resume with the checkpoint's settings, or start a new fit"
            )
        if state["num_samples"] != n:
            raise ValueError(
                f"the checkpoint's pruning state is for a training set of {state['num_samples']} samples, but this "
                f"training set has {n}: resume with the dataset the checkpoint was made with, or start a new run "
                "without ckpt_path"
            )
        self.method.load_state_dict(state["method"])
        self.seen = state["seen"].clone()
        self.kept = None if state["kept"] is None else state["kept"].clone()
        self.closed_epoch = int(state["closed_epoch"])
        self.ledger = ComputeLedger(int(state["forwarded"]), int(state["full"]))
        self.nonfinite_total = int(state.get("nonfinite", 0))
        self.first_step, self.restored = False, True
        if state["record"] is not None:  # an epoch was running: rebuild its order, then its recorded steps
            saved = state["record"]
            self.record = self._record_for(int(saved["epoch"]), self.kept)
            self.record.load_state_dict(saved)
