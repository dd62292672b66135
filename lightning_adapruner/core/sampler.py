"""``PruningSampler``: a shuffled, rank-sharded pass over a changeable set of dataset indices."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from lightning_adapruner.core import functional as F

_CHUNK = 8192  # indices turned into Python ints at a time: a 10M-sample epoch never becomes one list


class PruningSampler(DistributedSampler):
    """Yields this rank's share of an epoch's order over a *changeable* set of dataset indices.

    Unlike ``torch.utils.data.DistributedSampler`` its length is not fixed at construction:
    :meth:`set_indices` swaps the set and ``len()`` follows. It subclasses ``DistributedSampler`` so Lightning
    (``use_distributed_sampler=True``) uses it as is instead of wrapping it in a ``DistributedSamplerWrapper``
    that would pad the epoch back to the full dataset.

    The epoch's order is :func:`~lightning_adapruner.core.functional.epoch_order` of the set, shuffled from
    ``(seed, epoch)``: every rank computes the same order and draws positions ``rank, rank + W, ...``, so the
    shards are disjoint and cover the set. With ``K`` not a multiple of ``W`` the shards are topped up with
    the first samples of the order (``drop_last=False``) or the remainder is left out (``drop_last=True``).

    Args:
        indices: dataset indices to draw from.
        num_replicas: number of ranks (``trainer.world_size``); rank: this process's global rank.
        shuffle: reshuffle every epoch; seed: base seed of the shuffle, identical on every rank.
        drop_last: leave out the ``K % num_replicas`` remainder instead of topping up.

    Example::

        >>> s = PruningSampler(range(10), num_replicas=2, rank=0, shuffle=False)
        >>> list(s), len(s)
        ([0, 2, 4, 6, 8], 5)
        >>> s.set_indices([1, 5, 7]); list(s)
        [1, 7]
    """

    def __init__(
        self,
        indices: Sequence[int] | Tensor,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        # DistributedSampler.__init__ would fix the length from a dataset; only its type is taken
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas); got rank={rank}, num_replicas={num_replicas}")
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        self.dataset = None  # type: ignore[assignment]  # no dataset: the indices are the population
        self._order: Tensor | None = None
        self._fixed = False  # the order was given by set_order
        self._start = 0
        self.set_indices(indices)

    def set_indices(self, indices: Sequence[int] | Tensor) -> None:
        """Replace the set; takes effect at the next ``iter()``."""
        idx = torch.as_tensor(indices).flatten().cpu()
        if idx.dtype not in (torch.int32, torch.int64):  # int32 halves the memory of large sets
            idx = idx.long()
        self.indices = idx
        self._order, self._fixed, self._start = None, False, 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` at the next ``iter()``; an order given by :meth:`set_order` stays as it is."""
        if epoch != self.epoch and not self._fixed:
            self._order, self._start = None, 0
        self.epoch = epoch

    def set_order(self, order: Tensor, epoch: int, start: int = 0) -> None:
        """Use ``order`` as ``epoch``'s global order (until the next call or :meth:`set_indices`); this rank's pass
        starts at its position ``start`` (a run resumed in the middle of the epoch continues where it stopped)."""
        self.epoch, self._order, self._fixed, self._start = epoch, order.cpu(), True, start

    def order(self) -> Tensor:
        """The current epoch's global order (every rank's)."""
        if self._order is None:
            self._order = F.epoch_order(
                self.indices, self.num_replicas, self.seed, self.epoch, self.shuffle, self.drop_last
            )
        return self._order

    @property
    def num_samples(self) -> int:  # type: ignore[override]  # DistributedSampler's attribute, computed here
        """Samples this rank yields per epoch."""
        if self._order is not None:
            return self._order.numel() // self.num_replicas
        return F.shard_length(self.indices.numel(), self.num_replicas, self.drop_last)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        shard = self.order()[self.rank :: self.num_replicas][self._start :]
        for chunk in shard.split(_CHUNK):
            yield from chunk.tolist()
