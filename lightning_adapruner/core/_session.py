"""``PruningSession``: the Lightning-free core of :class:`~lightning_adapruner.DataPruning`.

It owns one fit's pruning: the method, the schedule, the epoch's record, the evidence of which samples were
ever forwarded and the compute ledger. The callback adapts Lightning's hooks to its calls, as Lightning's
``ThroughputMonitor`` adapts to ``Throughput``. Every rank runs the same calls on the same data (multi-process
statistics are gathered every step), so every rank holds the same state without deciding anything alone.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core._checks import check_batch_loss, check_indices, check_nonnegative, method_inputs
from lightning_adapruner.core._distributed import Collectives, resync_method
from lightning_adapruner.core._epoch import EpochRecord, ShardedRecord
from lightning_adapruner.core._loader import LoaderFacts
from lightning_adapruner.core._planning import check_schedule, choose
from lightning_adapruner.core.functional.schedule import KeepSchedule, PruningTarget
from lightning_adapruner.core.method import FitInfo, PruningMethod, Shard
from lightning_adapruner.core.metrics import ComputeLedger

log = logging.getLogger(__name__)

STATE_VERSION = 2
UNSEEN_WARN_SHARE = 0.1  # a cut that ranks more never-forwarded candidates than this share is reported once
STREAM_SHARD = 32  # (sharded state) first generator stream of the ranks' own draws


class PruningSession:
    """One fit's pruning state and decisions (see the module docstring).

    Args:
        method: the :class:`~lightning_adapruner.PruningMethod`.
        target: the :class:`~lightning_adapruner.core.functional.schedule.PruningTarget` (a prune ratio or a budget).
        warmup_epochs, prune_epochs, shape: the keep-share schedule (``prune_epochs=None``: half the epochs after
            warm-up, at least one).
        class_floor: every class keeps at least this many samples.
        shard_drop_last: drop the ``K % world_size`` remainder of an epoch instead of topping shards up.
    """

    sharded = False  # every rank holds every sample's state (see ``ShardedSession`` below)

    def __init__(
        self,
        method: PruningMethod,
        target: PruningTarget,
        warmup_epochs: int,
        prune_epochs: int | None,
        shape: F.ScheduleShape,
        class_floor: int,
        shard_drop_last: bool,
    ) -> None:
        self.method, self.target = method, target
        self.warmup_epochs, self.prune_epochs, self.shape = warmup_epochs, prune_epochs, shape
        self.class_floor, self.shard_drop_last = class_floor, shard_drop_last
        self.started = False
        self.record: EpochRecord | None = None
        self._stash: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Forget the last fit's state: a new fit starts at its first data request (a stashed checkpoint stays)."""
        self.started, self.record = False, None

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
        self.schedule, self.counts = self._layout(facts, collectives.world_size)
        self.planned_batches = tuple(self._batches(c) for c in self.counts)
        check_schedule(
            self.counts, self.planned_batches, facts, collectives.world_size, self.target.describe(), self.class_floor
        )
        self.method.reset(self._fit_info(seed))
        own = self.method.fit.num_samples  # (N, or this rank's samples with sharded state)
        self.seen = torch.zeros(own, dtype=torch.bool)
        self.last_epoch = torch.full((own,), -1, dtype=torch.int16)  # the last epoch each sample was kept in
        self.kept: Tensor | None = None  # None: every sample
        self._all: Tensor | None = None
        self.record = None
        self.closed_epoch = -1
        self.ledger = ComputeLedger()
        self.nonfinite_total = 0
        self.task_loss: float | None = None
        self.warned_unseen = False
        self._unchecked = False  # an epoch closed since the ranks' states were last compared
        self._first = True  # the fit's first step checks the loss's sign once
        self._recorded_step: tuple[int, int] | None = None
        self.started, self.restored = True, False
        if stash:
            self._restore(stash)

    def _fit_info(self, seed: int) -> FitInfo:
        facts = self.facts
        return FitInfo(
            facts.num_samples, self.schedule, self.planned_batches, seed, facts.device, facts.labels, self.class_floor
        )

    # ------------------------------------------------------------------ schedule
    def _layout(self, facts: LoaderFacts, world_size: int) -> tuple[KeepSchedule, list[int]]:
        """The fit's schedule and the samples of every epoch: pruned epochs in whole global batches, and with a
        budget the prune ratio solved so the fit forwards exactly ``budget`` of full data's samples.

        Raises:
            ValueError: a budget with ``limit_train_batches`` (epochs are then cut by the limit, not by the plan), or
                one the schedule cannot reach.
        """
        n, epochs, batch = facts.num_samples, facts.max_epochs, facts.batch_size * world_size
        prune_epochs = self.prune_epochs or max(1, (facts.max_epochs - self.warmup_epochs) // 2)  # (never 0)

        def schedule(p: float) -> KeepSchedule:
            return KeepSchedule(p, self.warmup_epochs, prune_epochs, self.shape, epochs)

        def shares(p: float) -> list[float]:
            forward_all = self.method.forward_all
            return [1.0 if forward_all else self.method.keep_share(e, schedule(p)) for e in range(epochs)]

        if self.target.budget is None:
            p = self.target.prune_ratio
            assert p is not None  # a target holds one of the two
            return schedule(p), F.epoch_sample_counts(shares(p), n, batch, None, world_size)
        if facts.debug_run:  # a few batches to check the wiring: no budget to meet, nothing to prune
            return schedule(0.0), [n] * epochs
        if not (isinstance(facts.limit_batches, float) and facts.limit_batches == 1.0):
            raise ValueError(
                f"a budget is a share of full data's samples, but limit_train_batches={facts.limit_batches} cuts every "
                "epoch by its own rule: give prune_ratio instead, or train without limit_train_batches"
            )
        if facts.drop_last:
            raise ValueError(
                "a budget is met to the sample, but the training DataLoader drops each epoch's last partial batch "
                "(drop_last=True), so the samples planned for it would not be forwarded: pass drop_last=False to "
                "the DataLoader, or give prune_ratio instead"
            )
        total = round(self.target.budget * n * epochs)
        p = F.solve_prune_ratio(total, lambda p: sum(F.num_kept(n, s) for s in shares(p)))
        try:
            counts = F.epoch_sample_counts(shares(p), n, batch, total, world_size)
        except ValueError as err:
            raise ValueError(f"budget={self.target.budget} cannot be laid out: {err}. Raise the budget") from None
        return schedule(p), counts

    def budget(self, epoch: int) -> int:
        """Samples ``epoch`` forwards (exact)."""
        if epoch < len(self.counts):
            return self.counts[epoch]
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
        if self._unchecked:  # the data request: a point every rank reaches in step (no callback in between)
            resync_method(self.method, self.comm, self.facts.device)
            self._unchecked = False
        self.record = self._record_for(epoch, self._select(self.budget(epoch), epoch))
        return self.record

    def _select(self, budget: int, epoch: int, final: bool = False) -> Tensor:
        """``budget`` samples for ``epoch`` (or, ``final``, the export after it): the kept set grown at random
        (:meth:`_grown`), else the candidates themselves when the budget takes them all, else the method's choice."""
        kept = self._grown(budget, epoch + 1 if final else epoch)
        if kept is None:
            candidates = self._candidates(budget)
            kept = candidates if budget == candidates.numel() else self._choose(candidates, budget, epoch, final)
        return kept

    def _grown(self, budget: int, epoch: int) -> Tensor | None:
        """For a nested method asked for more samples than it kept but not all (a user's schedule, an export a batch
        larger than the last epoch): every sample it kept plus the extra drawn at random among the others, whose
        scores are stale (only forwarded samples learn: a score frozen when its sample was cut says little now).
        ``None`` when the budget does not grow."""
        previous, n = self.kept, self.facts.num_samples
        if previous is None or not self.method.nested or not previous.numel() < budget < n:
            return None
        outside = torch.ones(n, dtype=torch.bool)
        outside[previous.long()] = False
        extra = F.random_pick(
            outside, budget - previous.numel(), F.generator(self.seed, epoch, F.selection.STREAM_UNSEEN)
        )
        return torch.cat([previous, extra.nonzero().flatten().to(previous.dtype)])

    def _candidates(self, budget: int | None = None) -> Tensor:
        """The previous epoch's samples for a nested method (unless the budget outgrew them), else all."""
        if self.kept is not None and self.method.nested and (budget is None or budget <= self.kept.numel()):
            return self.kept
        if self._all is None:
            n = self.facts.num_samples
            self._all = torch.arange(n, dtype=torch.int32 if n < 2**31 else torch.long)
        return self._all

    def _choose(self, candidates: Tensor, budget: int, epoch: int, final: bool = False) -> Tensor:
        """``budget`` of ``candidates`` (:func:`~lightning_adapruner.core._planning.choose`); warns once when many
        had no evidence."""
        kept, unseen = choose(
            self.method, candidates, candidates is self._all, budget, epoch, self.seen, self.facts.labels,
            self.class_floor, self.seed, final,
        )  # fmt: skip
        if unseen >= UNSEEN_WARN_SHARE * candidates.numel() and not self.warned_unseen:
            self.warned_unseen = True
            log.warning(
                "epoch %d: %d of %d candidates (%.0f%%) were never forwarded (limit_train_batches, a short fit or a "
                "resume): they are kept at the cut's own rate, at random, not ranked by a score they never earned",
                epoch, unseen, candidates.numel(), 100 * unseen / candidates.numel(),
            )  # fmt: skip
        return kept

    def _epoch_record(self, epoch: int, kept: Tensor, batches: int) -> EpochRecord:
        w = self.comm.world_size
        order = F.epoch_order(kept, w, self.seed, epoch, self.facts.shuffle, self.shard_drop_last)
        return EpochRecord(
            epoch, order, kept.numel(), w, self.comm.rank, self.facts.batch_size, batches, self.method.statistics,
            self.facts.device,
        )  # fmt: skip

    def _record_for(self, epoch: int, kept: Tensor) -> EpochRecord:
        planned = epoch < len(self.planned_batches)  # (kept holds budget(epoch) samples of all ranks)
        batches = self.planned_batches[epoch] if planned else self._batches(self.budget(epoch))
        record = self._epoch_record(epoch, kept, batches)
        self.kept = kept
        self.last_epoch.numpy()[kept.cpu().numpy()] = epoch  # (numpy's fancy assignment: a third of torch's at 25M)
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
    def network_loss(
        self, loss: Tensor, indices: Tensor | None = None, inputs: dict[str, Tensor] | None = None
    ) -> Tensor:
        """The loss the network trains on for the current batch; records the batch's detached statistics.

        Checks what it must (the fit's first step, and a step that hands over indices or a loss of another
        length), then returns ``mean(w * loss)`` from the per-position weights the method fixed for the epoch: a
        slice, a copy and a product, no host-device sync. With several processes every rank's statistics are
        gathered here, inside ``training_step``, where every rank is at the same point whatever other callbacks do
        (Lightning does not support skipping a batch under several processes, so every rank comes here every step);
        a check that fails on one rank is raised on every rank when the epoch closes.

        Args:
            loss: ``[B]``, one loss per sample of the batch (keep the graph).
            indices: optional dataset indices of the batch's samples, checked against the tracked ones.
            inputs: the tensors the method asks for (``method.inputs``, e.g. ``logits``, ``targets``).
        """
        record = self.record
        if record is None:
            raise RuntimeError("no pruning epoch is open: the training dataloader was not prepared by DataPruning")
        step = record.steps
        if self._recorded_step == (record.epoch, step):
            raise RuntimeError("pruning_loss was called twice for one batch: call it once per training_step")
        start, stop = record.local_span(step)
        error: Exception | None = None
        if self._first or indices is not None or loss.ndim != 1 or loss.shape[0] != stop - start:
            try:  # the checks that can fail; a well-formed step after the first skips them
                self._check_step(record, step, loss, indices)
            except (TypeError, ValueError) as err:
                if self.comm.world_size == 1:
                    raise
                error = err  # raised on every rank when the epoch closes (the others are in the gather below)
        detached = loss.detach()
        stats = None
        if error is None and self.method.statistics:
            stats = self.method.observe(detached, **method_inputs(self.method, inputs or {}))
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
        if self._first and self.method.nonnegative_loss and self.comm.world_size == 1:
            check_nonnegative(type(self.method).__name__, loss.detach())  # (several processes: at the epoch's end)
        self._first = False

    def end_batch(self, returned_loss: bool) -> None:
        """Close the current batch (no collective: the rows were gathered in :meth:`network_loss`).

        Raises:
            RuntimeError: ``training_step`` returned a loss without calling ``pruning_loss``.
        """
        record = self.record
        if record is None:
            return
        recorded = self._recorded_step == (record.epoch, record.steps)
        if returned_loss and not recorded:
            raise RuntimeError(
                f"training_step returned a loss but did not call `self.pruning_loss(per_sample_loss)`, so "
                f"{type(self.method).__name__} has nothing to learn from. Return `self.pruning_loss(...)` from "
                "training_step (returning None to skip a batch is fine in one process)"
            )
        record.advance(recorded)

    # ------------------------------------------------------------------ epoch end
    def close(self) -> None:
        """Learn from the open epoch (idempotent per epoch): update the method, the evidence and the ledger.

        No collective (it runs in ``on_train_epoch_end``, where other callbacks may be syncing metrics on rank 0
        only): the ranks' states are compared when the next epoch is planned, at the data request."""
        record = self.record
        if record is None:
            return
        record.check_exchange()  # a check failed on some rank, or the ranks fell out of step: every rank raises
        if self.method.nonnegative_loss and (low := record.negative_loss()) is not None:
            check_nonnegative(type(self.method).__name__, torch.tensor([low]))  # before any update
        total, count = 0.0, 0
        for observations in record.observations():  # in pieces of the epoch: methods update elementwise
            self.method.update(observations)
            self.seen[observations.indices.cpu()] = True
            total, count = total + float(observations.loss.double().sum()), count + len(observations)
        nonfinite = record.nonfinite()
        self.method.end_epoch(record.epoch, record.steps)
        facts, per_batch = self.facts, self.facts.batch_size * self.comm.world_size
        full = F.full_epoch_samples(
            facts.num_samples, self.comm.world_size, facts.batch_size, facts.drop_last, facts.limit_batches
        )
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
        self.closed_epoch, self.record, self._unchecked = record.epoch, None, True

    def finish(self, epoch: int) -> Tensor:
        """Close the fit: the exported subset of ``round((1 - p) N)`` samples."""
        self.close()
        k = F.num_kept(self.facts.num_samples, self.schedule.keep_fraction)
        return torch.sort(self._select(k, epoch, final=True).long()).values

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        if not self.started:
            return {}
        return {
            "version": STATE_VERSION,
            "num_samples": self.facts.num_samples,
            "prune_ratio": self.schedule.prune_ratio,
            "target": {"prune_ratio": self.target.prune_ratio, "budget": self.target.budget},
            "seed": self.seed,
            "kept": None if self.kept is None else self.kept.clone(),
            "seen": self.seen.clone(),
            "last_epoch": self.last_epoch.clone(),
            "closed_epoch": self.closed_epoch,
            "record": None if self.record is None else self.record.state_dict(),
            "forwarded": self.ledger.forwarded,
            "full": self.ledger.full,
            "nonfinite": self.nonfinite_total,
            "method": self.method.state_dict(),
            "plan": self._plan_facts(),
        }

    def _plan_facts(self) -> dict[str, Any]:
        """What the step plan (and an LR schedule sized from it) depends on, to compare on resume."""
        facts = self.facts
        return {
            "world_size": self.comm.world_size,
            "batch_size": facts.batch_size,
            "drop_last": facts.drop_last,
            "planned_batches": list(self.planned_batches),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A checkpoint's state: applied when the fit starts (Lightning restores callbacks before the data), or
        at once if the fit has started already (strategies that restore callbacks late)."""
        if self.started and state:
            self._restore(dict(state))
        else:
            self._stash = dict(state) if state else None

    def _check_plan(self, saved: dict[str, Any] | None) -> None:
        """Refuse a checkpoint made with other processes, batch size or ``drop_last``, at an epoch's end as in its
        middle: the epochs it planned, and the LR schedule sized from them, no longer match. A plan that changed
        otherwise (``max_epochs``, ``limit_train_batches``) is warned about: extending a fit is legitimate."""
        if not saved:  # a checkpoint of a release that did not record its plan
            return
        now = self._plan_facts()
        changed = [k for k in ("world_size", "batch_size", "drop_last") if saved.get(k) != now[k]]
        if changed:
            detail = ", ".join(f"{k} {saved.get(k)} -> {now[k]}" for k in changed)
            raise ValueError(
                f"the checkpoint's pruning plan was made with other settings ({detail}; batch_size is per process): "
                "its epochs' steps, and an LR schedule sized by pruning_stepping_batches, would not match this fit's. "
                "Resume with the number of processes, batch size and drop_last it was made with, or start a new fit "
                "without ckpt_path"
            )
        if list(saved.get("planned_batches", [])) != now["planned_batches"]:
            log.warning(
                "this fit plans %d optimiser batches over %d epochs where the checkpoint's fit planned %d over %d "
                "(max_epochs or limit_train_batches changed): a step-based LR schedule restored from the checkpoint "
                "was sized for the old plan",
                sum(now["planned_batches"]), len(now["planned_batches"]),
                sum(saved["planned_batches"]), len(saved["planned_batches"]),
            )  # fmt: skip

    def _restore(self, state: dict[str, Any]) -> None:
        if "shards" in state:
            raise ValueError("the checkpoint's pruning state is sharded over processes: resume with sharded=True")
        if int(state.get("version", 1)) != STATE_VERSION:
            raise ValueError(
                f"the checkpoint's pruning state is version {state.get('version', 1)}; this lightning_adapruner reads "
                f"version {STATE_VERSION}: resume with the release that wrote it, or start a new fit without ckpt_path"
            )
        n = self.facts.num_samples
        saved = state.get("target", {"prune_ratio": float(state["prune_ratio"]), "budget": None})
        if PruningTarget(saved["prune_ratio"], saved["budget"]) != self.target:
            raise ValueError(
                f"the checkpoint's pruning state is for {PruningTarget(**saved).describe()}, this fit has "
                f"{self.target.describe()}: resume with the checkpoint's settings, or start a new fit"
            )
        if state["num_samples"] != n:
            raise ValueError(
                f"the checkpoint's pruning state is for a training set of {state['num_samples']} samples, but this "
                f"training set has {n}: resume with the dataset the checkpoint was made with, or start a new run "
                "without ckpt_path"
            )
        self._check_plan(state.get("plan"))
        self.method.load_state_dict(state["method"])
        self.seen = state["seen"].clone()
        if "last_epoch" in state:  # (checkpoints of 0.2 lack it: the export then marks no sample as cut early)
            self.last_epoch = state["last_epoch"].clone()
        self.kept = None if state["kept"] is None else state["kept"].clone()
        self.closed_epoch = int(state["closed_epoch"])
        self.ledger = ComputeLedger(int(state["forwarded"]), int(state["full"]))
        self.nonfinite_total = int(state.get("nonfinite", 0))
        self._first, self.restored = False, True
        if state["record"] is not None:  # an epoch was running: rebuild its order, then its recorded steps
            saved, kept = state["record"], self.kept
            assert kept is not None  # an open epoch was planned, so it kept a set
            self.record = self._record_for(int(saved["epoch"]), kept)
            self.record.load_state_dict(saved)


class ShardedSession(PruningSession):
    """A :class:`PruningSession` whose per-sample state is sharded over the processes (``DataPruning(sharded=True)``):
    each of ``W`` ranks holds the state of its own block of samples
    (:func:`~lightning_adapruner.core.functional.shard_span`) instead of all ``N``. What changes, and only that:

    - the method's declared state, ``seen``, ``last_epoch`` and the kept set are indexed locally (``fit.shard``);
    - an epoch's cut is :func:`~lightning_adapruner.core.functional.sharded_select_top` over every rank's candidates
      (through the method's ``select_top``): the set one process holding every score keeps, bit for bit; samples
      without evidence and a grown budget are drawn by :func:`~lightning_adapruner.core.functional.sharded_random_pick`
      (a draw of its own, not the replicated fit's);
    - an epoch's order: each rank's kept samples shuffled, joined in rank order and cut into one block per rank
      (:func:`~lightning_adapruner.core.functional.balanced_block`), so a rank forwards mostly samples it owns;
    - each step's gathered rows carry the dataset index, and each rank records those of the samples it owns
      (:class:`~lightning_adapruner.core._epoch.ShardedRecord`);
    - checkpoints: every rank writes its state to a file of its own in ``shard_dir`` (set by the callback); the
      checkpoint holds where, and every rank reads its own back on resume.

    Its collectives run where the session's do (the data request, ``pruning_loss``) plus the export's cut at the end
    of fit (``on_train_end``, where Lightning's progress bars, loggers and checkpoints sync nothing)."""

    sharded = True
    shard_dir: Path | None = None
    _spare: tuple[dict[str, Tensor], Tensor] | None = None  # the closed record's buffers, for the next one

    def _fit_info(self, seed: int) -> FitInfo:
        facts, comm = self.facts, self.comm
        start, stop = F.shard_span(facts.num_samples, comm.world_size, comm.rank)
        self.shard = Shard(comm.rank, start, stop, facts.num_samples, self._gather)
        self.kept_total, self._spare = facts.num_samples, None
        self.fit_id = comm.broadcast(uuid.uuid4().hex[:12])  # names this fit's checkpoint files on every rank
        labels = None if facts.labels is None else facts.labels[start:stop]
        return FitInfo(stop - start, self.schedule, self.planned_batches, seed, facts.device, labels, 0, self.shard)

    def _gather(self, tensor: Tensor) -> Tensor:
        """Every rank's ``tensor`` stacked, sent from the fit's device (a NCCL group gathers CUDA tensors only)."""
        return self.comm.gather_rows(tensor.to(self.facts.device)).cpu()

    def _global(self, count: int) -> int:
        return int(self._gather(torch.tensor([count])).sum())

    def _gens(self, epoch: int, stream: int) -> tuple[torch.Generator, torch.Generator]:
        """This rank's own generator of ``(epoch, stream)`` and the one every rank shares."""
        own = F.generator(self.seed, epoch, STREAM_SHARD + stream + 64 * self.comm.rank)  # (streams < 64: none shared)
        return own, F.generator(self.seed, epoch, stream)

    def _select(self, budget: int, epoch: int, final: bool = False) -> Tensor:
        """This rank's part of ``budget`` samples for ``epoch`` (see :meth:`PruningSession._select`)."""
        own, rank, gather = self.shard.stop - self.shard.start, self.comm.rank, self._gather
        nested = self.kept is not None and self.method.nested
        if nested and self.kept_total < budget < self.facts.num_samples:  # grown: the rest drawn at random
            assert self.kept is not None
            outside = torch.ones(own, dtype=torch.bool)
            outside[self.kept.long()] = False
            gens = self._gens(epoch + 1 if final else epoch, F.selection.STREAM_UNSEEN)
            extra = F.sharded_random_pick(outside, budget - self.kept_total, gens, rank, gather)
            return torch.cat([self.kept, extra.nonzero().flatten().to(self.kept.dtype)])
        if self.kept is not None and nested and budget <= self.kept_total:  # (the previous epoch's samples)
            candidates, total = self.kept, self.kept_total
        else:
            candidates, total = torch.arange(own, dtype=torch.int32), self.facts.num_samples
        if budget == total:
            return candidates
        pick = self.method.final_subset if final else self.method.plan
        unknown, unseen = torch.zeros(1, dtype=torch.bool).expand(candidates.numel()), 0  # (a view: no allocation)
        if self.method.needs_evidence:  # (a count every rank gathers, 0 where the evidence covers all its samples)
            evidence = self.seen if (given := self.method.evidence()) is None else given
            unknown = unknown if bool(evidence.all()) else ~evidence.index_select(0, candidates)
            unseen = self._global(int(torch.count_nonzero(unknown)))
        fix = (
            f"with sharded state {type(self.method).__name__}.plan gets this rank's candidates and the fit's budget "
            "and must choose through self.select_top (a draw per rank is no cut of all): use DataPruning(sharded=False)"
        )
        try:
            if unseen == 0:
                kept = pick(candidates, budget, epoch)
            else:
                quota = F.evidence_quota(budget, total, unseen)
                gens = self._gens(epoch, F.selection.STREAM_UNSEEN)
                drawn = F.sharded_random_pick(unknown, quota, gens, rank, gather)
                kept = torch.cat([pick(candidates[~unknown], budget - quota, epoch), candidates[drawn]])
                if unseen >= UNSEEN_WARN_SHARE * total and not self.warned_unseen:
                    self.warned_unseen = True
                    log.warning("epoch %d: %d of %d candidates were never forwarded", epoch, unseen, total)
        except ValueError as err:
            raise RuntimeError(f"{err}: {fix}") from err
        if (planned := self._global(kept.numel())) != budget:
            raise RuntimeError(f"the plan of epoch {epoch} kept {planned} samples over all ranks, not {budget}: {fix}")
        return kept.to(candidates.dtype)

    def _epoch_record(self, epoch: int, kept: Tensor, batches: int) -> EpochRecord:
        w, rank, budget = self.comm.world_size, self.comm.rank, self.budget(epoch)
        # (local indices, int32: the shuffle moves half the bytes)
        mine = F.shuffled(kept, self._gens(epoch, F.selection.STREAM_ORDER)[0]) if self.facts.shuffle else kept
        length = F.shard_length(budget, w, self.shard_drop_last)
        wide = torch.int32 if self.facts.num_samples < 2**31 else torch.long
        block, total = F.balanced_block(mine.to(wide), length, rank, self._gather, self.shard.start)
        self.kept_total, spare, self._spare, gather = total, self._spare, None, self._gather
        return ShardedRecord(
            epoch, block, total, w, rank, self.facts.batch_size, batches, self.method.statistics, self.facts.device,
            (self.shard.start, self.shard.stop),
            # a method's state at the block's positions travels as the indices did
            lambda state: F.balanced_block(mine, length, rank, gather, source=state.cpu())[0].to(state.device),
            lambda tensor: gather(tensor).sum(0).to(tensor.device),
            spare,
        )  # fmt: skip

    def close(self) -> None:
        record = self.record
        super().close()
        if isinstance(record, ShardedRecord):
            self.task_loss = record.mean_loss()  # (the loss of every rank's samples, not this rank's alone)
            self._spare = record.buffers, record.batch_of
        self._unchecked = False  # the ranks' states differ by design: nothing to compare

    def finish(self, epoch: int) -> Tensor:
        """This rank's part of the exported subset (dataset indices, sorted)."""
        kept, self._spare = super().finish(epoch) + self.shard.start, None
        return kept

    def state_dict(self) -> dict[str, Any]:
        """Writes this rank's state to ``shard_dir`` (every rank: Lightning collects callback states on all of them)
        and returns where: a checkpoint holds rank 0's callback state only."""
        state = super().state_dict()
        if not state:
            return state
        assert self.shard_dir is not None  # set by the callback before the fit
        step = 0 if self.record is None else self.record.steps
        name = f"{self.fit_id}-e{self.closed_epoch}-s{step}.rank{{rank}}-of-{self.comm.world_size}.pt"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        torch.save({**state, "kept_total": self.kept_total}, self.shard_dir / name.format(rank=self.comm.rank))
        pointer = {k: state[k] for k in ("version", "num_samples", "target", "seed", "plan")}
        return {**pointer, "shards": str(self.shard_dir / name)}

    def _restore(self, state: dict[str, Any]) -> None:
        if "shards" not in state:
            raise ValueError(
                "the checkpoint's pruning state was saved by a fit without sharded state: resume it with "
                "DataPruning(sharded=False), or start a new fit"
            )
        self._check_plan(state.get("plan"))  # (another number of processes: refused alike on every rank)
        path = Path(str(state["shards"]).format(rank=self.comm.rank))
        if not path.is_file():
            raise FileNotFoundError(
                f"this rank's pruning state {path} (named by the checkpoint) is missing: a sharded fit's checkpoint "
                "needs the per-rank files its fit wrote beside it; copy them back or start a new fit"
            )
        own = torch.load(path, map_location="cpu", weights_only=True)
        self.kept_total = int(own["kept_total"])
        super()._restore(own)
