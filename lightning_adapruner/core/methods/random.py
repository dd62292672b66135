"""Random baselines: a static random subset, a subset re-drawn every epoch, and RS2 without replacement."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.method import Observations, PruningMethod


class RandomPruning(PruningMethod):
    """Random pruning: a static subset (``dynamic=False``) or one re-drawn from all samples every epoch.

    Static: each sample gets one seeded random priority and every cut keeps the highest priorities among the
    previous epoch's samples. Dynamic: every epoch draws its samples afresh, independently of earlier epochs.

    Args:
        dynamic: re-draw the kept samples every epoch.

    Example::

        >>> RandomPruning().name, RandomPruning(dynamic=True).name
        ('random', 'random_dynamic')
    """

    name = "random"

    def __init__(self, dynamic: bool = False) -> None:
        self.dynamic = bool(dynamic)
        name = "random_dynamic" if self.dynamic else "random"
        super().__init__(name=name, nested=not self.dynamic, needs_evidence=False)
        self.add_state("priority", _uniform)

    def update(self, observations: Observations) -> None:
        """Random pruning learns nothing from the losses."""

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        if self.dynamic:
            gen = F.generator(self.fit.seed, epoch, F.selection.STREAM_METHOD)
            return candidates[F.random_subset(budget, candidates.numel(), gen)]
        return self.select_top(candidates, budget, self.priority, epoch)

    def scores(self) -> Tensor:
        return self.priority.cpu()


class RS2Pruning(PruningMethod):
    """RS2 without replacement (Okanovic et al., "Repeated Random Sampling for Minimizing the Time-to-Accuracy
    of Learning"): each epoch takes the next samples of a random permutation of the dataset, and a new
    permutation starts when one is used up, so every sample is forwarded once before any is forwarded twice.

    Example::

        >>> RS2Pruning().name, RS2Pruning().nested
        ('rs2', False)
    """

    name = "rs2"
    perm: Tensor  # declared state the method reassigns (add_state allocates it when the fit starts)
    round: Tensor

    def __init__(self) -> None:
        super().__init__(nested=False, needs_evidence=False)
        self.add_state("perm", _permutation)
        self.add_state("position", 0, dtype=torch.long, per_sample=False)  # how much of the round's permutation is used
        self.add_state("round", 0, dtype=torch.long, per_sample=False)

    def _next_round(self) -> Tensor:
        self.round += 1
        gen = F.generator(self.fit.seed, int(self.round), F.selection.STREAM_METHOD + 1)
        return torch.randperm(self.fit.num_samples, generator=gen, dtype=self.perm.dtype)

    def plan(self, candidates: Tensor, budget: int, epoch: int) -> Tensor:
        kept, perm, position = F.rs2_draw(self.perm, int(self.position), budget, self._next_round)
        self.perm = perm
        self.position.fill_(position)
        return kept

    def update(self, observations: Observations) -> None:
        """RS2 learns nothing from the losses: the permutations decide."""

    def final_subset(self, candidates: Tensor, k: int, epoch: int) -> Tensor:
        """RS2 has no static subset: ``k`` samples drawn uniformly."""
        gen = F.generator(self.fit.seed, epoch, F.selection.STREAM_METHOD + 2)
        return candidates[F.random_subset(k, candidates.numel(), gen)]


def _uniform(n: int, gen: torch.Generator) -> Tensor:  # module level, not a lambda: ddp_spawn pickles methods
    return torch.rand(n, generator=gen)


def _permutation(n: int, gen: torch.Generator) -> Tensor:
    return torch.randperm(n, generator=gen, dtype=torch.int32 if n < 2**31 else torch.long)
