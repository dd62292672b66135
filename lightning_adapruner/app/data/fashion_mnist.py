"""``FashionMNISTDataModule``: the project's default dataset, read offline from the Debian package when present."""

from __future__ import annotations

from typing import Any

from lightning_adapruner.app.data._idx import IdxDataModule

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


class FashionMNISTDataModule(IdxDataModule):
    """Fashion-MNIST (60 000 train / 10 000 test 28x28 grey images, 10 classes) as indexed loaders.

    The idx files are looked for, in order, in (1) torchvision's layout ``data_dir/FashionMNIST/raw/``
    (plain or ``.gz``), (2) ``system_dir``, by default where the Debian package
    ``dataset-fashion-mnist`` installs them, (3) a torchvision download into ``data_dir`` done by
    :meth:`prepare_data` when ``download=True`` (a failed download is logged, not raised). If all
    fail, ``setup`` raises one :class:`DatasetNotFoundError` naming the places and the fixes.

    Images stay a ``uint8`` tensor; each item is normalised with ``(0.2860, 0.3530)`` on the fly.
    The validation set is a seeded hold-out of the 60 000 training images; the test split is the official
    10 000 images.

    Args:
        system_dir: second place to look (``None`` to skip it).
        **common: ``augment`` (random crop with padding 2 and horizontal flip of training images) and
            ``download``, as for :class:`~lightning_adapruner.app.data.MNISTDataModule`, and the arguments of
            :class:`~lightning_adapruner.app.data.IndexedDataModule`.

    Raises:
        ValueError: on an out-of-range argument.
        DatasetNotFoundError: in ``setup`` when the files are in none of the places.

    Example::

        >>> dm = FashionMNISTDataModule(data_dir="no-data-here", batch_size=4, download=False)  # the Debian files
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> tuple(x.shape), len(dm.train_dataset), len(dm.val_dataset)
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

    def __init__(self, *, system_dir: str | None = DEBIAN_FASHION_MNIST_DIR, **common: Any) -> None:
        super().__init__(system_dir=system_dir, **common)
