"""``EpochRecord``: one epoch's order, this rank's batches and the statistics recorded for them.

Every rank holds the same record: in a multi-process fit each step's per-sample statistics are gathered
from all ranks (inside ``pruning_loss``) before they are written, so a checkpoint taken on rank 0 at any step
holds everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from lightning_adapruner.core.method import EpochLayout, Observations

LOSS = "loss"
_LOW = 1 << 22  # (sharded) a dataset index travels as two float32 columns, exact below 2**46: // and % _LOW


class EpochRecord:
    """The epoch's global ``order`` cut into batches, and a buffer per statistic (NaN until recorded).

    Args:
        epoch: the epoch.
        order: ``[P]`` dataset indices by global position (CPU), ``P`` a multiple of ``world_size``.
        num_unique: positions ``>= num_unique`` repeat earlier samples.
        world_size, rank: the processes; rank ``r`` forwards positions ``r, r + W, ...``.
        batch_size: samples per batch on one rank.
        num_batches: batches each rank runs this epoch (after ``drop_last`` and ``limit_train_batches``).
        statistics: names of the statistics recorded besides the loss.
        device: where the order and the buffers live.

    Example::

        >>> rec = EpochRecord(0, torch.tensor([5, 3, 1, 0]), 4, world_size=1, rank=0, batch_size=3,
        ...                   num_batches=2, statistics=(), device=torch.device("cpu"))
        >>> rec.indices(0).tolist(), rec.batch_length(1)
        ([5, 3, 1], 1)
        >>> rec.record(0, 3, torch.tensor([0.5, float("nan"), 2.0])); rec.advance(True)
        >>> [obs.indices.tolist() for obs in rec.observations()], rec.nonfinite()
        ([[5, 1]], 1)
    """

    def __init__(
        self,
        epoch: int,
        order: Tensor,
        num_unique: int,
        world_size: int,
        rank: int,
        batch_size: int,
        num_batches: int,
        statistics: tuple[str, ...],
        device: torch.device,
    ) -> None:
        self.epoch, self.num_unique = epoch, num_unique
        self.world_size, self.rank, self.batch_size = world_size, rank, batch_size
        self.num_batches = num_batches
        self.order_cpu = order
        self.order = order.to(device)
        self.local_order = self.order[rank::world_size]
        self.names = (LOSS, *statistics)
        runs = min(order.numel(), num_batches * world_size * batch_size)  # positions limit_train_batches lets run
        self.buffers = self._allocate(runs, device)
        self.steps = 0  # batches run so far (recorded or skipped)
        self.recorded: list[tuple[bool, ...]] = []  # per step: which ranks recorded statistics
        self._exchange: Tensor | None = None  # per step, every rank's (flag, step) from the gathered rows
        self._error: Exception | None = None  # this rank's first failed check, raised when the epoch closes
        self._local_weights: Tensor | None = None

    def _allocate(self, runs: int, device: torch.device) -> dict[str, Tensor]:
        """A buffer per statistic for the ``runs`` positions that run, NaN until recorded."""
        return {name: torch.full((runs,), float("nan"), device=device) for name in self.names}

    # ------------------------------------------------------------------ layout
    @property
    def layout(self) -> EpochLayout:
        per_batch = self.batch_size * self.world_size
        return EpochLayout(self.epoch, self.order, self.num_unique, per_batch, self.num_batches, self.world_size)

    def set_loss_weights(self, weights: Tensor | None) -> None:
        """The method's per-position weights of the epoch; each step reads its slice of this rank's share."""
        self._local_weights = None if weights is None else weights[self.rank :: self.world_size]

    def loss_weights(self, start: int, stop: int) -> Tensor | None:
        """This rank's weights at its positions ``[start, stop)`` (a view), or ``None`` for the plain mean."""
        return None if self._local_weights is None else self._local_weights[start:stop]

    def local_span(self, step: int) -> tuple[int, int]:
        """Positions ``[start, stop)`` of this rank's shard that batch ``step`` holds."""
        start = step * self.batch_size
        return start, min(start + self.batch_size, self.local_order.numel())

    def batch_length(self, step: int) -> int:
        start, stop = self.local_span(step)
        return stop - start

    def indices(self, step: int) -> Tensor:
        """Dataset indices of this rank's batch ``step`` (a view on the state's device: no copy, no sync)."""
        start, stop = self.local_span(step)
        return self.local_order[start:stop]

    @property
    def done(self) -> bool:
        return self.steps >= self.num_batches

    # ------------------------------------------------------------------ recording
    def record(self, start: int, stop: int, loss: Tensor, stats: dict[str, Tensor] | None = None) -> None:
        """Write this (single) process's statistics of its positions ``[start, stop)`` into the buffers."""
        self.buffers[LOSS][start:stop].copy_(loss)
        for name in self.names[1:]:
            assert stats is not None  # the method names statistics, so observe returned them
            self.buffers[name][start:stop].copy_(stats[name])

    def rows(self, step: int, loss: Tensor, stats: dict[str, Tensor] | None, error: Exception | None) -> Tensor:
        """This rank's rows of batch ``step`` for the gather: ``[b, statistics + 2]``, the last two columns the
        rank's flag (1 recorded, -2 its checks failed: NaN statistics) and the step, so misaligned ranks show."""
        b = self.batch_length(step)
        device = self.buffers[LOSS].device
        if error is None:
            columns = [loss.float(), *((stats or {})[n].float() for n in self.names[1:])]
        else:
            columns = [torch.full((b,), float("nan"), device=device) for _ in self.names]
        flag = torch.full((b,), 1.0 if error is None else -2.0, device=device)
        return torch.stack([*columns, flag, torch.full((b,), float(step), device=device)], dim=1)

    def record_gathered(self, step: int, rows: Tensor, error: Exception | None = None) -> None:
        """Write every rank's rows of batch ``step`` (``[world_size, b, statistics + 2]``, see :meth:`rows`) into
        the buffers; the flags are checked when the epoch closes (:meth:`check_exchange`), with no host sync here."""
        self._exchanged(step, rows, error)
        start, stop = self.local_span(step)
        w, b = self.world_size, stop - start
        for i, name in enumerate(self.names):  # rank r's j-th sample sits at global position r + W * j
            self.buffers[name][w * start : w * stop].view(b, w).copy_(rows[:, :, i].T)

    def _exchanged(self, step: int, rows: Tensor, error: Exception | None) -> None:
        """Check the gathered rows' shape and keep every rank's (flag, step) of batch ``step`` and this rank's
        first failed check, for :meth:`check_exchange`."""
        b = self.batch_length(step)
        if rows.shape[:2] != (self.world_size, b):
            raise RuntimeError(
                f"ranks recorded batches of different sizes in epoch {self.epoch}, step {step} (got rows of shape "
                f"{tuple(rows.shape)}, expected ({self.world_size}, {b}, ...)): every rank must run the same batches"
            )
        if self._exchange is None:
            self._exchange = torch.full((self.num_batches, self.world_size, 2), float("nan"), device=rows.device)
        self._exchange[step] = rows[:, 0, -2:]
        if error is not None and self._error is None:
            self._error = error

    def check_exchange(self) -> None:
        """Raise, on every rank alike, what went wrong in this epoch's gathers: a rank whose checks failed (its
        own error on that rank) or ranks that gathered different steps (a rank skipped a batch).

        Raises:
            ValueError / TypeError: this rank's failed check; RuntimeError: another rank's, or misaligned ranks.
        """
        if self._exchange is None:
            return
        exchange = self._exchange[: self.steps].cpu()
        flags, steps = exchange[..., 0], exchange[..., 1]
        failed = (flags == -2.0).nonzero()
        if failed.numel():
            if self._error is not None:
                raise self._error
            step, rank = failed[0].tolist()
            raise RuntimeError(
                f"pruning_loss failed its checks on rank {rank} at step {step} of epoch {self.epoch} (see that rank's "
                "error); every rank stops"
            )
        ran = ~torch.isnan(steps[:, 0])
        if bool((steps[ran] != steps[ran][:, :1]).any()):
            raise RuntimeError(
                f"the ranks gathered the statistics of different steps in epoch {self.epoch}: a rank skipped a batch "
                "(training_step returned None without calling pruning_loss). Under several processes every rank must "
                "call pruning_loss every step (Lightning does not support skipping a batch there either)"
            )

    def advance(self, recorded: bool) -> None:
        """Move past the current step; ``recorded``: the step's statistics were recorded (it was not skipped)."""
        self.recorded.append((bool(recorded),) * self.world_size)
        self.steps += 1

    # ------------------------------------------------------------------ reading
    def observations(self, chunk: int = 1 << 20) -> Iterator[Observations]:
        """The recorded samples with a finite loss, each once, in position order, ``chunk`` positions at a time
        (so an epoch of any size is read back in constant extra memory)."""
        loss = self.buffers[LOSS]
        unique = min(loss.numel(), self.num_unique)  # top-up repeats at the end count once
        for start in range(0, unique, chunk):
            stop = min(start + chunk, unique)
            pos = torch.isfinite(loss[start:stop]).nonzero().flatten() + start
            stats = {n: self.buffers[n][pos] for n in self.names if n != LOSS}
            batch = pos // (self.batch_size * self.world_size)
            yield Observations(self.epoch, self.order[pos].long(), loss[pos], batch, stats)

    def nonfinite(self) -> int:
        """Losses recorded this epoch that were NaN or inf (each sample once)."""
        loss = self.buffers[LOSS][: self.num_unique]
        return int(torch.count_nonzero(self._recorded_positions(loss.numel(), loss.device) & ~torch.isfinite(loss)))

    def negative_loss(self) -> float | None:
        """The most negative finite recorded loss, or ``None`` when there is none below 0."""
        loss = self.buffers[LOSS][: self.num_unique]
        low = float(torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0).min()) if loss.numel() else 0.0
        return low if low < 0 else None

    def _recorded_positions(self, total: int, device: torch.device) -> Tensor:
        """Positions whose rank recorded its step (position ``t*W*B + W*j + r`` is rank ``r``'s ``j``-th of ``t``)."""
        ran = torch.zeros(total, dtype=torch.bool)
        if self.recorded:
            flags = torch.tensor(self.recorded, dtype=torch.bool)  # [steps, W]
            per_position = flags[:, None, :].expand(-1, self.batch_size, -1).reshape(-1)
            ran[: per_position.numel()] = per_position[:total]
        return ran.to(device)

    def forwarded(self) -> int:
        """Samples this epoch has forwarded so far on all ranks (repeats included)."""
        return sum(self.batch_length(t) for t in range(self.steps)) * self.world_size

    # ------------------------------------------------------------------ state
    def _layout_facts(self) -> dict[str, int]:
        checksum, piece = 0, 1 << 20  # in pieces: a few MB of temporaries at any N, not 24 bytes per sample
        for start in range(0, self.order_cpu.numel(), piece):
            order = self.order_cpu[start : start + piece].long()
            positions = torch.arange(start, start + order.numel(), dtype=torch.long) % 1_000_003 + 1
            checksum += int((order * positions).sum())
        return {
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "num_batches": self.num_batches,
            "num_unique": self.num_unique,
            "order_checksum": (checksum + 2**63) % 2**64 - 2**63,  # int64 wrap-around, as one sum would give
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "steps": self.steps,
            "recorded": list(self.recorded),
            "layout": self._layout_facts(),
            "buffers": {n: b.cpu().clone() for n, b in self.buffers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint taken inside this epoch.

        Raises:
            ValueError: the resumed fit lays the epoch out otherwise (processes, batch size, limits, shuffle,
                drop_last or a release's order changed), which would skip or repeat samples.
        """
        if state["epoch"] != self.epoch or set(state["buffers"]) != set(self.buffers):
            raise ValueError(
                f"the checkpoint's epoch record (epoch {state['epoch']}, buffers {sorted(state['buffers'])}) does not "
                f"match epoch {self.epoch} (buffers {sorted(self.buffers)}): it was saved by another fit or another "
                "version of the method. Resume it with the settings it was saved with, or start the fit afresh"
            )
        saved, now = state.get("layout", {}), self._layout_facts()
        changed = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
        if changed:
            detail = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            raise ValueError(
                f"the checkpoint stopped inside epoch {self.epoch}, which this fit lays out differently ({detail}): "
                "resume with the release, processes, batch size, shuffle, drop_last and limit_train_batches it was "
                "made with, or from an end-of-epoch checkpoint"
            )
        self.steps, self.recorded = int(state["steps"]), [tuple(r) for r in state["recorded"]]
        for name, value in state["buffers"].items():
            if value.shape != self.buffers[name].shape:
                raise ValueError(
                    f"the checkpoint's epoch {self.epoch} holds {value.numel()} positions, this fit plans "
                    f"{self.buffers[name].numel()}: resume with the same dataset, batch size and number of processes"
                )
            self.buffers[name].copy_(value)


class ShardedRecord(EpochRecord):
    """An epoch of a fit with sharded state (``_session.ShardedSession``): this rank's ``block`` of the order, and
    the statistics of the samples it owns (each step's rows of every rank carry their dataset indices).

    Args:
        epoch, block: the epoch and this rank's samples in the order it forwards them (dataset indices).
        total: the epoch's samples (all ranks); position ``rank * len(block) + j >= total`` repeats an earlier one.
        world_size, rank, batch_size, num_batches, statistics, device: as :class:`EpochRecord`.
        span: the dataset indices ``[start, stop)`` this rank records.
        values_of: a per-sample state of this rank's samples -> its values at the block's positions (a collective).
        sum_over: a tensor summed over the ranks (a collective).
        spare: the buffers and ``batch_of`` of the previous epoch's closed record, refilled instead of allocated
            where they fit (at 25M samples a rank, fresh pages cost more than the fill).
    """

    batch_of: Tensor  # per sample this rank owns: the step that recorded it (-1: none yet)

    def __init__(
        self,
        epoch: int,
        block: Tensor,
        total: int,
        world_size: int,
        rank: int,
        batch_size: int,
        num_batches: int,
        statistics: tuple[str, ...],
        device: torch.device,
        span: tuple[int, int],
        values_of: Callable[[Tensor], Tensor],
        sum_over: Callable[[Tensor], Tensor],
        spare: tuple[dict[str, Tensor], Tensor] | None = None,
    ) -> None:
        self.span, self._spare = span, spare
        super().__init__(epoch, block, total, 1, 0, batch_size, num_batches, statistics, device)  # (one order)
        self.world_size, self.rank, self._spare = world_size, rank, None
        self.totals = torch.tensor([0.0, 0.0, 0.0, float("inf")], dtype=torch.float64, device=device)
        self.values_of, self.sum_over = values_of, sum_over

    def _allocate(self, runs: int, device: torch.device) -> dict[str, Tensor]:
        """A buffer per statistic of the samples this rank owns (NaN), and the batch of each (-1: unrecorded)."""
        own, spare = self.span[1] - self.span[0], self._spare
        if spare is not None and tuple(spare[0]) == self.names and (spare[1].numel(), spare[1].device) == (own, device):
            self.batch_of = spare[1].fill_(-1)
            return {name: buffer.fill_(float("nan")) for name, buffer in spare[0].items()}
        self.batch_of = torch.full((own,), -1, dtype=torch.int32, device=device)
        return super()._allocate(own, device)

    @property
    def layout(self) -> EpochLayout:
        """:class:`EpochLayout` over this rank's block, reading per-sample state and per-batch sums across ranks."""
        return replace(super().layout, shard_values=self.values_of, shard_sum=self.sum_over)

    @property
    def first_position(self) -> int:
        return self.rank * self.order.numel()

    def rows(self, step: int, loss: Tensor, stats: dict[str, Tensor] | None, error: Exception | None) -> Tensor:
        """:meth:`EpochRecord.rows` with the samples' dataset indices before the flag and step (-1: a repeat)."""
        rows = super().rows(step, loss, stats, error)
        start, stop = self.local_span(step)
        positions = torch.arange(start, stop, device=rows.device) + self.first_position
        index = torch.where(positions < self.num_unique, self.indices(step).long(), -1)
        high = torch.div(index, _LOW, rounding_mode="floor")
        return torch.cat([rows[:, :-2], high[:, None].float(), (index - high * _LOW)[:, None].float(), rows[:, -2:]], 1)

    def record(self, start: int, stop: int, loss: Tensor, stats: dict[str, Tensor] | None = None) -> None:
        step = start // self.batch_size
        self.record_gathered(step, self.rows(step, loss, stats, None).unsqueeze(0))

    def record_gathered(self, step: int, rows: Tensor, error: Exception | None = None) -> None:
        """Every rank's rows of batch ``step``: the epoch's totals from all of them, the statistics of this rank's
        own samples into its buffers."""
        self._exchanged(step, rows, error)
        flat = rows.reshape(-1, rows.shape[-1])
        index = flat[:, -4].long() * _LOW + flat[:, -3].long()
        loss = flat[:, 0].double()
        finite = torch.isfinite(loss) & (index >= 0)
        self.totals += torch.stack([
            torch.where(finite, loss, 0.0).sum(), finite.sum().double(),
            ((index >= 0) & ~finite & (flat[:, -2] == 1)).sum().double(), loss.new_zeros(()),
        ])  # fmt: skip
        self.totals[3] = torch.minimum(self.totals[3], torch.where(finite, loss, float("inf")).min())
        mine = (index >= self.span[0]) & (index < self.span[1])
        local = index[mine] - self.span[0]
        for i, name in enumerate(self.names):
            self.buffers[name][local] = flat[mine, i]
        self.batch_of[local] = step

    def observations(self, chunk: int = 1 << 20) -> Iterator[Observations]:
        """This rank's recorded samples with a finite loss, by local index (each once)."""
        loss = self.buffers[LOSS]
        for start in range(0, loss.numel(), chunk):
            pos = torch.isfinite(loss[start : start + chunk]).nonzero().flatten() + start
            stats = {n: self.buffers[n][pos] for n in self.names if n != LOSS}
            yield Observations(self.epoch, pos, loss[pos], self.batch_of[pos].long(), stats)

    def nonfinite(self) -> int:
        return int(self.totals[2])

    def negative_loss(self) -> float | None:
        low = float(self.totals[3])
        return low if low < 0 else None

    def mean_loss(self) -> float | None:
        """The mean finite loss of every sample recorded this epoch on all ranks (each once)."""
        return float(self.totals[0] / self.totals[1]) if float(self.totals[1]) else None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "batch_of": self.batch_of.cpu().clone(), "totals": self.totals.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.batch_of.copy_(state["batch_of"])
        self.totals.copy_(state["totals"])
