"""``PruningSampler``: draws only the kept samples, sharded disjointly across ranks."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler


class PruningSampler(DistributedSampler):
    """Yields a shuffled, rank-sharded pass over a *changeable* set of dataset indices.

    Unlike ``torch.utils.data.DistributedSampler`` its length is not fixed at construction:
    :meth:`set_indices` swaps the kept set, and ``len()`` follows. It subclasses
    ``DistributedSampler`` so Lightning (``use_distributed_sampler=True``) uses it as is instead of
    wrapping it in a ``DistributedSamplerWrapper`` that would pad the epoch back to full size.

    Each rank gets ``ceil(K / world_size)`` samples: the shards are disjoint and cover the kept set;
    when ``K`` is not a multiple of ``world_size`` the shortest shards are topped up with the first
    samples of the shuffled order (``drop_last=False``, the default) or the remainder is left out of
    this epoch (``drop_last=True``). Equal counts per rank keep DDP collectives in step.

    Args:
        indices: dataset indices to draw from.
        num_replicas: number of ranks (``trainer.world_size``).
        rank: this process's global rank.
        shuffle: reshuffle every epoch (seeded by ``seed + epoch``; Lightning calls ``set_epoch``).
        seed: base seed of the shuffle; identical on every rank.
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
        # DistributedSampler.__init__ would fix the length from a dataset; we only take its type.
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas); got rank={rank}, num_replicas={num_replicas}")
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.dataset = None  # no dataset: the kept indices are the population
        self.set_indices(indices)

    def set_indices(self, indices: Sequence[int] | Tensor) -> None:
        """Replace the kept set; takes effect at the next ``iter()``."""
        idx = torch.as_tensor(indices).flatten().cpu()
        if idx.dtype not in (torch.int32, torch.int64):  # int32 halves the memory of large kept sets
            idx = idx.long()
        self.indices = idx

    @property
    def num_samples(self) -> int:  # type: ignore[override]
        """Samples this rank yields per epoch."""
        k = self.indices.numel()
        return k // self.num_replicas if self.drop_last else math.ceil(k / self.num_replicas)

    @property
    def total_size(self) -> int:  # type: ignore[override]
        return self.num_samples * self.num_replicas

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        idx = self.indices
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            idx = idx[torch.randperm(idx.numel(), generator=g)]
        total = self.total_size
        if total > idx.numel():  # top up so every rank gets the same count
            reps = math.ceil(total / max(idx.numel(), 1))
            idx = idx.repeat(reps)
        idx = idx[:total]
        yield from idx[self.rank : total : self.num_replicas].tolist()
