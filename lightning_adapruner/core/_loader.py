"""What a training ``DataLoader`` must be for the plugin to know which samples each batch holds.

The plugin replaces the loader's sampler by a :class:`~lightning_adapruner.PruningSampler` and tracks, from
its order, the dataset indices of every batch. That is exact when batches are consecutive runs of
``batch_size`` indices of the sampler, delivered in order; :func:`inspect_train_loader` refuses, with one
message naming the fix, every loader for which it would not be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)


class UnsupportedLoaderError(TypeError):
    """The training loader cannot be pruned by index; the message names why and the fix."""


@dataclass(frozen=True)
class LoaderInfo:
    """The facts of an accepted training loader: its dataset's length ``N``, the samples per batch on one rank,
    whether it drops a short last batch and whether it shuffles (each epoch's order is then drawn from the seed)."""

    num_samples: int
    batch_size: int
    drop_last: bool
    shuffle: bool


@dataclass(frozen=True)
class LoaderFacts(LoaderInfo):
    """What the session needs to know: the loader's facts, and the trainer's.

    Attributes:
        limit_batches: ``Trainer(limit_train_batches)``.
        max_epochs: ``Trainer(max_epochs)``.
        val_check_batches: ``Trainer(val_check_interval)`` when it counts batches (an int), else ``None``.
        device: where the state lives; labels: class labels ``[N]`` when known.
    """

    limit_batches: int | float
    max_epochs: int
    device: torch.device
    labels: Tensor | None = None
    val_check_batches: int | None = None
    debug_run: bool = False  # Trainer(fast_dev_run): a wiring check of a few batches


def inspect_train_loader(loader: object, plugin: str = "DataPruning") -> LoaderInfo:
    """Check ``loader`` and return its facts.

    Raises:
        UnsupportedLoaderError: not one ``DataLoader``; an iterable or unsized dataset; a custom batch sampler
            or sampler; per-sample loading (``batch_size=None``); an out-of-order loader.

    Example::

        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> inspect_train_loader(DataLoader(TensorDataset(torch.zeros(10)), batch_size=4, shuffle=True))
        LoaderInfo(num_samples=10, batch_size=4, drop_last=False, shuffle=True)
    """
    if not isinstance(loader, DataLoader):
        raise UnsupportedLoaderError(
            f"{plugin} supports one training DataLoader, got {type(loader).__name__}: return a single "
            "torch.utils.data.DataLoader from train_dataloader()"
        )
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise UnsupportedLoaderError(
            f"the training dataset ({type(dataset).__name__}) is iterable or has no __len__: {plugin} keys its state "
            "by dataset index and chooses the samples of each epoch, so it needs a map-style dataset. For a streaming "
            "dataset use lightning_adapruner.BatchSelection, which selects within each batch"
        )
    if callable(getattr(loader, "state_dict", None)) and callable(getattr(loader, "load_state_dict", None)):
        raise UnsupportedLoaderError(
            f"the training DataLoader ({type(loader).__name__}) keeps a resumable state of its own: on a resume it "
            f"would skip ahead as well as {plugin}'s sampler, which already continues where the epoch stopped. "
            "Use a plain torch.utils.data.DataLoader"
        )
    if getattr(loader, "in_order", True) is False:
        raise UnsupportedLoaderError(
            f"the training DataLoader has in_order=False: batches may arrive out of order, so {plugin} could not tell "
            "which samples each batch holds. Use in_order=True (the default)"
        )
    batch_sampler = loader.batch_sampler
    if batch_sampler is None or type(batch_sampler) is not BatchSampler:
        kind = (
            "batch_size=None" if batch_sampler is None else f"a custom batch sampler ({type(batch_sampler).__name__})"
        )
        raise UnsupportedLoaderError(
            f"the training DataLoader uses {kind}: {plugin} decides which samples each batch holds, so it needs plain "
            "batching. Pass DataLoader(dataset, batch_size=..., shuffle=..., drop_last=...) instead"
        )
    sampler = batch_sampler.sampler
    return LoaderInfo(len(dataset), batch_sampler.batch_size, batch_sampler.drop_last, _shuffled(sampler, plugin))


def with_sampler(
    loader: DataLoader, sampler: Sampler, rebuild: Callable[[DataLoader, Sampler], DataLoader]
) -> DataLoader:
    """``loader`` drawing from ``sampler`` in batches of its batch size.

    ``rebuild`` (Lightning's re-instantiation, which keeps a ``DataLoader`` subclass and its arguments) serves
    the usual ``DataLoader(dataset, batch_size=...)``. A loader given an explicit plain ``BatchSampler`` is
    rebuilt here from its public arguments with ``batch_size``/``drop_last`` taken from that batch sampler
    (Lightning's re-instantiation would turn batching off for it).

    Raises:
        UnsupportedLoaderError: a ``DataLoader`` subclass built with an explicit ``batch_sampler``.
    """
    if loader.batch_size is not None:
        return rebuild(loader, sampler)
    if type(loader) is not DataLoader:
        raise UnsupportedLoaderError(
            f"{type(loader).__name__} was built with an explicit batch_sampler, which cannot be rebuilt around the "
            "pruning sampler: pass batch_size=, shuffle= and drop_last= to it instead"
        )
    batches = loader.batch_sampler
    assert isinstance(batches, BatchSampler)
    public = "num_workers collate_fn pin_memory timeout worker_init_fn multiprocessing_context generator"
    public += " prefetch_factor persistent_workers pin_memory_device in_order"  # DataLoader's own arguments
    kwargs = {name: getattr(loader, name) for name in public.split() if hasattr(loader, name)}
    return DataLoader(
        loader.dataset, batch_size=batches.batch_size, drop_last=batches.drop_last, sampler=sampler, **kwargs
    )


def _shuffled(sampler: object, plugin: str) -> bool:
    from lightning_adapruner.core.sampler import PruningSampler

    if isinstance(sampler, PruningSampler):
        return sampler.shuffle
    if isinstance(sampler, DistributedSampler):  # Lightning's own, around a plain sampler
        return bool(sampler.shuffle)
    if isinstance(sampler, SequentialSampler):
        return False
    if isinstance(sampler, RandomSampler):
        if sampler.replacement or sampler.num_samples != len(sampler.data_source):
            raise UnsupportedLoaderError(
                f"the training sampler draws with replacement or a num_samples of its own: {plugin} draws each kept "
                "sample once per epoch. Use shuffle=True without a sampler"
            )
        return True
    raise UnsupportedLoaderError(
        f"the training DataLoader uses a custom sampler ({type(sampler).__name__}): {plugin} replaces the sampler to "
        "choose each epoch's samples, which would silently drop what yours chooses. For a subset of a dataset use "
        "torch.utils.data.Subset(dataset, indices); otherwise pass shuffle=True or False"
    )
