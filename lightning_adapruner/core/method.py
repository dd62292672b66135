"""``PruningMethod``: the public protocol every pruning method implements, with declared per-sample state.

A method is a plain object (no Lightning inside). It *declares* its state with :meth:`PruningMethod.add_state`
(the torchmetrics ``add_state`` idea); allocation, device moves, saving, loading and versioning of declared
state are written once here, on plain tensors the callback owns rather than module buffers (module state
would be re-broadcast by DDP every step and cast by precision plugins: BENCHMARKS.md measures both). The
harness (:class:`~lightning_adapruner.DataPruning`) calls, per fit::

    setup()                                  once the dataset size is known (state already allocated)
    per epoch:  keep_share(epoch, schedule)  -> the epoch's budget     (default: the harness schedule)
                plan(candidates, budget, epoch) -> the epoch's samples (abstract)
                begin_epoch(layout)          the epoch's order and batches, before its first step
                loss_weights(layout)         per-position weights of the network loss for the epoch (or None)
                per step: observe(loss, **inputs)  (hot path: no host sync)
                update(observations)         the epoch's gathered statistics (all ranks, in order)
                end_epoch(epoch, steps)
    at the end: final_subset(candidates, k, epoch), scores(), metrics()
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.functional.schedule import KeepSchedule

StateDefault = float | int | bool | Tensor | Callable[[int, torch.Generator], Tensor]


@dataclass(frozen=True)
class Shard:
    """This process's part of a fit with sharded per-sample state (``DataPruning(sharded=True)``).

    There, a method's state, candidates and ``Observations.indices`` are local indices, its ``plan`` is handed the
    whole fit's budget and cuts through :meth:`PruningMethod.select_top`, ``EpochLayout.order`` holds the dataset
    indices this rank forwards (not all of them its own), and :meth:`PruningMethod.metrics` describes rank 0's
    samples (the callback logs rank 0's numbers).

    Attributes:
        rank: the process's global rank.
        start, stop: the dataset indices ``[start, stop)`` whose state this process holds (local index ``i`` is
            dataset index ``start + i``).
        num_samples: ``N``, the whole training set.
        gather: every rank's tensor stacked in rank order (the harness's collective).
    """

    rank: int
    start: int
    stop: int
    num_samples: int
    gather: Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class FitInfo:
    """What a method knows about the fit once the training set is known.

    Attributes:
        num_samples: ``N``, the training-set size; per-sample state has this length.
        schedule: the harness's keep-share schedule (``schedule.prune_ratio``, ``schedule.keep_fraction``).
        planned_batches: global batches of every epoch under the schedule (one optimisation step each
            without gradient accumulation).
        seed: the fit's pruning seed (the same on every rank).
        device: where the state lives (the strategy's root device).
        labels: class label of every sample (an integer tensor ``[N]``, int16 when the classes fit) when known,
            else ``None``.
        class_floor: every class keeps at least this many samples in :meth:`PruningMethod.select_top`.
        shard: with sharded state, this process's :class:`Shard`: ``num_samples`` is then its own samples', every
            per-sample tensor (state, ``labels``, candidates) is indexed locally, and a budget is the whole fit's.
    """

    num_samples: int
    schedule: KeepSchedule
    planned_batches: tuple[int, ...]
    seed: int
    device: torch.device
    labels: Tensor | None = None
    class_floor: int = 0
    shard: Shard | None = None


@dataclass(frozen=True)
class EpochLayout:
    """How an epoch's samples are ordered and batched, on every rank alike.

    Attributes:
        epoch: the epoch.
        order: ``[P]`` dataset index at each global position (on the state's device). Rank ``r`` forwards
            positions ``r, r + W, ...``; global batch ``t`` is positions ``[t * batch_size, (t + 1) * batch_size)``.
        num_unique: positions ``>= num_unique`` repeat earlier samples (shards topped up to equal length).
        batch_size: samples per global batch (all ranks together).
        num_batches: global batches the epoch runs.
        world_size: the processes; within global batch ``t`` rank ``r``'s ``j``-th sample sits at position
            ``t * batch_size + j * world_size + r``.
        shard_values, shard_sum: set with sharded state (``order`` is then this rank's block): see :meth:`values`
            and :meth:`sum_over_ranks`, through which a method reads per-position state and sums per-batch numbers.
    """

    epoch: int
    order: Tensor
    num_unique: int
    batch_size: int
    num_batches: int
    world_size: int = 1
    shard_values: Callable[[Tensor], Tensor] | None = None
    shard_sum: Callable[[Tensor], Tensor] | None = None

    @property
    def runs(self) -> int:
        """Positions that run this epoch (``limit_train_batches`` and ``drop_last`` may stop it early)."""
        return min(self.order.numel(), self.num_batches * self.batch_size)

    @property
    def rows_per_batch(self) -> int:
        """Positions of each global batch that :meth:`values` holds: all of them, or (sharded) this rank's."""
        return self.batch_size if self.shard_sum is None else self.batch_size // self.world_size

    def values(self, state: Tensor) -> Tensor:
        """A per-sample ``state`` at the positions that run, in order and ``rows_per_batch`` to a global batch: every
        position (one process holds every sample), or with sharded state this rank's (other ranks' samples among
        them: their values travel with them, one gather; a collective, so call it from :meth:`begin_epoch`)."""
        if self.shard_values is None:
            return state[self.order[: self.num_batches * self.batch_size]]
        return self.shard_values(state)[: self.num_batches * self.rows_per_batch]

    def sum_over_ranks(self, tensor: Tensor) -> Tensor:
        """``tensor`` summed over the ranks (with sharded state; one gather), else itself."""
        return tensor if self.shard_sum is None else self.shard_sum(tensor)


@dataclass(frozen=True)
class Observations:
    """Per-sample statistics gathered from all ranks; each sample appears once, with a finite loss.

    Attributes:
        epoch: the epoch they were recorded in.
        indices: dataset indices (LongTensor, on the state's device).
        loss: their per-sample losses (float32).
        batch: the global batch each was forwarded in (indexes the epoch's :class:`EpochLayout`).
        stats: the method's own statistics (:attr:`PruningMethod.statistics`) by name.
    """

    epoch: int
    indices: Tensor
    loss: Tensor
    batch: Tensor
    stats: dict[str, Tensor]

    def __len__(self) -> int:
        return self.indices.numel()


@dataclass(frozen=True)
class _StateSpec:
    default: StateDefault
    dtype: torch.dtype
    per_sample: bool
    persistent: bool


class PruningMethod(ABC):
    """Base class of pruning methods: subclass it, declare state with :meth:`add_state`, implement the two required
    hooks, :meth:`update` (learn from an epoch's statistics) and :meth:`plan` (choose an epoch's samples), and
    whatever else you need of the optional ones (each has a default).

    Class attributes: ``name`` (the method's name in logs, exports and checkpoints; an instance may pass its own)
    and ``version`` (bump when the declared state changes; a checkpoint of another version is refused unless
    :meth:`upgrade_state` converts it).

    Args:
        name: the instance's name, if not the class's (``RandomPruning(dynamic=True)`` is ``random_dynamic``).
        nested: ``True``: an epoch's candidates are the previous epoch's samples; ``False``: all ``N``.
        needs_evidence: ``True``: candidates without evidence (never forwarded, or see :meth:`evidence`) are kept
            at the cut's own rate, at random, instead of being ranked by a score they never earned.
        nonnegative_loss: the method's statistics need ``loss >= 0``; a negative loss is an error.
        forward_all: every epoch forwards all samples and the cut happens at the end of fit (soft mode).
        inputs: keyword tensors ``pruning_loss(loss, **inputs)`` must receive (e.g. ``("logits", "targets")``).
        statistics: names of the per-sample statistics :meth:`observe` computes from them.

    Example::

        >>> class KeepHardest(PruningMethod):
        ...     name = "keep_hardest"
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.add_state("last_loss", default=0.0)
        ...     def update(self, obs):
        ...         self.last_loss[obs.indices] = obs.loss
        ...     def plan(self, candidates, budget, epoch):
        ...         return self.select_top(candidates, budget, self.last_loss, epoch)
        >>> method = KeepHardest()
        >>> method.reset(FitInfo(4, KeepSchedule(0.5, 1, 1, "step", 2), (1, 1), seed=0, device=torch.device("cpu")))
        >>> method.update(Observations(0, torch.tensor([0, 1, 2, 3]), torch.tensor([0.1, 2.0, 0.3, 4.0]),
        ...                            torch.zeros(4, dtype=torch.long), {}))
        >>> method.plan(torch.arange(4), 2, epoch=1).tolist(), sorted(method.state_dict()["states"])
        ([1, 3], ['last_loss'])
    """

    name: str = "method"
    version: ClassVar[int] = 1

    def __init__(
        self,
        *,
        name: str | None = None,
        nested: bool = True,
        needs_evidence: bool = True,
        nonnegative_loss: bool = False,
        forward_all: bool = False,
        inputs: tuple[str, ...] = (),
        statistics: tuple[str, ...] = (),
    ) -> None:
        self._specs: dict[str, _StateSpec] = {}
        self.info: FitInfo | None = None
        self.name = name if name is not None else type(self).name
        self.nested, self.needs_evidence, self.nonnegative_loss = nested, needs_evidence, nonnegative_loss
        self.forward_all, self.inputs, self.statistics = forward_all, tuple(inputs), tuple(statistics)

    # ------------------------------------------------------------------ declared state
    def add_state(
        self,
        name: str,
        default: StateDefault,
        *,
        dtype: torch.dtype = torch.float32,
        per_sample: bool = True,
        persistent: bool = True,
    ) -> None:
        """Declare a state tensor, reachable as ``self.<name>`` once the fit starts.

        Args:
            name: attribute name.
            default: fill value (number or bool), a tensor (copied), or ``fn(num_samples, generator)`` returning
                the initial tensor (the generator is seeded from the fit's seed).
            dtype: dtype of a filled state.
            per_sample: ``True``: shape ``[N]``, indexed by dataset index; ``False``: the default's own shape.
            persistent: saved in checkpoints (non-persistent state is rebuilt from ``default`` on resume).

        Raises:
            ValueError: a name that is not an identifier, is declared twice, or shadows an attribute; a default
                function that cannot be pickled (a lambda or a local function).
        """
        if not name.isidentifier() or name in self._specs or hasattr(type(self), name):
            raise ValueError(f"state name {name!r} must be a new identifier that shadows no attribute of the method")
        if callable(default) and not isinstance(default, Tensor):
            try:
                pickle.dumps(default)
            except (pickle.PicklingError, AttributeError, TypeError) as err:
                raise ValueError(
                    f"the default of state {name!r} cannot be pickled ({err}), so the method could not travel to "
                    "ddp_spawn workers or be deep-copied: define the default function at module level, not as a "
                    "lambda or a local function"
                ) from None
        self._specs[name] = _StateSpec(default, dtype, per_sample, persistent)

    def __getattr__(self, name: str) -> Any:
        specs = self.__dict__.get("_specs", {})
        if name in specs:
            raise RuntimeError(
                f"{type(self).__name__}.{name} is allocated when the fit starts (it needs the training-set size); "
                "read it inside the method's hooks"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def reset(self, info: FitInfo) -> None:
        """Allocate every declared state for ``info`` (fresh values) and call :meth:`setup`."""
        self.info = info
        # (sharded: each rank draws its own samples' initial values)
        gen = F.generator(info.seed, -1 if info.shard is None else -2 - info.shard.rank, F.selection.STREAM_METHOD)
        for name, spec in self._specs.items():
            self.__dict__[name] = self._initial(spec, info.num_samples, gen).to(info.device)
        self.setup()

    @staticmethod
    def _initial(spec: _StateSpec, n: int, gen: torch.Generator) -> Tensor:
        default = spec.default
        if callable(default) and not isinstance(default, Tensor):
            return default(n, gen)
        if isinstance(default, Tensor):
            return default.clone()
        return torch.full((n,) if spec.per_sample else (), default, dtype=spec.dtype)

    def to(self, device: torch.device) -> None:
        """Move every declared state to ``device``."""
        for name in self._specs:
            if name in self.__dict__:
                self.__dict__[name] = self.__dict__[name].to(device)

    def checksum(self) -> Tensor:
        """One float64 per persistent state (NaN and inf counted apart), on the state's device: equal on every
        rank exactly when the states are, as far as a sum can tell."""
        sums = []
        for name, spec in self._specs.items():
            if spec.persistent:
                value = self.__dict__[name].double()
                sums += [
                    torch.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0).sum(),
                    (~torch.isfinite(value)).sum().double(),
                ]
        return torch.stack(sums) if sums else torch.zeros(1, dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        """The persistent declared state as CPU tensors, with the method's name and version."""
        states = {n: self.__dict__[n].detach().cpu().clone() for n, s in self._specs.items() if s.persistent}
        return {"name": self.name, "version": self.version, "states": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output onto the allocated state.

        Raises:
            ValueError: the state is another method's, of an unknown version, or of another dataset size.
        """
        if self.info is None:
            raise RuntimeError(f"{type(self).__name__}.load_state_dict needs the fit's state allocated (reset first)")
        if state.get("name") != self.name:
            raise ValueError(
                f"the checkpoint holds the state of pruning method {state.get('name')!r}, not {self.name!r}: resume "
                "with the method the checkpoint was made with, or start a new fit without ckpt_path"
            )
        states, version = dict(state["states"]), int(state.get("version", 1))
        if version != self.version:
            states = self.upgrade_state(states, version)
        for name, spec in self._specs.items():
            if not spec.persistent:
                continue
            if name not in states:
                raise ValueError(f"the checkpoint's {self.name} state lacks {name!r}; it was made by another version")
            value, current = states[name], self.__dict__[name]
            if spec.per_sample and value.shape != current.shape:
                raise ValueError(
                    f"the checkpoint's {self.name} state {name!r} has shape {tuple(value.shape)} but this training set "
                    f"needs {tuple(current.shape)}: resume with the dataset the checkpoint was made with"
                )
            self.__dict__[name] = value.to(device=current.device, dtype=current.dtype)

    def upgrade_state(self, states: dict[str, Tensor], version: int) -> dict[str, Tensor]:
        """Convert the states of an older ``version`` to this one; by default every other version is refused."""
        raise ValueError(
            f"the checkpoint's {self.name} state is version {version}, this {type(self).__name__} reads version "
            f"{self.version}: resume with the lightning_adapruner that wrote it, or start a new fit"
        )

    def scalars(self) -> dict[str, float]:
        """The persistent scalar states (``per_sample=False``, one value) as numbers, for logs and the export."""
        out = {}
        for name, spec in self._specs.items():
            value = self.__dict__.get(name)
            if spec.persistent and not spec.per_sample and value is not None and value.numel() == 1:
                out[name] = value.item()
        return out

    # ------------------------------------------------------------------ helpers for methods
    @property
    def fit(self) -> FitInfo:
        """The current fit's :class:`FitInfo` (set by the harness before :meth:`setup`)."""
        if self.info is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a fit yet")
        return self.info

    def select_top(self, candidates: Tensor, budget: int, scores: Tensor, epoch: int) -> Tensor:
        """The ``budget`` candidates of highest ``scores[candidate]``: seeded ties, and the fit's class floor where
        the floors fit the budget (where they do not, as in the part of a cut left after the samples without
        evidence, the harness tops short classes up at random after the plan). With sharded state (``fit.shard``)
        ``budget`` is the whole fit's and the result this rank's part of the cut over every rank's candidates, the
        same set one process holding every score would keep, bit for bit."""
        info = self.fit
        candidates = candidates.cpu()
        if info.shard is not None:  # (the class floor is refused with sharded state)
            gen = F.generator(info.seed, epoch, F.selection.STREAM_TIES)
            keep = F.sharded_select_top(F.values_at(scores.cpu(), candidates), budget, gen, info.shard.rank,
                                        info.shard.gather)  # fmt: skip
            return F.compress(candidates, keep)
        labels = None if info.labels is None else info.labels[candidates]
        floor = info.class_floor if labels is not None and F.floor_total(labels, info.class_floor) <= budget else 0
        gen = F.generator(info.seed, epoch, F.selection.STREAM_TIES)
        return candidates[F.select_top(scores.cpu()[candidates], budget, gen, labels, floor)]

    # ------------------------------------------------------------------ hooks
    def setup(self) -> None:  # noqa: B027 - an optional hook: nothing by default
        """Called once the state is allocated; :attr:`fit` is available."""

    def keep_share(self, epoch: int, schedule: KeepSchedule) -> float:
        """The share of the dataset ``epoch`` forwards; the harness's schedule unless a method has its own."""
        return schedule(epoch)

    @abstractmethod
    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        """Required: the ``budget`` dataset indices ``epoch`` forwards, chosen among ``candidates`` (any order)."""

    def begin_epoch(self, layout: EpochLayout) -> None:  # noqa: B027 - an optional hook
        """The epoch's order and batches are fixed; called before its first step."""

    @property
    def weighs_loss(self) -> bool:
        """Whether :meth:`loss_weights` can return weights (sharded state refuses such a method); by default whether
        the method overrides it."""
        return type(self).loss_weights is not PruningMethod.loss_weights

    def loss_weights(self, layout: EpochLayout) -> Tensor | None:
        """Weights of the network loss ``mean(w * loss)`` at every position that runs this epoch
        (``[layout.runs]``, on the state's device), or ``None`` for the plain mean. Called once per epoch, after
        :meth:`begin_epoch`; each step then multiplies its batch's slice (no work, no sync, in the hot path)."""
        return None

    def observe(self, loss: Tensor, **inputs: Tensor) -> dict[str, Tensor]:
        """The per-sample :attr:`statistics` of one batch from the :attr:`inputs` (detached; runs every step)."""
        return {}

    @abstractmethod
    def update(self, observations: Observations) -> None:
        """Required: learn from an epoch's gathered statistics (identical on every rank). A large epoch arrives in
        several calls, in order, each sample in one of them: update sample by sample (:meth:`end_epoch` follows).
        A method that learns nothing (random pruning) says so with an empty body."""

    def end_epoch(self, epoch: int, steps: int) -> None:  # noqa: B027 - an optional hook
        """After :meth:`update` of ``epoch``, which ran ``steps`` global batches."""

    def evidence(self) -> Tensor | None:
        """Which samples the method has evidence on (bool ``[N]``, CPU); ``None``: those ever forwarded."""
        return None

    def final_subset(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        """The ``k`` samples exported at the end of fit; by default the method's own plan."""
        return self.plan(candidates, k, epoch)

    def scores(self) -> Tensor:
        """One score per sample, written beside the exported subset (higher: more worth keeping)."""
        return torch.zeros(self.fit.num_samples)

    def metrics(self) -> dict[str, float]:
        """Numbers logged once per epoch under ``adp/<name>``."""
        return {}
