"""``IndexedDataset`` (items carry their dataset index) and :func:`infer_targets` (labels through wrappers)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset, IterableDataset, Subset

log = logging.getLogger(__name__)

LABEL_ATTRIBUTES = ("targets", "labels")
_MAX_DEPTH = 16  # wrappers followed through `.dataset` before giving up


class IndexedSample(NamedTuple):
    """One sample and its dataset index. Collated by the default ``collate_fn`` into a batch
    ``IndexedSample(index=LongTensor[B], data=<collated samples>)``, so ``idx, (x, y) = batch``."""

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: `batch.index` is the documented name
    data: Any


class IndexedDataset(Dataset):
    """Wraps a map-style dataset so each item is ``IndexedSample(index, data)``.

    Not needed with :class:`~lightning_adapruner.DataPruning`, which knows which samples every batch holds;
    use it when your own code wants the indices in the batch (then ``pruning_loss(loss, indices=idx)`` checks
    them against the callback's once per epoch).

    Args:
        dataset: any map-style dataset (with ``__len__`` and ``__getitem__``).
        targets: optional class label of every sample; else found by :func:`infer_targets`.

    Raises:
        TypeError: if ``dataset`` is an ``IterableDataset`` or has no ``__len__``.
        ValueError: if ``targets`` has another length than ``dataset``.

    Example::

        >>> y = torch.tensor([0, 1, 0, 1])
        >>> ds = IndexedDataset(torch.utils.data.TensorDataset(torch.randn(4, 2), y), targets=y)
        >>> ds[2].index, ds.targets.tolist()
        (2, [0, 1, 0, 1])
    """

    def __init__(self, dataset: Dataset, targets: Tensor | None = None) -> None:
        if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
            raise TypeError(
                f"IndexedDataset needs a map-style dataset with __len__, got {type(dataset).__name__}. Data pruning "
                "keys its state by dataset index, so an IterableDataset (even a sized one) cannot be pruned; "
                "convert it to a map-style dataset first"
            )
        self.dataset = dataset
        self.given_targets = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        if self.given_targets is not None and len(self.given_targets) != len(dataset):
            raise ValueError(
                f"targets has {len(self.given_targets)} entries but the dataset has {len(dataset)} samples"
            )

    def __len__(self) -> int:
        return len(self.dataset)  # map-style: __init__ checked it has __len__

    def __getitem__(self, index: int) -> IndexedSample:
        return IndexedSample(int(index), self.dataset[index])

    @property
    def targets(self) -> Tensor | None:
        """Class label of every sample (LongTensor ``[N]``), or ``None`` when unknown."""
        if self.given_targets is None:
            self.given_targets = infer_targets(self.dataset)
        return self.given_targets


def infer_targets(dataset: Any, _depth: int = 0) -> Tensor | None:
    """Class labels of ``dataset`` (LongTensor ``[N]``), or ``None`` when they cannot be found.

    Read from a ``targets`` or ``labels`` attribute (tensor, array or list, one per sample), following
    ``Subset`` (so ``random_split``), ``ConcatDataset`` and any wrapper that keeps the wrapped dataset in
    ``.dataset`` with the same length.

    Example::

        >>> from torch.utils.data import ConcatDataset, TensorDataset, random_split
        >>> class Labelled(TensorDataset):
        ...     def __init__(self, y):
        ...         super().__init__(torch.zeros(len(y)))
        ...         self.targets = y
        >>> both = ConcatDataset([Labelled(torch.tensor([0, 1])), Labelled(torch.tensor([2, 3]))])
        >>> part = random_split(both, [3, 1], generator=torch.Generator().manual_seed(0))[0]
        >>> infer_targets(both).tolist(), infer_targets(part).tolist() == [[0, 1, 2, 3][i] for i in part.indices]
        ([0, 1, 2, 3], True)
    """
    if _depth > _MAX_DEPTH:
        return None
    if isinstance(dataset, IndexedDataset) and dataset.given_targets is not None:
        return dataset.given_targets
    if isinstance(dataset, Subset):
        base = infer_targets(dataset.dataset, _depth + 1)
        return None if base is None else base[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, ConcatDataset):
        parts = [infer_targets(d, _depth + 1) for d in dataset.datasets]
        known = [p for p in parts if p is not None]
        return torch.cat(known) if len(known) == len(parts) else None
    for attribute in LABEL_ATTRIBUTES:
        labels = _as_labels(getattr(dataset, attribute, None), dataset)
        if labels is not None:
            return labels
    labels = _column_labels(dataset)
    if labels is not None:
        return labels
    inner = getattr(dataset, "dataset", None)
    if inner is not None and inner is not dataset and _length(inner) == _length(dataset):
        return infer_targets(inner, _depth + 1)
    return None


def _column_labels(dataset: Any) -> Tensor | None:
    """A Hugging Face ``datasets.Dataset``'s ``label``/``labels`` column when it holds integers (a ``ClassLabel``
    or an integer ``Value``), in the dataset's own order (after ``select``/``shuffle``); read without importing
    ``datasets``."""
    columns, features = getattr(dataset, "column_names", None), getattr(dataset, "features", None)
    if not isinstance(columns, list) or features is None or not callable(getattr(dataset, "select_columns", None)):
        return None
    for name in ("label", *LABEL_ATTRIBUTES):  # `label` is the datasets convention
        if name not in columns:
            continue
        feature = features[name]
        integer = type(feature).__name__ == "ClassLabel" or str(getattr(feature, "dtype", "")).startswith(
            ("int", "uint")
        )
        if integer:
            return _as_labels(dataset.select_columns([name]).with_format("numpy")[:][name], dataset)
    return None


def _as_labels(value: Any, dataset: Any) -> Tensor | None:
    if value is None or callable(value):
        return None
    try:
        labels = torch.as_tensor(value).flatten()
    except (TypeError, ValueError, RuntimeError):
        return None
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.numel() != _length(dataset):
        return None
    return labels.long()


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def labels_match_items(dataset: Any, labels: Tensor, probes: int = 8) -> bool:
    """Whether ``labels`` agree with the label the items of ``dataset`` carry, checked on a few seeded items.

    Items that are not ``(x, label)`` pairs with an integer label cannot be checked and count as agreeing; a
    wrapper that reorders or relabels the samples it found labels under does not.

    Example::

        >>> data = torch.utils.data.TensorDataset(torch.zeros(4), torch.tensor([0, 1, 2, 3]))
        >>> labels_match_items(data, torch.tensor([0, 1, 2, 3])), labels_match_items(data, torch.tensor([3, 2, 1, 0]))
        (True, False)
    """
    n = labels.numel()
    if n == 0:
        return True
    picks = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:probes].tolist()
    for i in picks:
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            return True
        label = item[1]
        if isinstance(label, Tensor):
            if label.numel() != 1 or label.is_floating_point():
                return True
            label = int(label)
        if not isinstance(label, int) or isinstance(label, bool):
            return True
        if label != int(labels[i]):
            return False
    return True


def training_labels(
    dataset: Any, num_samples: int, targets: Tensor | None, class_floor: int, owner: str
) -> Tensor | None:
    """The labels a pruning fit uses: ``targets`` or those found on ``dataset``, checked; ``None`` when there are
    none (no warning: a task without classes, a language model say, needs none; only ``class_floor`` does), int16
    when the classes fit.

    Raises:
        ValueError: ``targets`` of another length, or no usable labels while ``class_floor`` needs them.
    """
    from lightning.pytorch.utilities import rank_zero_warn

    labels = targets if targets is not None else infer_targets(dataset)
    if labels is not None and labels.numel() != num_samples:
        raise ValueError(f"targets has {labels.numel()} labels but the training set has {num_samples} samples")
    if labels is not None and targets is None and not labels_match_items(dataset, labels):
        rank_zero_warn(
            f"the labels found on the training set disagree with what its items return (a wrapper reorders or "
            f"relabels them): {owner} ignores them. Pass {owner}(targets=<label of every training sample>)"
        )
        labels = None
    if labels is not None and labels.numel() and int(labels.min()) < 0:
        message = f"the training labels hold negative values (min {int(labels.min())}): class ids must be >= 0"
        if class_floor > 0:
            raise ValueError(f"{message} for class_floor; pass {owner}(targets=<class id of every sample>)")
        log.debug("%s; per-class kept counts are left out of the export", message)
        labels = None
    if labels is None:
        if class_floor > 0:
            raise ValueError(
                "class_floor needs the training labels: give the dataset a `targets` attribute or pass "
                f"{owner}(targets=<label of every training sample>)"
            )
        log.debug("%s found no class labels on the training set: per-class kept counts are left out", owner)
        return None
    return labels.to(torch.int16 if (labels.numel() == 0 or int(labels.max()) < 2**15) else torch.long)
