"""Shared datamodule logic: seeded train/val hold-out, symmetric label noise, indexed loaders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lightning_adapruner.core.dataset import IndexedDataset

log = logging.getLogger(__name__)

# Independent random streams derived from the one user ``seed``: changing how the split is drawn
# never changes which labels are flipped for a given train set, and vice versa.
SPLIT_STREAM = 0
NOISE_STREAM = 1
DATA_STREAM = 2


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the places looked at (and could not be downloaded)."""


def seeded_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for random stream ``stream`` of ``seed``; identical on every rank and run."""
    return torch.Generator().manual_seed((int(seed) << 8) + int(stream))


def split_indices(num_samples: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded hold-out split of ``range(num_samples)`` into sorted ``(train, val)`` index tensors.

    ``val`` gets ``round(val_fraction * num_samples)`` samples, at least one when ``val_fraction > 0``
    and at most ``num_samples - 1`` so the training split is never empty. The result depends only on
    ``(num_samples, val_fraction, seed)``, so every DDP rank and every run draws the same split.

    Example::

        >>> train, val = split_indices(10, 0.2, seed=0)
        >>> len(train), len(val), sorted(train.tolist() + val.tolist()) == list(range(10))
        (8, 2, True)
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_val = round(val_fraction * num_samples)
    if val_fraction > 0:
        num_val = min(max(num_val, 1), num_samples - 1)
    perm = torch.randperm(num_samples, generator=seeded_generator(seed, SPLIT_STREAM))
    return perm[num_val:].sort().values, perm[:num_val].sort().values


def symmetric_label_noise(
    targets: Tensor,
    rate: float,
    num_classes: int,
    generator: torch.Generator,
    eligible: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Flip the labels of exactly ``round(rate * len(targets))`` samples to a uniformly drawn *other* class.

    Args:
        targets: clean labels, LongTensor ``[N]`` with values in ``[0, num_classes)``.
        rate: share of all ``N`` samples to flip, in ``[0, 1]``.
        num_classes: number of classes (at least 2 when ``rate > 0``).
        generator: source of randomness (see :func:`seeded_generator`).
        eligible: optional bool mask ``[N]``; only these samples may be flipped.

    Returns:
        ``(noisy_targets, flipped_mask)``; ``noisy_targets[i] != targets[i]`` exactly where ``flipped_mask[i]``.

    Raises:
        ValueError: if fewer samples are eligible than must be flipped, or ``num_classes < 2``.

    Example::

        >>> y = torch.zeros(10, dtype=torch.long)
        >>> noisy, mask = symmetric_label_noise(y, 0.3, 3, torch.Generator().manual_seed(0))
        >>> int(mask.sum()), bool((noisy[mask] != 0).all()), bool((noisy[~mask] == 0).all())
        (3, True, True)
    """
    targets = torch.as_tensor(targets, dtype=torch.long)
    n = len(targets)
    num_flip = round(rate * n)
    mask = torch.zeros(n, dtype=torch.bool)
    if num_flip == 0:
        return targets.clone(), mask
    if num_classes < 2:
        raise ValueError(f"label noise needs num_classes >= 2, got {num_classes}")
    candidates = torch.arange(n) if eligible is None else torch.nonzero(eligible, as_tuple=False).flatten()
    if num_flip > len(candidates):
        raise ValueError(f"cannot flip {num_flip} labels: only {len(candidates)} samples are eligible")
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:num_flip]]
    # y + U{1..C-1} mod C is uniform over the C-1 classes other than y.
    shift = torch.randint(1, num_classes, (num_flip,), generator=generator)
    noisy = targets.clone()
    noisy[chosen] = (targets[chosen] + shift) % num_classes
    mask[chosen] = True
    return noisy, mask


class RelabeledDataset(Dataset):
    """``(x, targets[i])`` for the ``i``-th item ``(x, _)`` of ``dataset``: the label view after label noise."""

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


def download_status(download: bool, tried: bool, error: str | None, data_dir: str) -> str:
    """One line for a not-found message: what the download step did."""
    if not download:
        return "download: disabled (download=False)"
    if error is not None:
        return f"download into {data_dir}: failed ({error})"
    if not tried:
        return "download: not attempted; prepare_data() downloads (the Trainer calls it; call it before setup())"
    return "download: done, but the files are still missing or corrupted"


def check_arg(name: str, value: Any, ok: bool, allowed: str) -> None:
    """Raise ``ValueError`` naming the argument, the allowed values and the value received."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class IndexedDataModule(pl.LightningDataModule):
    """Base of the datamodule zoo: a seeded train/val hold-out, label noise, and indexed loaders.

    Every loader yields ``IndexedSample`` batches, so ``idx, (x, y) = batch`` in every split; ``idx``
    is the sample's position in that split's :class:`~lightning_adapruner.core.dataset.IndexedDataset`
    (``train_dataset``, ``val_dataset``, ``test_dataset``). The validation set is a seeded hold-out
    of the source's *training* split (for model selection); the test split is kept for the final
    number. Label noise only touches the training part.

    Subclasses set ``num_classes`` and ``input_shape`` and implement :meth:`_load_train` (and
    :meth:`_load_test`); downloads belong in :meth:`prepare_data`.

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

    Attributes:
        train_dataset, val_dataset, test_dataset: the ``IndexedDataset`` of each split, after ``setup``.
        train_indices, val_indices: positions in the source's training split of the train/val samples.
        noisy_mask: bool ``[len(train_dataset)]``, which training labels were flipped by ``label_noise``.

    Raises:
        ValueError: on an out-of-range argument, naming it, the allowed range and the value received.
    """

    num_classes: int
    input_shape: tuple[int, ...]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        label_noise: float = 0.0,
        seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        check_arg("data_dir", data_dir, isinstance(data_dir, str) and data_dir != "", "a non-empty path string")
        check_arg("batch_size", batch_size, _is_int(batch_size) and batch_size >= 1, "an int >= 1")
        check_arg("num_workers", num_workers, _is_int(num_workers) and num_workers >= 0, "an int >= 0")
        check_arg(
            "val_fraction",
            val_fraction,
            isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0,
            "a float in [0, 1)",
        )
        check_arg(
            "label_noise",
            label_noise,
            isinstance(label_noise, (int, float)) and 0.0 <= label_noise <= 1.0,
            "a float in [0, 1]",
        )
        check_arg("seed", seed, _is_int(seed) and 0 <= seed < 2**48, "an int in [0, 2**48)")
        self.save_hyperparameters(logger=False)
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = float(val_fraction)
        self.label_noise = float(label_noise)
        self.seed = seed
        self.pin_memory = pin_memory
        self.train_dataset: IndexedDataset | None = None
        self.val_dataset: IndexedDataset | None = None
        self.test_dataset: IndexedDataset | None = None
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

    # ----------------------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Build the splits the stage needs (idempotent): train/val for ``fit``/``validate``, test for ``test``."""
        if stage in (None, "fit", "validate") and self.train_dataset is None:
            self._setup_train_val()
        if stage in (None, "test") and self.test_dataset is None:
            test = self._load_test()
            if test is None:
                if stage is not None:
                    raise DatasetNotFoundError(f"{type(self).__name__} has no test split: {self._no_test_reason()}")
            else:
                self.test_dataset = IndexedDataset(test)

    def _no_test_reason(self) -> str:
        return "this dataset does not define one"

    def _setup_train_val(self) -> None:
        source = self._load_train()
        n = len(source.targets)
        if len(source.train) != n or len(source.evaluation) != n:  # type: ignore[arg-type]
            raise ValueError(f"{type(self).__name__}: source datasets and targets disagree in length")
        train_idx, val_idx = split_indices(n, self.val_fraction, self.seed)
        clean = source.targets[train_idx]
        noisy, mask = symmetric_label_noise(
            clean, self.label_noise, self.num_classes, seeded_generator(self.seed, NOISE_STREAM)
        )
        self.train_indices, self.val_indices, self.noisy_mask = train_idx, val_idx, mask
        self.train_dataset = IndexedDataset(
            RelabeledDataset(Subset(source.train, train_idx.tolist()), noisy), targets=noisy
        )
        self.val_dataset = IndexedDataset(Subset(source.evaluation, val_idx.tolist()), targets=source.targets[val_idx])
        log.info(
            "%s: %d train / %d val samples (seed=%d), %d training labels flipped by label_noise=%.3g",
            type(self).__name__,
            len(train_idx),
            len(val_idx),
            self.seed,
            int(mask.sum()),
            self.label_noise,
        )

    @property
    def train_targets(self) -> Tensor:
        """Labels of the training split *after* label noise (LongTensor ``[len(train_dataset)]``)."""
        if self.train_dataset is None:
            raise RuntimeError(f"{type(self).__name__}.train_targets is available after setup('fit')")
        return self.train_dataset.targets  # type: ignore[return-value]

    def _loader(self, dataset: IndexedDataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def _require(self, dataset: IndexedDataset | None, stage: str) -> IndexedDataset:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup({stage!r}) before asking for its dataloader")
        return dataset

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._require(self.train_dataset, "fit"), shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        dataset = self._require(self.val_dataset, "fit")
        if len(dataset) == 0:
            return []  # val_fraction=0: Lightning skips validation
        return self._loader(dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._require(self.test_dataset, "test"), shuffle=False)
