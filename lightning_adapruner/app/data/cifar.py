"""``CIFAR10DataModule`` and ``CIFAR100DataModule``: torchvision's CIFAR files, held as ``uint8`` tensors."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from lightning_adapruner.app.data._base import (
    DatasetNotFoundError,
    IndexedDataModule,
    Source,
    check_arg,
    download_status,
)
from lightning_adapruner.app.data._tensor import Cutout, TensorAugment, TensorImageDataset

log = logging.getLogger(__name__)


class _CIFARDataModule(IndexedDataModule):
    """Shared logic of the CIFAR datamodules; subclasses name the torchvision class and the constants."""

    display_name = "CIFAR"
    torchvision_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    input_shape = (3, 32, 32)

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        label_noise: float = 0.0,
        seed: int = 0,
        pin_memory: bool = False,
        augment: bool = True,
        cutout: int = 0,
        download: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, val_fraction, label_noise, seed, pin_memory)
        check_arg(
            "cutout",
            cutout,
            isinstance(cutout, int) and not isinstance(cutout, bool) and 0 <= cutout <= 32,
            "an int in [0, 32]",
        )
        self.augment = augment
        self.cutout = cutout
        self.download = download
        self._download_error: str | None = None
        self._download_tried = False

    def _tv_class(self) -> type:
        import torchvision.datasets as tvd

        return getattr(tvd, self.torchvision_class)

    def prepare_data(self) -> None:
        """Download and extract the archive into ``data_dir`` with torchvision when ``download=True``.

        torchvision skips the download when the extracted files are present with the right checksums.
        A failure is logged; ``setup`` then raises :class:`DatasetNotFoundError`.
        """
        if not self.download:
            return
        self._download_tried = True
        try:
            self._tv_class()(self.data_dir, train=False, download=True)  # fetches both splits; loads only test
        except Exception as err:  # network errors come in many types (URLError, RuntimeError, OSError, ...)
            self._download_error = f"{type(err).__name__}: {err}"
            log.warning("%s download into %s failed: %s", self.display_name, self.data_dir, self._download_error)

    def _read(self, train: bool) -> tuple[Tensor, Tensor]:
        cls = self._tv_class()
        try:
            ds = cls(self.data_dir, train=train, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted ..."
            raise DatasetNotFoundError(self._not_found_message(cls, err)) from err
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW, uint8
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
        if int(labels.max()) >= self.num_classes or int(labels.min()) < 0:
            raise ValueError(f"{self.display_name}: labels outside [0, {self.num_classes}) in {self.data_dir}")
        return images, labels

    def _not_found_message(self, cls: type, err: Exception) -> str:
        directory = Path(self.data_dir) / cls.base_folder
        names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        if not directory.is_dir():
            where = f"{directory}: no such directory"
        else:
            missing = [n for n in names if not (directory / n).is_file()]
            where = f"{directory}: " + (f"missing {', '.join(missing)}" if missing else f"files present but {err}")
        dl = download_status(self.download, self._download_tried, self._download_error, self.data_dir)
        return (
            f"{self.display_name} not found. Looked in:\n  - {where}\n  - {dl}\n"
            "Fix it in one of these ways:\n"
            f"  - go online with download=True and call prepare_data() (the Trainer does)\n"
            f"  - download {cls.url} and extract it into {self.data_dir} (it holds {cls.base_folder}/)"
        )

    def _load_train(self) -> Source:
        images, labels = self._read(train=True)
        clean = TensorImageDataset(images, labels, self.mean, self.std)
        if not self.augment and not self.cutout:
            return Source(train=clean, evaluation=clean, targets=labels)
        train = clean.with_transforms(
            augment=TensorAugment(padding=4, hflip=True) if self.augment else None,
            cutout=Cutout(self.cutout) if self.cutout else None,
        )
        return Source(train=train, evaluation=clean, targets=labels)

    def _load_test(self) -> TensorImageDataset:
        images, labels = self._read(train=False)
        return TensorImageDataset(images, labels, self.mean, self.std)


class CIFAR10DataModule(_CIFARDataModule):
    """CIFAR-10 (50 000 train / 10 000 test 32x32 colour images, 10 classes) as indexed loaders.

    Read with torchvision's ``CIFAR10`` from ``data_dir/cifar-10-batches-py`` (md5-checked), then held
    as a ``uint8`` tensor: augmentation, normalisation and Cutout are tensor ops per item. The
    validation set is a seeded hold-out of the training split.

    Args:
        data_dir: directory holding (or receiving) torchvision's extracted ``cifar-10-batches-py/``.
        batch_size: samples per batch.
        num_workers: ``DataLoader`` workers.
        val_fraction: share of the 50 000 training images held out for validation, in ``[0, 1)``.
        label_noise: share of training labels flipped to another class, in ``[0, 1]``.
        seed: seeds the hold-out and the label noise.
        pin_memory: ``DataLoader(pin_memory=...)``.
        augment: standard augmentation of training images: random crop 32 with padding 4, horizontal flip.
        cutout: side of the Cutout square applied to training images (``0``: off; 16 is the paper's value
            for CIFAR-10, 8 for CIFAR-100).
        download: let :meth:`prepare_data` download into ``data_dir`` (torchvision checks the md5 sums).

    Raises:
        DatasetNotFoundError: in ``setup`` when the files are missing or corrupted.

    Example::

        >>> dm = CIFAR10DataModule(data_dir="data", cutout=16)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")  # doctest: +SKIP
        >>> idx, (x, y) = next(iter(dm.train_dataloader()))  # doctest: +SKIP
    """

    display_name = "CIFAR-10"
    torchvision_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    num_classes = 10


class CIFAR100DataModule(_CIFARDataModule):
    """CIFAR-100 (50 000 train / 10 000 test 32x32 colour images, 100 fine classes) as indexed loaders.

    Read with torchvision's ``CIFAR100`` from ``data_dir/cifar-100-python`` (md5-checked), then held
    as a ``uint8`` tensor: augmentation, normalisation and Cutout are tensor ops per item. The
    validation set is a seeded hold-out of the training split.

    Args:
        data_dir: directory holding (or receiving) torchvision's extracted ``cifar-100-python/``.
        batch_size: samples per batch.
        num_workers: ``DataLoader`` workers.
        val_fraction: share of the 50 000 training images held out for validation, in ``[0, 1)``.
        label_noise: share of training labels flipped to another class, in ``[0, 1]``.
        seed: seeds the hold-out and the label noise.
        pin_memory: ``DataLoader(pin_memory=...)``.
        augment: standard augmentation of training images: random crop 32 with padding 4, horizontal flip.
        cutout: side of the Cutout square applied to training images (``0``: off; 16 is the paper's value
            for CIFAR-10, 8 for CIFAR-100).
        download: let :meth:`prepare_data` download into ``data_dir`` (torchvision checks the md5 sums).

    Raises:
        DatasetNotFoundError: in ``setup`` when the files are missing or corrupted.

    Example::

        >>> dm = CIFAR100DataModule(data_dir="data", cutout=8)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")  # doctest: +SKIP
    """

    display_name = "CIFAR-100"
    torchvision_class = "CIFAR100"
    folder = "cifar-100-python"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    num_classes = 100
