"""Online batch selection's pure pieces: how many samples a batch keeps, which, the kept part of any batch
collection, and the compute share it costs."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any

import torch
from torch import Tensor


def take_samples(batch: Any, positions: Tensor, size: int) -> Any:
    """``batch`` with only the samples at ``positions``, whatever its shape: a tensor whose first dimension is
    ``size`` is indexed; a list of ``size`` items is per sample (strings, ids, images of different sizes) and
    subset; a list of another length (a sequence ``default_collate`` transposed into one tensor per position),
    mappings, tuples, named tuples and dataclasses are walked; anything else is kept.

    Raises:
        ValueError: nothing in the batch has ``size`` entries along its first dimension, so no sample could be
            told apart (the batch would train whole while counted as cut); or a list of ``size`` tensors that are
            themselves ``size`` long, which could be either kind of list.

    Example::

        >>> take_samples({"x": torch.arange(3.0), "id": ["a", "b", "c"], "n": 7}, torch.tensor([0, 2]), 3)
        {'x': tensor([0., 2.]), 'id': ['a', 'c'], 'n': 7}
    """
    cut, picked = 0, None  # picked: the positions as a list, read from the device once, for per-sample lists

    def walk(value: Any) -> Any:
        nonlocal cut, picked
        if isinstance(value, Tensor):
            if value.ndim and value.shape[0] == size:
                cut += 1
                return value[positions.to(value.device)]
            return value
        if isinstance(value, list):
            transposed = any(isinstance(v, Tensor) and v.ndim and v.shape[0] == size for v in value)
            if len(value) == size and transposed:
                raise ValueError(
                    f"the batch holds a list of {size} tensors whose first dimension is also {size}: one item per "
                    "sample, or a sequence default_collate transposed? Stack per-sample items into one tensor, or "
                    "keep sequences batch-first (a tensor per field), so select_batch cuts the right dimension"
                )
            if len(value) == size:
                cut, picked = cut + 1, positions.tolist() if picked is None else picked
                return [value[i] for i in picked]
            return [walk(v) for v in value]
        if isinstance(value, Mapping):
            items = {key: walk(v) for key, v in value.items()}
            if isinstance(value, defaultdict):
                return defaultdict(value.default_factory, items)
            return type(value)(items)  # type: ignore[call-arg]  # dict subclasses (BatchEncoding) take a dict
        if is_dataclass(value) and not isinstance(value, type):
            return replace(value, **{f.name: walk(getattr(value, f.name)) for f in fields(value) if f.init})
        if isinstance(value, tuple):
            values = [walk(v) for v in value]
            return type(value)(*values) if hasattr(value, "_fields") else type(value)(values)
        return value

    kept = walk(batch)
    if not cut:
        raise ValueError(
            f"no tensor or list in the batch has {size} entries along its first dimension (one per loss the score "
            "function returned), so select_batch cannot tell the samples apart: keep per-sample tensors batch-first, "
            "and return one loss per sample of the batch"
        )
    return kept


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
