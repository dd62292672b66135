"""Online batch selection's pure pieces: how many samples a batch keeps, which, the kept part of any batch
collection, and the compute share it costs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any

import torch
from torch import Tensor


def take_samples(batch: Any, positions: Tensor, size: int) -> Any:
    """``batch`` with only the samples at ``positions``: tensors whose first dimension is ``size`` are indexed,
    lists and tuples of length ``size`` holding no collection are subset, mappings, dataclasses, named tuples and
    other sequences are walked; anything else is kept as it is."""
    if isinstance(batch, Tensor):
        return batch[positions.to(batch.device)] if batch.ndim and batch.shape[0] == size else batch
    if isinstance(batch, Mapping):
        return type(batch)({key: take_samples(value, positions, size) for key, value in batch.items()})  # type: ignore[call-arg]  # dict subclasses (BatchEncoding) take a dict
    if is_dataclass(batch) and not isinstance(batch, type):
        return replace(
            batch, **{f.name: take_samples(getattr(batch, f.name), positions, size) for f in fields(batch) if f.init}
        )
    if isinstance(batch, (list, tuple)):
        if len(batch) == size and size > 0 and not any(isinstance(v, (Tensor, Mapping, list, tuple)) for v in batch):
            picked = [batch[i] for i in positions.tolist()]  # a per-sample list (strings, ids): one host read
            return type(batch)(*picked) if hasattr(batch, "_fields") else type(batch)(picked)
        items = [take_samples(value, positions, size) for value in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch


def batch_kept_count(size: int, keep: float) -> int:
    """Samples a batch of ``size`` keeps at share ``keep``: ``floor(keep * size + 1/2)``, at least one.

    Example::

        >>> batch_kept_count(128, 0.5), batch_kept_count(5, 0.5), batch_kept_count(3, 0.01)
        (64, 3, 1)
    """
    return max(1, min(size, math.floor(keep * size + 0.5)))


FORWARD, BACKWARD = 1.0, 2.0  # a backward pass costs about two forwards: the convention of the compute share


def compute_share(scored: int, trained: int) -> float:
    """Compute of batch selection against training on every sample scored: each scored sample costs a forward
    without gradients, each trained one a forward and a backward (``backward = 2 forwards``).

    Example::

        >>> round(compute_share(scored=100, trained=50), 4)  # (100 + 3 * 50) / (3 * 100)
        0.8333
    """
    if not scored:
        return 1.0
    return (FORWARD * scored + (FORWARD + BACKWARD) * trained) / ((FORWARD + BACKWARD) * scored)


def batch_keep(scores: Tensor, k: int, rule: str, gen: torch.Generator | None = None) -> Tensor:
    """Positions (sorted, int64, on ``scores``' device) of the ``k`` samples of one batch to back-propagate.

    ``rule="loss"``: the ``k`` highest scores (NaN ranks last; exact ties go by ``torch.topk``), with no
    host-device sync; ``rule="random"``: ``k`` drawn uniformly from ``gen``, the control arm.

    Example::

        >>> batch_keep(torch.tensor([0.2, 3.0, float("nan"), 1.0]), 2, "loss").tolist()
        [1, 3]
    """
    if rule == "random":
        assert gen is not None
        return torch.randperm(scores.numel(), generator=gen)[:k].sort().values.to(scores.device)
    ranked = torch.nan_to_num(scores.detach().float(), nan=float("-inf"))
    return torch.topk(ranked, k, sorted=False).indices.sort().values
