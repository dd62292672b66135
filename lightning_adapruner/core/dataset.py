"""``IndexedDataset``: every sample carries its dataset index, the key of all per-sample state."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

log = logging.getLogger(__name__)


class IndexedSample(NamedTuple):
    """One sample and its dataset index. Collated by the default ``collate_fn`` into a batch
    ``IndexedSample(index=LongTensor[B], data=<collated samples>)``, so ``idx, (x, y) = batch``."""

    index: int
    data: Any


class IndexedDataset(Dataset):
    """Wraps a map-style dataset so each item is ``IndexedSample(index, data)``.

    The index is the sample's stable identity ``i`` in ``0..N-1``: AdaPruner keys its learned
    logits by it, so it must be the position in *this* dataset, not the position in a batch.

    Args:
        dataset: any map-style dataset (with ``__len__`` and ``__getitem__``).
        targets: optional class label of every sample, used for per-class kept counts and the
            per-class floor. When omitted it is read from ``dataset.targets`` (torchvision
            datasets), following ``torch.utils.data.Subset`` wrappers.

    Raises:
        TypeError: if ``dataset`` has no ``__len__`` (an ``IterableDataset`` cannot be pruned by index).

    Example::

        >>> ds = IndexedDataset(torch.utils.data.TensorDataset(torch.randn(4, 2), torch.tensor([0, 1, 0, 1])))
        >>> ds[2].index, ds.targets.tolist()
        (2, [0, 1, 0, 1])
    """

    def __init__(self, dataset: Dataset, targets: Tensor | None = None) -> None:
        if not hasattr(dataset, "__len__"):
            raise TypeError(
                f"IndexedDataset needs a map-style dataset with __len__, got {type(dataset).__name__}. "
                "Data pruning keys its state by dataset index, so an IterableDataset cannot be pruned; "
                "convert it to a map-style dataset first."
            )
        self.dataset = dataset
        self._targets = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        if self._targets is not None and len(self._targets) != len(dataset):
            raise ValueError(f"targets has {len(self._targets)} entries but the dataset has {len(dataset)} samples")

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> IndexedSample:
        return IndexedSample(int(index), self.dataset[index])

    @property
    def targets(self) -> Tensor | None:
        """Class label of every sample (LongTensor ``[N]``), or ``None`` when unknown."""
        if self._targets is None:
            self._targets = infer_targets(self.dataset)
        return self._targets


def infer_targets(dataset: Any) -> Tensor | None:
    """Labels of ``dataset`` from a ``targets`` attribute, following ``Subset`` chains; else ``None``."""
    if isinstance(dataset, IndexedDataset):
        return dataset.targets
    if isinstance(dataset, Subset):
        base = infer_targets(dataset.dataset)
        return None if base is None else base[torch.as_tensor(dataset.indices, dtype=torch.long)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    try:
        out = torch.as_tensor(targets, dtype=torch.long).flatten()
    except (TypeError, ValueError):
        return None
    return out if len(out) == len(dataset) else None
