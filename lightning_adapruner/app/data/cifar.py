"""``CIFAR10DataModule`` and ``CIFAR100DataModule``: torchvision's CIFAR files, held as ``uint8`` tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lightning_adapruner.app.data._base import IndexedDataModule, Source
from lightning_adapruner.app.data._checks import check_int
from lightning_adapruner.app.data._files import DatasetFiles, DatasetNotFoundError, missing_files
from lightning_adapruner.app.data._tensor import Cutout, TensorAugment, TensorImageDataset, image_source


class _CIFARDataModule(IndexedDataModule):
    """Shared logic of the CIFAR datamodules; subclasses name the torchvision class and the constants.

    Args:
        augment: random crop 32 with padding 4 and horizontal flip of training images.
        cutout: side of the Cutout square applied to training images, in ``[0, 32]`` (``0``: off).
        download: let :meth:`prepare_data` download into ``data_dir`` (torchvision checks the md5 sums).
        **common: the arguments of :class:`~lightning_adapruner.app.data.IndexedDataModule`.
    """

    display_name: str
    torchvision_class: str
    folder: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape = (3, 32, 32)

    def __init__(self, *, augment: bool = True, cutout: int = 0, download: bool = True, **common: Any) -> None:
        super().__init__(**common)
        check_int("cutout", cutout, 0, 32)
        self.augment = augment
        self.cutout = cutout
        self.download = download
        self._files = DatasetFiles(self.display_name, download, self.data_dir)

    def _tv_class(self) -> type:
        import torchvision.datasets as tvd

        return getattr(tvd, self.torchvision_class)

    def prepare_data(self) -> None:
        """Download and extract the archive into ``data_dir`` with torchvision when ``download=True``.

        torchvision skips the download when the extracted files are present with the right checksums.
        A failure is logged; ``setup`` then raises :class:`DatasetNotFoundError`.
        """
        # train=False fetches the archive of both splits but loads only the (smaller) test split
        self._files.try_download(lambda: self._tv_class()(self.data_dir, train=False, download=True))

    def _read(self, train: bool) -> tuple[Tensor, Tensor]:
        cls = self._tv_class()
        try:
            ds = cls(self.data_dir, train=train, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted ..."
            raise self._not_found(cls, err) from err
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW, uint8
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
        if int(labels.max()) >= self.num_classes or int(labels.min()) < 0:
            raise ValueError(f"{self.display_name}: labels outside [0, {self.num_classes}) in {self.data_dir}")
        return images, labels

    def _not_found(self, cls: Any, err: Exception) -> DatasetNotFoundError:
        directory = Path(self.data_dir) / cls.base_folder
        names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]

        def find(folder: Path) -> tuple[Path | None, list[str]]:
            missing = missing_files(folder, names)
            return (None if missing else folder), missing

        _, looked = self._files.locate([(directory, "torchvision layout under data_dir")], find)
        fixes = [f"download {cls.url} and extract it into {self.data_dir} (it holds {cls.base_folder}/)"]
        return self._files.not_found(looked or [f"{directory}: files present but {err}"], fixes)

    def _load_train(self) -> Source:
        augment = TensorAugment(padding=4, hflip=True) if self.augment else None
        cutout = Cutout(self.cutout) if self.cutout else None
        return image_source(TensorImageDataset(*self._read(train=True), self.mean, self.std), augment, cutout)

    def _load_test(self) -> TensorImageDataset:
        return TensorImageDataset(*self._read(train=False), self.mean, self.std)


class CIFAR10DataModule(_CIFARDataModule):
    """CIFAR-10 (50 000 train / 10 000 test 32x32 colour images, 10 classes) as indexed loaders.

    Read with torchvision's ``CIFAR10`` from ``data_dir/cifar-10-batches-py`` (md5-checked), then held
    as a ``uint8`` tensor: augmentation, normalisation and Cutout are tensor ops per item. The
    validation set is a seeded hold-out of the 50 000 training images.

    Args:
        augment: standard augmentation of training images: random crop 32 with padding 4, horizontal flip.
        cutout: side of the Cutout square applied to training images, in ``[0, 32]`` (``0``: off; 16 is the
            paper's value for CIFAR-10, 8 for CIFAR-100).
        download: let :meth:`prepare_data` download into ``data_dir`` (torchvision checks the md5 sums).
        **common: the arguments of :class:`~lightning_adapruner.app.data.IndexedDataModule` (``data_dir``:
            the directory holding, or receiving, the extracted ``cifar-10-batches-py/``).

    Raises:
        ValueError: on an out-of-range argument.
        DatasetNotFoundError: in ``setup`` when the files are missing or corrupted.

    Example::

        >>> dm = CIFAR10DataModule(data_dir="no-cifar-here", cutout=16, download=False)
        >>> dm.num_classes, dm.input_shape
        (10, (3, 32, 32))
        >>> dm.setup("fit")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        DatasetNotFoundError: CIFAR-10 not found. Looked in: ... (download=True and prepare_data() fetch the files)
    """

    display_name = "CIFAR-10"
    torchvision_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    num_classes = 10


class CIFAR100DataModule(_CIFARDataModule):
    """CIFAR-100 (50 000 train / 10 000 test 32x32 colour images, 100 fine classes) as indexed loaders.

    The arguments and the loading are those of :class:`CIFAR10DataModule`, with torchvision's ``CIFAR100``
    files in ``data_dir/cifar-100-python`` and CIFAR-100's normalisation constants.

    Example::

        >>> dm = CIFAR100DataModule(data_dir="no-cifar-here", cutout=8, download=False)
        >>> dm.num_classes, dm.cutout
        (100, 8)
    """

    display_name = "CIFAR-100"
    torchvision_class = "CIFAR100"
    folder = "cifar-100-python"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    num_classes = 100
