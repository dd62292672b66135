"""``FashionMNISTDataModule``: the project's default dataset, read offline from the Debian package when present."""

from __future__ import annotations

import logging

from lightning_adapruner.app.data._idx import IdxDataModule

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


class FashionMNISTDataModule(IdxDataModule):
    """Fashion-MNIST (60 000 train / 10 000 test 28x28 grey images, 10 classes) as indexed loaders.

    The idx files are looked for, in order, in (1) torchvision's layout ``data_dir/FashionMNIST/raw/``
    (plain or ``.gz``), (2) ``system_dir``, by default where the Debian package
    ``dataset-fashion-mnist`` installs them, (3) a torchvision download into ``data_dir`` done by
    :meth:`prepare_data` when ``download=True`` (a failed download is logged, not raised). If all
    fail, ``setup`` raises one :class:`DatasetNotFoundError` naming the places and the fixes.

    Images stay a ``uint8`` tensor; each item is normalised with ``(0.2860, 0.3530)`` on the fly.
    The validation set is a seeded hold-out of the training split; the test split is the official
    10 000 images. See :class:`~lightning_adapruner.app.data.IndexedDataModule` for the shared arguments.

    Args:
        data_dir: root of torchvision's layout and download target.
        batch_size: samples per batch.
        num_workers: ``DataLoader`` workers.
        val_fraction: share of the 60 000 training images held out for validation, in ``[0, 1)``.
        label_noise: share of training labels flipped to another class, in ``[0, 1]``.
        seed: seeds the hold-out and the label noise.
        pin_memory: ``DataLoader(pin_memory=...)``.
        augment: random crop (padding 2) and horizontal flip of training images.
        download: let :meth:`prepare_data` download into ``data_dir`` when the files are nowhere local.
        system_dir: second place to look (``None`` to skip it).

    Raises:
        DatasetNotFoundError: in ``setup`` when the files are in none of the places.

    Example::

        >>> dm = FashionMNISTDataModule(batch_size=4)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")  # doctest: +SKIP
        >>> idx, (x, y) = next(iter(dm.train_dataloader()))  # doctest: +SKIP
        >>> tuple(x.shape), len(dm.train_dataset), len(dm.val_dataset)  # doctest: +SKIP
        ((4, 1, 28, 28), 54000, 6000)
    """

    display_name = "Fashion-MNIST"
    folder = "FashionMNIST"
    torchvision_class = "FashionMNIST"
    mean = (0.2860,)
    std = (0.3530,)
    hflip = True
    apt_package = "dataset-fashion-mnist"
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        label_noise: float = 0.0,
        seed: int = 0,
        pin_memory: bool = False,
        augment: bool = False,
        download: bool = True,
        system_dir: str | None = DEBIAN_FASHION_MNIST_DIR,
    ) -> None:
        super().__init__(
            data_dir,
            batch_size,
            num_workers,
            val_fraction,
            label_noise,
            seed,
            pin_memory,
            augment,
            download,
            system_dir,
        )
