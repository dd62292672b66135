"""``ImageFolderDataModule``: any class-per-folder image dataset on disk."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from lightning_adapruner.app.data._base import IndexedDataModule, Source
from lightning_adapruner.app.data._checks import check_arg, check_int
from lightning_adapruner.app.data._files import DatasetNotFoundError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TransformedDataset(Dataset):
    """``(transform(x), y)`` for each item ``(x, y)`` of ``dataset``; several views can share one dataset."""

    def __init__(self, dataset: Any, transform: Callable) -> None:
        self.dataset = dataset
        self.transform = transform
        self.targets = getattr(dataset, "targets", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x, y = self.dataset[index]
        return self.transform(x), y


def _image_folder(root: Path, class_to_idx: dict[str, int] | None = None) -> Any:
    """torchvision ``ImageFolder`` over ``root``, with a fixed class-to-index map when given.

    With the map, a class folder missing from ``root`` keeps every other class's index (plain
    ``ImageFolder`` numbers the folders it finds, which would shift the labels of a test split that
    lacks a class).
    """
    from torchvision.datasets import ImageFolder

    if class_to_idx is None:
        return ImageFolder(str(root))

    class _FixedClasses(ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return sorted(class_to_idx, key=class_to_idx.__getitem__), dict(class_to_idx)

    return _FixedClasses(str(root), allow_empty=True)


class ImageFolderDataModule(IndexedDataModule):
    """A class-per-folder image dataset (torchvision ``ImageFolder``) as indexed loaders.

    Layout, checked in ``setup``:

    - ``root/train/<class>/*.png|jpg|...`` and optionally ``root/test/<class>/...``: train and
      validation come from a seeded split of ``root/train``; the test split is ``root/test``.
    - ``root/<class>/...`` (no ``train/`` folder): train and validation come from a seeded split of
      ``root``, and there is no test split.

    The validation set is always the seeded hold-out of the training folder; a ``root/val`` folder
    is not read. Without a test folder, fitting and validating work and only ``setup("test")`` (``trainer.test``)
    raises :class:`DatasetNotFoundError`, since silently testing on training or validation images
    would report a wrong number. The test folder is read with the training split's class-to-index map,
    so a test split lacking a class keeps the labels right; a test class unknown to training is an error.

    Images are decoded with PIL per item (converted to RGB), resized so the short side is
    ``image_size``, cropped to ``image_size`` x ``image_size`` (centre for evaluation; random with
    padding ``image_size // 8`` plus a horizontal flip for training when ``augment``), and normalised.

    Args:
        root: dataset folder (mandatory; ``"???"`` is Hydra's mark for it). It takes the place of ``data_dir``.
        image_size: side of the square images the model sees.
        augment: random crop and horizontal flip of training images.
        mean, std: per-channel normalisation constants (ImageNet's by default).
        **common: the other arguments of :class:`~lightning_adapruner.app.data.IndexedDataModule`
            (``num_workers``: decoding images costs, use a few).

    Raises:
        ValueError: on an out-of-range argument (``root`` left at ``"???"`` included).
        TypeError: when given ``data_dir`` (pass ``root``).
        DatasetNotFoundError: in ``setup`` when ``root`` (or the requested split) is missing.

    Example::

        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"):
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     Image.new("RGB", (10, 10)).save(root / name)
        >>> dm = ImageFolderDataModule(root=str(root), image_size=8, batch_size=2, val_fraction=0.25)
        >>> dm.classes, dm.num_classes, dm.input_shape
        (['cat', 'dog'], 2, (3, 8, 8))
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.val_dataloader()))
        >>> tuple(x.shape), len(dm.train_dataset)
        ((1, 3, 8, 8), 3)
        >>> import shutil; shutil.rmtree(root)
    """

    def __init__(
        self,
        *,
        root: str = "???",
        image_size: int = 32,
        augment: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        **common: Any,
    ) -> None:
        check_arg(
            "root", root, isinstance(root, str) and root not in ("", "???"), "the path of a class-per-folder image set"
        )
        check_int("image_size", image_size, 1)
        check_arg("mean", mean, len(mean) == 3, "3 per-channel values (images are loaded as RGB)")
        check_arg("std", std, len(std) == 3 and all(s > 0 for s in std), "3 positive per-channel values")
        if "data_dir" in common:
            raise TypeError("ImageFolderDataModule takes root=<dataset folder>, not data_dir")
        super().__init__(data_dir=root, **common)
        self.root = root
        self.image_size = image_size
        self.augment = augment
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.input_shape = (3, image_size, image_size)
        self._classes: list[str] | None = None
        self._class_to_idx: dict[str, int] | None = None

    # ------------------------------------------------------------------------------------ layout
    @property
    def train_root(self) -> Path:
        """``root/train`` if it exists, else ``root``."""
        root = Path(self.root)
        return root / "train" if (root / "train").is_dir() else root

    @property
    def test_root(self) -> Path | None:
        """``root/test`` when ``root/train`` and ``root/test`` both exist, else ``None``."""
        root = Path(self.root)
        return root / "test" if (root / "train").is_dir() and (root / "test").is_dir() else None

    def _scan_classes(self) -> dict[str, int]:
        if self._class_to_idx is None:
            from torchvision.datasets.folder import find_classes

            root = Path(self.root)
            if not root.is_dir():
                raise DatasetNotFoundError(
                    f"ImageFolderDataModule: root {root} is not a directory. Point root at a folder holding "
                    "train/<class>/<images> (and optionally test/<class>/<images>), or <class>/<images>."
                )
            if not (root / "train").is_dir() and (root / "test").is_dir():
                raise DatasetNotFoundError(
                    f"ImageFolderDataModule: {root} has a test/ folder but no train/ folder; add {root / 'train'} "
                    "with one sub-folder per class (otherwise test/ would be taken for a class)."
                )
            try:
                self._classes, self._class_to_idx = find_classes(self.train_root)
            except FileNotFoundError as err:
                raise DatasetNotFoundError(f"ImageFolderDataModule: {err} Expected one sub-folder per class.") from err
        return self._class_to_idx

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        """Number of class folders in the training folder (scanned on first use; no image is read)."""
        return len(self._scan_classes())

    @property
    def classes(self) -> list[str]:
        """Class names, in label order."""
        self._scan_classes()
        return list(self._classes or [])

    # ------------------------------------------------------------------------------------ transforms
    def _transform(self, train: bool) -> Callable:
        from torchvision.transforms import v2

        size = self.image_size
        steps: list[Any] = [v2.ToImage(), v2.Resize(size, antialias=True)]
        if train and self.augment:
            steps += [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
        else:
            steps += [v2.CenterCrop(size)]
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        return v2.Compose(steps)

    # ------------------------------------------------------------------------------------ loading
    def _load_train(self) -> Source:
        class_to_idx = self._scan_classes()
        folder = _image_folder(self.train_root)
        if folder.class_to_idx != class_to_idx:  # the folder changed since num_classes was read
            raise RuntimeError(f"ImageFolderDataModule: the class folders of {self.train_root} changed while loading")
        log.info(
            "ImageFolderDataModule: %d images in %d classes under %s", len(folder), len(class_to_idx), self.train_root
        )
        targets = torch.as_tensor(folder.targets, dtype=torch.long)
        train = TransformedDataset(folder, self._transform(train=True))
        evaluation = TransformedDataset(folder, self._transform(train=False))
        return Source(train=train, evaluation=evaluation, targets=targets)

    def _load_test(self) -> Dataset | None:
        class_to_idx = self._scan_classes()
        test_root = self.test_root
        if test_root is None:
            return None
        unknown = sorted(p.name for p in test_root.iterdir() if p.is_dir() and p.name not in class_to_idx)
        if unknown:
            raise ValueError(f"ImageFolderDataModule: {test_root} has classes absent from {self.train_root}: {unknown}")
        folder = _image_folder(test_root, class_to_idx)
        return TransformedDataset(folder, self._transform(train=False))

    def _no_test_reason(self) -> str:
        root = Path(self.root)
        if not (root / "train").is_dir():
            return f"{root} has no train/ folder, so all of it is the training pool. Use root/train and root/test."
        return f"{root / 'test'} does not exist; add it with one sub-folder per class."
