"""``IndexedDataModule``, the base of the zoo: seeded train/val hold-out, label noise, the loaders of every split."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lightning_adapruner import IndexedDataset
from lightning_adapruner.app.data._checks import check_arg, check_fraction, check_int, is_int
from lightning_adapruner.app.data._files import DatasetNotFoundError
from lightning_adapruner.app.data._seeding import (
    NOISE_STREAM,
    SUBSET_STREAM,
    seeded_generator,
    split_indices,
    symmetric_label_noise,
)

log = logging.getLogger(__name__)


class RelabeledDataset(Dataset):
    """``(x, targets[i])`` for the ``i``-th item ``(x, _)`` of ``dataset``: the label view after label noise.

    Args:
        dataset: items ``(x, y)``.
        targets: the label of every item (replacing ``y``).

    Raises:
        ValueError: if ``targets`` and ``dataset`` differ in length.
    """

    def __init__(self, dataset: Dataset, targets: Tensor) -> None:
        if len(targets) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(f"targets has {len(targets)} entries but the dataset has {len(dataset)} samples")  # type: ignore[arg-type]
        self.dataset = dataset
        self.targets = torch.as_tensor(targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.dataset[index][0], int(self.targets[index])


@dataclass
class Source:
    """What a concrete datamodule loads for the training pool (before the train/val hold-out).

    Attributes:
        train: items ``(x, y)`` with the training transform (augmentation).
        evaluation: the same items with the evaluation transform (used for the validation hold-out).
        targets: clean labels of every item, LongTensor ``[N]``.
    """

    train: Dataset
    evaluation: Dataset
    targets: Tensor


@dataclass
class TrainVal:
    """The training and validation splits as items ``(x, y)``, before :meth:`IndexedDataModule._serve` wraps them.

    Attributes:
        train, val: the two splits.
        train_targets, val_targets: their labels (``train_targets`` after label noise).
        train_indices, val_indices: positions of their samples in the source's training pool.
        noisy_mask: bool ``[len(train)]``, which training labels the noise flipped.
    """

    train: Dataset
    val: Dataset
    train_targets: Tensor
    val_targets: Tensor
    train_indices: Tensor
    val_indices: Tensor
    noisy_mask: Tensor


class IndexedDataModule(pl.LightningDataModule):
    """Base of the datamodule zoo: a seeded train/val hold-out, label noise, and indexed loaders.

    Every loader yields plain ``(x, y)`` batches (the pruning callback knows which samples each training batch
    holds); a subclass with ``yield_indices = True`` serves every split as an
    :class:`~lightning_adapruner.IndexedDataset` instead, batches ``idx, (x, y)``.
    The validation set is a seeded hold-out
    of the source's *training* split (for model selection); the test split is kept for the final
    number. Label noise only touches the training part. The batch format is decided in one place,
    :meth:`_serve`, by the class attribute ``yield_indices``.

    Subclasses set ``num_classes`` and ``input_shape`` and implement :meth:`_load_train` (or
    :meth:`_train_val`) and :meth:`_load_test`; downloads belong in :meth:`prepare_data`. They take their own
    arguments keyword-only and pass the ones below on as ``**common``.

    Args:
        data_dir: where the dataset lives (or is downloaded to).
        batch_size: samples per batch of every loader.
        num_workers: ``DataLoader`` worker processes.
        val_fraction: share of the source's training split held out for validation, in ``[0, 1)``.
            ``0`` disables validation (``val_dataloader`` returns an empty list).
        label_noise: share of the training part whose label is replaced by a uniformly drawn *other*
            class, in ``[0, 1]``; which ones is recorded in ``noisy_mask``.
        seed: seeds the hold-out and the label noise (same split on every rank and every run).
        pin_memory: ``DataLoader(pin_memory=...)``.
        train_size: keep only this many samples of the training part (a seeded draw, before label noise);
            ``None`` keeps them all. The validation hold-out and the test split are unchanged.

    Attributes:
        train_dataset, val_dataset, test_dataset: the ``IndexedDataset`` of each split, after ``setup``.
        train_indices, val_indices: positions in the source's training split of the train/val samples.
        noisy_mask: bool ``[len(train_dataset)]``, which training labels were flipped by ``label_noise``.
        yield_indices: class attribute; ``False`` (the zoo's format): splits are served as they are and batches
            are ``(x, y)``; ``True``: every split is an ``IndexedDataset`` and batches are ``idx, (x, y)``.

    Raises:
        ValueError: on an out-of-range argument, naming it, the allowed range and the value received.
    """

    num_classes: int
    input_shape: tuple[int, ...]
    yield_indices: ClassVar[bool] = False

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        label_noise: float = 0.0,
        seed: int = 0,
        pin_memory: bool = False,
        train_size: int | None = None,
    ) -> None:
        super().__init__()
        check_arg("data_dir", data_dir, isinstance(data_dir, str) and data_dir != "", "a non-empty path string")
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_fraction("val_fraction", val_fraction, below_one=True)
        check_fraction("label_noise", label_noise)
        check_arg("seed", seed, is_int(seed) and 0 <= seed < 2**48, "an int in [0, 2**48)")
        if train_size is not None:
            check_int("train_size", train_size, 1)
        self.train_size = train_size
        self.save_hyperparameters(logger=False)
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = float(val_fraction)
        self.label_noise = float(label_noise)
        self.seed = seed
        self.pin_memory = pin_memory
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self.train_indices: Tensor | None = None
        self.val_indices: Tensor | None = None
        self.noisy_mask: Tensor | None = None

    # ----------------------------------------------------------------------------- subclass hooks
    def _load_train(self) -> Source:
        """Load the source's training split (every rank calls it; no downloads here)."""
        raise NotImplementedError

    def _load_test(self) -> Dataset | None:
        """Load the test split as items ``(x, y)`` with the evaluation transform, or ``None`` if there is none."""
        raise NotImplementedError

    def _no_test_reason(self) -> str:
        return "this dataset does not define one"

    def _train_val(self) -> TrainVal:
        """The seeded hold-out of :meth:`_load_train`'s pool, and label noise on its training part."""
        source = self._load_train()
        n = len(source.targets)
        if len(source.train) != n or len(source.evaluation) != n:  # type: ignore[arg-type]
            raise ValueError(f"{type(self).__name__}: source datasets and targets disagree in length")
        train_idx, val_idx = split_indices(n, self.val_fraction, self.seed)
        if self.train_size is not None:
            if self.train_size > len(train_idx):
                raise ValueError(
                    f"train_size={self.train_size} but the training part holds {len(train_idx)} samples: lower it, "
                    "or leave it null for all of them"
                )
            drawn = torch.randperm(len(train_idx), generator=seeded_generator(self.seed, SUBSET_STREAM))
            train_idx = train_idx[drawn[: self.train_size]].sort().values
        noisy, mask = symmetric_label_noise(
            source.targets[train_idx], self.label_noise, self.num_classes, seeded_generator(self.seed, NOISE_STREAM)
        )
        log.info(
            "%s: %d train / %d val samples (seed=%d), %d training labels flipped by label_noise=%.3g",
            type(self).__name__,
            len(train_idx),
            len(val_idx),
            self.seed,
            int(mask.sum()),
            self.label_noise,
        )
        return TrainVal(
            train=RelabeledDataset(Subset(source.train, train_idx.tolist()), noisy),
            val=Subset(source.evaluation, val_idx.tolist()),
            train_targets=noisy,
            val_targets=source.targets[val_idx],
            train_indices=train_idx,
            val_indices=val_idx,
            noisy_mask=mask,
        )

    # ----------------------------------------------------------------------------- the batch format
    def _serve(self, dataset: Dataset, targets: Tensor | None = None) -> Dataset:
        """What the loaders of a split serve: the one place that decides the batch format (``yield_indices``).

        Args:
            dataset: the split's items ``(x, y)``.
            targets: its labels, when known without reading the items (else inferred from ``dataset.targets``).
        """
        return IndexedDataset(dataset, targets=targets) if self.yield_indices else dataset

    # ----------------------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Build the splits the stage needs (idempotent): train/val for ``fit``/``validate``, test for ``test``.

        Raises:
            DatasetNotFoundError: the files are missing, or ``stage="test"`` and the dataset has no test split.
        """
        if stage in (None, "fit", "validate") and self.train_dataset is None:
            split = self._train_val()
            self.train_indices, self.val_indices = split.train_indices, split.val_indices
            self.noisy_mask = split.noisy_mask
            self.train_dataset = self._serve(split.train, split.train_targets)
            self.val_dataset = self._serve(split.val, split.val_targets)
        if stage in (None, "test") and self.test_dataset is None:
            test = self._load_test()
            if test is not None:
                self.test_dataset = self._serve(test)
            elif stage is not None:
                raise DatasetNotFoundError(f"{type(self).__name__} has no test split: {self._no_test_reason()}")

    @property
    def train_targets(self) -> Tensor:
        """Labels of the training split *after* label noise (LongTensor ``[len(train_dataset)]``).

        Raises:
            RuntimeError: before ``setup("fit")``.
        """
        if self.train_dataset is None:
            raise RuntimeError(f"{type(self).__name__}.train_targets is available after setup('fit')")
        return self.train_dataset.targets  # type: ignore[attr-defined]

    def _loader(self, dataset: Dataset | None, stage: str, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup({stage!r}) before asking for its dataloader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, "fit", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is not None and len(self.val_dataset) == 0:  # type: ignore[arg-type]
            return []  # val_fraction=0: Lightning skips validation
        return self._loader(self.val_dataset, "fit", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, "test", shuffle=False)
